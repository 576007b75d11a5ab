"""Benchmark: `memtune plan` over a synthetic fleet of 10,000 hosts (not a test; nothing is asserted).

The fleet is derived from the captured hosts under tests/fixtures/hosts/: each host takes one of them as a
template and gets another RAM size (1 GiB .. 1 TiB), NUMA layout (1..8 nodes), kernel and set of workloads,
so every rule kind of the bundled policies runs (conditions, expressions, hugepages, per-node spreading).

Usage: .venv/bin/python bench/plan_bench.py [HOSTS] [RUNS]
Prints (1) plan() alone over facts already in memory, policies parsed once, and (2) the whole CLI,
`memtune plan --facts DIR --format json`, as a fresh process over HOSTS saved facts files.
"""

from __future__ import annotations

import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(REPO))

from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree  # noqa: E402
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import collect  # noqa: E402
from memtune.engine.plan import plan  # noqa: E402
from memtune.facts.model import HostFacts, Workload, parse_facts  # noqa: E402
from memtune.facts.parts import WorkloadInstance  # noqa: E402
from memtune.facts.synthetic import resize  # noqa: E402
from memtune.policy.load import load_policy_set  # noqa: E402

TEMPLATES = ("firecracker", "small", "numa2", "numa3")
RAM_GIB = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
KERNELS = ((4, 18, 0), (5, 4, 0), (5, 10, 0), (5, 15, 0), (6, 1, 0), (6, 8, 0), (6, 12, 0))
WORKLOADS = (
    (),
    (),
    ("postgresql",),
    ("redis",),
    ("mongodb",),
    ("elasticsearch",),
    ("kafka",),
    ("kvm_host",),
    ("kubernetes",),
    ("oracle",),
    ("sap_hana",),
    # Two workloads on one host, combined by the catalog's merge rules. Not PostgreSQL with Redis: they want
    # different vm.overcommit_memory modes, a conflict plan() refuses until a group policy settles it.
    ("postgresql", "kafka"),
    ("redis", "mongodb"),
)


def workload(name: str, pid: int) -> Workload:
    """A detected workload as a schema-4 probe reports it: one instance, run by a unit of its name."""
    unit = f"{name}.service"
    instance = WorkloadInstance(
        pids=[pid], leader=pid, cgroup=f"/system.slice/{unit}", cgroup_version=2, unit=unit,
        unit_manager="system", container=None, pod=None, root=f"/proc/{pid}/root", data_dir=None,
        version=None, evidence={},
    )  # fmt: skip
    return Workload(name=name, pids=[pid], evidence=[], version=None, instances=[instance])


def fleet(size: int) -> list[tuple[str, HostFacts, dict[str, object]]]:
    """(name, facts, inputs) for ``size`` hosts, the same fleet for the same size."""
    rng = random.Random(20261126)
    templates = [
        parse_facts(collect(Tree(str(REPO / "tests/fixtures/hosts" / name))), name) for name in TEMPLATES
    ]
    hosts = []
    for index in range(size):
        template = templates[index % len(templates)]
        ram_kb = rng.choice(RAM_GIB) * 1024 * 1024 - rng.randrange(0, 200_000)
        nodes = rng.choice((1, 1, 2, 2, 4, 8)) if ram_kb > 8 * 1024 * 1024 else rng.choice((1, 2))
        facts = resize(template, ram_kb, nodes, kernel=rng.choice(KERNELS))
        names = rng.choice(WORKLOADS)
        workloads = [workload(name, 1000 + i) for i, name in enumerate(names)]
        facts = facts.model_copy(update={"workloads": workloads})
        inputs: dict[str, object] = {}
        if "postgresql" in names:
            inputs["postgresql_huge_pages"] = ram_kb // 4 // 2048  # a quarter of RAM
        if "kvm_host" in names:
            inputs["kvm_guest_hugepages"] = ram_kb * 1024 // 2
        hosts.append((f"host{index:05d}", facts, inputs))
    return hosts


def medians(action: Callable[[], object], runs: int, children: bool = False) -> tuple[float, float]:
    """-> (median wall seconds, median CPU seconds) over ``runs``; CPU of this process, or of the child
    processes with ``children`` (the machine may be shared: CPU time is the steadier figure)."""
    walls, cpus = [], []
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    for _ in range(runs):
        before = resource.getrusage(who)
        start = time.perf_counter()
        action()
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(who)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    load_before = f"{os.getloadavg()[0]:.2f}"
    hosts = fleet(size)
    policies = load_policy_set([REPO / "policies"])

    def plan_all() -> None:
        for _, facts, inputs in hosts:
            plan(facts, policies, inputs=inputs)

    in_memory, in_memory_cpu = medians(plan_all, runs)
    with tempfile.TemporaryDirectory() as directory:
        facts_dir = Path(directory) / "facts"
        facts_dir.mkdir()
        lines = []
        for name, facts, inputs in hosts:
            (facts_dir / f"{name}.json").write_text(facts.model_dump_json())
            if inputs:
                lines.append(f"{name}: {{memtune_inputs: {json.dumps(inputs)}}}")
        (Path(directory) / "vars.yml").write_text("\n".join(lines) + "\n")
        command = [
            str(REPO / ".venv/bin/memtune"),
            "plan",
            "--facts",
            str(facts_dir),
            "--policy",
            str(REPO / "policies"),
            "--vars",
            str(Path(directory) / "vars.yml"),
            "--format",
            "json",
        ]

        def cli() -> None:
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=REPO)

        whole, whole_cpu = medians(cli, runs, children=True)
    print(f"# memtune plan benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {runs} runs each, medians")
    print(
        f"machine: {os.cpu_count()} cores, {platform.release()}, Python {platform.python_version()}, "
        f"load average before {load_before}, after {os.getloadavg()[0]:.2f}"
    )
    print(f"hosts: {size} synthetic (templates {', '.join(TEMPLATES)}; RAM 1 GiB..1 TiB, 1..8 NUMA nodes)")
    print(
        f"plan() alone, facts in memory:    wall {in_memory:5.2f} s  CPU {in_memory_cpu:5.2f} s  "
        f"({in_memory_cpu / size * 1e6:.0f} us CPU/host)"
    )
    print(
        f"memtune plan CLI, files -> JSON:  wall {whole:5.2f} s  CPU {whole_cpu:5.2f} s  "
        "(fresh process: import, load and validate facts, plan, dump JSON)"
    )


if __name__ == "__main__":
    main()
