# memtune: `make run` runs the main job on the embedded default inventory (localhost);
# `make test` runs every test. Both install what they need first.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
COLLECTION := ansible_collections/memtune/fleet
SANITY_DIR := build/sanity/ansible_collections/memtune/fleet
# Not collection content: the controller package, its tests, the lab and the benchmarks.
SANITY_SKIP := src tests lab bench scripts molecule
APT_PACKAGES := numactl procps python3-venv rsync
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)
export ANSIBLE_FORCE_COLOR ?= 0

.PHONY: run probe test test-unit test-integration lint sanity bench venv apt chromium collection clean

# The main job: probe, plan and show the diff in check mode; `make run APPLY=1` applies it.
run: venv
	$(BIN)/ansible-playbook playbooks/tune.yml --diff $(if $(filter 1 yes true,$(APPLY)),,--check) $(ARGS)

probe: venv
	$(BIN)/ansible-playbook playbooks/probe.yml

# Every test: static checks and ansible-test sanity, the pytest suite (unit, this machine's kernel as
# root, CLI), then the molecule scenarios (localhost, the QEMU fleet) and the fault tests on the fleet.
test: venv chromium
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest -m "not fleet" tests
	$(MAKE) --no-print-directory test-molecule

test-unit: venv
	$(BIN)/pytest tests/unit

test-integration: venv chromium
	$(BIN)/pytest -m "not fleet" tests/integration

lint: venv sanity lint-lab
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src plugins/action plugins/filter tests
	$(BIN)/mypy
	$(BIN)/ansible-lint --profile production

# ansible-test insists on running from ansible_collections/<ns>/<name>: a copy of the tracked files.
sanity: venv
	pip_version=$$($(BIN)/python -c 'import re, ansible_test._internal.python_requirements as r; \
	  print(re.search(r"pip=.([0-9.]+)", open(r.__file__).read())[1])') && \
	  install -D -m 0644 scripts/offline-get-pip.py ~/.ansible/test/cache/get_pip_$${pip_version//./_}.py
	rm -rf build/sanity && mkdir -p $(SANITY_DIR)
	git ls-files -co --exclude-standard -z | grep -zv '^tests/fixtures/' | rsync -a --ignore-missing-args --from0 --files-from=- ./ $(SANITY_DIR)/
	cd $(SANITY_DIR) && git init -q && git add -A && \
	  skip=$$(for dir in $(SANITY_SKIP); do [ -n "$$(git ls-files $$dir)" ] && echo "--exclude $$dir/"; done); \
	  $(CURDIR)/$(BIN)/ansible-test sanity --python 3.11 --color no $$skip

# Every benchmark on this machine (bench/bench.mk; `make bench-lab` adds the QEMU fleet). Figures:
# bench/RESULTS.md; this run's reports: build/bench/.
bench: bench-all

venv: $(VENV)/.installed apt collection

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

apt:
	@scripts/apt-ensure $(APT_PACKAGES)

# Headless Chromium from Debian for the HTML report's browser tests and benchmark (Playwright drives it;
# `playwright install` is never used).
chromium:
	@scripts/apt-ensure chromium

collection: $(COLLECTION)
$(COLLECTION):
	mkdir -p $(dir $@) && ln -sfn ../.. $@

clean:
	rm -rf build ansible_collections .mypy_cache .ruff_cache .pytest_cache

-include lab/lab.mk
-include bench/bench.mk
