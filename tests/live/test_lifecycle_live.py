"""The life of a value on this machine's real kernel, as root, through the tune and audit actions: v1 sets
vm.swappiness and vm.max_map_count, v2 only vm.swappiness. The audit of v2 on the v1 host reports
max_map_count as a leftover until a tune of v2 puts its original back and takes it out of 90-memtune.conf;
rollback previous returns to v1 (runtime and file), rollback original to the values from before memtune,
with the ledger still holding the originals. host_guard restores everything afterwards.

Pins issue 13, bugs 2 (dropped knobs stay) and 3 (rollback only knows the original); each step failed on
main before the ledger existed (no leftover kind, no rollback: previous)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.ansible_run import run_module
from tests.support.apply_guard import HostState, host_guard

from .test_tune_live import modules_run, tune

pytestmark = pytest.mark.root
__all__ = ["host_guard"]
VM = Path("/proc/sys/vm")
SYSCTL_FILE = Path("/etc/sysctl.d/90-memtune.conf")
LEDGER = Path("/var/lib/memtune/ledger.json")


def policy(directory: Path, sysctl: dict[str, int]) -> list[str]:
    directory.mkdir()
    rules = [
        {"name": key.split(".")[1], "source": "test", "sysctl": {key: value}} for key, value in sysctl.items()
    ]
    text = {"layer": "baseline", "name": directory.name, "description": __name__, "rules": rules}
    (directory / "baseline.yml").write_text(json.dumps(text))
    return [str(directory)]


def audit(policies: list[str]) -> dict[str, Any]:
    return run_module("memtune.fleet.audit", json.dumps({"policies": policies, "fail_on_drift": False}))


def kinds(result: dict[str, Any], knob: str) -> list[str]:
    return [f["kind"] for c in result["drift"]["checks"] if c["knob"] == knob for f in c["findings"]]


def read(key: str) -> int:
    return int((VM / key).read_text())


def test_v1_v2_leftover_previous_original(host_guard: HostState, tmp_path: Path) -> None:
    swappiness, maps = read("swappiness"), read("max_map_count")
    one = 10 if swappiness != 10 else 11
    two = 5 if swappiness != 5 else 6
    v1 = policy(tmp_path / "v1", {"vm.swappiness": one, "vm.max_map_count": maps + 4096})
    v2 = policy(tmp_path / "v2", {"vm.swappiness": two})

    first, _ = tune(policies=v1)
    assert first["_rc"] == 0 and first["changed"] is True, first
    assert (read("swappiness"), read("max_map_count")) == (one, maps + 4096)

    before_v2 = audit(v2)
    assert kinds(before_v2, "vm.max_map_count") == ["leftover"], before_v2["drift"]
    assert before_v2["counts"]["leftover"] == 1

    # Planned from the facts of the first run: one call, or two when this VM onlined memory in between
    # (MemTotal is fingerprinted and memory_apply says stale); never a probe.
    second, output = tune(policies=v2)
    assert second["_rc"] == 0 and second["changed"] is True, second
    assert set(modules_run(output)) == {"memory_apply"}
    assert second["applied"]["restored"] == ["vm.max_map_count"]
    assert (read("swappiness"), read("max_map_count")) == (two, maps)
    assert "max_map_count" not in SYSCTL_FILE.read_text()
    after_v2 = audit(v2)
    assert after_v2["drifted"] is False and after_v2["counts"]["leftover"] == 0, after_v2["drift"]
    again, output = tune(policies=v2)
    assert again["changed"] is False and again["remote_calls"] in (1, 2), again

    previous, output = tune(rollback="previous")
    assert previous["_rc"] == 0 and previous["changed"] is True, previous
    assert modules_run(output) == ["memory_apply"]
    assert (read("swappiness"), read("max_map_count")) == (one, maps + 4096)
    conf = SYSCTL_FILE.read_text()
    assert f"vm.swappiness = {one}\n" in conf and f"vm.max_map_count = {maps + 4096}\n" in conf
    assert audit(v1)["drifted"] is False

    original, _ = tune(rollback="original")
    assert original["_rc"] == 0 and original["changed"] is True, original
    assert (read("swappiness"), read("max_map_count")) == (swappiness, maps)
    assert not SYSCTL_FILE.exists()
    ledger = json.loads(LEDGER.read_text())
    # The originals of this test's knobs (a ledger kept from an earlier rollback on this machine, such as
    # molecule's destroy, may hold more: they are originals too and stay).
    originals = ledger["runtime"]["sysctl"]
    assert {key: originals.get(key) for key in ("vm.swappiness", "vm.max_map_count")} == {
        "vm.swappiness": swappiness,
        "vm.max_map_count": maps,
    }
    assert ledger["generations"][-1]["action"] == "rollback-original"
    assert host_guard.differences(HostState()) == []
    assert tune(rollback=True)[0]["changed"] is False


def test_a_corrupt_ledger_stops_tune_until_new_ledger(host_guard: HostState, tmp_path: Path) -> None:
    """Bad input: the probe reports the file and the reason, tune refuses, new_ledger moves it aside."""
    v1 = policy(tmp_path / "v1", {"vm.swappiness": 10 if read("swappiness") != 10 else 11})
    LEDGER.parent.mkdir(parents=True, exist_ok=True)
    LEDGER.write_text("{truncated")
    refused, output = tune(policies=v1)
    assert refused["_rc"] != 0 and "/var/lib/memtune/ledger.json" in refused["msg"], refused
    assert "not valid JSON" in refused["msg"] and "new_ledger" in refused["msg"]
    assert modules_run(output) == ["memory_facts"]
    assert LEDGER.read_text() == "{truncated"
    fresh, _ = tune(policies=v1, new_ledger=True)
    assert fresh["_rc"] == 0 and fresh["changed"] is True, fresh
    assert [p.read_text() for p in LEDGER.parent.glob("ledger.json.corrupt-*")] == ["{truncated"]


def test_a_leftover_alone_makes_tune_call_memory_apply(host_guard: HostState, tmp_path: Path) -> None:
    """Issue 13, bug 2: on main a probed host whose every planned value was converged cost one call and kept
    the dropped knob; now the leftover is a difference memory_apply mends."""
    swappiness, maps = read("swappiness"), read("max_map_count")
    one = 10 if swappiness != 10 else 11
    v1 = policy(tmp_path / "v1", {"vm.swappiness": one, "vm.max_map_count": maps + 4096})
    first, _ = tune(policies=v1, facts_cache="off")
    assert first["_rc"] == 0 and first["changed"] is True, first
    same = policy(tmp_path / "same", {"vm.swappiness": one})
    # Without cached facts the action probes and decides itself whether the host differs.
    checked, output = tune("--check", policies=same, facts_cache="off")
    assert checked["changed"] is True and modules_run(output) == ["memory_facts", "memory_apply"], checked
    assert [d["knob"] for d in checked["differences"]] == ["vm.max_map_count"]
    assert read("max_map_count") == maps + 4096, "check mode wrote"
    dropped, output = tune(policies=same, facts_cache="off")
    assert dropped["_rc"] == 0 and dropped["changed"] is True, dropped
    assert modules_run(output) == ["memory_facts", "memory_apply"]
    assert (read("swappiness"), read("max_map_count")) == (one, maps)
