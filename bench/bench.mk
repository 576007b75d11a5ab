# The benchmarks (figures in bench/RESULTS.md); included by the Makefile, which defines VENV, BIN, venv and
# LAB_LOCK (lab/lab.mk). Benchmarks are not tests: nothing here is asserted. Each script prints the machine,
# the load average, the command and medians; `make bench` keeps the reports in build/bench/.
# BENCH_QUICK=1 runs every script in its quick form (development).
BENCH_OUT := build/bench
BENCH_ROUNDS ?= $(if $(BENCH_QUICK),1,3)
BENCH_RUNS ?= $(if $(BENCH_QUICK),2,5)
BENCH_HOSTS ?= $(if $(BENCH_QUICK),10,10$(comma)50)
comma := ,

.PHONY: bench-all bench-deps bench-probe bench-engine bench-fleet bench-tuned bench-html bench-lab bench-hostile

# On this machine (about 25 minutes); bench-lab adds the QEMU fleet (started and stopped under the lab's
# lock, about 8 minutes more).
bench-all: bench-probe bench-engine bench-fleet bench-tuned bench-html bench-hostile

bench-deps: $(VENV)/.bench-installed
$(VENV)/.bench-installed: pyproject.toml | venv
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

bench-probe: bench-deps
	@mkdir -p $(BENCH_OUT)
	set -o pipefail; $(BIN)/python bench/probe_cost.py $(if $(BENCH_QUICK),5,30) | tee $(BENCH_OUT)/probe.txt
	set -o pipefail; $(BIN)/python bench/captured_workloads_bench.py $(if $(BENCH_QUICK),3,30) \
	  | tee $(BENCH_OUT)/captured-workloads.txt

bench-engine: bench-deps
	@mkdir -p $(BENCH_OUT)
	set -o pipefail; $(BIN)/python bench/plan_bench.py 10000 $(BENCH_RUNS) | tee $(BENCH_OUT)/plan.txt
	set -o pipefail; $(BIN)/python bench/engine_slope.py --runs $(BENCH_RUNS) | tee $(BENCH_OUT)/engine-slope.txt
	set -o pipefail; if [ -f bench/audit_bench.py ]; then \
	  $(BIN)/python bench/audit_bench.py 10000 $(if $(BENCH_QUICK),1,3) | tee $(BENCH_OUT)/audit.txt; fi

bench-fleet: bench-deps
	@mkdir -p $(BENCH_OUT)
	$(BIN)/python bench/fleet_bench.py --hosts $(BENCH_HOSTS) --rounds $(BENCH_ROUNDS) --mitogen \
	  --output $(BENCH_OUT)/fleet-local.txt

bench-tuned: bench-deps
	@mkdir -p $(BENCH_OUT)
	set -o pipefail; $(BIN)/python bench/tuned_bench.py --rounds $(BENCH_RUNS) | tee $(BENCH_OUT)/tuned.txt

# The 10,000-host HTML page in Debian's headless Chromium (make chromium).
bench-html: bench-deps chromium
	@mkdir -p $(BENCH_OUT)
	set -o pipefail; $(BIN)/python bench/html_bench.py $(if $(BENCH_QUICK),1000,10000) $(BENCH_RUNS) | tee $(BENCH_OUT)/html.txt

# The guests are stopped whatever happens (lab/down.sh); the bench puts each guest's knobs back itself.
bench-lab: bench-deps lab-image
	@mkdir -p $(BENCH_OUT)
	$(LAB_LOCK) bash -c 'status=0; lab/up.sh && $(BIN)/python bench/fleet_bench.py --lab --rounds $(BENCH_ROUNDS) \
	  --mitogen --output $(BENCH_OUT)/fleet-lab.txt || status=$$?; lab/down.sh; exit $$status'

# How fast and small memtune's refusals of hostile input are (issue 14): a fresh process per case.
bench-hostile: bench-deps
	@mkdir -p $(BENCH_OUT)
	set -o pipefail; $(BIN)/python bench/hostile_bench.py $(if $(BENCH_QUICK),1,5) | tee $(BENCH_OUT)/hostile.txt
