"""Class 4 of issue 14: validation as strict as the host. What memory_apply would refuse is refused when the
policy is loaded; validate reports every error of the run; facts are typed strictly."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from memtune.facts.model import SCHEMA_VERSION

RULE = "layer: baseline\nname: b\nrules:\n  - name: r\n"
INPUT = "layer: baseline\nname: b\ninputs:\n  {}\n"
# (policy text, what the error says, the key the error points at: its first occurrence gives line:column)
REFUSED = [
    (
        RULE + "    cgroups: [{unit: x.service, MemoryMax: -5}]\n",
        "MemoryMax -5 is not a number of bytes",
        "MemoryMax",
    ),
    (
        RULE + "    cgroups: [{unit: x.service, MemoryHigh: 18446744073709551616}]\n",
        "MemoryHigh 1844",
        "MemoryHigh",
    ),
    (
        RULE + "    cgroups: [{unit: x.service, MemoryMax: lots}]\n",
        "MemoryMax 'lots' is not a size",
        "MemoryMax",
    ),
    (
        RULE + "    cgroups: [{unit: x.service, MemoryMax: '-1G'}]\n",
        "MemoryMax '-1G' is not a size",
        "MemoryMax",
    ),
    (RULE + "    cgroups: [{path: /sys/fs/cgroup/../../etc, MemoryMax: 1G}]\n", "must stay below", "path"),
    (RULE + "    cgroups: [{path: /sys/fs/cgroup/a/./b, MemoryMax: 1G}]\n", "must stay below", "path"),
    (RULE + "    cgroups: [{path: /etc/x, MemoryMax: 1G}]\n", "should match pattern", "path"),
    (RULE + "    hugepages: [{size: 2MiB, count: -1}]\n", "hugepage count -1 is not a count", "count"),
    (RULE + "    sysctl: {vm.min_free_kbytes: 99999999999999999999999 GiB}\n", "must be a size", "vm.min"),
    (
        RULE + "    when: {ram: {min: 8GiB, max: 1GiB}}\n    sysctl: {vm.swappiness: 1}\n",
        "can never match",
        "ram",
    ),
    (
        RULE + "    when: {numa_nodes: {min: 3, max: 1}}\n    sysctl: {vm.swappiness: 1}\n",
        "never match",
        "numa",
    ),
    (
        INPUT.format("n: {type: int, default: '12'}"),
        "inputs.n: a default of type int cannot be '12'",
        "default",
    ),
    (INPUT.format("n: {type: int, default: true}"), "inputs.n: a default of type int", "default"),
    (INPUT.format("s: {type: size, default: lots}"), "inputs.s: expected a size, got 'lots'", "default"),
    (INPUT.format("s: {type: str, default: 5}"), "inputs.s: a default of type str cannot be 5", "default"),
    (INPUT.format("v: {type: version, default: banana}"), "inputs.v: expected a version", "default"),
    (INPUT.format("b: {type: bool, default: 'yes'}"), "inputs.b: a default of type bool", "default"),
]


def _place(text: str, token: str) -> str:
    for number, line in enumerate(text.splitlines(), start=1):
        if token in line and number > 3:  # past layer, name and rules/inputs
            return f"{number}:{line.index(token) + 1}"
    raise AssertionError(f"{token!r} is not in the policy")


@pytest.mark.parametrize(("text", "message", "token"), REFUSED, ids=[case[1][:40] for case in REFUSED])
def test_what_the_host_refuses_is_refused_at_load_time(
    cli: Callable[..., Any], policy_file: Callable[[str], Path], text: str, message: str, token: str
) -> None:
    result = cli("validate", policy_file(text))
    assert result.exit_code == 2
    where = _place(text, token)
    assert f"policy0.yml:{where}: " in result.stderr and message in result.stderr, result.stderr


def test_validate_reports_every_error_of_the_run(
    cli: Callable[..., Any], tmp_path: Path, policy_file: Callable[[str], Path]
) -> None:
    first = policy_file(
        RULE
        + "    sysctl: {vm.swapiness: 1, vm.swappiness: lots}\n"
        + "  - name: s\n    cgroups: [{unit: x.service, MemoryMax: -1}]\n"
        + "  - name: r\n    sysctl: {vm.swappiness: 1}\n"
    )
    second = policy_file("layer: group\nname: g\nbogus: 1\nrules: [{name: r, thp: {enabled: sometimes}}]\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("validate", first, second, first, empty, tmp_path / "missing")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    expected = [
        "policy0.yml:5:14: rule 'r': unknown knob 'vm.swapiness' (did you mean 'vm.swappiness'?)",
        "policy0.yml:5:31: rule 'r': vm.swappiness must be an integer or an expression, not 'lots'",
        "policy0.yml:7:33: rule 's': MemoryMax -1 is not a number of bytes",
        "policy0.yml:8:5: duplicate rule name 'r' (also rules[0])",
        "policy1.yml:3:1: unknown key 'bogus'",
        "policy1.yml:4:25: rules[0].thp.enabled: Input should be",
        f"policy0.yml: given twice (also as {first})",
        f"{empty}: no policies in {empty}",
        f"{tmp_path / 'missing'}: no such file or directory",
    ]
    assert len(lines) == len(expected), result.stderr
    assert all(line.startswith("error: ") for line in lines)
    for part in expected:
        assert sum(part in line for line in lines) == 1, (part, result.stderr)


def test_an_empty_policy_directory_is_not_a_valid_set(
    cli: Callable[..., Any], tmp_path: Path, facts_dir: Path
) -> None:
    result = cli("plan", "--facts", facts_dir, "--policy", tmp_path)
    assert result.exit_code == 2
    assert f"error: {tmp_path}: no policies in {tmp_path}" in result.stderr


def _spoil(facts: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    spoiled = json.loads(json.dumps(facts))
    node = spoiled
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return spoiled


FACTS = [
    ("memory.mem_total_kb", True, "memory.mem_total_kb: Input should be a valid integer"),
    ("memory.mem_total_kb", "8000000", "memory.mem_total_kb: Input should be a valid integer"),
    ("memory.mem_total_kb", 2**64, "memory.mem_total_kb: Input should be less than or equal to"),
    ("memory.mem_free_kb", 1.5, "memory.mem_free_kb: Input should be a valid integer"),
    ("numa.available", 1, "numa.available: Input should be a valid boolean"),
    ("numa.available", "true", "numa.available: Input should be a valid boolean"),
    ("vmstat.nr_free_pages", "12", "vmstat.nr_free_pages: Input should be a valid integer"),
    ("sysctl.vm.swappiness", True, "sysctl.vm.swappiness"),
    ("schema_version", True, "facts schema_version True"),
    ("schema_version", str(SCHEMA_VERSION), f"facts schema_version '{SCHEMA_VERSION}'"),
    ("schema_version", float(SCHEMA_VERSION), "schema_version must be an integer"),
]


@pytest.mark.parametrize(("dotted", "value", "message"), FACTS, ids=[f"{c[0]}={c[1]!r}" for c in FACTS])
def test_facts_are_typed_strictly(
    cli: Callable[..., Any],
    tmp_path: Path,
    captured: dict[str, Any],
    *,
    dotted: str,
    value: Any,
    message: str,
) -> None:
    facts = captured["numa2"]
    if dotted.startswith("sysctl."):  # sysctl keys have dots of their own
        spoiled = json.loads(json.dumps(facts))
        spoiled["sysctl"][dotted.removeprefix("sysctl.")] = value
    elif dotted.startswith("vmstat."):
        spoiled = json.loads(json.dumps(facts))
        spoiled["vmstat"][dotted.removeprefix("vmstat.")] = value
    else:
        spoiled = _spoil(facts, dotted, value)
    file = tmp_path / "db01.json"
    file.write_text(json.dumps(spoiled))
    result = cli("plan", "--facts", file)
    assert result.exit_code == 2
    assert f"error: {file}: " in result.stderr and message in result.stderr, result.stderr


def test_numa_node_ids_are_unique(cli: Callable[..., Any], tmp_path: Path, captured: dict[str, Any]) -> None:
    facts = json.loads(json.dumps(captured["numa2"]))
    facts["numa"]["nodes"][1]["id"] = facts["numa"]["nodes"][0]["id"]
    file = tmp_path / "db01.json"
    file.write_text(json.dumps(facts))
    result = cli("plan", "--facts", file)
    assert result.exit_code == 2
    assert "NUMA node ids must be unique, got [0, 0]" in result.stderr
