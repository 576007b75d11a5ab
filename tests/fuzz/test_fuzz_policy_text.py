"""Fuzzing policies at the text level: YAML documents built from the policy grammar, then mutated (spans cut,
repeated or swapped, hostile tokens inserted: aliases, merge keys, brackets, tags, expressions), run through
``memtune validate`` and ``memtune plan``: exit 0, 1 or 2, no traceback, bounded time and memory."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memtune.engine.kinds.sysctl import SYSCTLS

KNOBS = sorted(SYSCTLS)
EXPRESSIONS = [
    "{{ ram_kb // 100 }}",
    "{{ percent_of_ram(1) }}",
    "{{ clamp(percent_of_ram(0.5), '16MiB', '1GiB') }}",
    "{{ default_min_free_kbytes() }}",
    "{{ inputs.level }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ ([[1]*4096]*4096)|sum(start=[]) }}",
    "{{ 2 ** 64 ** 64 }}",
    "{{ percent_of_ram('50') }}",
    "{{ ('9' * 4000)|int }}",
    "{{ " + "(" * 40 + "1" + ")" * 40 + " }}",
    "{{ ''.__class__.__mro__ }}",
    "{{ 99999999999999999999999 }}",
    "{{ nodes[0].mem_total_kb // 2 }}",
    "{{ size('9' * 400 ~ 'G') }}",
    "{{ kernel_at_least('5.8') }}",
]
SIZES = ["2GiB", "512MiB", "64k", "0", "-1G", "1.5G", "99999999999999999999999 GiB", "25%", "infinity"]
SCALAR = st.one_of(
    st.integers(min_value=-(2**65), max_value=2**65),
    st.sampled_from(SIZES + EXPRESSIONS),
    st.booleans(),
    st.none(),
    st.text(max_size=8),
    st.floats(allow_nan=False, allow_infinity=False),
)
NAME = st.one_of(st.sampled_from(["r", "s", "db", "web", "x.y", "-bad", ""]), st.text(max_size=5))
WHEN = st.fixed_dictionaries(
    {},
    optional={
        "workload": st.sampled_from(["postgresql", "redis", ["kvm", "redis"]]),
        "ram": st.fixed_dictionaries(
            {}, optional={"min": st.sampled_from(SIZES), "max": st.sampled_from(SIZES)}
        ),
        "numa_nodes": st.fixed_dictionaries({}, optional={"min": SCALAR, "max": SCALAR}),
        "kernel": st.sampled_from([">=5.8", "<4", "unknown", "banana", [">=4.18", "<7"]]),
        "expr": st.sampled_from(["ram_kb > 0", "'yes'", "{{ facts.memory.swap_total_kb > 0 }}", "ram_kb +"]),
        "inputs": st.sampled_from(["level", ["level", "nope"]]),
    },
)
CGROUP = st.fixed_dictionaries(
    {},
    optional={
        "unit": st.sampled_from(["db.service", "x.slice", "bad unit"]),
        "path": st.sampled_from(["/sys/fs/cgroup/a", "/sys/fs/cgroup/../etc", "/etc"]),
        "MemoryMax": SCALAR,
        "MemoryHigh": SCALAR,
        "force": st.booleans(),
    },
)
POOL = st.fixed_dictionaries(
    {"size": st.sampled_from(["2MiB", "1GiB", "4MiB", 2097152])},
    optional={
        "count": SCALAR,
        "total": SCALAR,
        "fraction": SCALAR,
        "placement": st.sampled_from(["spread", "per_node", "nowhere"]),
        "nodes": st.sampled_from([[0], [0, 1], [9], [-1]]),
    },
)
RULE = st.fixed_dictionaries(
    {"name": NAME},
    optional={
        "when": WHEN,
        "sysctl": st.dictionaries(st.sampled_from([*KNOBS, "vm.swapiness", "kernel.x"]), SCALAR, max_size=3),
        "thp": st.fixed_dictionaries(
            {}, optional={"enabled": st.sampled_from(["always", "never", "sometimes"])}
        ),
        "hugepages": st.lists(POOL, max_size=2),
        "cgroups": st.lists(CGROUP, max_size=2),
        "warn": st.text(max_size=10),
        "required": st.booleans(),
    },
)
POLICY = st.fixed_dictionaries(
    {
        "layer": st.sampled_from(["baseline", "workload", "group", "host", "nope"]),
        "name": NAME,
        "rules": st.lists(RULE, max_size=4),
    },
    optional={
        "extends": st.sampled_from(["b", ["b", "c"]]),
        "inputs": st.dictionaries(
            st.sampled_from(["level", "size", "flag"]),
            st.fixed_dictionaries(
                {"type": st.sampled_from(["int", "size", "str", "bool", "version", "float"])},
                optional={"default": SCALAR},
            ),
            max_size=2,
        ),
    },
)
TOKENS = [
    "&a ",
    "*a",
    "<<: *a\n",
    "[",
    "]",
    "{",
    "}",
    ": ",
    "- ",
    "\t",
    "'",
    '"',
    "{{ ",
    " }}",
    "%",
    "!!python/object ",
    "!!binary ",
    "? ",
    "\x00",
    "\ufeff",
    "9" * 30,
    "&b [*a, *a, *a, *a]\n",
    "\n  ",
    "#",
    "---\n",
    "...\n",
    "|\n",
]


@st.composite
def policy_texts(draw: Any) -> str:
    text = yaml.safe_dump(draw(POLICY), sort_keys=False, allow_unicode=True)
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        end = draw(st.integers(min_value=at, max_value=min(len(text), at + 40)))
        operation = draw(st.sampled_from(["insert", "cut", "repeat", "swap-lines"]))
        if operation == "insert":
            text = text[:at] + draw(st.sampled_from(TOKENS)) + text[at:]
        elif operation == "cut":
            text = text[:at] + text[end:]
        elif operation == "repeat":
            text = text[:end] + text[at:end] * draw(st.integers(min_value=1, max_value=8)) + text[end:]
        else:
            lines = text.splitlines(keepends=True)
            if len(lines) > 1:
                first, second = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
                lines[first], lines[second] = lines[second], lines[first]
            text = "".join(lines)
    return text


def test_policy_texts_are_valid_or_refused(
    bounded: Callable[..., Any], captured_facts: dict[str, dict[str, Any]], examples: int
) -> None:
    with tempfile.TemporaryDirectory() as work:
        facts = Path(work) / "facts"
        facts.mkdir()
        (facts / "numa2.json").write_text(json.dumps(captured_facts["numa2"]))
        policy = Path(work) / "policy.yml"

        @settings(
            max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        @given(text=policy_texts())
        def case(text: str) -> None:
            policy.write_text(text, encoding="utf-8", errors="surrogatepass")
            validated = bounded("validate", policy)
            planned = bounded("plan", "--facts", facts, "--policy", policy)
            if validated.exit_code == 0:
                assert planned.exit_code in (0, 2)

        case()
