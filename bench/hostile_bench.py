"""How long and how much memory memtune takes to refuse hostile input (issue 14): each case run as a fresh
``memtune`` process, wall time and peak RSS from wait4(). A benchmark, not a test: nothing is asserted.

Usage: .venv/bin/python bench/hostile_bench.py [RUNS]
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import tests.conftest  # noqa: E402,F401  (links ansible_collections/memtune/fleet for the collector)
from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree  # noqa: E402
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import collect  # noqa: E402

MEMTUNE = [sys.executable, "-c", "from memtune.cli.main import main; main()"]


def _policy(work: Path, name: str, text: str) -> Path:
    path = work / f"{name}.yml"
    path.write_text(text)
    return path


def _knob(work: Path, name: str, expression: str) -> Path:
    rule = f'  - name: r\n    sysctl:\n      vm.swappiness: "{{{{ {expression} }}}}"\n'
    return _policy(work, name, f"layer: baseline\nname: b\nrules:\n{rule}")


def cases(work: Path) -> list[tuple[str, list[str]]]:
    facts = work / "facts"
    facts.mkdir()
    (facts / "numa2.json").write_text(json.dumps(collect(Tree(str(REPO / "tests/fixtures/hosts/numa2")))))
    laughs = ["layer: baseline", "name: laughs", "a0: &a0 [lol, lol]"]
    laughs += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    chain = work / "chain"
    chain.mkdir()
    for index in range(1500):
        extends = f"extends: w{index + 1}\n" if index < 1499 else ""
        (chain / f"w{index}.yml").write_text(
            f"layer: workload\nname: w{index}\n{extends}rules: [{{name: r, sysctl: {{vm.swappiness: 1}}}}]\n"
        )
    fleet = work / "fleet"
    fleet.mkdir()
    (fleet / "good.json").write_text((facts / "numa2.json").read_text())
    (fleet / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    with (fleet / "huge.json").open("wb") as huge:
        huge.truncate(16 * 1024 * 1024 + 1)
    os.mkfifo(fleet / "fifo.json")
    (fleet / "zero.json").symlink_to("/dev/zero")
    plan = ["plan", "--facts", str(facts), "--policy"]
    return [
        (
            "validate: billion laughs (9^8 values)",
            ["validate", str(_policy(work, "laughs", "\n".join(laughs) + "\n"))],
        ),
        (
            "validate: alias inside itself",
            ["validate", str(_policy(work, "self", "layer: workload\nname: x\nrules: &r [*r]\n"))],
        ),
        (
            "validate: 100,000 nested lists",
            ["validate", str(_policy(work, "deep", "layer: baseline\nname: x\nd: " + "[" * 100_000 + "\n"))],
        ),
        ("validate: extends chain of 1,500", ["validate", str(chain)]),
        ("plan: '%0999999999d' % 1", [*plan, str(_knob(work, "fmt", "'%0999999999d' % 1"))]),
        (
            "plan: ([[1]*4096]*4096)|sum(start=[])",
            [*plan, str(_knob(work, "sum", "([[1]*4096]*4096)|sum(start=[])"))],
        ),
        ("plan: 2 ** 64 ** 64", [*plan, str(_knob(work, "pow", "2 ** 64 ** 64"))]),
        ("plan: percent_of_ram('50')", [*plan, str(_knob(work, "pct", "percent_of_ram('50')"))]),
        ("audit: deep, huge, FIFO, /dev/zero + 1 good", ["audit", "--facts", str(fleet), "--format", "json"]),
    ]


def in_process(args: list[str]) -> float:
    """Seconds the command takes once memtune is imported (what the refusal itself costs)."""
    from typer.testing import CliRunner

    from memtune.cli.main import app

    started = time.monotonic()
    CliRunner().invoke(app, args)
    return time.monotonic() - started


def run(args: list[str]) -> tuple[float, float, int]:
    started = time.monotonic()
    process = subprocess.Popen([*MEMTUNE, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    return time.monotonic() - started, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    load = os.getloadavg()[0]
    print(f"# memtune on hostile input, {time.strftime('%Y-%m-%d')}, {runs} runs each, medians")
    machine = f"{os.cpu_count()} cores, {platform.release()}, Python {platform.python_version()}"
    print(f"machine: {machine}, load average {load:.1f}")
    print(f"{'case':46} {'process':>8} {'in-proc':>8} {'peak RSS':>10}  exit")
    floor = run(["--help"])
    print(
        f"{'memtune --help (the process floor)':46} {floor[0]:6.2f} s {'':8} {floor[1]:6.1f} MiB  {floor[2]}"
    )
    with tempfile.TemporaryDirectory() as work:
        for name, args in cases(Path(work)):
            in_process(args)  # warm: imports, caches
            inner = statistics.median(in_process(args) for _ in range(runs))
            results = [run(args) for _ in range(runs)]
            wall = statistics.median(result[0] for result in results)
            rss = statistics.median(result[1] for result in results)
            print(f"{name:46} {wall:6.2f} s {inner:6.3f} s {rss:6.1f} MiB  {results[0][2]}")


if __name__ == "__main__":
    main()
