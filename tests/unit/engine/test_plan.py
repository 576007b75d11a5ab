"""plan() on the facts of real captured hosts: layers, conditions, sizing, guards and provenance."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from memtune.engine.desired import DesiredState
from memtune.engine.hugepages import spread
from memtune.engine.plan import plan
from memtune.errors import PolicyError
from memtune.facts.model import HostFacts, parse_facts
from memtune.facts.synthetic import resize
from memtune.policy.load import policy_from_data
from memtune.policy.model import Policy, PolicySet
from memtune.report.explain import explain

PolicyWriter = Callable[..., Policy]

BASE = """
layer: baseline
name: base
rules:
"""


def one_rule(write_policy: PolicyWriter, body: str, *, inputs: str = "") -> PolicySet:
    """A policy set of one baseline whose rules are ``body`` (YAML list items, 2-space indented)."""
    text = BASE.replace("rules:", inputs + "rules:") + body
    return PolicySet.of([write_policy(text)])


def test_layers_override_in_order_and_record_it(
    write_policy: PolicyWriter, hosts: dict[str, HostFacts]
) -> None:
    base = write_policy(BASE + "  - {name: swap, sysctl: {vm.swappiness: 30}}\n", "base.yml")
    work = write_policy(
        "layer: workload\nname: redis\nrules:\n  - {name: low, sysctl: {vm.swappiness: 5}}\n", "redis.yml"
    )
    group = write_policy(
        "layer: group\nname: db\nrules:\n  - {name: g, sysctl: {vm.swappiness: 7}}\n", "g.yml"
    )
    host = write_policy(
        "layer: host\nname: db01\nrules:\n  - {name: h, sysctl: {vm.swappiness: 9}}\n", "h.yml"
    )
    policies = PolicySet.of([base, work, group, host])
    facts = hosts["small"]
    assert plan(facts, policies).sysctl["vm.swappiness"].value == 30
    assert plan(facts, policies, workloads=["redis"]).sysctl["vm.swappiness"].value == 5
    assert plan(facts, policies, workloads=["redis"], groups=["web", "db"]).sysctl["vm.swappiness"].value == 7
    final = plan(facts, policies, workloads=["redis"], groups=["db"], host="db01").sysctl["vm.swappiness"]
    assert final.value == 9
    assert [(old.layer, old.value) for old in final.provenance.overrides] == [
        ("baseline", 30),
        ("workload", 5),
        ("group", 7),
    ]
    assert final.provenance.layer == "host"
    assert final.provenance.line == 4


def test_inline_policies_follow_their_layer(write_policy: PolicyWriter, hosts: dict[str, HostFacts]) -> None:
    policies = PolicySet.of([write_policy(BASE + "  - {name: s, sysctl: {vm.swappiness: 30}}\n")])
    inline_host = policy_from_data(
        {"layer": "host", "name": "db01", "rules": [{"name": "mine", "sysctl": {"vm.swappiness": 12}}]},
        "hostvars[db01].memtune_host_policy",
    )
    inline_group = policy_from_data(
        {"layer": "group", "name": "db", "rules": [{"name": "ours", "sysctl": {"vm.swappiness": 11}}]},
        "groupvars",
    )
    planned = plan(hosts["small"], policies, inline=[inline_host, inline_group]).sysctl["vm.swappiness"]
    assert planned.value == 12
    assert planned.provenance.file == "hostvars[db01].memtune_host_policy"
    assert planned.provenance.line is None
    assert [old.value for old in planned.provenance.overrides] == [30, 11]


# condition -> the captured hosts it matches
CONDITIONS = [
    ("{ram: {min: 4GiB}}", {"firecracker", "numa2", "numa3"}),
    ("{ram: {max: 3GiB}}", {"small"}),
    ("{numa_nodes: {min: 2}}", {"numa2", "numa3"}),
    ("{numa_nodes: {min: 3, max: 3}}", {"numa3"}),
    ("{kernel: '>=6.12'}", {"firecracker", "numa3"}),
    ("{kernel: ['>=6.1', '<6.2']}", {"small", "numa2"}),
    ("{kernel: '==6.18.44'}", {"firecracker"}),
    ("{virtualization: qemu}", {"small", "numa2", "numa3"}),
    ("{virtualization: [vm-other, kvm]}", {"firecracker"}),
    ("{expr: '{{ facts.platform.systemd }}'}", {"small", "numa2", "numa3"}),
    ('{expr: \'{{ nodes | selectattr("cpus", "equalto", []) | list | length > 0 }}\'}', {"numa3"}),
    ("{workload: redis}", set()),
]


@pytest.mark.parametrize(("when", "matching"), CONDITIONS)
def test_when(write_policy: PolicyWriter, hosts: dict[str, HostFacts], when: str, matching: set[str]) -> None:
    policies = one_rule(write_policy, f"  - {{name: r, when: {when}, sysctl: {{vm.swappiness: 1}}}}\n")
    matched = {name for name, facts in hosts.items() if plan(facts, policies).sysctl}
    assert matched == matching


def test_spread_uses_node_totals_as_weights(write_policy: PolicyWriter, hosts: dict[str, HostFacts]) -> None:
    policies = one_rule(write_policy, "  - {name: hp, hugepages: [{size: 2MiB, count: 1000}]}\n")
    # numa2: node 0 has 2984176 kB, node 1 3093308 kB -> 491.02 and 508.98 pages
    assert plan(hosts["numa2"], policies).hugepages[0].per_node == {"0": 491, "1": 509}
    # numa3's node 2 has memory but no CPUs; it takes its share
    per_node = plan(hosts["numa3"], policies).hugepages[0].per_node
    assert set(per_node) == {"0", "1", "2"} and sum(per_node.values()) == 1000 and per_node["2"] > 0


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (10, {0: 1, 1: 1}, {0: 5, 1: 5}),
        (11, {0: 1, 1: 1}, {0: 6, 1: 5}),
        (7, {0: 0, 1: 0}, {0: 4, 1: 3}),
        (5, {0: 1, 1: 3}, {0: 1, 1: 4}),
        (0, {0: 5}, {0: 0}),
    ],
)
def test_spread(total: int, weights: dict[int, int], expected: dict[int, int]) -> None:
    assert spread(total, weights) == expected


def test_hugepage_guard_uses_the_nodes_own_memory(
    write_policy: PolicyWriter, hosts: dict[str, HostFacts]
) -> None:
    # firecracker: MemTotal 24684084 kB but node 0 reports 6645964 kB; 90 % of that is 5981367 kB.
    facts = hosts["firecracker"]
    fits = one_rule(write_policy, "  - {name: hp, hugepages: [{size: 2MiB, count: 2900}]}\n")
    assert plan(facts, fits).hugepages[0].per_node == {"0": 2900}
    too_many = one_rule(write_policy, "  - {name: big-pool, hugepages: [{size: 2MiB, count: 3000}]}\n")
    with pytest.raises(
        PolicyError,
        match=r"rule 'big-pool': hugepages would take 6144000 kB of NUMA node 0's "
        r"6645964 kB, leaving less than 10 % of it free",
    ) as caught:
        plan(facts, too_many)
    assert caught.value.line == 4


def test_guard_share_is_configurable(write_policy: PolicyWriter, hosts: dict[str, HostFacts]) -> None:
    policies = one_rule(
        write_policy,
        "  - {name: hp, hugepages: [{size: 2MiB, count: 2900}]}\n",
        inputs="guards: {hugepages_min_node_free_percent: 20}\n",
    )
    with pytest.raises(PolicyError, match="less than 20 %"):
        plan(hosts["firecracker"], policies)


def test_min_free_kbytes_guard(write_policy: PolicyWriter, hosts: dict[str, HostFacts]) -> None:
    facts = hosts["small"]  # 2012380 kB: 5 % is 100619 kB
    ok = one_rule(write_policy, "  - {name: wm, sysctl: {vm.min_free_kbytes: 100000}}\n")
    assert plan(facts, ok).sysctl["vm.min_free_kbytes"].value == 100000
    bad = one_rule(write_policy, '  - {name: wm, sysctl: {vm.min_free_kbytes: "{{ percent_of_ram(6) }}"}}\n')
    with pytest.raises(
        PolicyError,
        match=r"rule 'wm': vm.min_free_kbytes = 120742 is above 5 % of RAM "
        r"\(100619 kB\)",
    ):
        plan(facts, bad)


def test_range_depends_on_the_hosts_kernel(write_policy: PolicyWriter, hosts: dict[str, HostFacts]) -> None:
    policies = one_rule(write_policy, "  - {name: swap, sysctl: {vm.swappiness: 150}}\n")
    assert plan(hosts["small"], policies).sysctl["vm.swappiness"].value == 150  # 6.1: 0..200
    old = resize(hosts["small"], 2012380, 1, kernel=(5, 4, 0))
    with pytest.raises(
        PolicyError,
        match=r"rule 'swap': vm.swappiness = 150 is outside 0..100, its range on "
        r"kernel 5.4.0",
    ) as caught:
        plan(old, policies)
    assert caught.value.line == 4 and caught.value.column is not None


def test_missing_knob_is_skipped_or_fails_when_required(
    write_policy: PolicyWriter, hosts: dict[str, HostFacts]
) -> None:
    facts = hosts["small"]
    without = facts.model_copy(update={"sysctl": {**facts.sysctl, "kernel.numa_balancing": None}})
    optional = one_rule(write_policy, "  - {name: nb, sysctl: {kernel.numa_balancing: 1}}\n")
    desired = plan(without, optional)
    assert "kernel.numa_balancing" not in desired.sysctl
    assert [(s.knob, s.reason) for s in desired.skipped] == [
        ("kernel.numa_balancing", f"kernel {facts.kernel.release} has no kernel.numa_balancing")
    ]
    required = one_rule(write_policy, "  - {name: nb, required: true, sysctl: {kernel.numa_balancing: 1}}\n")
    with pytest.raises(
        PolicyError,
        match=r"rule 'nb': kernel .* has no kernel.numa_balancing \(the rule is "
        r"required\)",
    ):
        plan(without, required)
    old = resize(facts, 2012380, 1, kernel=(4, 4, 0))
    skipped = plan(
        old.model_copy(update={"sysctl": {}}),
        one_rule(write_policy, "  - {name: w, sysctl: {vm.watermark_scale_factor: 100}}\n"),
    ).skipped
    assert skipped[0].reason == "vm.watermark_scale_factor first appeared in 4.6.0; kernel is 4.4.0"


def test_thp_choice_the_kernel_lacks(write_policy: PolicyWriter, hosts: dict[str, HostFacts]) -> None:
    facts = hosts["small"]
    assert facts.thp is not None
    limited = facts.model_copy(
        update={"thp": facts.thp.model_copy(update={"defrag_choices": ["always", "never"]})}
    )
    policies = one_rule(write_policy, "  - {name: t, thp: {enabled: never, defrag: defer+madvise}}\n")
    desired = plan(limited, policies)
    assert desired.thp["enabled"].value == "never"
    assert "defrag" not in desired.thp
    assert desired.skipped[0].knob == "thp.defrag"
    assert (
        plan(facts.model_copy(update={"thp": None}), policies).skipped[0].reason
        == "this kernel has no transparent hugepages"
    )


def test_thp_choice_on_a_kernel_that_lists_no_choices(
    write_policy: PolicyWriter, hosts: dict[str, HostFacts]
) -> None:
    facts = resize(hosts["small"], 2012380, 1, kernel=(4, 9, 0))
    assert facts.thp is not None
    unlisted = facts.model_copy(update={"thp": facts.thp.model_copy(update={"defrag_choices": []})})
    policies = one_rule(write_policy, "  - {name: t, thp: {defrag: defer+madvise}}\n")
    assert [s.reason for s in plan(unlisted, policies).skipped] == [
        "THP defrag defer+madvise first appeared in 4.11.0; kernel is 4.9.0"
    ]
    newer = resize(hosts["small"], 2012380, 1, kernel=(4, 14, 0))
    assert newer.thp is not None
    listed_none = newer.model_copy(update={"thp": newer.thp.model_copy(update={"defrag_choices": []})})
    assert plan(listed_none, policies).thp["defrag"].value == "defer+madvise"


def test_gigantic_pages_go_to_the_command_line(
    write_policy: PolicyWriter, hosts: dict[str, HostFacts]
) -> None:
    policies = one_rule(write_policy, "  - {name: g, hugepages: [{size: 1GiB, total: 2GiB}]}\n")
    desired = plan(hosts["numa2"], policies)  # kernel 6.1: per-node syntax
    assert [arg.arg for arg in desired.kernel_cmdline] == ["hugepagesz=1G", "hugepages=0:1,1:1"]
    assert desired.hugepages[0].boot is True
    old = resize(hosts["numa2"], 6077484, 2, kernel=(5, 10, 0))
    three = one_rule(write_policy, "  - {name: g, hugepages: [{size: 1GiB, count: 3}]}\n")
    desired = plan(old, three)
    assert [arg.arg for arg in desired.kernel_cmdline] == ["hugepagesz=1G", "hugepages=3"]
    assert any("split evenly at boot" in warning for warning in desired.warnings)


def test_per_node_amounts(write_policy: PolicyWriter, hosts: dict[str, HostFacts]) -> None:
    policies = one_rule(
        write_policy,
        "  - {name: p, hugepages: [{size: 2MiB, placement: per_node, "
        'count: "{{ percent_of_node(10) }}", nodes: [1]}]}\n',
    )
    desired = plan(hosts["numa2"], policies)
    # 10 % of node 1's 3093308 kB in 2048 kB pages; node 0 is not in the pool
    assert desired.hugepages[0].per_node == {"0": 0, "1": 3093308 * 1024 // 10 // (2048 * 1024)}
    assert desired.hugepages[0].provenance.inputs == {"numa.nodes[id=1].mem_total_kb": 3093308}
    bad_node = one_rule(write_policy, "  - {name: p, hugepages: [{size: 2MiB, count: 1, nodes: [7]}]}\n")
    with pytest.raises(PolicyError, match="NUMA node 7 does not exist"):
        plan(hosts["numa2"], bad_node)


def test_cgroup_limits(write_policy: PolicyWriter, hosts: dict[str, HostFacts]) -> None:
    body = (
        "  - name: pg\n    cgroups:\n      - {unit: postgresql.service, MemoryHigh: 50%, MemoryMax: 1GiB}\n"
        '      - {path: /sys/fs/cgroup/batch.slice/job1, MemoryMax: "{{ percent_of_ram(10) }}", '
        "MemorySwapMax: infinity}\n"
        "  - name: later\n    cgroups: [{unit: postgresql.service, MemoryMax: 1536MiB, force: true}]\n"
    )
    desired = plan(hosts["small"], one_rule(write_policy, body))
    data = desired.model_dump(mode="json")["cgroups"]
    ram = 2012380 * 1024
    assert data[0]["path"] == "/sys/fs/cgroup/batch.slice/job1"
    assert data[0]["limits"] == {"MemoryMax": ram // 10, "MemorySwapMax": "infinity"}
    assert data[1]["unit"] == "postgresql.service" and "path" not in data[1]
    assert data[1]["limits"] == {"MemoryHigh": ram // 2, "MemoryMax": 1536 * 1024**2}
    assert data[1]["force"] is True
    assert data[1]["provenance"]["overrides"][0]["value"] == {"MemoryHigh": ram // 2, "MemoryMax": 1024**3}
    # firecracker runs no systemd: units are skipped, raw paths are kept; its memory controller is cgroup
    # v1, which has no memory.swap.max: that limit is skipped at plan time (issue 13, bug 5)
    skipped = plan(hosts["firecracker"], one_rule(write_policy, body)).skipped
    assert {entry.knob for entry in skipped} == {
        "cgroup.postgresql.service",
        "cgroup./sys/fs/cgroup/batch.slice/job1.MemorySwapMax",
    }
    inverted = one_rule(
        write_policy, "  - {name: inv, cgroups: [{unit: a.service, MemoryHigh: 2GiB, MemoryMax: 1GiB}]}\n"
    )
    with pytest.raises(
        PolicyError, match=r"rule 'inv': cgroups: MemoryHigh \(2147483648\) is above MemoryMax"
    ):
        plan(hosts["small"], inverted)


def test_unit_limits_cgroup_v1_cannot_hold_are_skipped_with_the_reason(write_policy: PolicyWriter) -> None:
    """Bug 5 of issue 13: on a cgroup v1 host a unit's MemoryHigh was planned without a word, then reported
    as drift on every audit. systemd there sets only MemoryMax (as memory.limit_in_bytes)."""
    from tests.support.trees import collect_with

    # The captured firecracker host (memory controller on cgroup v1, hybrid hierarchy) when systemd runs it.
    v1 = parse_facts(collect_with("firecracker", {"/run/systemd/system/.probe": ""}), "firecracker")
    assert (v1.platform.cgroup.version, v1.platform.systemd) == ("hybrid", True)
    body = "  - name: pg\n    cgroups:\n    - {unit: postgresql.service, MemoryHigh: 1GiB, MemoryMax: 2GiB}\n"
    desired = plan(v1, one_rule(write_policy, body))
    [group] = desired.cgroups
    assert group.limits == {"MemoryMax": 2 * 1024**3}
    [skipped] = desired.skipped
    assert skipped.knob == "cgroup.postgresql.service.MemoryHigh"
    assert "cgroup v1" in skipped.reason and "only MemoryMax applies" in skipped.reason
    only_high = "  - name: pg\n    cgroups: [{unit: postgresql.service, MemoryHigh: 1GiB}]\n"
    assert plan(v1, one_rule(write_policy, only_high)).cgroups == []
    required = "  - name: pg\n    required: true\n    cgroups: [{unit: a.service, MemoryHigh: 1GiB}]\n"
    with pytest.raises(PolicyError, match=r"cgroup v1 memory controller.*the rule is required"):
        plan(v1, one_rule(write_policy, required))


def test_bytes_and_ratio_exclude_each_other(write_policy: PolicyWriter, hosts: dict[str, HostFacts]) -> None:
    body = "  - {name: a, sysctl: {vm.dirty_ratio: 20}}\n  - {name: b, sysctl: {vm.dirty_bytes: 512MiB}}\n"
    desired = plan(hosts["small"], one_rule(write_policy, body))
    assert "vm.dirty_ratio" not in desired.sysctl
    planned = desired.sysctl["vm.dirty_bytes"]
    assert planned.value == 512 * 1024**2
    assert [(old.rule, old.value) for old in planned.provenance.overrides] == [("a", 20)]


# expression -> (knob, expected value on `small`: 2012380 kB RAM, 1 node, kernel 6.1.0)
EXPRESSIONS = [
    ("percent_of_ram(1)", "vm.min_free_kbytes", 20123),
    ("percent_of_ram(1)", "vm.dirty_bytes", 20606771),
    ("size('64MiB')", "vm.min_free_kbytes", 65536),
    ("clamp(percent_of_ram(0.5), '16MiB', '1GiB')", "vm.min_free_kbytes", 16384),
    ("clamp(200, 0, 100)", "vm.swappiness", 100),
    ("round_to(1000, 64)", "vm.max_map_count", 1024),
    ("default_min_free_kbytes()", "vm.min_free_kbytes", 5674),
    ("(ram_kb * 0.01) | int", "vm.min_free_kbytes", 20123),
    ("12.9", "vm.swappiness", 12),
    ("10 if kernel_at_least('5.8') else 1", "vm.swappiness", 10),
    ("60 if has_workload('redis') else 30", "vm.swappiness", 30),
    ("numa_nodes * 10", "vm.swappiness", 10),
    ("nodes | map(attribute='mem_total_kb') | sum // 1000", "vm.min_free_kbytes", 2012),
    ("facts.sysctl['vm.swappiness']", "vm.swappiness", 60),
]


@pytest.mark.parametrize(("expression", "knob", "expected"), EXPRESSIONS)
def test_expressions(
    write_policy: PolicyWriter, hosts: dict[str, HostFacts], expression: str, knob: str, expected: int
) -> None:
    policies = one_rule(write_policy, f'  - {{name: e, sysctl: {{{knob}: "{{{{ {expression} }}}}"}}}}\n')
    planned = plan(hosts["small"], policies).sysctl[knob]
    assert planned.value == expected
    assert planned.provenance.expression == expression


def test_expression_inputs_are_recorded(write_policy: PolicyWriter, hosts: dict[str, HostFacts]) -> None:
    body = '  - {name: e, sysctl: {vm.swappiness: "{{ 10 if facts.memory.swap_total_kb == 0 else 30 }}"}}\n'
    planned = plan(hosts["small"], one_rule(write_policy, body)).sysctl["vm.swappiness"]
    assert planned.provenance.inputs == {"memory.swap_total_kb": hosts["small"].memory.swap_total_kb}
    text = explain(plan(hosts["small"], one_rule(write_policy, body)), "vm.swappiness")
    assert text.splitlines()[0].endswith("rule `e`: 10 if facts.memory.swap_total_kb == 0 else 30")
    assert "inputs: memory.swap_total_kb=" in text


# expression -> words of the error, raised at plan time with the knob's file:line
RUNTIME_ERRORS = [
    ("facts.memory.bogus", "'memory.bogus' is not a known fact or input"),
    ("facts.memory.items", "'memory.items' is not a known fact or input"),
    ("1 // 0", "evaluation failed: ZeroDivisionError"),
    ("'many'", "expected a number, got 'many'"),
    ("none", "expected a number, the expression gave None"),
    ("true", "expected a number, the expression gave True"),
    ("percent_of_node(5)", "percent_of_node() works only in per-node hugepage amounts"),
    ("nodes[5].mem_total_kb", "'numa.nodes[5]' is not a known fact or input"),
    ("clamp(1, 10, 5)", "clamp(): lower bound 10 is above upper bound 5"),
    ("'x' * 3", "expected a number, got 'xxx'"),
    ("facts['_' ~ '_class__']", "refused by the sandbox: access to attribute '__class__'"),
    ("nodes[0]['_' ~ '_init__'] ~ 'x'", "refused by the sandbox"),
    ("'x' * 10000000000", "repeating a sequence 10000000000 times is not allowed"),
    ("2 ** 100000", "exponent 100000 is too large"),
]


@pytest.mark.parametrize(("expression", "words"), RUNTIME_ERRORS)
def test_expression_errors_at_plan_time(
    write_policy: PolicyWriter, hosts: dict[str, HostFacts], expression: str, words: str
) -> None:
    policies = one_rule(
        write_policy, f'  - name: e\n    sysctl:\n      vm.swappiness: "{{{{ {expression} }}}}"\n'
    )
    with pytest.raises(PolicyError) as caught:
        plan(hosts["small"], policies)
    assert words in caught.value.message
    assert caught.value.message.startswith("rule 'e': vm.swappiness: ")
    assert (caught.value.line, caught.value.column) == (6, 7)


def test_size_helpers_refuse_unitless_knobs(write_policy: PolicyWriter, hosts: dict[str, HostFacts]) -> None:
    policies = one_rule(write_policy, '  - {name: e, sysctl: {vm.swappiness: "{{ percent_of_ram(1) }}"}}\n')
    with pytest.raises(
        PolicyError, match=r"percent_of_ram\(\) gives a size, but vm.swappiness is not a size"
    ):
        plan(hosts["small"], policies)


def test_inputs(write_policy: PolicyWriter, hosts: dict[str, HostFacts]) -> None:
    inputs = "inputs:\n  pool: {type: size}\n  level: {type: int, default: 20}\n"
    body = (
        '  - {name: lvl, sysctl: {vm.swappiness: "{{ inputs.level }}"}}\n'
        '  - {name: hp, when: {inputs: [pool]}, hugepages: [{size: 2MiB, total: "{{ inputs.pool }}"}]}\n'
    )
    policies = one_rule(write_policy, body, inputs=inputs)
    facts = hosts["small"]
    default = plan(facts, policies)
    assert default.sysctl["vm.swappiness"].value == 20 and default.hugepages == []
    given = plan(facts, policies, inputs={"level": "5", "pool": "64MiB", "other": 1})
    assert given.sysctl["vm.swappiness"].value == 5
    assert given.hugepages[0].per_node == {"0": 32}
    assert given.warnings == ["memtune_inputs.other is not used by the policies of this host"]
    for wrong, shown in (("lots", "'lots'"), (0.5, "0.5"), ([1], "[1]")):
        with pytest.raises(
            PolicyError, match=rf"^memtune_inputs: pool: expected a size, got {re.escape(shown)}$"
        ):
            plan(facts, policies, inputs={"pool": wrong})
    with pytest.raises(PolicyError, match=r"^memtune_inputs: level: expected an int, got 2.5$"):
        plan(facts, policies, inputs={"level": 2.5})


def test_workloads(write_policy: PolicyWriter, hosts: dict[str, HostFacts], bundled: PolicySet) -> None:
    with pytest.raises(PolicyError, match="no workload policy 'nginx'"):
        plan(hosts["small"], bundled, workloads=["nginx"])
    facts = hosts["small"]
    # every workload the probe names has a bundled policy (mysql too, since issue 17): use another name
    data = facts.model_dump()
    data["workloads"] = [{"name": "nginx", "pids": [1], "evidence": [], "version": None, "instances": []}]
    desired = plan(HostFacts.model_validate(data), bundled)
    assert "workload nginx detected; no policy for it" in desired.warnings


def test_plan_is_deterministic_and_json_round_trips(hosts: dict[str, HostFacts], bundled: PolicySet) -> None:
    for facts in hosts.values():
        for workloads in (None, ["postgresql", "kafka"], ["sap_hana"], ["hpc_compute", "kvm_host"]):
            first = plan(facts, bundled, workloads=workloads, inputs={"postgresql_huge_pages": 100})
            second = plan(facts, bundled, workloads=workloads, inputs={"postgresql_huge_pages": 100})
            text = json.dumps(first.model_dump(mode="json"), sort_keys=True)
            assert text == json.dumps(second.model_dump(mode="json"), sort_keys=True)
            assert DesiredState.model_validate(json.loads(text)) == first
