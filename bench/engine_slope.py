"""How `memtune plan` and `memtune audit` grow with the fleet: 1,000 against 10,000 hosts' saved facts.

Not a test: nothing is asserted. The fleet is bench/plan_bench.py's synthetic one (the same hosts for the
same size). Each command is a fresh process over saved facts files, JSON out, median of RUNS runs; the
slope is (time at the larger size - time at the smaller) / (difference in hosts), the intercept what is
left at zero hosts (imports, policies), and the exponent log(t2 / t1) / log(n2 / n1): 1.0 is linear.
Targets at 10,000 hosts: plan < 2 s, audit < 3 s.

Usage: .venv/bin/python bench/engine_slope.py [--sizes 1000,10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plan_bench import REPO, fleet, medians

TARGETS = {"plan": 2.0, "audit": 3.0}


def write_fleet(directory: Path, size: int) -> tuple[Path, Path]:
    facts_dir = directory / f"facts-{size}"
    facts_dir.mkdir()
    lines = []
    for name, facts, inputs in fleet(size):
        (facts_dir / f"{name}.json").write_text(facts.model_dump_json())
        if inputs:
            lines.append(f"{name}: {{memtune_inputs: {json.dumps(inputs)}}}")
    vars_file = directory / f"vars-{size}.yml"
    vars_file.write_text("\n".join(lines) + "\n")
    return facts_dir, vars_file


def command_exists(name: str) -> bool:
    done = subprocess.run([str(REPO / ".venv/bin/memtune"), name, "--help"], capture_output=True, cwd=REPO)
    return done.returncode == 0


def time_command(name: str, facts_dir: Path, vars_file: Path, runs: int) -> tuple[float, float]:
    command = [
        str(REPO / ".venv/bin/memtune"),
        name,
        "--facts",
        str(facts_dir),
        "--policy",
        str(REPO / "policies"),
        "--vars",
        str(vars_file),
        "--format",
        "json",
    ]

    def once() -> None:
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
        if done.returncode not in (0, 1):  # audit exits 1 when it finds drift, as it does on this fleet
            raise RuntimeError(f"{' '.join(command)}: exit {done.returncode}: {done.stderr.decode()[-800:]}")

    return medians(once, runs, children=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    commands = [name for name in ("plan", "audit") if command_exists(name)]
    load_before = os.getloadavg()[0]
    figures: dict[tuple[str, int], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="memtune-engine-bench-") as directory:
        for size in sizes:
            facts_dir, vars_file = write_fleet(Path(directory), size)
            for name in commands:
                figures[name, size] = time_command(name, facts_dir, vars_file, args.runs)
    print(f"# memtune engine slope, {time.strftime('%Y-%m-%d %H:%M %Z')}, {args.runs} runs each, medians")
    print(
        f"machine: {os.cpu_count()} cores, {platform.release()}, Python {platform.python_version()}, "
        f"load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f}"
    )
    print(
        "command: memtune {plan,audit} --facts DIR --policy policies --vars VARS --format json "
        "(a fresh process)"
    )
    for name in ("plan", "audit"):
        if name not in commands:
            print(f"memtune {name}: not available in this checkout")
            continue
        for size in sizes:
            wall, cpu = figures[name, size]
            target = f"  (target < {TARGETS[name]:.0f} s: {'met' if wall < TARGETS[name] else 'MISSED'})"
            print(
                f"memtune {name:5} {size:>6} hosts: wall {wall:6.2f} s  CPU {cpu:6.2f} s"
                + (target if size == 10_000 else "")
            )
        (small, large) = sizes[0], sizes[-1]
        (w1, c1), (w2, c2) = figures[name, small], figures[name, large]
        slope, cpu_slope = (w2 - w1) / (large - small), (c2 - c1) / (large - small)
        print(
            f"memtune {name:5} slope {small}->{large}: wall {slope * 1e6:.0f} us/host, "
            f"CPU {cpu_slope * 1e6:.0f} us/host; intercept {w1 - slope * small:.2f} s; "
            f"exponent {math.log(w2 / w1) / math.log(large / small):.2f}"
        )


if __name__ == "__main__":
    main()
