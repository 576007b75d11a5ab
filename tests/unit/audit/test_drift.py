"""Drift per knob and NUMA node, now and at the next boot, on captured hosts changed where a case needs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memtune import DesiredState, HostFacts, parse_facts
from memtune.audit.drift import Kind, drift
from tests.support.trees import collect_with, sysctl_files

SOURCE = {"file": "policies/test.yml", "line": 3, "rule": "r", "layer": "baseline"}
OURS = "/etc/sysctl.d/90-memtune.conf"
THP = "/sys/kernel/mm/transparent_hugepage/enabled"


def pool_path(node: int, size_kb: int = 2048) -> str:
    return f"/sys/devices/system/node/node{node}/hugepages/hugepages-{size_kb}kB/nr_hugepages"


def facts(
    host: str = "numa2",
    sources: dict[str, list[tuple[str, int, str]]] | None = None,
    boot_writes: dict[str, str] | None = None,
    pools: dict[int, int] | None = None,
    **changes: Any,
) -> HostFacts:
    """A captured host's facts; ``sources`` lists the sysctl files setting a key, ``boot_writes`` what
    memtune's boot unit writes, ``pools`` the 2 MiB pages per node now, dotted ``changes`` the rest."""
    data = collect_with(host, sysctl_files(sources or {}), keys=tuple(sources or ()))
    if boot_writes is not None:
        data["memtune"].update(boot_writes=boot_writes, boot_unit={"installed": True, "enabled": True})
    for node, count in (pools or {}).items():
        data["numa"]["nodes"][node]["hugepages"]["2048"]["nr"] = count
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target = data
        for part in parents:
            target = target[part]
        target[last.replace("_DOT_", ".")] = value
    return parse_facts(data, host)


def plan(**sections: Any) -> DesiredState:
    return DesiredState.model_validate({"schema_version": 1, **sections})


def planned(value: Any) -> dict[str, Any]:
    return {"value": value, "provenance": SOURCE}


def pool(per_node: dict[str, int], size_kb: int = 2048, boot: bool = False) -> dict[str, Any]:
    return {"size_kb": size_kb, "per_node": per_node, "boot": boot, "required": False, "provenance": SOURCE}


def kinds(result: Any) -> list[tuple[str, int | None, str]]:
    return [(check.knob, check.node, finding.kind.value) for check, finding in result.findings()]


def test_a_converged_host() -> None:
    desired = plan(
        sysctl={"vm.swappiness": planned(10)},
        thp={"enabled": planned("always")},
        hugepages=[pool({"0": 64, "1": 0})],
    )
    host = facts(
        sources={"vm.swappiness": [(OURS, 3, "10")]},
        sysctl__vm_DOT_swappiness=10,
        boot_writes={THP: "always", pool_path(0): "64", pool_path(1): "0"},
        pools={0: 64, 1: 0},
    )
    result = drift(desired, host, "numa2")
    assert not result.drifted
    assert [check.name for check in result.checks] == [
        "vm.swappiness",
        "thp.enabled",
        "hugepages.2048kB[node0]",
        "hugepages.2048kB[node1]",
    ]
    assert result.checks[0].boot_source == f"{OURS}:3"
    assert result.applicable() == []


def test_runtime_and_boot_drift_of_a_sysctl() -> None:
    result = drift(plan(sysctl={"vm.swappiness": planned(10)}), facts(), "numa2")
    [check] = result.checks
    assert (check.desired, check.runtime, check.boot) == (10, 60, None)
    assert [f.kind for f in check.findings] == [Kind.runtime_drift, Kind.boot_drift]
    assert "kernel default" in check.findings[1].message


def test_a_shadowing_file_is_boot_drift_naming_it() -> None:
    sources = {"vm.swappiness": [(OURS, 3, "10"), ("/etc/sysctl.d/99-site.conf", 7, "30")]}
    result = drift(
        plan(sysctl={"vm.swappiness": planned(10)}), facts(sources=sources, sysctl__vm_DOT_swappiness=10), "h"
    )
    [check] = result.checks
    assert kinds(result) == [("vm.swappiness", None, "boot_drift")]
    assert check.boot == "30"
    assert check.boot_source == "/etc/sysctl.d/99-site.conf:7"
    assert "/etc/sysctl.d/99-site.conf:7 sets vm.swappiness = 30" in check.findings[0].message
    assert result.applicable() == [], "memory_apply never edits another file: nothing for it to mend"


def test_another_file_with_the_same_value_is_no_drift() -> None:
    sources = {"vm.swappiness": [("/etc/sysctl.d/99-site.conf", 7, "10")]}
    assert not drift(
        plan(sysctl={"vm.swappiness": planned(10)}), facts(sources=sources, sysctl__vm_DOT_swappiness=10), "h"
    ).drifted


