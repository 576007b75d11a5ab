"""The life of a value on a host, with the real memory_apply module on a host made of plain files: the
ledger (originals and generations), knobs a later plan drops going back, and rollback to the previous
generation or to the original values (issue 13, items 2 and 3, and its bad-input clause).

Each test names the bug of issue 13 it pins; each failed on main before the ledger existed."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._host.ledger import items as module_items
from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import collect
from memtune.audit.drift import drift, planned_items
from memtune.engine.desired import DesiredState
from memtune.facts.model import parse_facts
from tests.support.modules import run_on_tree

REPO = Path(__file__).resolve().parents[4]
GRUB = 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_CMDLINE_LINUX=""\n'
POOL = "sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"
THP = "sys/kernel/mm/transparent_hugepage/enabled"
LEDGER = "var/lib/memtune/ledger.json"
SYSCTL_FILE = "etc/sysctl.d/90-memtune.conf"
ORIGINAL = {
    "proc/sys/vm/swappiness": "60\n",
    "proc/sys/vm/max_map_count": "65530\n",
    "proc/sys/vm/compact_memory": "",
    "proc/meminfo": "MemTotal:        4028440 kB\nMemFree:         3000000 kB\nHugepagesize:       2048 kB\n",
    "proc/sys/kernel/osrelease": "6.1.0-26-amd64\n",
    "proc/cmdline": "BOOT_IMAGE=/vmlinuz-6.1.0-26-amd64 root=/dev/vda1 ro quiet\n",
    THP: "always [madvise] never\n",
    "sys/kernel/mm/transparent_hugepage/defrag": "always defer defer+madvise [madvise] never\n",
    POOL: "0\n",
    POOL.replace("nr_", "free_"): "0\n",
    POOL.replace("nr_", "surplus_"): "0\n",
    "sys/fs/cgroup/batch/memory.max": "max\n",
    "sys/fs/cgroup/batch/memory.high": "max\n",
    "sys/fs/cgroup/batch/memory.current": "1048576\n",
    "etc/default/grub": GRUB,
    "etc/systemd/system/sysinit.target.wants/.keep": "",
}
V1 = {
    "schema_version": 1,
    "sysctl": {
        "vm.swappiness": {"value": 10, "provenance": {"file": "policies/v1.yml", "rule": "low-swap"}},
        "vm.max_map_count": {"value": 262144, "provenance": {"file": "policies/v1.yml", "rule": "maps"}},
    },
    "thp": {"enabled": {"value": "never"}},
    "hugepages": [{"size_kb": 2048, "per_node": {"0": 64}, "boot": False, "required": False}],
    "kernel_cmdline": [{"arg": "hugepagesz=1G"}, {"arg": "hugepages=0:2"}],
    "cgroups": [{"path": "/sys/fs/cgroup/batch", "limits": {"MemoryMax": 1 << 30}, "force": False}],
}
V2 = {
    "schema_version": 1,
    "sysctl": {"vm.swappiness": {"value": 5, "provenance": {"file": "policies/v2.yml"}}},
}


@pytest.fixture
def host(tmp_path: Path) -> Path:
    root = tmp_path / "host"
    for name, text in ORIGINAL.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def run(root: Path, check: bool = False, **args: Any) -> dict[str, Any]:
    """memory_apply as Ansible runs it, on the tree; THP is then shown the way the kernel shows it."""
    result, _ = run_on_tree("memory_apply", root, dict(args, _ansible_check_mode=check, _ansible_diff=True))
    thp = (root / THP).read_text().strip()
    if "[" not in thp:
        (root / THP).write_text(
            " ".join(f"[{c}]" if c == thp else c for c in ("always", "madvise", "never")) + "\n"
        )
    return result


def ok(result: dict[str, Any]) -> dict[str, Any]:
    assert not result.get("failed"), result
    return result


def value(root: Path, name: str) -> str:
    return (root / name).read_text().strip()


def ledger(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / LEDGER).read_text())
    return data


def test_a_dropped_sysctl_thp_pool_cgroup_and_kernel_argument_go_back(host: Path) -> None:
    """Bug 2 (dropped knobs stay): v1 sets five kinds of value, v2 keeps only swappiness."""
    ok(run(host, desired=V1))
    assert value(host, "proc/sys/vm/max_map_count") == "262144"
    checked = ok(run(host, check=True, desired=V2))
    changed = {k["name"]: (k["before"], k["after"]) for k in checked["knobs"] if k["changed"]}
    assert changed["vm.max_map_count"] == (262144, 65530)
    assert changed["enabled"] == ("never", "madvise")
    assert changed["2048kB node0"] == (64, 0)
    assert changed["/sys/fs/cgroup/batch"] == ({"MemoryMax": 1 << 30}, {"MemoryMax": "infinity"})
    assert value(host, "proc/sys/vm/max_map_count") == "262144", "check mode wrote"
    diff_files = {d["before_header"] for d in checked["diff"]}
    assert "/etc/sysctl.d/90-memtune.conf" in diff_files and "kernel command line (grub)" in diff_files

    result = ok(run(host, desired=V2))
    assert result["changed"] is True
    assert set(result["restored"]) == {
        "vm.max_map_count",
        "thp.enabled",
        "hugepages.2048kB[node0]",
        "cmdline.hugepagesz=1G",
        "cmdline.hugepages=0:2",
        "cgroup./sys/fs/cgroup/batch.MemoryMax",
    }
    assert value(host, "proc/sys/vm/swappiness") == "5"
    assert value(host, "proc/sys/vm/max_map_count") == "65530"
    assert value(host, THP) == "always [madvise] never"
    assert value(host, POOL) == "0"
    assert value(host, "sys/fs/cgroup/batch/memory.max") == "max"
    assert (host / SYSCTL_FILE).read_text().endswith("\nvm.swappiness = 5\n")
    assert not (host / "etc/memtune/boot-tmpfiles.conf").exists()
    assert (host / "etc/default/grub").read_text() == GRUB
    again = ok(run(host, desired=V2))
    assert again["changed"] is False and again["restored"] == [], again


def test_rollback_previous_then_original(host: Path) -> None:
    """Bug 3 (rollback only knows the original): v1 -> v2 -> previous is v1, then original is pre-memtune."""
    ok(run(host, desired=V1))
    ok(run(host, desired=V2))
    back = ok(run(host, rollback="previous"))
    assert back["changed"] is True
    assert value(host, "proc/sys/vm/swappiness") == "10"
    assert value(host, "proc/sys/vm/max_map_count") == "262144"
    assert value(host, POOL) == "64" and value(host, THP) == "always madvise [never]"
    conf = (host / SYSCTL_FILE).read_text()
    assert "vm.max_map_count = 262144\n" in conf and "vm.swappiness = 10\n" in conf
    assert 'GRUB_CMDLINE_LINUX="hugepagesz=1G hugepages=0:2"' in (host / "etc/default/grub").read_text()
    saved = ledger(host)
    assert saved["generations"][-1]["items"] == module_items(V1)
    assert saved["runtime"]["sysctl"] == {"vm.swappiness": 60, "vm.max_map_count": 65530}

    original = ok(run(host, rollback="original"))
    assert original["changed"] is True and original["reboot_required"] is False
    assert value(host, "proc/sys/vm/swappiness") == "60"
    assert value(host, "proc/sys/vm/max_map_count") == "65530"
    assert value(host, POOL) == "0" and value(host, "sys/fs/cgroup/batch/memory.max") == "max"
    assert not (host / SYSCTL_FILE).exists()
    assert (host / "etc/default/grub").read_text() == GRUB
    sane = ledger(host)
    assert sane["runtime"]["sysctl"] == {"vm.swappiness": 60, "vm.max_map_count": 65530}
    assert sane["generations"][-1]["action"] == "rollback-original" and sane["generations"][-1]["items"] == []
    assert ok(run(host, rollback=True))["changed"] is False  # `true` is `original`
    assert ok(run(host, state="absent"))["changed"] is False


def test_rollback_previous_without_a_previous_generation_is_original(host: Path) -> None:
    """Bug 3: with one generation only, `previous` has nothing to go back to but the original values."""
    ok(run(host, desired=V1))
    result = ok(run(host, rollback="previous"))
    assert value(host, "proc/sys/vm/swappiness") == "60"
    assert not (host / SYSCTL_FILE).exists()
    assert any("no previous generation" in str(w) for w in result.get("warnings", []))


def test_a_kernel_argument_that_rolls_back_says_reboot_required(host: Path) -> None:
    """Bug 3: the running kernel has v1's arguments; going back to v2's plan (none) needs a reboot."""
    ok(run(host, desired=V1))
    ok(run(host, desired=V2))
    ok(run(host, rollback="previous"))
    (host / "proc/cmdline").write_text(ORIGINAL["proc/cmdline"].strip() + " hugepagesz=1G hugepages=0:2\n")
    result = ok(run(host, rollback="original"))
    assert result["reboot_required"] is True


def test_a_second_run_never_overwrites_the_originals(host: Path) -> None:
    """Bad-input clause (nothing may lose the original values): v1, v1 with other values, v2, previous."""
    ok(run(host, desired=V1))
    other = copy.deepcopy(V1)
    other["sysctl"]["vm.swappiness"]["value"] = 20
    ok(run(host, desired=other))
    ok(run(host, desired=V2))
    ok(run(host, rollback="previous"))
    saved = ledger(host)
    assert saved["runtime"]["sysctl"] == {"vm.swappiness": 60, "vm.max_map_count": 65530}
    assert saved["runtime"]["thp"] == {"enabled": "madvise"}
    assert saved["runtime"]["hugepages"] == {"2048": {"0": 0}}
    assert [g["action"] for g in saved["generations"]] == ["apply", "apply"]
    assert value(host, "proc/sys/vm/swappiness") == "20"


def test_generations_keep_the_last_ten_and_the_plan_identity(host: Path) -> None:
    for swappiness in range(1, 13):
        ok(run(host, desired={"schema_version": 1, "sysctl": {"vm.swappiness": {"value": swappiness}}}))
    saved = ledger(host)
    assert [g["id"] for g in saved["generations"]] == list(range(3, 13))
    assert saved["runtime"]["sysctl"] == {"vm.swappiness": 60}
    ok(run(host, desired=V1))
    plan = ledger(host)["generations"][-1]["plan"]
    assert plan["sources"] == ["policies/v1.yml:low-swap", "policies/v1.yml:maps"]
    assert plan["hash"].startswith("sha256:")


def test_a_version_1_snapshot_becomes_the_ledgers_originals(host: Path) -> None:
    """Migration: a host tuned by the memtune before the ledger keeps its originals, and the knob its
    sysctl file set that v2 drops goes back to the snapshot's value."""
    (host / "proc/sys/vm/swappiness").write_text("10\n")
    (host / "proc/sys/vm/max_map_count").write_text("262144\n")
    (host / "etc/sysctl.d").mkdir(parents=True)
    (host / SYSCTL_FILE).write_text("# Managed by memtune\nvm.max_map_count = 262144\nvm.swappiness = 10\n")
    snapshot = {
        "version": 1,
        "created": "2026-11-01T00:00:00Z",
        "runtime": {
            "sysctl": {"vm.swappiness": 60, "vm.max_map_count": 65530},
            "thp": {},
            "hugepages": {},
            "cgroups": {},
        },
        "files": {"/etc/sysctl.d/90-memtune.conf": None},
        "dirs": [],
        "owned": {"kernel_cmdline": [], "dropins": []},
    }
    (host / "var/lib/memtune").mkdir(parents=True)
    (host / "var/lib/memtune/snapshot.json").write_text(json.dumps(snapshot))
    facts = parse_facts(collect(Tree(str(host)), workloads=False))
    assert facts.memtune.ledger is not None
    assert facts.memtune.ledger.generations[-1].items == ["vm.max_map_count", "vm.swappiness"]
    result = ok(run(host, desired=V2))
    assert "vm.max_map_count" in result["restored"]
    assert value(host, "proc/sys/vm/max_map_count") == "65530"
    assert not (host / "var/lib/memtune/snapshot.json").exists()
    assert ledger(host)["runtime"]["sysctl"] == {"vm.swappiness": 60, "vm.max_map_count": 65530}
    ok(run(host, rollback="original"))
    assert value(host, "proc/sys/vm/swappiness") == "60"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "not valid JSON"),
        ('{"hello": "world"}', "not a memtune ledger"),
        ('{"format": "memtune-ledger", "version": 99}', "ledger version 99"),
    ],
)
def test_a_corrupt_or_foreign_ledger_is_reported_and_kept(host: Path, text: str, reason: str) -> None:
    """Bad input: the file is named with the reason, nothing changes, and only new_ledger starts afresh
    (the old file is moved aside, never replaced)."""
    (host / "var/lib/memtune").mkdir(parents=True)
    (host / LEDGER).write_text(text)
    failed = run(host, desired=V1)
    assert failed.get("failed") is True
    assert "/var/lib/memtune/ledger.json" in failed["msg"] and reason in failed["msg"]
    assert "new_ledger" in failed["msg"]
    assert value(host, "proc/sys/vm/swappiness") == "60" and (host / LEDGER).read_text() == text
    assert run(host, rollback="previous").get("failed") is True
    facts = parse_facts(collect(Tree(str(host)), workloads=False))
    assert facts.memtune.ledger is not None and reason in (facts.memtune.ledger.error or "")

    fresh = ok(run(host, desired=V1, new_ledger=True))
    assert value(host, "proc/sys/vm/swappiness") == "10"
    aside = [p for p in (host / "var/lib/memtune").iterdir() if p.name.startswith("ledger.json.corrupt-")]
    assert len(aside) == 1 and aside[0].read_text() == text
    assert any("moved aside" in str(w) for w in fresh.get("warnings", []))
    assert ledger(host)["runtime"]["sysctl"]["vm.swappiness"] == 60


