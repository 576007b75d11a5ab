"""The opt-in database protection (policies/memtune_protect_databases.yml, issue 18) planned on captured
hosts with database processes added to their trees: the probe finds the instances, the group policy turns
them into cgroup limits. A cgroup v2 host with PostgreSQL, two databases sharing the budget, a small host,
cgroup v1 and a host without systemd."""

from __future__ import annotations

from typing import Any

import pytest

from memtune.engine.plan import plan
from memtune.facts.model import HostFacts, parse_facts
from memtune.policy.model import PolicySet
from tests.support.trees import collect_with
from tests.support.workload_trees import DOCKER_ID, proc

GROUP = ["memtune_protect_databases"]
MiB = 1 << 20
PG_UNIT = "postgresql@15-main.service"
PG_SLICE = "system-postgresql.slice"
PG_ARGV = ["/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/postgresql/15/main"]


def v2(unit: str, slice_: str = "system.slice") -> str:
    path = f"/system.slice/{unit}" if slice_ == "system.slice" else f"/system.slice/{slice_}/{unit}"
    return f"0::{path}\n"


def v1(unit: str, slice_: str = "system.slice") -> str:
    """A v1 host's /proc/<pid>/cgroup: the unit in systemd's hierarchy and, with MemoryAccounting, in the
    memory controller's."""
    path = f"/system.slice/{unit}" if slice_ == "system.slice" else f"/system.slice/{slice_}/{unit}"
    return f"12:memory:{path}\n1:name=systemd:{path}\n"


def postgresql(cgroup: str, pid: int = 812) -> tuple[dict[str, str], dict[str, str]]:
    return proc(pid, "postgres", PG_ARGV, cgroup, ppid=1)


def mariadb(cgroup: str, pid: int = 700) -> tuple[dict[str, str], dict[str, str]]:
    return proc(pid, "mariadbd", ["/usr/sbin/mariadbd"], cgroup, ppid=1)


def facts_of(host: str, *processes: tuple[dict[str, str], dict[str, str]]) -> HostFacts:
    files: dict[str, str] = {}
    links: dict[str, str] = {}
    for process_files, process_links in processes:
        files.update(process_files)
        links.update(process_links)
    return parse_facts(collect_with(host, files, links), host)


def limits(facts: HostFacts, bundled: PolicySet, **kwargs: Any) -> dict[str, dict[str, Any]]:
    """{unit or path: its planned limits} for a host in the opt-in group."""
    desired = plan(facts, bundled, groups=GROUP, **kwargs)
    return {getattr(group, "unit", None) or group.path: group.limits for group in desired.cgroups}


def mib(value: int) -> int:
    return value // MiB * MiB


def test_postgresql_on_a_cgroup_v2_host_gets_half_of_ram_and_user_slice_a_quarter(
    bundled: PolicySet,
) -> None:
    facts = facts_of("numa2", postgresql(v2(PG_UNIT, PG_SLICE)))  # 6077484 kB
    half = 2967 * MiB  # 6077484 kB / 2 = 2967.5 MiB, rounded down
    assert limits(facts, bundled) == {
        PG_UNIT: {"MemoryLow": half},
        PG_SLICE: {"MemoryLow": half},
        "system.slice": {"MemoryLow": half},
        "user.slice": {"MemoryHigh": 1483 * MiB},  # a quarter: 1483.75 MiB
    }


def test_detection_alone_sets_no_cgroup_limit(bundled: PolicySet) -> None:
    facts = facts_of("numa2", postgresql(v2(PG_UNIT, PG_SLICE)))
    desired = plan(facts, bundled)
    assert "postgresql" in {w.name for w in facts.workloads}
    assert desired.sysctl["vm.overcommit_memory"].value == 2  # the workload policy applied
    assert desired.cgroups == []
    assert plan(facts, bundled, groups=["db"]).cgroups == []  # any other group neither


