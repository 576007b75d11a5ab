"""Issue 15 on the QEMU fleet: tune plans from the facts of the last contact and makes one remote call a
host, a policy change included; counted from Ansible's own output (-vvv names each module it runs), not
from memtune's result."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.ansible_run import adhoc

from .fleetlab import Fleet

pytestmark = pytest.mark.fleet
GUESTS = ("small", "numa2", "numa3")


def modules_run(output: str) -> list[str]:
    return re.findall(r"Using module file \S*/(\w+)\.py", output)


def tune(fleet: Fleet, policy_dir: Path) -> tuple[dict[str, dict[str, object]], list[str]]:
    args = json.dumps({"policies": [str(policy_dir)], "workloads": []})
    results, done = adhoc("lab", "memtune.fleet.tune", args, "-i", str(fleet.inventory), "-vvv", timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return results, modules_run(done.stdout)


def write_policy(directory: Path, swappiness: int) -> None:
    rule = {"name": "swappiness", "source": "test", "sysctl": {"vm.swappiness": swappiness}}
    (directory / "baseline.yml").write_text(
        json.dumps({"layer": "baseline", "name": "one-call", "rules": [rule]})
    )


def test_a_policy_change_costs_one_call_a_host(
    untuned: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMTUNE_FACTS_CACHE", str(tmp_path / "facts-cache"))
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    write_policy(policy_dir, 11)
    first, modules = tune(untuned, policy_dir)
    assert sorted(modules) == sorted(["memory_facts", "memory_apply"] * len(GUESTS)), modules
    assert {host: first[host]["facts_source"] for host in GUESTS} == dict.fromkeys(GUESTS, "probe")

    write_policy(policy_dir, 12)
    second, modules = tune(untuned, policy_dir)
    assert modules == ["memory_apply"] * len(GUESTS), "one call a host for a changing run"
    for host in GUESTS:
        assert (second[host]["changed"], second[host]["remote_calls"], second[host]["facts_source"]) == (
            True,
            1,
            "cache",
        ), second[host]
        assert untuned.ssh(host, "cat /proc/sys/vm/swappiness").strip() == "12"

    third, modules = tune(untuned, policy_dir)
    assert modules == ["memory_apply"] * len(GUESTS)
    assert all(third[host]["changed"] is False for host in GUESTS)