def test_multi_value_knobs_compare_with_white_space_folded() -> None:
    desired = plan(sysctl={"vm.lowmem_reserve_ratio": planned("256 256 32 0")})
    host = facts(
        sources={"vm.lowmem_reserve_ratio": [(OURS, 2, "256  256\t32 0")]},
        sysctl__vm_DOT_lowmem_reserve_ratio="256 256 32 0 ",
    )
    assert not drift(desired, host, "h").drifted


def test_per_node_pools_runtime_shortfall_and_boot() -> None:
    desired = plan(hugepages=[pool({"0": 64, "1": 64})])
    # memtune's boot restore asks 64 pages of node 0, which holds only 40: a shortfall. Node 1 holds 10
    # and its boot restore says 32: someone changed both, so it drifts now and at boot.
    host = facts(boot_writes={pool_path(0): "64", pool_path(1): "32"}, pools={0: 40, 1: 10})
    result = drift(desired, host, "numa2")
    assert kinds(result) == [
        ("hugepages.2048kB", 0, "shortfall"),
        ("hugepages.2048kB", 1, "runtime_drift"),
        ("hugepages.2048kB", 1, "boot_drift"),
    ]
    assert result.checks[1].boot == "32"
    assert result.checks[1].boot_source == "memtune-boot.service"


def test_a_pool_on_a_node_the_host_lacks_is_unsupported() -> None:
    result = drift(
        plan(hugepages=[pool({"0": 0, "2": 8})]), facts(pools={0: 0}, boot_writes={pool_path(0): "0"}), "h"
    )
    assert kinds(result) == [("hugepages.2048kB", 2, "unsupported")]


def test_thp_boot_comes_from_the_boot_unit_or_the_command_line() -> None:
    desired = plan(thp={"enabled": planned("never")})
    assert kinds(drift(desired, facts(), "h")) == [
        ("thp.enabled", None, "runtime_drift"),
        ("thp.enabled", None, "boot_drift"),
    ]
    on_cmdline = facts(thp__enabled="never", kernel__cmdline="root=/dev/vda transparent_hugepage=never")
    result = drift(desired, on_cmdline, "h")
    assert not result.drifted
    assert result.checks[0].boot_source == "kernel command line"


def test_kernel_arguments_need_the_running_kernel_and_every_bootloader_entry() -> None:
    desired = plan(kernel_cmdline=[{"arg": "hugepagesz=1G", "provenance": SOURCE}])
    assert kinds(drift(desired, facts(), "h")) == [
        ("cmdline.hugepagesz=1G", None, "runtime_drift"),
        ("cmdline.hugepagesz=1G", None, "boot_drift"),
    ]
    entries = [
        {"path": "/boot/loader/entries/a.conf", "args": ["hugepagesz=1G"]},
        {"path": "/boot/loader/entries/b.conf", "args": ["quiet"]},
    ]
    host = facts(memtune__bootloader=entries, kernel__cmdline="quiet hugepagesz=1G")
    result = drift(desired, host, "h")
    assert kinds(result) == [("cmdline.hugepagesz=1G", None, "boot_drift")]
    assert "missing from /boot/loader/entries/b.conf" in result.checks[0].findings[0].message
    assert result.applicable() == result.checks, "memory_apply adds it to the entry that lacks it"


def test_cgroup_limits_compare_in_whole_pages() -> None:
    limit = (1 << 30) + 100  # not page aligned: the kernel keeps 1 GiB
    desired = plan(
        cgroups=[
            {
                "unit": "db.service",
                "limits": {"MemoryMax": limit, "MemoryHigh": "infinity"},
                "force": False,
                "provenance": SOURCE,
            }
        ]
    )
    managed = [
        {
            "unit": "db.service",
            "path": None,
            "boot": {"MemoryMax": limit, "MemoryHigh": "infinity"},
            "runtime": {"MemoryMax": 1 << 30, "MemoryHigh": "infinity"},
        }
    ]
    assert not drift(desired, facts(memtune__cgroups=managed), "h").drifted
    managed[0]["runtime"]["MemoryMax"] = 1 << 29
    del managed[0]["boot"]["MemoryHigh"]
    assert kinds(drift(desired, facts(memtune__cgroups=managed), "h")) == [
        ("cgroup.db.service.MemoryHigh", None, "boot_drift"),
        ("cgroup.db.service.MemoryMax", None, "runtime_drift"),
    ]


def test_a_planned_cgroup_memtune_never_applied() -> None:
    desired = plan(
        cgroups=[
            {
                "path": "/sys/fs/cgroup/batch",
                "limits": {"MemoryMax": 1 << 30},
                "force": False,
                "provenance": SOURCE,
            }
        ]
    )
    result = drift(desired, facts(), "h")
    assert kinds(result) == [("cgroup./sys/fs/cgroup/batch.MemoryMax", None, "runtime_drift")]
    assert "does not exist" in result.checks[0].findings[0].message


