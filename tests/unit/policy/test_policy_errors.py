"""Bad policy files: each gives one PolicyError naming file:line:column, never another exception."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from memtune.errors import PolicyError
from memtune.policy.load import load_policy_file, load_policy_set

HEAD = "layer: baseline\nname: base\nrules:\n"
BASE = "layer: baseline\nname: b\n"  # a baseline policy, its rules to follow


def rule(body: str) -> str:
    """A baseline policy with one rule named ``r`` whose other keys are ``body`` (4-space indented)."""
    return HEAD + "  - name: r\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"


def pool(spec: str) -> str:
    """A baseline policy with one rule ``r`` that reserves one hugepage pool, ``spec`` its flow mapping."""
    return rule(f"hugepages:\n  - {spec}")


def cgroup(spec: str) -> str:
    """A baseline policy with one rule ``r`` that limits one cgroup, ``spec`` its flow mapping."""
    return rule(f"cgroups:\n  - {spec}")


def when(condition: str) -> str:
    """A baseline policy with one rule ``r`` that sets vm.swappiness when ``condition`` holds."""
    return rule(f"when: {condition}\nsysctl: {{vm.swappiness: 1}}")


def merge(how: str) -> str:
    """A baseline policy with one rule ``r`` that sets vm.swappiness and merges as ``how`` says."""
    return rule(f"sysctl: {{vm.swappiness: 1}}\nmerge: {how}")


# id, file text, where the error points ("line:column", or "line": the column is not checked), words the
# message must contain
CASES = [
    ("yaml-syntax", HEAD + "  - name: [r\n", "5:1", "invalid YAML"),
    ("yaml-tab", "layer: baseline\n\tname: x\n", "2:1", "invalid YAML"),
    ("duplicate-key", "layer: baseline\nname: a\nname: b\nrules: []\n", "3:1", "duplicate key 'name'"),
    ("not-a-mapping", "- a\n- b\n", "1", "must be a mapping"),
    ("empty-file", "", "1", "must be a mapping"),
    ("unknown-top-key", BASE + "rulez: []\n", "3:1", "unknown key 'rulez' (did you mean 'rules'?)"),
    ("unknown-rule-key", rule("sysctl: {vm.swappiness: 1}\nsorce: x"), "6:5", "did you mean 'source'"),
    ("bad-layer", "layer: cluster\nname: b\n", "1:1", "layer"),
    ("missing-name", "layer: baseline\nrules: []\n", "1:1", "missing key 'name'"),
    ("undeclared-when-input", when("{inputs: [level]}"), "5:12", "not declared"),
    ("bad-when-expression", when("{expr: '{{ ram_kb > }}'}"), "5:12", "syntax"),
    ("bad-kernel-condition", when("{kernel: '~5.8'}"), "5:12", "version comparison"),
    ("bad-ram-size", when("{ram: {min: lots}}"), "5:18", "not a size"),
    ("sets-nothing", rule("source: x"), "4:5", "sets nothing"),
    (
        "duplicate-rule",
        HEAD + "  - {name: r, warn: a}\n  - {name: r, warn: b}\n",
        "5:6",
        "duplicate rule name 'r'",
    ),
    (
        "pool-two-amounts",
        pool("{size: 2MiB, count: 1, total: 2GiB}"),
        "6:9",
        "exactly one of count, total or fraction",
    ),
    ("pool-bad-size", pool("{size: 4MiB, count: 1}"), "6:10", "2MiB or 1GiB"),
    ("pool-bad-total", pool("{size: 2MiB, total: plenty}"), "6:22", "not a size"),
    ("pool-fraction-range", pool("{size: 2MiB, fraction: 1.5}"), "6:22", "fraction"),
    ("cgroup-no-target", cgroup("{MemoryMax: 1GiB}"), "6:9", "exactly one of unit, path or workload"),
    ("cgroup-bad-unit", cgroup("{unit: postgres, MemoryMax: 1GiB}"), "6:10", "unit"),
    ("cgroup-bad-limit", cgroup("{unit: a.service, MemoryMax: lots}"), "6:27", "not a size, a percentage"),
    ("cgroup-no-limits", cgroup("{unit: a.service}"), "6:10", "at least one of MemoryMin"),
    ("cgroup-two-targets", cgroup("{unit: a.service, workload: redis, MemoryLow: 1G}"), "6:9", "exactly one"),
    ("cgroup-bad-workload", cgroup("{workload: 'red is', MemoryLow: 1GiB}"), "6:10", "workload"),
    ("extends-outside-workload", BASE + "extends: [x]\nrules: []\n", "3:1", "only workload policies"),
    (
        "guard-out-of-range",
        BASE + "guards: {min_free_kbytes_max_percent: 90}\n",
        "3:10",
        "less than or equal to 50",
    ),
    # issue 17: merge rules the catalog does not allow, mode fights within one policy, heuristics unexplained
    (
        "merge-unset-knob",
        merge("{vm.max_map_count: max}"),
        "6:13",
        "merge names 'vm.max_map_count', which this rule does not set",
    ),
    ("merge-unknown-kind", merge("{vm.swappiness: avg}"), "6:13", "merge"),
    (
        "mode-both-ways",
        HEAD
        + "  - name: a\n    sysctl: {vm.overcommit_memory: 2}\n"
        + "  - name: b\n    sysctl: {vm.overcommit_memory: 1}\n",
        "7:14",
        "vm.overcommit_memory = 1 contradicts rule 'a' (line 4: 2)",
    ),
    (
        "thp-both-ways",
        HEAD
        + "  - name: a\n    when: {kernel: '>=5.0'}\n    thp: {enabled: never}\n"
        + "  - name: b\n    thp: {enabled: always}\n",
        "8:11",
        "thp.enabled = always contradicts rule 'a'",
    ),
    (
        "memtune-without-rationale",
        rule("source: x\nsource_kind: memtune\nsysctl: {vm.swappiness: 1}"),
        "4:5",
        "source_kind memtune needs a rationale",
    ),
]
# one sysctl set to a bad value (the value is on line 6, column 7): id, its `key: value` line, the words
BAD_SYSCTLS = [
    ("wrong-type", "vm.swappiness: [1]", "rules[0].sysctl.vm.swappiness"),
    ("bool-value", "vm.swappiness: true", "rules[0].sysctl.vm.swappiness"),
    ("unknown-knob", "vm.swapiness: 1", "unknown knob 'vm.swapiness' (did you mean 'vm.swappiness'?)"),
    ("beyond-every-kernel", "vm.swappiness: 500", "outside 0..200"),
    ("word-for-int-knob", "vm.overcommit_memory: one", "must be an integer"),
    ("size-for-int-knob", "vm.swappiness: 2GiB", "must be an integer"),
    ("expression-syntax", "vm.swappiness: '{{ clamp(1, }}'", "expression syntax"),
    ("expression-mixed-text", "vm.dirty_bytes: '{{ 1 }}MiB'", "whole value"),
    ("sandbox-dunder", "vm.swappiness: \"{{ ''.__class__ }}\"", "'__class__' is not allowed"),
    ("sandbox-cycler", "vm.swappiness: '{{ cycler.__init__.__globals__ }}'", "not allowed"),
    ("sandbox-global", "vm.swappiness: '{{ range(10) | length }}'", "unknown name 'range'"),
    ("sandbox-getitem", "vm.swappiness: \"{{ facts['__class__'] }}\"", "not allowed"),
    ("unknown-filter", "vm.swappiness: '{{ 1 | attr(\"x\") }}'", "expression syntax"),
    ("undeclared-input", "vm.swappiness: '{{ inputs.level }}'", "input 'level' is not declared"),
]
CASES += [(name, rule(f"sysctl:\n  {setting}"), "6:7", words) for name, setting, words in BAD_SYSCTLS]
# merges the knob catalog does not allow: id, what the rule sets, the knob, its merge, what the catalog allows
REFUSED_MERGES = [
    ("merge-not-allowed", "sysctl: {vm.swappiness: 1}", "vm.swappiness", "max", "min"),
    ("merge-thp-sum", "thp: {enabled: never}", "thp.enabled", "sum", "agree"),
]
CASES += [
    (
        name,
        rule(f"{sets}\nmerge: {{{knob}: {merge}}}"),
        "6:13",
        f"{knob} cannot merge by '{merge}'; the knob catalog allows {allowed}",
    )
    for name, sets, knob, merge, allowed in REFUSED_MERGES
]


@pytest.mark.parametrize(
    ("text", "where", "words"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_bad_policy_file(tmp_path: Path, text: str, where: str, words: str) -> None:
    line_text, _, column_text = where.partition(":")
    line, column = int(line_text), int(column_text) if column_text else None
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy_file(path)
    error = caught.value
    assert words in error.message
    assert error.file == str(path)
    assert error.line == line
    if column is not None:
        assert error.column == column
    assert str(error).startswith(f"{path}:{line}:" if line else f"{path}:")


# Whole directories: layers that collide or extend in a circle. file name -> text.
SETS = [
    (
        "two-baselines",
        {"a.yml": "layer: baseline\nname: a\n", "b.yml": "layer: baseline\nname: b\n"},
        "b.yml",
        2,
        "a second baseline policy (first in",
    ),
    (
        "duplicate-workload",
        {"a.yml": "layer: workload\nname: redis\n", "b.yml": "layer: workload\nname: redis\n"},
        "b.yml",
        2,
        "duplicate workload policy 'redis'",
    ),
    (
        "circular-extends",
        {
            "a.yml": "layer: workload\nname: a\nextends: [b]\n",
            "b.yml": "layer: workload\nname: b\nextends: a\n",
        },
        "a.yml",
        3,
        "circular extends: a -> b -> a",
    ),
    (
        "self-extends",
        {"a.yml": "layer: workload\nname: a\nextends: [a]\n"},
        "a.yml",
        3,
        "circular extends: a -> a",
    ),
    (
        "extends-unknown",
        {"a.yml": "layer: workload\nname: a\nextends: [nosuch]\n"},
        "a.yml",
        3,
        "extends unknown workload policy 'nosuch'",
    ),
]


@pytest.mark.parametrize(
    ("files", "culprit", "line", "words"), [case[1:] for case in SETS], ids=[case[0] for case in SETS]
)
def test_bad_policy_set(tmp_path: Path, files: dict[str, str], culprit: str, line: int, words: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy_set([tmp_path])
    assert words in caught.value.message
    assert caught.value.file == str(tmp_path / culprit)
    assert caught.value.line == line


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no such file"):
        load_policy_set([tmp_path / "nope"])
