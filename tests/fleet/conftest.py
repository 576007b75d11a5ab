"""The rollout role on the real QEMU fleet (lab/), with faults injected on the guests. Marked fleet: these
boot guests (minutes, root); they run only with MEMTUNE_FLEET_TESTS=1, like tests/lab.

One fleet boot serves the whole session. The session holds the lab's per-machine lock
(~/.cache/memtune/lab/fleet.lock) for its whole length, so no other run resets the guests under it; run it
without an outer `flock` on that file. Every test starts from guests memtune has not tuned (rolled back
before and after each test) and the fleet is stopped at the end, whatever happened."""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from .fleetlab import INVENTORY, LAB_CACHE, REPO, Fleet


def run_lab(script: str) -> None:
    done = subprocess.run(
        [str(REPO / "lab" / script)], capture_output=True, text=True, timeout=1200, check=False
    )
    assert done.returncode == 0, f"lab/{script} failed:\n{done.stderr[-4000:]}"


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """The fleet, booted once for the session under the lab's lock and stopped at the end. With
    MEMTUNE_LAB_REUSE=1 the fleet already running (started by whoever holds the lock) is used as it is,
    and left running."""
    workdir = tmp_path_factory.mktemp("fleet")
    if os.environ.get("MEMTUNE_LAB_REUSE") == "1":
        yield Fleet(INVENTORY, workdir)
        return
    LAB_CACHE.mkdir(parents=True, exist_ok=True)
    with (LAB_CACHE / "fleet.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            started = time.monotonic()
            run_lab("up.sh")
            print(f"\nfleet up in {time.monotonic() - started:.0f} s")
            yield Fleet(INVENTORY, workdir)
        finally:
            run_lab("down.sh")


@pytest.fixture
def untuned(fleet: Fleet) -> Iterator[Fleet]:
    """The fleet with memtune rolled back on every guest, before and after the test."""
    fleet.roll_back()
    try:
        yield fleet
    finally:
        fleet.stop_rollouts()
        fleet.roll_back()
