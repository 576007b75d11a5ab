"""Benchmark: `memtune audit` over a synthetic fleet of 10,000 hosts (not a test; nothing is asserted).

The fleet is plan_bench.py's (10,000 hosts derived from the captured trees), saved as facts files; a tenth of
the hosts have a value changed by hand (vm.swappiness), so the report has drift to carry. Times the whole
command as a fresh process in each report format, and with a baseline.

Usage: .venv/bin/python bench/audit_bench.py [HOSTS] [RUNS]
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from plan_bench import REPO, fleet, medians

FORMATS = ("json", "junit", "prometheus", "markdown", "table")


def write_fleet(directory: Path, size: int, groups: int = 0) -> tuple[Path, Path]:
    """plan_bench.py's fleet of ``size`` hosts as facts files in ``directory``/facts (every 10th host with
    vm.swappiness changed) and their variables (``groups``: that many inventory groups, dealt round-robin)."""
    facts_dir = directory / "facts"
    facts_dir.mkdir()
    lines = []
    for index, (name, facts, inputs) in enumerate(fleet(size)):
        data = json.loads(facts.model_dump_json())
        if index % 10 == 0:
            data["sysctl"]["vm.swappiness"] = 77
        (facts_dir / f"{name}.json").write_text(json.dumps(data))
        values: dict[str, object] = {"memtune_inputs": inputs} if inputs else {}
        if groups:
            values["group_names"] = [f"rack{index % groups:02d}"]
        if values:
            lines.append(f"{name}: {json.dumps(values)}")
    variables = directory / "vars.yml"
    variables.write_text("\n".join(lines) + "\n")
    return facts_dir, variables


def main() -> None:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    load_before = f"{os.getloadavg()[0]:.2f}"
    memtune = str(REPO / ".venv/bin/memtune")
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        facts_dir, variables = write_fleet(Path(directory), size)
        base = [memtune, "audit", "--facts", str(facts_dir), "--policy", str(REPO / "policies")]
        base += ["--vars", str(variables)]
        baseline = Path(directory) / "baseline.json"
        record = [memtune, "baseline", "record", "--facts", str(facts_dir), "-o"]
        subprocess.run([*record, str(baseline)], check=True, stdout=subprocess.DEVNULL)
        commands = {f"audit --format {fmt}": [*base, "--format", fmt] for fmt in FORMATS}
        commands["audit --format json --baseline"] = [*base, "--format", "json", "--baseline", str(baseline)]
        commands["baseline record"] = [*record, "/dev/null"]
        for label, command in commands.items():

            def cli(command: list[str] = command) -> None:
                done = subprocess.run(command, stdout=subprocess.DEVNULL, cwd=REPO)
                assert done.returncode in (0, 1), f"{command}: exit {done.returncode}"

            rows.append((label, *medians(cli, runs, children=True)))
    print(f"# memtune audit benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {runs} runs each, medians")
    print(
        f"machine: {os.cpu_count()} cores, {platform.release()}, Python {platform.python_version()}, "
        f"load average before {load_before}, after {os.getloadavg()[0]:.2f}"
    )
    print(f"hosts: {size} synthetic (plan_bench.py's fleet; every 10th host with vm.swappiness changed)")
    for label, wall, cpu in rows:
        print(f"{label:34s} wall {wall:5.2f} s  CPU {cpu:5.2f} s")


if __name__ == "__main__":
    main()
