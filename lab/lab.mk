# The QEMU lab and the molecule scenarios; included by the Makefile (which defines VENV, BIN and venv).
# The lab scripts install their own host packages (qemu-system-x86, qemu-utils, debootstrap, ...).
VENV ?= .venv
BIN ?= $(VENV)/bin
# molecule runs ansible-config and ansible-playbook by name.
MOLECULE := PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/molecule

.PHONY: lab-image lab-up lab-down lab-capture test-molecule test-molecule-default test-molecule-fleet \
	test-lab-faults lint-lab

lab-image:
	lab/build-image.sh

lab-up:
	lab/up.sh

lab-down:
	lab/down.sh

lab-capture:
	lab/capture-fixtures.sh

test-molecule: test-molecule-default test-molecule-fleet test-lab-faults

test-molecule-default: venv
	$(MOLECULE) test -s default

# molecule destroys the fleet at the end of its sequence; lab/down.sh runs again whatever happened, so a
# failure (or an interrupted molecule) leaves no guest running.
test-molecule-fleet: venv lab-image
	status=0; $(MOLECULE) test -s fleet || status=$$?; lab/down.sh; exit $$status

# The lab's own fault handling on real guests: a guest that never answers ssh, a full disk.
test-lab-faults: venv lab-image
	status=0; MEMTUNE_FLEET_TESTS=1 $(BIN)/pytest -m fleet tests/lab || status=$$?; lab/down.sh; exit $$status

lint-lab:
	@scripts/apt-ensure shellcheck
	shellcheck -x lab/*.sh
