"""Fuzzing plumbing: the memtune command run in-process on generated text, with the properties every run
must have (exit 0, 1 or 2; no traceback; bounded time and memory), and the case budget.

``MEMTUNE_FUZZ_EXAMPLES`` sets the cases per target: the default fits ``make test``; ``make fuzz`` runs
10,000 under a memory limit (``ulimit -v``), where running out of memory is a crash (exit 70) and fails.
Each run's own allocations (tracemalloc's peak) must stay under MAX_ALLOCATED_BYTES.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import collect
from memtune.cli.main import app

EXAMPLES = int(os.environ.get("MEMTUNE_FUZZ_EXAMPLES", "60"))
# Bounds per case: far above what a good or a bad input takes (milliseconds), far below a hang or a blow-up.
SECONDS_PER_CASE = 10.0
MAX_ALLOCATED_BYTES = 512 * 1024 * 1024
CAPTURED = ("firecracker", "small", "numa2", "numa3")


class Bounded:
    """Runs the CLI and checks one case's properties; counts the cases and their time for the figures."""

    def __init__(self) -> None:
        self.cases = 0
        self.slowest = 0.0
        self.largest = 0

    def __call__(self, *args: str | Path) -> Any:
        started = time.monotonic()
        tracemalloc.start()
        try:
            result = CliRunner().invoke(app, [str(arg) for arg in args])
            _, allocated = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        took = time.monotonic() - started
        self.cases += 1
        self.slowest = max(self.slowest, took)
        text = result.stdout + result.stderr
        assert result.exit_code in (0, 1, 2), (result.exit_code, result.stderr[-2000:], result.exception)
        assert "Traceback" not in text, text[-2000:]
        assert took < SECONDS_PER_CASE, f"{took:.1f} s for one case"
        # What memtune allocates in the run (traced), not the process's peak RSS, which only grows and
        # also holds hypothesis' own records of thousands of cases.
        self.largest = max(self.largest, allocated)
        assert allocated < MAX_ALLOCATED_BYTES, f"the run allocated {allocated} bytes at its peak"
        return result


@pytest.fixture(scope="module")
def bounded(request: pytest.FixtureRequest) -> Callable[..., Any]:
    runner = Bounded()
    yield runner
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"{request.module.__name__}: {runner.cases} CLI runs, slowest {runner.slowest:.2f} s, "
            f"largest allocation peak {runner.largest / 2**20:.1f} MiB"
        )


@pytest.fixture(scope="session")
def examples() -> int:
    """Cases per fuzz target (MEMTUNE_FUZZ_EXAMPLES)."""
    return EXAMPLES


@pytest.fixture(scope="session")
def captured_facts(fixture_hosts: Path) -> dict[str, dict[str, Any]]:
    """The captured hosts' facts, produced from their trees by the collector in-process."""
    return {name: collect(Tree(str(fixture_hosts / name))) for name in CAPTURED}
