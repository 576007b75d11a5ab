"""What the engine makes of workload instances (issue 18): workloads seen only in containers or pods do
not choose the host's policies unless asked; ``workload:`` cgroup entries become each host instance's unit
or cgroup path; ``instances()`` in expressions; the fingerprint reads where instances run, never
their pids."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._probe.fingerprint import (
    fingerprint,
    resolve,
    stale,
)
from memtune import parse_facts, plan
from memtune.engine.planned import PathCgroup, UnitCgroup
from memtune.errors import PolicyError
from memtune.facts.model import FactsError, HostFacts
from memtune.policy.load import load_policy_file, load_policy_set
from memtune.policy.model import PolicySet, bundled_policy_dir
from tests.support.trees import captured

POD = {"uid": "5f1c2f4e-9d4c-4a51-9a4f-0d2d3c2b8a11", "qos": "Burstable"}
IN_POD = "pod 5f1c2f4e-9d4c-4a51-9a4f-0d2d3c2b8a11 (Burstable)"
CONTAINER = {"runtime": "containerd", "id": "a3" * 32}


def instance(
    leader: int,
    unit: str | None = None,
    cgroup: str | None = None,
    *,
    manager: str | None = "system",
    version: int = 2,
    pod: dict[str, str] | None = None,
    container: dict[str, str] | None = None,
) -> dict[str, Any]:
    if cgroup is None and unit is not None:
        cgroup = f"/system.slice/{unit}"
    return {
        "pids": [leader, leader + 1],
        "leader": leader,
        "cgroup": cgroup,
        "cgroup_version": version if cgroup else None,
        "unit": unit,
        "unit_manager": manager if unit else None,
        "container": container,
        "pod": pod,
        "root": f"/proc/{leader}/root",
        "data_dir": None,
        "version": None,
        "evidence": {},
    }


def facts_with(*workloads: tuple[str, list[dict[str, Any]]], cgroup: str = "v2") -> dict[str, Any]:
    data = copy.deepcopy(captured("numa2"))
    data["platform"]["cgroup"]["version"] = cgroup
    data["workloads"] = [
        {
            "name": name,
            "pids": [pid for i in instances for pid in i["pids"]],
            "evidence": [],
            "version": None,
            "instances": instances,
        }
        for name, instances in workloads
    ]
    return data


def policy_set(tmp_path: Path, rules: list[dict[str, Any]], layer: str, name: str) -> PolicySet:
    path = tmp_path / f"{name}.yml"
    path.write_text(json.dumps({"layer": layer, "name": name, "rules": rules}))
    return PolicySet.of([load_policy_file(path)])


def with_postgresql(tmp_path: Path, rule: dict[str, Any]) -> PolicySet:
    """A group policy ``g`` with ``rule``, and a workload policy for postgresql (so that it is chosen)."""
    group, workload = tmp_path / "g.yml", tmp_path / "postgresql.yml"
    group.write_text(json.dumps({"layer": "group", "name": "g", "rules": [rule]}))
    workload_rule = {"name": "s", "source": "test", "sysctl": {"vm.swappiness": 5}}
    workload.write_text(json.dumps({"layer": "workload", "name": "postgresql", "rules": [workload_rule]}))
    return PolicySet.of([load_policy_file(group), load_policy_file(workload)])


def protect(tmp_path: Path, *entries: dict[str, Any], layer: str = "group") -> PolicySet:
    rule = {"name": "protect", "source": "test", "cgroups": list(entries)}
    return policy_set(tmp_path, [rule], layer=layer, name="protect")


def cgroups(desired: Any) -> dict[str, dict[str, Any]]:
    return {
        (group.unit if isinstance(group, UnitCgroup) else group.path): group.limits
        for group in desired.cgroups
    }


# -- which workloads choose the host's policies ----------------------------------------------------------
ONLY_IN_PODS = facts_with(("redis", [instance(400, cgroup="/kubepods.slice/x", pod=POD)]))
ON_HOST_AND_IN_A_CONTAINER = facts_with(
    ("redis", [instance(400, cgroup="/c", container=CONTAINER), instance(500, "redis-server.service")])
)


def bundled_plan(data: dict[str, Any], **kwargs: Any) -> Any:
    return plan(parse_facts(data, "test"), load_policy_set([bundled_policy_dir()]), **kwargs)


def test_a_workload_seen_only_in_pods_does_not_choose_the_hosts_policy() -> None:
    desired = bundled_plan(ONLY_IN_PODS)
    assert "vm.overcommit_memory" not in desired.sysctl  # redis.yml's rule
    [warning] = [w for w in desired.warnings if "only in containers" in w]
    assert warning == (
        f"workload redis runs only in containers or pods ({IN_POD}): its policy is not applied to the host "
        "(memtune_container_workloads: true or memtune_workloads opts in)"
    )
    assert "workloads host names" in desired.facts_read


@pytest.mark.parametrize(
    "kwargs", [{"container_workloads": True}, {"workloads": ["redis"]}], ids=["container_workloads", "forced"]
)
def test_containers_workloads_choose_when_asked(kwargs: dict[str, Any]) -> None:
    desired = bundled_plan(ONLY_IN_PODS, **kwargs)
    assert desired.sysctl["vm.overcommit_memory"].value == 1
    assert not [w for w in desired.warnings if "only in containers" in w]


def test_a_workload_on_the_host_and_in_a_container_chooses() -> None:
    assert bundled_plan(ON_HOST_AND_IN_A_CONTAINER).sysctl["vm.overcommit_memory"].value == 1


def test_host_workloads_follow_the_facts() -> None:
    assert parse_facts(ONLY_IN_PODS, "t").host_workload_names == frozenset()
    assert parse_facts(ONLY_IN_PODS, "t").workload_names == {"redis"}
    assert parse_facts(ON_HOST_AND_IN_A_CONTAINER, "t").host_workload_names == {"redis"}
    # every instance's processes exited while read: counted as the host's, as before issue 18
    assert parse_facts(facts_with(("redis", [])), "t").host_workload_names == {"redis"}


def test_the_controller_and_the_host_agree_on_what_runs_on_the_host() -> None:
    for data in (ONLY_IN_PODS, ON_HOST_AND_IN_A_CONTAINER, facts_with(("redis", [])), facts_with()):
        facts: HostFacts = parse_facts(data, "t")
        assert resolve(data, "workloads host names") == sorted(facts.host_workload_names)


def test_facts_without_instances_are_an_older_probe() -> None:
    data = facts_with(("redis", []))
    del data["workloads"][0]["instances"]
    with pytest.raises(FactsError, match="instances"):
        parse_facts(data, "t")


# -- workload: cgroup entries ----------------------------------------------------------------------------
TWO_CLUSTERS = facts_with(
    (
        "postgresql",
        [
            instance(
                812,
                "postgresql@15-main.service",
                "/system.slice/system-postgresql.slice/postgresql@15-main.service",
            ),
            instance(
                912,
                "postgresql@15-second.service",
                "/system.slice/system-postgresql.slice/postgresql@15-second.service",
            ),
            instance(
                1012,
                "postgresql@15-main.service",
                "/system.slice/system-postgresql.slice/postgresql@15-main.service",
            ),
            instance(
                2000, cgroup="/kubepods.slice/kubepods-burstable.slice/p/cri-containerd-1.scope", pod=POD
            ),
            instance(
                3000,
                "app.service",
                "/user.slice/user-1000.slice/user@1000.service/app.service",
                manager="user@1000.service",
            ),
            instance(4000, cgroup="/batch/pg"),
        ],
    )
)


def test_each_host_instance_gets_its_unit_or_path_and_the_rest_say_why(tmp_path: Path) -> None:
    entry = {"workload": "postgresql", "MemoryLow": "25%"}
    desired = plan(parse_facts(TWO_CLUSTERS, "t"), protect(tmp_path, entry), groups=["protect"], workloads=[])
    quarter = parse_facts(TWO_CLUSTERS, "t").memory.mem_total_kb * 1024 // 4
    assert cgroups(desired) == {
        "postgresql@15-main.service": {"MemoryLow": quarter},  # two instances in one unit: one entry
        "postgresql@15-second.service": {"MemoryLow": quarter},
        "/sys/fs/cgroup/batch/pg": {"MemoryLow": quarter},  # no unit: its cgroup
    }
    assert {type(group) for group in desired.cgroups} == {UnitCgroup, PathCgroup}
    reasons = {skip.knob: skip.reason for skip in desired.skipped}
    assert reasons == {
        f"cgroup.workload:postgresql:{IN_POD}": (
            f"postgresql in {IN_POD}: a container's or pod's memory limits belong to its runtime (its "
            "resources), not the host"
        ),
        "cgroup.workload:postgresql:app.service": (
            "postgresql in app.service: its unit app.service belongs to user@1000.service; memtune sets unit "
            "limits through the system manager"
        ),
    }
    assert "workloads targets" in desired.facts_read
    assert not [path for path in desired.facts_read if "pids" in path]


def test_an_entry_for_a_workload_not_running_is_skipped(tmp_path: Path) -> None:
    desired = plan(
        parse_facts(TWO_CLUSTERS, "t"),
        protect(tmp_path, {"workload": "redis", "MemoryLow": "1GiB"}),
        groups=["protect"],
    )
    assert desired.cgroups == []
    [skip] = [s for s in desired.skipped if s.knob.startswith("cgroup.")]
    assert (skip.knob, skip.reason) == (
        "cgroup.workload:redis",
        "no instance of redis to limit: it is not detected",
    )


def test_a_required_rule_fails_when_it_can_limit_nothing(tmp_path: Path) -> None:
    rule = {
        "name": "p",
        "source": "test",
        "required": True,
        "cgroups": [{"workload": "redis", "MemoryLow": "1GiB"}],
    }
    with pytest.raises(PolicyError, match="no instance of redis to limit"):
        plan(
            parse_facts(TWO_CLUSTERS, "t"),
            policy_set(tmp_path, [rule], layer="group", name="g"),
            groups=["g"],
        )


def test_cgroup_v1_units_keep_memory_max_only_and_unitless_instances_are_skipped(tmp_path: Path) -> None:
    data = facts_with(
        (
            "redis",
            [instance(500, "redis-server.service", version=1), instance(600, cgroup="/redis", version=1)],
        ),
        cgroup="v1",
    )
    entry = {"workload": "redis", "MemoryLow": "1GiB", "MemoryMax": "4GiB"}
    desired = plan(parse_facts(data, "t"), protect(tmp_path, entry), groups=["protect"], workloads=[])
    assert cgroups(desired) == {"redis-server.service": {"MemoryMax": 4 << 30}}
    reasons = {skip.knob: skip.reason for skip in desired.skipped}
    assert reasons["cgroup.workload:redis:/redis"] == (
        "redis in /redis: no systemd unit runs it, and on cgroup v1 memtune limits only units"
    )
    assert reasons["cgroup.redis-server.service.MemoryLow"].startswith("cgroup v1 memory controller")


def test_a_unit_entry_and_a_workload_entry_for_one_unit_combine_higher_layer_last(tmp_path: Path) -> None:
    rules = [
        {
            "name": "w",
            "source": "test",
            "cgroups": [{"workload": "redis", "MemoryLow": "1GiB", "MemoryHigh": "8GiB"}],
        },
        {"name": "u", "source": "test", "cgroups": [{"unit": "redis-server.service", "MemoryLow": "2GiB"}]},
    ]
    data = facts_with(("redis", [instance(500, "redis-server.service")]))
    desired = plan(parse_facts(data, "t"), policy_set(tmp_path, rules, layer="group", name="g"), groups=["g"])
    assert cgroups(desired) == {"redis-server.service": {"MemoryLow": 2 << 30, "MemoryHigh": 8 << 30}}


def test_a_cgroup_name_memtune_does_not_write_is_skipped(tmp_path: Path) -> None:
    data = facts_with(("redis", [instance(500, cgroup="/odd dir/redis")]))
    desired = plan(
        parse_facts(data, "t"),
        protect(tmp_path, {"workload": "redis", "MemoryLow": "1GiB"}),
        groups=["protect"],
    )
    assert desired.cgroups == []
    [skip] = desired.skipped
    assert (
        skip.reason
        == "redis in /odd dir/redis: its cgroup '/sys/fs/cgroup/odd dir/redis' is not a name memtune writes"
    )


# -- expressions and the fingerprint ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # six instances: one in a pod, one under a user's manager (neither limited), two in one unit
        ("instances('postgresql')", 3),
        ("instances()", 3),  # every chosen workload
        ("instances('postgresql', within='system-postgresql.slice')", 2),
        ("instances('postgresql', within='system.slice')", 2),
        ("instances('postgresql', within='batch')", 1),
        ("instances('postgresql', within='system-postgresql')", 0),  # a whole path component only
        ("instances('redis')", 0),  # not running
        ("instances('postgresql', 'redis')", 3),
    ],
)
def test_instances_counts_what_workload_entries_limit(tmp_path: Path, expression: str, expected: int) -> None:
    rule = {"name": "n", "source": "test", "sysctl": {"vm.max_map_count": f"{{{{ 65530 + {expression} }}}}"}}
    desired = plan(parse_facts(TWO_CLUSTERS, "t"), with_postgresql(tmp_path, rule), groups=["g"])
    assert desired.sysctl["vm.max_map_count"].value == 65530 + expected
    assert {"workloads targets", "workloads host names"} <= set(desired.facts_read)


def test_instances_counts_only_chosen_workloads(tmp_path: Path) -> None:
    rule = {
        "name": "n",
        "source": "test",
        "sysctl": {"vm.max_map_count": "{{ 65530 + instances('postgresql') }}"},
    }
    facts = parse_facts(TWO_CLUSTERS, "t")

    def counted(policies: PolicySet, **kwargs: Any) -> int:
        return int(plan(facts, policies, groups=["g"], **kwargs).sysctl["vm.max_map_count"].value) - 65530

    assert counted(with_postgresql(tmp_path, rule)) == 3
    assert counted(with_postgresql(tmp_path, rule), workloads=[]) == 0  # forced away
    assert counted(policy_set(tmp_path, [rule], layer="group", name="g")) == 0  # no workload policy chose it


def test_the_targets_fingerprint_ignores_pids_and_sees_a_unit_move(tmp_path: Path) -> None:
    entry = {"workload": "postgresql", "MemoryLow": "25%"}
    desired = plan(parse_facts(TWO_CLUSTERS, "t"), protect(tmp_path, entry), groups=["protect"], workloads=[])
    expected = fingerprint(TWO_CLUSTERS, desired.facts_read)
    backends_came_and_went = copy.deepcopy(TWO_CLUSTERS)
    for workload in backends_came_and_went["workloads"]:
        workload["pids"].append(99999)
        for item in workload["instances"]:
            item["pids"] = [item["leader"], 77777]
    assert stale(backends_came_and_went, expected) == []
    moved = copy.deepcopy(TWO_CLUSTERS)
    moved["workloads"][0]["instances"][1]["unit"] = "postgresql@16-second.service"
    [found] = stale(moved, expected)
    assert found["fact"] == "workloads targets"