def test_the_probe_reports_the_ledger_small(host: Path) -> None:
    ok(run(host, desired=V1))
    ok(run(host, desired=V2))
    facts = parse_facts(collect(Tree(str(host)), workloads=False))
    state = facts.memtune.ledger
    assert state is not None and state.error is None
    assert [g.items for g in state.generations] == [module_items(V1), ["vm.swappiness"]]
    assert "vm.max_map_count" in state.originals and "thp.enabled" in state.originals
    assert all(g.plan_hash and g.time for g in state.generations)


def engine_plan(desired: dict[str, Any]) -> DesiredState:
    """The engine's DesiredState for one of the module's desired dicts (provenance filled in)."""
    full = copy.deepcopy(desired)
    where = {"file": "p.yml", "line": 1, "rule": "r", "layer": "baseline"}
    for section in ("sysctl", "thp"):
        for entry in full.get(section, {}).values():
            entry["provenance"] = where
    for section in ("hugepages", "kernel_cmdline", "cgroups"):
        for entry in full.get(section, []):
            entry["provenance"] = where
    return DesiredState.model_validate(full)


@pytest.mark.parametrize("desired", [V1, V2, {"schema_version": 1}])
def test_both_sides_name_managed_items_alike(desired: dict[str, Any]) -> None:
    """The module's generation items and the audit's planned items are two copies of one naming."""
    assert module_items(desired) == sorted(planned_items(engine_plan(desired)))


