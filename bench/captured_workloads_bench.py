"""CPU of the probe on the workload trees captured from real QEMU guests (lab/capture-workloads.sh):
tests/fixtures/hosts/numa2-databases, small-containers and v1-databases, against the same guests' trees
without processes (numa2, small). detect_workloads() alone and the whole collect(), each the median of RUNS
calls of time.process_time() in this process after one warm-up call. Nothing is asserted.

Usage: .venv/bin/python bench/captured_workloads_bench.py [RUNS]
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

from workloads_bench import median_ms

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]
HOSTS = REPO / "tests/fixtures/hosts"
TREES = ("numa2", "numa2-databases", "small", "small-containers", "v1-databases")


def main() -> None:
    import tests.conftest  # noqa: F401  (links ansible_collections/memtune/fleet to this checkout)
    from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
    from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import collect
    from ansible_collections.memtune.fleet.plugins.module_utils._probe.workloads import detect_workloads

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"# probe CPU on captured workload trees, {when}, {runs} runs, medians")
    print(
        f"# {platform.node()} {platform.release()} python {platform.python_version()}, "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print("tree                 processes instances  detect_workloads  collect")
    for name in TREES:
        root = str(HOSTS / name)
        found = detect_workloads(Tree(root))
        processes = sum(len(w["pids"]) for w in found)
        instances = sum(len(w["instances"]) for w in found)
        detect = median_ms(lambda root=root: detect_workloads(Tree(root)), runs)
        whole = median_ms(lambda root=root: collect(Tree(root)), runs)
        print(f"{name:20} {processes:9} {instances:9} {detect:14.2f} ms {whole:7.2f} ms")


if __name__ == "__main__":
    main()