def test_skipped_knobs_are_unsupported_and_not_applicable() -> None:
    desired = plan(
        skipped=[{"knob": "kernel.numa_balancing", "reason": "kernel 4.19 lacks it", "provenance": SOURCE}]
    )
    result = drift(desired, facts(), "h")
    assert kinds(result) == [("kernel.numa_balancing", None, "unsupported")]
    assert result.applicable() == []


def test_a_knob_the_kernel_lacks_or_the_probe_missed() -> None:
    desired = plan(sysctl={"kernel.numa_balancing": planned(1), "vm.page_lock_unfairness": planned(5)})
    result = drift(desired, facts(sysctl__kernel_DOT_numa_balancing=None), "h")
    assert kinds(result) == [
        ("kernel.numa_balancing", None, "unsupported"),
        ("vm.page_lock_unfairness", None, "unsupported"),
    ]
    assert "was not probed" in result.checks[1].findings[0].message


def test_an_empty_plan_is_an_unmanaged_host() -> None:
    assert kinds(drift(plan(), facts(), "h")) == [("policy", None, "unmanaged")]


@pytest.mark.parametrize("host", ["firecracker", "small", "numa2", "numa3"])
def test_the_bundled_policies_on_every_captured_host(host: str) -> None:
    from memtune import load_policy_set
    from memtune import plan as make_plan
    from memtune.policy.model import bundled_policy_dir

    host_facts = facts(host)
    result = drift(
        make_plan(host_facts, load_policy_set([bundled_policy_dir()]), host=host), host_facts, host
    )
    assert result.checks
    # An untouched host has no memtune sysctl file: every planned sysctl drifts at boot.
    for check in result.checks:
        if check.knob.startswith(("vm.", "kernel.")) and not any(
            f.kind == Kind.unsupported for f in check.findings
        ):
            assert any(f.kind == Kind.boot_drift for f in check.findings), check


# -- issue 13: what the next boot sets, from the probe's one answer ------------------------------------


def test_a_site_file_sorting_before_memtunes_is_mendable_boot_drift() -> None:
    """Bug 1 of issue 13: /etc/sysctl.d/10-early.conf setting a managed key was reported as winning over
    memtune's file and not mendable, so tune never wrote 90-memtune.conf and the audit failed forever."""
    sources = {"vm.swappiness": [("/etc/sysctl.d/10-early.conf", 1, "60")]}
    result = drift(
        plan(sysctl={"vm.swappiness": planned(10)}), facts(sources=sources, sysctl__vm_DOT_swappiness=10), "h"
    )
    [check] = result.checks
    assert kinds(result) == [("vm.swappiness", None, "boot_drift")]
    assert check.findings[0].mendable
    assert "memtune's file does not set vm.swappiness" in check.findings[0].message
    assert result.applicable() == [check], "tune must write memtune's file, which the boot applies later"
    # Once memtune's file sets it, memtune's file wins at boot: converged.
    sources["vm.swappiness"].append((OURS, 3, "10"))
    assert not drift(
        plan(sysctl={"vm.swappiness": planned(10)}), facts(sources=sources, sysctl__vm_DOT_swappiness=10), "h"
    ).drifted


def test_a_kernel_argument_loses_to_memtunes_file() -> None:
    host = collect_with("small", {"/proc/cmdline": "root=/dev/vda sysctl.vm.swappiness=1\n"})
    host["sysctl"]["vm.swappiness"] = 10
    source = host["sysctl_sources"]["vm.swappiness"]
    assert source["winner"] == {"path": "/proc/cmdline", "line": 1, "value": "1"}
    assert source["after_memtune"] == []
    result = drift(plan(sysctl={"vm.swappiness": planned(10)}), parse_facts(host, "small"), "small")
    assert [f.mendable for _, f in result.findings()] == [True]


TUNED_PROFILE = "[main]\nsummary=test\n\n[sysctl]\nvm.swappiness=30\n\n[vm]\ntransparent_hugepages=never\n"


