"""zswap on this machine's real kernel (issue 12's new kind), as root, through memory_apply: a desired state
sets max_pool_percent, the kernel's file says so, a rollback puts the original back. Everything is restored
afterwards, pass or fail (apply_guard.host_guard saves zswap's parameters too). ``enabled`` is never
turned on here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.ansible_run import run_module
from tests.support.apply_guard import ZSWAP, HostState, host_guard

pytestmark = pytest.mark.root
__all__ = ["host_guard"]  # the fixture used below by name
BOOT_CONF = Path("/etc/memtune/boot-tmpfiles.conf")


def apply(**args: Any) -> dict[str, Any]:
    return run_module("memtune.fleet.memory_apply", json.dumps(args))


def test_max_pool_percent_is_set_persisted_and_rolled_back(host_guard: HostState) -> None:
    if not (ZSWAP / "max_pool_percent").exists():
        pytest.skip("this kernel has no zswap (CONFIG_ZSWAP)")
    original = int((ZSWAP / "max_pool_percent").read_text())
    wanted = 37 if original != 37 else 38
    desired = {
        "schema_version": 1,
        "zswap": {"max_pool_percent": {"value": wanted, "provenance": {"file": "live", "rule": "zswap"}}},
    }
    result = apply(desired=desired)
    assert result["changed"] is True, result
    assert int((ZSWAP / "max_pool_percent").read_text()) == wanted
    [knob] = [k for k in result["knobs"] if k["kind"] == "zswap"]
    assert (knob["name"], knob["before"], knob["after"], knob["read_back"]) == (
        "max_pool_percent",
        original,
        wanted,
        wanted,
    )
    assert f"w {ZSWAP}/max_pool_percent - - - - {wanted}" in BOOT_CONF.read_text().splitlines()
    assert apply(desired=desired)["changed"] is False
    rolled = apply(rollback="original")
    assert rolled["changed"] is True, rolled
    assert int((ZSWAP / "max_pool_percent").read_text()) == original
    assert not BOOT_CONF.exists()
