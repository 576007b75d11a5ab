# The QEMU lab and the molecule scenarios; included by the Makefile (which defines VENV, BIN and venv).
# The lab scripts install their own host packages (qemu-system-x86, qemu-utils, debootstrap, ...).
VENV ?= .venv
BIN ?= $(VENV)/bin
# molecule runs ansible-config and ansible-playbook by name.
MOLECULE := PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/molecule
# One fleet per machine: runs that boot guests wait for each other (up to 40 minutes) instead of
# resetting each other's guests.
LAB_LOCK := flock -w 2400 $${MEMTUNE_LAB_CACHE:-$$HOME/.cache/memtune/lab}/fleet.lock

.PHONY: lab-image lab-up lab-down lab-capture test-molecule test-molecule-default test-molecule-fleet \
	test-lab-faults test-fleet lint-lab lab-capture-workloads

lab-image:
	lab/build-image.sh

lab-up:
	lab/up.sh

lab-down:
	lab/down.sh

lab-capture: lab-image
	$(LAB_LOCK) lab/capture-fixtures.sh

# Guests running PostgreSQL, Redis, MariaDB and container-shaped processes, captured with their processes.
lab-capture-workloads: lab-image
	$(LAB_LOCK) lab/capture-workloads.sh

test-molecule: test-molecule-default test-molecule-fleet test-lab-faults test-fleet

test-molecule-default: venv
	$(MOLECULE) test -s default

# molecule destroys the fleet at the end of its sequence; lab/down.sh runs again whatever happened, so a
# failure (or an interrupted molecule) leaves no guest running.
test-molecule-fleet: venv lab-image
	$(LAB_LOCK) bash -c 'status=0; $(MOLECULE) test -s fleet || status=$$?; lab/down.sh; exit $$status'

# The lab's own fault handling on real guests (a guest that never answers ssh, a full disk); these start
# their own guests in their own run directories and stop them.
test-lab-faults: venv lab-image
	$(LAB_LOCK) env MEMTUNE_FLEET_TESTS=1 $(BIN)/pytest -m fleet tests/lab

# memtune on the running fleet with faults injected (tests/fleet: rollouts, unit limits). The session takes
# the lab lock itself for as long as its fleet runs, so it is not wrapped in LAB_LOCK here; lab/down.sh
# runs again afterwards, under the lock, whatever happened.
test-fleet: venv lab-image
	status=0; env MEMTUNE_FLEET_TESTS=1 $(BIN)/pytest -m fleet tests/fleet || status=$$?; \
	  $(LAB_LOCK) lab/down.sh; exit $$status

lint-lab:
	@scripts/apt-ensure shellcheck
	shellcheck -x lab/*.sh
