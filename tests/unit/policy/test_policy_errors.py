"""Bad policy files: each gives one PolicyError naming file:line:column, never another exception."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from memtune.errors import PolicyError
from memtune.policy.load import load_policy_file, load_policy_set

HEAD = "layer: baseline\nname: base\nrules:\n"


def rule(body: str) -> str:
    """A baseline policy with one rule named ``r`` whose other keys are ``body`` (4-space indented)."""
    return HEAD + "  - name: r\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"


# id, file text, line, column (None: not checked), words the message must contain
CASES = [
    ("yaml-syntax", HEAD + "  - name: [r\n", 5, 1, "invalid YAML"),
    ("yaml-tab", "layer: baseline\n\tname: x\n", 2, 1, "invalid YAML"),
    ("duplicate-key", "layer: baseline\nname: a\nname: b\nrules: []\n", 3, 1, "duplicate key 'name'"),
    ("not-a-mapping", "- a\n- b\n", 1, None, "must be a mapping"),
    ("empty-file", "", 1, None, "must be a mapping"),
    (
        "unknown-top-key",
        "layer: baseline\nname: b\nrulez: []\n",
        3,
        1,
        "unknown key 'rulez' (did you mean 'rules'?)",
    ),
    ("unknown-rule-key", rule("sysctl: {vm.swappiness: 1}\nsorce: x"), 6, 5, "did you mean 'source'"),
    ("bad-layer", "layer: cluster\nname: b\n", 1, 1, "layer"),
    ("missing-name", "layer: baseline\nrules: []\n", 1, 1, "missing key 'name'"),
    ("wrong-type", rule("sysctl:\n  vm.swappiness: [1]"), 6, 7, "rules[0].sysctl.vm.swappiness"),
    ("bool-value", rule("sysctl:\n  vm.swappiness: true"), 6, 7, "rules[0].sysctl.vm.swappiness"),
    (
        "unknown-knob",
        rule("sysctl:\n  vm.swapiness: 1"),
        6,
        7,
        "unknown knob 'vm.swapiness' (did you mean 'vm.swappiness'?)",
    ),
    ("beyond-every-kernel", rule("sysctl:\n  vm.swappiness: 500"), 6, 7, "outside 0..200"),
    ("word-for-int-knob", rule("sysctl:\n  vm.overcommit_memory: one"), 6, 7, "must be an integer"),
    ("size-for-int-knob", rule("sysctl:\n  vm.swappiness: 2GiB"), 6, 7, "must be an integer"),
    ("expression-syntax", rule("sysctl:\n  vm.swappiness: '{{ clamp(1, }}'"), 6, 7, "expression syntax"),
    ("expression-mixed-text", rule("sysctl:\n  vm.dirty_bytes: '{{ 1 }}MiB'"), 6, 7, "whole value"),
    (
        "sandbox-dunder",
        rule("sysctl:\n  vm.swappiness: \"{{ ''.__class__ }}\""),
        6,
        7,
        "'__class__' is not allowed",
    ),
    (
        "sandbox-cycler",
        rule("sysctl:\n  vm.swappiness: '{{ cycler.__init__.__globals__ }}'"),
        6,
        7,
        "not allowed",
    ),
    (
        "sandbox-global",
        rule("sysctl:\n  vm.swappiness: '{{ range(10) | length }}'"),
        6,
        7,
        "unknown name 'range'",
    ),
    ("sandbox-getitem", rule("sysctl:\n  vm.swappiness: \"{{ facts['__class__'] }}\""), 6, 7, "not allowed"),
    ("unknown-filter", rule("sysctl:\n  vm.swappiness: '{{ 1 | attr(\"x\") }}'"), 6, 7, "expression syntax"),
    (
        "undeclared-input",
        rule("sysctl:\n  vm.swappiness: '{{ inputs.level }}'"),
        6,
        7,
        "input 'level' is not declared",
    ),
    (
        "undeclared-when-input",
        rule("when: {inputs: [level]}\nsysctl: {vm.swappiness: 1}"),
        5,
        12,
        "not declared",
    ),
    (
        "bad-when-expression",
        rule("when: {expr: '{{ ram_kb > }}'}\nsysctl: {vm.swappiness: 1}"),
        5,
        12,
        "syntax",
    ),
    (
        "bad-kernel-condition",
        rule("when: {kernel: '~5.8'}\nsysctl: {vm.swappiness: 1}"),
        5,
        12,
        "version comparison",
    ),
    ("bad-ram-size", rule("when: {ram: {min: lots}}\nsysctl: {vm.swappiness: 1}"), 5, 18, "not a size"),
    ("sets-nothing", rule("source: x"), 4, 5, "sets nothing"),
    (
        "duplicate-rule",
        HEAD + "  - {name: r, warn: a}\n  - {name: r, warn: b}\n",
        5,
        6,
        "duplicate rule name 'r'",
    ),
    (
        "pool-two-amounts",
        rule("hugepages:\n  - {size: 2MiB, count: 1, total: 2GiB}"),
        6,
        9,
        "exactly one of count, total or fraction",
    ),
    ("pool-bad-size", rule("hugepages:\n  - {size: 4MiB, count: 1}"), 6, 10, "2MiB or 1GiB"),
    ("pool-bad-total", rule("hugepages:\n  - {size: 2MiB, total: plenty}"), 6, 22, "not a size"),
    ("pool-fraction-range", rule("hugepages:\n  - {size: 2MiB, fraction: 1.5}"), 6, 22, "fraction"),
    ("cgroup-no-target", rule("cgroups:\n  - {MemoryMax: 1GiB}"), 6, 9, "exactly one of unit or path"),
    ("cgroup-bad-unit", rule("cgroups:\n  - {unit: postgres, MemoryMax: 1GiB}"), 6, 10, "unit"),
    (
        "cgroup-bad-limit",
        rule("cgroups:\n  - {unit: a.service, MemoryMax: lots}"),
        6,
        27,
        "not a size, a percentage",
    ),
    ("cgroup-no-limits", rule("cgroups:\n  - {unit: a.service}"), 6, 10, "at least one of MemoryMin"),
    (
        "extends-outside-workload",
        "layer: baseline\nname: b\nextends: [x]\nrules: []\n",
        3,
        1,
        "only workload policies",
    ),
    (
        "guard-out-of-range",
        "layer: baseline\nname: b\nguards: {min_free_kbytes_max_percent: 90}\n",
        3,
        10,
        "less than or equal to 50",
    ),
    # issue 17: merge rules the catalog does not allow, mode fights within one policy, heuristics unexplained
    (
        "merge-not-allowed",
        rule("sysctl: {vm.swappiness: 1}\nmerge: {vm.swappiness: max}"),
        6,
        13,
        "vm.swappiness cannot merge by 'max'; the knob catalog allows min",
    ),
    (
        "merge-thp-sum",
        rule("thp: {enabled: never}\nmerge: {thp.enabled: sum}"),
        6,
        13,
        "thp.enabled cannot merge by 'sum'; the knob catalog allows agree",
    ),
    (
        "merge-unset-knob",
        rule("sysctl: {vm.swappiness: 1}\nmerge: {vm.max_map_count: max}"),
        6,
        13,
        "merge names 'vm.max_map_count', which this rule does not set",
    ),
    ("merge-unknown-kind", rule("sysctl: {vm.swappiness: 1}\nmerge: {vm.swappiness: avg}"), 6, 13, "merge"),
    (
        "mode-both-ways",
        HEAD
        + "  - name: a\n    sysctl: {vm.overcommit_memory: 2}\n"
        + "  - name: b\n    sysctl: {vm.overcommit_memory: 1}\n",
        7,
        14,
        "vm.overcommit_memory = 1 contradicts rule 'a' (line 4: 2)",
    ),
    (
        "thp-both-ways",
        HEAD
        + "  - name: a\n    when: {kernel: '>=5.0'}\n    thp: {enabled: never}\n"
        + "  - name: b\n    thp: {enabled: always}\n",
        8,
        11,
        "thp.enabled = always contradicts rule 'a'",
    ),
    (
        "memtune-without-rationale",
        rule("source: x\nsource_kind: memtune\nsysctl: {vm.swappiness: 1}"),
        4,
        5,
        "source_kind memtune needs a rationale",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "column", "words"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_bad_policy_file(tmp_path: Path, text: str, line: int | None, column: int | None, words: str) -> None:
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