def test_the_audit_reports_a_leftover_until_the_tune_restores_it(host: Path) -> None:
    """Bug 2: the audit of v2 on a host tuned with v1 never looked at what v2 dropped."""
    ok(run(host, desired=V1))
    facts = parse_facts(collect(Tree(str(host)), workloads=False))
    found = {c.knob: [f.kind.value for f in c.findings] for c in drift(engine_plan(V2), facts, "h").checks}
    assert found["vm.max_map_count"] == ["leftover"] and found["thp.enabled"] == ["leftover"]
    assert found["hugepages.2048kB[node0]"] == ["leftover"] and found["cmdline.hugepagesz=1G"] == ["leftover"]
    ok(run(host, desired=V2))
    facts = parse_facts(collect(Tree(str(host)), workloads=False))
    assert not [c.knob for c in drift(engine_plan(V2), facts, "h").checks if c.knob != "vm.swappiness"]


def test_both_sides_read_rollback_alike() -> None:
    """tune passes rollback on to memory_apply: both call the contract's one rollback_choice (D9)."""
    from ansible_collections.memtune.fleet.plugins.action import tune
    from ansible_collections.memtune.fleet.plugins.module_utils import _contract
    from ansible_collections.memtune.fleet.plugins.modules import memory_apply

    assert tune.rollback_choice is _contract.rollback_choice is memory_apply.rollback_choice
    answers = {
        True: "original",
        False: None,
        "previous": "previous",
        "Original": "original",
        "yes": "original",
    }
    for value, choice in answers.items():
        assert _contract.rollback_choice(value) == choice
    assert _contract.rollback_choice(None) is None
    with pytest.raises(_contract.RollbackError, match="not one of original, previous"):
        _contract.rollback_choice("yesterday")
