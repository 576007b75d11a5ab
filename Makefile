# memtune: `make run` runs the main job on the embedded default inventory (localhost);
# `make test` runs every test. Both install what they need first.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
COLLECTION := ansible_collections/memtune/fleet
SANITY_DIR := build/sanity/ansible_collections/memtune/fleet
VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
MATRIX_PYTHON ?= $(HOME)/.pyenv/versions/3.13.0/bin/python
MATRIX_ANSIBLE_CORE ?= ansible-core>=2.21,<2.22
APT_PACKAGES := numactl procps python3-venv rpm rsync
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)
export ANSIBLE_FORCE_COLOR ?= 0

.PHONY: run probe test test-unit test-contract test-live fuzz lint sanity dist test-packaging test-packaging-matrix changelog bench venv apt chromium collection clean

# The main job: probe, plan and show the diff in check mode; `make run APPLY=1` applies it.
run: venv
	$(BIN)/ansible-playbook playbooks/tune.yml --diff $(if $(filter 1 yes true,$(APPLY)),,--check) $(ARGS)

probe: venv
	$(BIN)/ansible-playbook playbooks/probe.yml

# Every test: static checks and ansible-test sanity, the pytest suite (unit, this machine's kernel as
# root, CLI, the HTML pages in headless Chromium, the installed artifacts), the installed artifacts on the
# current ansible-core, then the molecule scenarios (localhost, the QEMU fleet) and the fault tests on the
# fleet.
test: venv chromium
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest -m "not fleet" tests
	$(MAKE) --no-print-directory test-packaging-matrix
	$(MAKE) --no-print-directory test-molecule

# tests/unit mirrors src/memtune and the remote code (offline: captured trees, saved facts, the CLI, the HTML
# pages in headless Chromium); tests/contract keeps the controller's and the host's copies of shared values
# equal; tests/live runs the modules and playbooks on this machine's kernel as root; tests/fleet boots QEMU.
test-unit: venv chromium
	$(BIN)/pytest tests/unit tests/contract

test-contract: venv
	$(BIN)/pytest tests/contract

test-live: venv chromium
	$(BIN)/pytest -m "not fleet" tests/live

# Property-based fuzzing of policies and facts as text (tests/fuzz): FUZZ_EXAMPLES cases per target (10000)
# under a 4 GiB address-space limit, where running out of memory is a crash and fails; `make test` runs
# the small default budget. Figures: bench/RESULTS.md.
FUZZ_EXAMPLES ?= 10000
fuzz: venv
	ulimit -v 4194304 && MEMTUNE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -p no:cacheprovider -s tests/fuzz

lint: venv sanity lint-lab
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src plugins/action plugins/filter tests
	$(BIN)/mypy
	$(BIN)/ansible-lint --profile production

# ansible-test sanity on the collection as users install it: the tarball (`make dist`) installed under
# build/sanity (its own git repository, else ansible-test skips what the checkout's .gitignore lists), every
# test, no --exclude, no ignore files. The changelog fragments are linted here (the tarball
# carries the rendered changelog only).
sanity: venv dist
	pip_version=$$($(BIN)/python -c 'import re, ansible_test._internal.python_requirements as r; \
	  print(re.search(r"pip=.([0-9.]+)", open(r.__file__).read())[1])') && \
	  install -D -m 0644 scripts/offline-get-pip.py ~/.ansible/test/cache/get_pip_$${pip_version//./_}.py
	rm -rf build/sanity
	$(BIN)/ansible-galaxy collection install --force -p build/sanity build/dist/memtune-fleet-$(VERSION).tar.gz
	cd $(SANITY_DIR) && git init -q && git add -A && $(CURDIR)/$(BIN)/ansible-test sanity --python 3.11 --color no
	$(BIN)/antsibull-changelog lint

# The collection tarball, the wheel and the sdist in build/dist, built from the files git knows (committed or
# not) copied into build/tree, so nothing else the checkout holds can reach them.
dist: venv
	rm -rf build/tree build/dist && mkdir -p build/tree build/dist
	git ls-files -co --exclude-standard -z | rsync -a --from0 --files-from=- ./ build/tree/
	cd build/tree && $(CURDIR)/$(BIN)/ansible-galaxy collection build --output-path $(CURDIR)/build/dist
	$(BIN)/python -m build --outdir build/dist build/tree

# Both artifacts installed into fresh virtualenvs outside the checkout and run from /tmp (tests/packaging;
# part of `make test`): controller Python 3.11 with ansible-core 2.19, targets on Python 3 and 3.8.
test-packaging: venv
	$(BIN)/pytest -m packaging tests/packaging

# The same on the current ansible-core release with Python 3.13 (pyenv) as the controller; without the Python
# 3.8 target, which ansible-core 2.21 refuses.
test-packaging-matrix: venv
	MEMTUNE_CONTROLLER_PYTHON=$(MATRIX_PYTHON) MEMTUNE_ANSIBLE_CORE='$(MATRIX_ANSIBLE_CORE)' MEMTUNE_TARGET_PY38=0 \
	  $(BIN)/pytest -m packaging tests/packaging

# This release's notes from changelogs/fragments, rendered into build/changelog/CHANGELOG.md (a preview:
# `antsibull-changelog release` writes CHANGELOG.md at release).
changelog: venv
	$(BIN)/antsibull-changelog lint
	rm -rf build/changelog && mkdir -p build/changelog
	cp -r galaxy.yml changelogs meta plugins roles playbooks build/changelog/
	cd build/changelog && PATH=$(CURDIR)/$(BIN):$$PATH $(CURDIR)/$(BIN)/antsibull-changelog release --version $(VERSION) --date $$(date -u +%F)

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