def test_two_databases_share_the_budget(bundled: PolicySet) -> None:
    facts = facts_of("numa2", postgresql(v2(PG_UNIT, PG_SLICE)), mariadb(v2("mariadb.service")))
    planned = limits(facts, bundled)
    share = mib(facts.memory.mem_total_kb * 1024 // 2 // 2)
    assert planned[PG_UNIT] == planned["mariadb.service"] == {"MemoryLow": share}
    assert planned[PG_SLICE] == {"MemoryLow": share}
    budget = planned["system.slice"]["MemoryLow"]
    assert budget == mib(facts.memory.mem_total_kb * 1024 // 2)
    assert planned[PG_UNIT]["MemoryLow"] + planned["mariadb.service"]["MemoryLow"] <= budget


def test_two_clusters_and_mariadb_get_a_third_each_and_the_slices_hold_their_sum(bundled: PolicySet) -> None:
    second = "postgresql@15-second.service"
    facts = facts_of(
        "numa2",
        postgresql(v2(PG_UNIT, PG_SLICE)),
        proc(912, "postgres", [*PG_ARGV[:2], "/var/lib/postgresql/15/second"], v2(second, PG_SLICE), ppid=1),
        mariadb(v2("mariadb.service")),
    )
    planned = limits(facts, bundled)
    share = mib(facts.memory.mem_total_kb * 1024 // 2 // 3)
    assert share == 989 * MiB
    for unit in (PG_UNIT, second, "mariadb.service"):
        assert planned[unit] == {"MemoryLow": share}, unit
    assert planned[PG_SLICE] == {"MemoryLow": 2 * share}
    assert planned["system.slice"] == {"MemoryLow": 2967 * MiB}
    assert 3 * share <= planned["system.slice"]["MemoryLow"]

    # Shared buffers outside huge pages: each cluster keeps min(shared_buffers, share); the slices the sum.
    off = {"postgresql_shared_buffers": "1GiB", "postgresql_huge_pages": 0}
    with_min = limits(facts, bundled, inputs=off)
    assert with_min[PG_UNIT]["MemoryMin"] == with_min[second]["MemoryMin"] == share  # 989 MiB < 1 GiB
    assert with_min[PG_SLICE]["MemoryMin"] == with_min["system.slice"]["MemoryMin"] == 2 * share
    assert "MemoryMin" not in with_min["mariadb.service"]


def test_a_postgresql_unit_that_is_no_template_instance_gets_no_slice_entry(bundled: PolicySet) -> None:
    facts = facts_of("numa2", postgresql(v2("postgresql.service")))  # RHEL's layout
    planned = limits(facts, bundled, inputs={"postgresql_shared_buffers": "1GiB", "postgresql_huge_pages": 0})
    assert set(planned) == {"postgresql.service", "system.slice", "user.slice"}
    assert planned["postgresql.service"] == {"MemoryLow": 2967 * MiB, "MemoryMin": 1 << 30}


def test_postgresql_only_in_a_container_selects_nothing(bundled: PolicySet) -> None:
    facts = facts_of("numa2", postgresql(f"0::/system.slice/docker-{DOCKER_ID}.scope\n"))
    [instance] = next(w for w in facts.workloads if w.name == "postgresql").instances
    assert instance.container is not None
    assert plan(facts, bundled, groups=GROUP).cgroups == []


def test_a_forced_database_that_does_not_run_here_protects_nothing(bundled: PolicySet) -> None:
    facts = facts_of("numa2")  # no database process
    desired = plan(facts, bundled, groups=GROUP, workloads=["postgresql"])
    assert desired.sysctl["vm.overcommit_memory"].value == 2  # the forced workload policy applied
    assert desired.cgroups == []
    reasons = {entry.knob: entry.reason for entry in desired.skipped}
    assert reasons["cgroup.workload:postgresql"] == "no instance of postgresql to limit: it is not detected"


def test_shared_buffers_outside_huge_pages_get_memory_min(bundled: PolicySet) -> None:
    facts = facts_of("numa2", postgresql(v2(PG_UNIT, PG_SLICE)))
    off = {"postgresql_shared_buffers": "1GiB", "postgresql_huge_pages": 0}
    planned = limits(facts, bundled, inputs=off)
    for target in (PG_UNIT, PG_SLICE, "system.slice"):
        assert planned[target]["MemoryMin"] == 1 << 30, target
    assert "MemoryMin" not in planned["user.slice"]

    # More shared_buffers than the instance's share: MemoryMin stops at MemoryLow.
    big = limits(facts, bundled, inputs={**off, "postgresql_shared_buffers": "5GiB"})
    assert big[PG_UNIT]["MemoryMin"] == big[PG_UNIT]["MemoryLow"] == 2967 * MiB


@pytest.mark.parametrize(
    "inputs",
    [
        {"postgresql_shared_buffers": "1GiB"},  # the postgresql policy puts them in a hugepage pool
        {"postgresql_shared_buffers": "1GiB", "postgresql_huge_pages": 538},
    ],
)
def test_shared_buffers_in_huge_pages_get_no_memory_min(bundled: PolicySet, inputs: dict[str, Any]) -> None:
    facts = facts_of("numa2", postgresql(v2(PG_UNIT, PG_SLICE)))
    desired = plan(facts, bundled, groups=GROUP, inputs=inputs)
    assert desired.hugepages and sum(desired.hugepages[0].per_node.values()) == 538
    assert all("MemoryMin" not in group.limits for group in desired.cgroups)


def test_a_small_host_is_warned_and_gets_no_limit(bundled: PolicySet) -> None:
    facts = facts_of("small", postgresql(v2(PG_UNIT, PG_SLICE)))  # 2012380 kB
    desired = plan(facts, bundled, groups=GROUP)
    assert desired.cgroups == []
    [warning] = [w for w in desired.warnings if "rule 'small-host'" in w]
    assert "below 3 GiB of RAM no memory is protected" in warning


def test_a_cgroup_v1_host_skips_every_limit_with_the_reason(bundled: PolicySet) -> None:
    captured = facts_of("firecracker", postgresql(v1(PG_UNIT, PG_SLICE)))  # 24 GiB
    assert captured.platform.cgroup.version == "hybrid"  # the memory controller on v1, unified mounted too
    facts = captured.model_copy(
        update={"platform": captured.platform.model_copy(update={"systemd": True})}
    )  # the capture's init is not systemd; a v1 host under systemd (CentOS 7, Debian 10) is
    desired = plan(facts, bundled, groups=GROUP)
    assert desired.cgroups == []
    skipped = {entry.knob: entry.reason for entry in desired.skipped if entry.knob.startswith("cgroup.")}
    assert set(skipped) == {
        f"cgroup.{PG_UNIT}.MemoryLow",
        f"cgroup.{PG_SLICE}.MemoryLow",
        "cgroup.system.slice.MemoryLow",
        "cgroup.user.slice.MemoryHigh",
    }
    assert skipped[f"cgroup.{PG_UNIT}.MemoryLow"] == (
        "cgroup v1 memory controller (hybrid hierarchy): it has no MemoryLow and systemd ignores MemoryLow= "
        "(only MemoryMax applies)"
    )
    assert skipped["cgroup.user.slice.MemoryHigh"].startswith("cgroup v1 memory controller")


def test_a_host_without_systemd_skips_the_units(bundled: PolicySet) -> None:
    facts = facts_of("firecracker", postgresql(v1(PG_UNIT, PG_SLICE)))
    assert facts.platform.systemd is False
    desired = plan(facts, bundled, groups=GROUP)
    assert desired.cgroups == []
    reasons = {entry.reason for entry in desired.skipped if entry.knob.startswith("cgroup.")}
    assert reasons == {"this host does not run systemd"}