@pytest.mark.parametrize(("reapply", "winner_mendable"), [("1", True), ("0", False)])
def test_an_active_tuned_profile_is_another_writer(reapply: str, winner_mendable: bool) -> None:
    host = collect_with(
        "small",
        {
            "/etc/tuned/active_profile": "site-db\n",
            "/etc/tuned/tuned-main.conf": f"daemon = 1\nreapply_sysctl = {reapply}\n",
            "/etc/tuned/site-db/tuned.conf": TUNED_PROFILE,
            OURS: "vm.swappiness = 10\n",
        },
    )
    host["sysctl"]["vm.swappiness"] = 10
    host["thp"]["enabled"] = "always"
    desired = plan(sysctl={"vm.swappiness": planned(10)}, thp={"enabled": planned("always")})
    result = drift(desired, parse_facts(host, "small"), "small")
    swappiness = next(check for check in result.checks if check.knob == "vm.swappiness")
    if winner_mendable:  # TuneD re-applies the sysctl.d files after its own: memtune's file wins
        assert swappiness.ok and swappiness.boot_source == f"{OURS}:1"
    else:
        assert swappiness.boot_source == "/etc/tuned/site-db/tuned.conf:5"
        assert [(f.kind, f.mendable) for f in swappiness.findings] == [(Kind.boot_drift, False)]
    thp = next(check for check in result.checks if check.knob == "thp.enabled")
    assert thp.boot == "never" and "TuneD profile site-db" in (thp.boot_source or "")
    assert [(f.kind, f.mendable) for f in thp.findings] == [(Kind.boot_drift, False)]


def test_a_host_without_numa_nodes_audits_the_host_wide_pool(tmp_path: Path) -> None:
    """Bug 4 of issue 13: without /sys/devices/system/node, memory_apply writes the host-wide pool, but the
    audit said "no 2048 kB pages on node 0" (unsupported) and tune skipped it."""
    import shutil

    from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
    from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import collect
    from tests.support.trees import HOSTS

    root = tmp_path / "small-without-numa"  # the captured small host, its node directories removed
    shutil.copytree(HOSTS / "small", root, symlinks=True)
    shutil.rmtree(root / "sys/devices/system/node")
    host_wide = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
    (root / host_wide.lstrip("/")).write_text("0\n")
    data = collect(Tree(str(root)))
    assert data["numa"]["available"] is False
    desired = plan(hugepages=[pool({"0": 16})])
    result = drift(desired, parse_facts(data, "flat"), "flat")
    assert kinds(result) == [("hugepages.2048kB", 0, "runtime_drift"), ("hugepages.2048kB", 0, "boot_drift")]
    assert len(result.applicable()) == 1
    # After memory_apply: the host-wide pool holds 16 and memtune's boot unit restores it there.
    (root / host_wide.lstrip("/")).write_text("16\n")
    (root / "etc/memtune").mkdir(parents=True)
    (root / "etc/memtune/boot-tmpfiles.conf").write_text(f"w {host_wide} - - - - 16\n")
    wants = root / "etc/systemd/system/sysinit.target.wants"
    wants.mkdir(parents=True)
    (root / "etc/systemd/system/memtune-boot.service").write_text("[Unit]\n")
    (wants / "memtune-boot.service").symlink_to("/etc/systemd/system/memtune-boot.service")
    assert not drift(desired, parse_facts(collect(Tree(str(root))), "flat"), "flat").drifted


def ledger(*generations: list[str], originals: tuple[str, ...] = ()) -> dict[str, Any]:
    listed = [
        {"id": n, "time": "2026-12-01T06:00:00Z", "action": "apply", "plan_hash": "sha256:0", "items": items}
        for n, items in enumerate(generations, 1)
    ]
    return {
        "path": "/var/lib/memtune/ledger.json",
        "error": None,
        "originals": list(originals),
        "generations": listed,
    }


def test_a_value_the_newest_generation_set_and_the_plan_dropped_is_a_leftover() -> None:
    """Issue 13, bug 2: before the ledger the audit never looked at a knob the plan no longer had."""
    host = facts(
        memtune__ledger=ledger(
            ["vm.max_map_count", "vm.swappiness"],
            ["thp.enabled", "vm.max_map_count", "vm.swappiness"],
            originals=("vm.max_map_count", "vm.swappiness"),
        )
    )
    result = drift(plan(sysctl={"vm.swappiness": planned(host.sysctl["vm.swappiness"])}), host, "numa2")
    left = {
        check.knob: check
        for check in result.checks
        if check.findings and check.findings[0].kind == Kind.leftover
    }
    assert sorted(left) == ["thp.enabled", "vm.max_map_count"]
    assert left["vm.max_map_count"].runtime == host.sysctl["vm.max_map_count"]
    assert "generation 2" in left["vm.max_map_count"].findings[0].message
    assert "restores its original value" in left["vm.max_map_count"].findings[0].message
    assert "removes it from memtune's files" in left["thp.enabled"].findings[0].message
    assert {check.knob for check in result.applicable()} >= {"thp.enabled", "vm.max_map_count"}


def test_only_the_newest_generation_counts_and_no_ledger_means_no_leftover() -> None:
    restored = facts(memtune__ledger=ledger(["vm.max_map_count"], []))
    wanted = plan(sysctl={"vm.swappiness": planned(restored.sysctl["vm.swappiness"])})
    assert not [c for c in drift(wanted, restored, "numa2").checks if c.knob == "vm.max_map_count"]
    assert not [c for c in drift(wanted, facts(), "numa2").checks if c.knob == "vm.max_map_count"]
