"""The tune action on this machine's real kernel, as root: probe, plan from a test policy, apply, converge
with a single remote call, roll back. Every value it touches is restored afterwards (apply_guard)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.ansible_run import adhoc, ansible_playbook
from tests.support.apply_guard import NODES, THP, HostState, host_guard, thp_choice

pytestmark = pytest.mark.root
__all__ = ["host_guard"]
POOL_2M = NODES / "node0" / "hugepages" / "hugepages-2048kB" / "nr_hugepages"


def tune(*extra: str, **args: Any) -> tuple[dict[str, Any], str]:
    """Run memtune.fleet.tune on localhost (verbose, so every module Ansible runs is named in the output);
    -> (the host's result with the exit status as ``_rc``, the output)."""
    results, done = adhoc("localhost", "memtune.fleet.tune", json.dumps(args), "-vvv", *extra)
    return {**results["localhost"], "_rc": done.returncode}, done.stdout


def modules_run(output: str) -> list[str]:
    """The modules Ansible ran, in order ("Using module file .../NAME.py" at -vvv)."""
    return [
        Path(line.split("Using module file", 1)[1].strip()).stem
        for line in output.splitlines()
        if "Using module file" in line
    ]


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    """A baseline policy whose values all differ from this machine's current ones."""
    swappiness = int(Path("/proc/sys/vm/swappiness").read_text())
    enabled = thp_choice((THP / "enabled").read_text())
    policy = {
        "layer": "baseline",
        "name": "test-baseline",
        "description": "tests/live/test_tune_live.py",
        "rules": [
            {
                "name": "swappiness",
                "source": "test",
                "sysctl": {"vm.swappiness": 21 if swappiness != 21 else 22},
            },
            {
                "name": "thp",
                "source": "test",
                "thp": {"enabled": "never" if enabled != "never" else "madvise"},
            },
            {"name": "pool", "source": "test", "hugepages": [{"size": "2MiB", "count": 32}]},
        ],
    }
    (tmp_path / "baseline.yml").write_text(json.dumps(policy))
    return tmp_path


def test_tune_applies_converges_with_one_call_and_rolls_back(host_guard: HostState, policy_dir: Path) -> None:
    before = host_guard
    policies = [str(policy_dir)]

    checked, output = tune("--check", "--diff", policies=policies)
    assert checked["_rc"] == 0 and checked["changed"] is True, checked
    assert modules_run(output) == ["memory_facts", "memory_apply"]
    assert before.differences(HostState()) == [], "check mode changed the host"
    plan = checked["plan"]
    assert plan["sysctl"]["vm.swappiness"]["provenance"]["file"] == str(policy_dir / "baseline.yml")
    assert plan["sysctl"]["vm.swappiness"]["provenance"]["rule"] == "swappiness"

    # The check run left the facts in the cache: this run plans from them and makes one call (issue 15).
    applied, output = tune(policies=policies)
    assert applied["_rc"] == 0 and applied["changed"] is True and applied["remote_calls"] == 1, applied
    assert (applied["facts_source"], applied["stale"]) == ("cache", False)
    assert modules_run(output) == ["memory_apply"]
    assert Path("/proc/sys/vm/swappiness").read_text().strip() == str(
        plan["sysctl"]["vm.swappiness"]["value"]
    )
    assert thp_choice((THP / "enabled").read_text()) == plan["thp"]["enabled"]["value"]
    assert int(POOL_2M.read_text()) == plan["hugepages"][0]["per_node"]["0"] == 32
    assert {(d["knob"], d["node"]) for d in applied["differences"]} >= {
        ("vm.swappiness", None),
        ("thp.enabled", None),
        ("hugepages.2048kB", 0),
    }
    assert all(k.get("read_back") == k["after"] for k in applied["applied"]["knobs"] if k["changed"])

    again, output = tune(policies=policies)
    assert again["_rc"] == 0 and again["changed"] is False and again["differences"] == [], again
    assert again["remote_calls"] == 1
    assert modules_run(output) == ["memory_apply"], "a converged host must cost one remote call"

    rolled, output = tune(rollback=True)
    assert rolled["_rc"] == 0 and rolled["changed"] is True, rolled
    assert modules_run(output) == ["memory_apply"]
    assert before.differences(HostState()) == []


def test_bad_policy_fails_with_its_location_and_changes_nothing(
    host_guard: HostState, tmp_path: Path
) -> None:
    (tmp_path / "baseline.yml").write_text(
        "layer: baseline\nname: broken\nrules:\n  - name: r\n    sysctl:\n      vm.swappiness: 1000\n"
    )
    result, output = tune(policies=[str(tmp_path)])
    assert result["_rc"] != 0 and result["changed"] is False
    assert f"{tmp_path / 'baseline.yml'}:" in result["msg"] and "vm.swappiness" in result["msg"]
    assert modules_run(output) == ["memory_facts"]
    assert host_guard.differences(HostState()) == []


def test_playbook_in_check_mode_shows_the_plan(host_guard: HostState, policy_dir: Path) -> None:
    variables = json.dumps({"memtune_policies": [str(policy_dir)]})
    done = ansible_playbook("playbooks/tune.yml", "--check", "--diff", "-e", variables)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"({policy_dir / 'baseline.yml'}:" in done.stdout and " swappiness)" in done.stdout
    assert "hugepages 2048 kB per node {'0': 32}" in done.stdout
    assert "+sysctl vm.swappiness = " in done.stdout  # the diff
    assert host_guard.differences(HostState()) == []


def test_a_sysctl_file_that_wins_at_boot_warns_or_fails(host_guard: HostState, policy_dir: Path) -> None:
    planned = json.loads((policy_dir / "baseline.yml").read_text())["rules"][0]["sysctl"]["vm.swappiness"]
    site = Path("/etc/sysctl.d/99-zz-memtune-test-site.conf")  # removed by host_guard (*memtune*)
    site.write_text(f"# a site's own setting\nvm.swappiness = {planned + 1}\n")
    policies = [str(policy_dir)]

    failed, output = tune(policies=policies, fail_on_conflict=True)
    assert failed["_rc"] != 0
    assert (
        f"vm.swappiness: {site} line 2 sets {planned + 1}" in failed["msg"]
        and "nothing was changed" in failed["msg"]
    )
    assert modules_run(output) == ["memory_facts"]
    assert host_guard.differences(HostState()) == [f"memtune files: [] now ['{site}']"]

    applied, _ = tune(policies=policies)
    assert applied["_rc"] == 0 and applied["changed"] is True
    expected = f"vm.swappiness: {site} line 2 sets {planned + 1} and is applied after memtune's file at boot"
    assert any(w.startswith(expected) for w in applied["memtune_warnings"]), applied["memtune_warnings"]
    again, output = tune(policies=policies)
    assert again["changed"] is False and modules_run(output) == ["memory_apply"]
    assert any(w.startswith(expected) for w in again["memtune_warnings"]), "the converged run warns too"


def test_a_site_file_that_sorts_before_memtunes_is_mended_and_the_audit_passes(
    host_guard: HostState, policy_dir: Path
) -> None:
    """Issue 13, bug 1: /etc/sysctl.d/10-early.conf setting a managed key was read as winning over memtune's
    file; tune saw nothing to mend, never wrote 90-memtune.conf, and the audit failed on the host forever."""
    policy = json.loads((policy_dir / "baseline.yml").read_text())
    policy["rules"] = policy["rules"][:1]  # only vm.swappiness: nothing else makes tune call memory_apply
    (policy_dir / "baseline.yml").write_text(json.dumps(policy))
    planned = policy["rules"][0]["sysctl"]["vm.swappiness"]
    early = Path("/etc/sysctl.d/10-early-memtune-test.conf")  # removed by host_guard (*memtune*)
    early.write_text(f"vm.swappiness = {planned + 3}\n")
    Path("/proc/sys/vm/swappiness").write_text(str(planned))  # runtime already right: only boot differs
    policies = [str(policy_dir)]

    applied, _ = tune(policies=policies)
    assert applied["_rc"] == 0 and applied["changed"] is True, applied.get("msg")
    assert f"vm.swappiness = {planned}\n" in Path("/etc/sysctl.d/90-memtune.conf").read_text()
    assert early.read_text() == f"vm.swappiness = {planned + 3}\n", "the site's file is never edited"
    results, done = adhoc("localhost", "memtune.fleet.audit", json.dumps({"policies": policies}))
    audited = results["localhost"]
    (check,) = [c for c in audited["drift"]["checks"] if c["knob"] == "vm.swappiness"]
    assert check["findings"] == [], check
    assert check["boot_source"] == "/etc/sysctl.d/90-memtune.conf:3"  # after the two header lines
    assert done.returncode == 0 and audited["drifted"] is False, audited["msg"]


def test_a_policy_change_costs_one_call_and_a_changed_fact_two(
    host_guard: HostState, policy_dir: Path, facts_cache: Path
) -> None:
    """Issue 15: plan from the facts of the last contact, one memory_apply call with a fingerprint; when a
    fingerprinted fact changed (here the kernel version in the cached facts, which decides vm.swappiness's
    range), memory_apply writes nothing and says stale, and the action plans again from the fresh facts."""
    policies = [str(policy_dir)]
    first, output = tune(policies=policies)
    assert first["facts_source"] == "probe" and modules_run(output) == ["memory_facts", "memory_apply"]
    policy = json.loads((policy_dir / "baseline.yml").read_text())
    policy["rules"][0]["sysctl"]["vm.swappiness"] += 2  # a new policy version
    (policy_dir / "baseline.yml").write_text(json.dumps(policy))

    second, output = tune(policies=policies)
    assert (second["changed"], second["remote_calls"], second["facts_source"]) == (True, 1, "cache"), second
    assert modules_run(output) == ["memory_apply"]
    assert int(Path("/proc/sys/vm/swappiness").read_text()) == policy["rules"][0]["sysctl"]["vm.swappiness"]

    [entry_path] = facts_cache.glob("*.json")
    entry = json.loads(entry_path.read_text())
    real = entry["facts"]["kernel"]["version"]
    entry["facts"]["kernel"].update(version=[2, 6, 32], release="2.6.32-fake")
    entry_path.write_text(json.dumps(entry))
    policy["rules"][0]["sysctl"]["vm.swappiness"] += 1
    (policy_dir / "baseline.yml").write_text(json.dumps(policy))
    third, output = tune(policies=policies)
    assert third["stale"] is True and third["remote_calls"] == 2, third
    assert modules_run(output) == ["memory_apply", "memory_apply"]
    assert {item["fact"]: item["found"] for item in third["stale_facts"]}["kernel.version"] == real
    assert third["changed"] is True
    assert int(Path("/proc/sys/vm/swappiness").read_text()) == policy["rules"][0]["sysctl"]["vm.swappiness"]
    assert json.loads(entry_path.read_text())["facts"]["kernel"]["version"] == real, "the cache is refreshed"


@pytest.mark.parametrize(
    "entry",
    [
        "{not json",
        '{"memtune_facts_cache": 99, "host": "localhost", "facts": {}}',
        '{"memtune_facts_cache": 1}',
    ],
)
def test_a_bad_cache_entry_is_a_warning_and_the_host_is_probed(
    host_guard: HostState, policy_dir: Path, facts_cache: Path, entry: str
) -> None:
    bad = facts_cache / "localhost.json"
    bad.write_text(entry)
    result, output = tune("--check", policies=[str(policy_dir)])
    assert result["_rc"] == 0 and result["facts_source"] == "probe", result
    assert modules_run(output)[0] == "memory_facts"
    assert any(f"ignoring the facts cache entry {bad}" in w for w in result["memtune_warnings"]), result
    assert json.loads(bad.read_text())["memtune_facts_cache"] == 1, "rewritten with the probed facts"
    assert host_guard.differences(HostState()) == []
