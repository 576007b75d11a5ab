"""Generated policies, valid or not: loading and planning raise PolicyError or succeed, nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memtune.engine.kinds.sysctl import SYSCTLS
from memtune.engine.plan import plan
from memtune.errors import PolicyError
from memtune.facts.model import HostFacts
from memtune.policy.load import policy_from_data
from memtune.policy.model import Policy, PolicySet
from memtune.policy.source import load_yaml

REPO = Path(__file__).resolve().parents[3]
EXPRESSIONS = [
    "{{ ram_kb // 100 }}",
    "{{ percent_of_ram(1) }}",
    "{{ clamp(percent_of_ram(0.5), '16MiB', '1GiB') }}",
    "{{ ''.__class__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ facts.__class__.__mro__ }}",
    "{{ 1 // 0 }}",
    "{{ facts.nope }}",
    "{{ clamp( }}",
    "{{ inputs.level }}",
    "{{ inputs.missing }}",
    "{{ nodes[9].mem_total_kb }}",
    "{{ 'a' ~ 1 }}",
    "{{ none }}",
    "{{ size('2GiB') }}",
    "{{ 10 ** 400 }}",
    "{{ [1, 2] }}",
    "{{ percent_of_node(5) }}",
    "{{ round_to(ram_kb, 0) }}",
    "{{ facts['memory'] }}",
    "{{ 1 }}MiB",
    "{{ self }}",
    "{{ lipsum() }}",
    "{{ (1).__class__ }}",
    "{{ 0.5 }}",
    "{{ 'a' * 10 ** 12 }}",
    "{{ 9 ** 9 ** 9 }}",
]
SCALARS = st.one_of(
    st.integers(min_value=-5, max_value=2**40),
    st.booleans(),
    st.none(),
    st.text(max_size=6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "2GiB",
            "512MiB",
            "50%",
            "infinity",
            "never",
            "madvise",
            "always",
            "defer+madvise",
            "4MiB",
            "1GiB",
            ">=5.8",
            "<8.0",
            "unknown",
            *EXPRESSIONS,
        ]
    ),
)
KNOB_KEYS = st.sampled_from([*SYSCTLS, "vm.bogus", "kernel.numa_balancing", "x"])
WHEN = st.dictionaries(
    st.sampled_from(
        [
            "workload",
            "ram",
            "numa_nodes",
            "kernel",
            "virtualization",
            "inputs",
            "workload_version",
            "expr",
            "nonsense",
        ]
    ),
    st.one_of(
        SCALARS,
        st.dictionaries(st.sampled_from(["min", "max", "mongodb", "x"]), SCALARS, max_size=2),
        st.lists(SCALARS, max_size=2),
    ),
    max_size=3,
)
POOL = st.dictionaries(
    st.sampled_from(["size", "count", "total", "fraction", "placement", "nodes", "boot", "required", "x"]),
    st.one_of(SCALARS, st.sampled_from(["spread", "per_node"]), st.lists(st.integers(-1, 3), max_size=3)),
    max_size=5,
)
CGROUP = st.dictionaries(
    st.sampled_from(
        ["unit", "path", "MemoryMin", "MemoryLow", "MemoryHigh", "MemoryMax", "MemorySwapMax", "force"]
    ),
    st.one_of(SCALARS, st.sampled_from(["db.service", "a.slice", "/sys/fs/cgroup/x", "/etc/passwd"])),
    max_size=4,
)
RULE = st.fixed_dictionaries(
    {"name": st.sampled_from(["a", "b", "bad name"])},
    optional={
        "sysctl": st.dictionaries(KNOB_KEYS, SCALARS, max_size=3),
        "thp": st.dictionaries(st.sampled_from(["enabled", "defrag", "x"]), SCALARS, max_size=2),
        "hugepages": st.lists(POOL, max_size=2),
        "cgroups": st.lists(CGROUP, max_size=2),
        "when": WHEN,
        "required": SCALARS,
        "source": st.text(max_size=5),
        "warn": SCALARS,
        "surprise": SCALARS,
    },
)
POLICY = st.fixed_dictionaries(
    {
        "layer": st.sampled_from(["baseline", "workload", "group", "host", "cluster"]),
        "name": st.sampled_from(["p", "redis", "bad name"]),
    },
    optional={
        "rules": st.lists(RULE, max_size=3),
        "inputs": st.dictionaries(
            st.sampled_from(["level", "pool"]),
            st.fixed_dictionaries(
                {"type": st.sampled_from(["int", "size", "str", "bool", "version", "float"])},
                optional={"default": SCALARS},
            ),
            max_size=2,
        ),
        "guards": st.dictionaries(
            st.sampled_from(["min_free_kbytes_max_percent", "hugepages_min_node_free_percent", "x"]),
            SCALARS,
            max_size=2,
        ),
        "extends": st.sampled_from(["p", ["redis"], 3]),
    },
)
INPUTS = st.dictionaries(st.sampled_from(["level", "pool", "other"]), SCALARS, max_size=2)


def plan_everywhere(policy: Policy, hosts: dict[str, HostFacts], inputs: dict[str, Any]) -> None:
    policies = PolicySet.of([policy])
    for facts in hosts.values():
        plan(
            facts,
            policies,
            workloads=[policy.name] if policy.layer == "workload" else None,
            groups=[policy.name],
            host=policy.name,
            inputs=inputs,
        )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=POLICY, inputs=INPUTS)
def test_generated_policies_fail_only_with_policy_errors(
    hosts: dict[str, HostFacts], data: dict[str, Any], inputs: dict[str, Any]
) -> None:
    text = yaml.safe_dump(data, allow_unicode=True)
    try:
        loaded, marks = load_yaml(text, "generated.yml")
        plan_everywhere(policy_from_data(loaded, "generated.yml", marks), hosts, inputs)
    except PolicyError as exc:
        assert str(exc).startswith("generated.yml") or str(exc).startswith("memtune_inputs")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    position=st.integers(min_value=0, max_value=10**6),
    length=st.integers(min_value=0, max_value=40),
    insert=st.text(alphabet=" \n\t:-{}[]'\"#&*!|>%@`0123456789abc", max_size=8),
)
def test_mangled_bundled_policy(hosts: dict[str, HostFacts], position: int, length: int, insert: str) -> None:
    original = (REPO / "policies" / "postgresql.yml").read_text()
    position %= len(original)
    text = original[:position] + insert + original[position + length :]
    try:
        loaded, marks = load_yaml(text, "mangled.yml")
        plan_everywhere(policy_from_data(loaded, "mangled.yml", marks), hosts, {"postgresql_huge_pages": 64})
    except PolicyError as exc:
        assert str(exc).startswith("mangled.yml")
