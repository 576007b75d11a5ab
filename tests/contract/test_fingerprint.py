"""Issue 15: a plan's fingerprint lists exactly the facts the plan read, and memory_apply's check of it
(plugins/module_utils/_probe/fingerprint.py, the one implementation both sides use) is invalidated by a change
of one of them and by nothing else."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._probe.fingerprint import (
    MISSING,
    fingerprint,
    resolve,
    stale,
)
from memtune import parse_facts, plan
from memtune.policy.load import load_policy_file, load_policy_set
from memtune.policy.model import PolicySet, bundled_policy_dir
from tests.support.trees import captured

KERNEL = {"kernel.version", "kernel.release"}
NODES_NUMA2 = {
    "numa.online",
    "numa.nodes[id=0].has_memory",
    "numa.nodes[id=0].mem_total_kb",
    "numa.nodes[id=1].has_memory",
    "numa.nodes[id=1].mem_total_kb",
}


def policy_set(tmp_path: Path, rules: list[dict[str, Any]]) -> PolicySet:
    path = tmp_path / "baseline.yml"
    path.write_text(json.dumps({"layer": "baseline", "name": "fp", "rules": rules}))
    return PolicySet.of([load_policy_file(path)])


# rules -> the facts the plan reads on the captured numa2 host (workloads forced: none detected decide)
CASES: list[tuple[str, list[dict[str, Any]], set[str]]] = [
    (
        "a literal sysctl",
        [{"name": "s", "sysctl": {"vm.swappiness": 10}}],
        KERNEL | {"sysctl.vm.swappiness is null"},
    ),
    (
        "min_free_kbytes reads RAM for its guard and its expression",
        [{"name": "m", "sysctl": {"vm.min_free_kbytes": "{{ percent_of_ram(1) }}"}}],
        KERNEL | {"sysctl.vm.min_free_kbytes is null", "memory.mem_total_kb"},
    ),
    (
        "an expression over facts",
        [
            {
                "name": "e",
                "sysctl": {"vm.watermark_scale_factor": "{{ 10 + facts.numa.nodes[1].cpus | length }}"},
            }
        ],
        KERNEL | {"sysctl.vm.watermark_scale_factor is null", "numa.nodes[1].cpus"},
    ),
    (
        "a when that does not match still read its fact",
        [{"name": "w", "when": {"ram": {"min": "1TiB"}}, "sysctl": {"vm.swappiness": 1}}],
        {"memory.mem_total_kb"},
    ),
    (
        "when on kernel, virtualization and an expression",
        [
            {
                "name": "w",
                "when": {
                    "kernel": [">=5.0"],
                    "virtualization": ["kvm", "qemu"],
                    "expr": "{{ facts.memory.swap_total_kb >= 0 }}",
                },
                "thp": {"enabled": "madvise"},
            }
        ],
        KERNEL | {"platform.virtualization", "memory.swap_total_kb", "thp is null", "thp.enabled_choices"},
    ),
    (
        "a spread pool reads the nodes",
        [{"name": "p", "hugepages": [{"size": "2MiB", "count": 64}]}],
        KERNEL | {"hugepages.sizes_kb"} | NODES_NUMA2,
    ),
    (
        "a cgroup limit of RAM",
        [{"name": "c", "cgroups": [{"path": "/sys/fs/cgroup/batch", "MemoryMax": "10%"}]}],
        {
            "platform.cgroup.memory_controller",
            "platform.cgroup.version",
            "platform.systemd",
            "memory.mem_total_kb",
        },
    ),
]


@pytest.mark.parametrize(("rules", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_a_plan_lists_exactly_the_facts_it_read(
    tmp_path: Path, rules: list[dict[str, Any]], expected: set[str]
) -> None:
    for rule in rules:
        rule.setdefault("source", "test")
    desired = plan(parse_facts(captured("numa2"), "numa2"), policy_set(tmp_path, rules), workloads=[])
    assert set(desired.facts_read) == expected


def test_detected_workloads_are_read_when_they_choose_the_layers(tmp_path: Path) -> None:
    rules = [{"name": "s", "source": "test", "sysctl": {"vm.swappiness": 10}}]
    facts = parse_facts(captured("numa2"), "numa2")
    assert "workloads host names" in plan(facts, policy_set(tmp_path, rules)).facts_read
    # with containers' workloads counted (memtune_container_workloads), every name is what chose
    desired = plan(facts, policy_set(tmp_path, rules), container_workloads=True)
    assert "workloads names" in desired.facts_read
    assert "workloads host names" not in desired.facts_read


def test_only_a_fact_the_plan_read_invalidates_it(tmp_path: Path) -> None:
    rules = [
        {"name": "m", "source": "test", "sysctl": {"vm.min_free_kbytes": "{{ percent_of_ram(1) }}"}},
        {"name": "p", "source": "test", "hugepages": [{"size": "2MiB", "count": 64}]},
    ]
    raw = captured("numa2")
    desired = plan(parse_facts(raw, "numa2"), policy_set(tmp_path, rules), workloads=[])
    expected = fingerprint(raw, desired.facts_read)
    assert stale(raw, expected) == []

    outside = copy.deepcopy(raw)
    outside["memory"]["mem_free_kb"] += 4096  # free memory moves all the time; no plan here reads it
    outside["sysctl"]["vm.swappiness"] = 1  # the runtime value: memory_apply compares that itself
    outside["pressure"] = None
    outside["vmstat"]["pgmajfault"] = 10**9
    assert stale(outside, expected) == []

    for path, change in [
        ("memory.mem_total_kb", lambda f: f["memory"].update(mem_total_kb=f["memory"]["mem_total_kb"] * 2)),
        ("numa.nodes[id=1].mem_total_kb", lambda f: f["numa"]["nodes"][1].update(mem_total_kb=1)),
        ("kernel.version", lambda f: f["kernel"].update(version=[4, 19, 0])),
        ("sysctl.vm.min_free_kbytes is null", lambda f: f["sysctl"].update({"vm.min_free_kbytes": None})),
        ("hugepages.sizes_kb", lambda f: f["hugepages"].update(sizes_kb=[2048])),
    ]:
        inside = copy.deepcopy(raw)
        change(inside)
        assert [item["fact"] for item in stale(inside, expected)] == [path]


@pytest.mark.parametrize("host", ["firecracker", "small", "numa2", "numa3"])
def test_every_path_the_bundled_policies_read_resolves_on_the_probes_facts(host: str) -> None:
    """The engine names facts in the grammar of the remote resolver: each one is found in the raw facts."""
    raw = captured(host)
    policies = load_policy_set([bundled_policy_dir()])
    facts = parse_facts(raw, host)
    inputs = {"postgresql_shared_buffers": 1 << 30, "kvm_guest_hugepages": 1 << 30, "oracle_sga": 1 << 30}
    for workload in sorted(policies.workloads):
        desired = plan(facts, policies, workloads=[workload], inputs=inputs)
        for path in desired.facts_read:
            if (path.startswith("thp.") and raw["thp"] is None) or path.startswith("workloads["):
                continue  # no THP here; a workload not running (its version is then missing, on both sides)
            assert resolve(raw, path) is not MISSING, (workload, path)


def test_the_resolver_grammar() -> None:
    facts = {
        "sysctl": {"vm.swappiness": 10, "vm.min_free_kbytes": None},
        "numa": {"nodes": [{"id": 3, "cpus": [0, 1]}]},
        "workloads": [{"name": "redis", "version": "7.0"}, {"name": "kafka", "version": None}],
        "hugepages": {"pools": {"2048": {"nr": 4}}},
    }
    assert resolve(facts, "sysctl.vm.swappiness") == 10
    assert resolve(facts, "sysctl.vm.min_free_kbytes is null") is True
    assert resolve(facts, "sysctl.vm.nope is null") is None
    assert resolve(facts, "numa.nodes[0].cpus") == [0, 1]
    assert resolve(facts, "numa.nodes[id=3].cpus") == [0, 1]
    assert resolve(facts, "numa.nodes[id=4].cpus") is MISSING
    assert resolve(facts, "workloads names") == ["kafka", "redis"]
    assert resolve(facts, "workloads host names") == ["kafka", "redis"]  # no instances known: the host's
    assert resolve(facts, "workloads[name=redis].version") == "7.0"
    assert resolve(facts, "hugepages.pools.2048.nr") == 4
