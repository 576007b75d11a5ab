"""Class 2 of issue 14: bounded YAML. Aliases that expand exponentially, an alias inside itself, deep
nesting and long ``extends`` chains are errors with file:line, found without expanding or recursing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from memtune.policy.model import MAX_EXTENDS
from memtune.policy.source import MAX_ALIASED, MAX_DEPTH


def _laughs(levels: int = 9, width: int = 9) -> str:
    lines = ["layer: baseline", "name: laughs", "a0: &a0 [lol, lol]"]
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


CASES = [
    pytest.param(
        _laughs(),
        f"policy0.yml:3:15: aliases repeat more than {MAX_ALIASED} values",
        id="billion-laughs-lists",
    ),
    pytest.param(
        "layer: baseline\nname: x\na: &a {k0: v, k1: v}\n"
        + "".join(
            f"b{i}: &b{i} {{x: *{'a' if i == 0 else f'b{i - 1}'}, y: *{'a' if i == 0 else f'b{i - 1}'}}}\n"
            for i in range(30)
        ),
        f"aliases repeat more than {MAX_ALIASED} values",
        id="billion-laughs-mappings",
    ),
    pytest.param(
        "layer: workload\nname: x\nrules: &r [*r]\n",
        "policy0.yml:3:8: an alias refers to a collection that contains it",
        id="self-list",
    ),
    pytest.param(
        "layer: workload\nname: x\nrules: &r {a: *r}\n",
        "policy0.yml:3:8: an alias refers to",
        id="self-mapping",
    ),
    pytest.param(
        "layer: baseline\nname: x\ndeep: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n",
        f"nested deeper than {MAX_DEPTH} levels",
        id="nesting-past-the-bound",
    ),
    pytest.param(
        "layer: baseline\nname: x\ndeep: " + "[" * 100_000 + "\n", "policy0.yml:3:", id="nesting-100000"
    ),
    pytest.param(
        "layer: baseline\nname: x\na: &a [1]\n? *a\n: 1\n",
        "policy0.yml:3:4: mapping keys must be strings, not collections",
        id="alias-as-key",
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_hostile_documents_are_errors_with_their_place(
    cli: Callable[..., Any], policy_file: Callable[[str], Path], text: str, expected: str
) -> None:
    result = cli("validate", policy_file(text))
    assert result.exit_code == 2, result.stderr
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_hostile_variables_file_is_an_error_too(
    cli: Callable[..., Any], tmp_path: Path, facts_dir: Path
) -> None:
    variables = tmp_path / "vars.yml"
    variables.write_text(_laughs().replace("layer: baseline\nname: laughs\n", ""))
    result = cli("plan", "--facts", facts_dir, "--vars", variables)
    assert result.exit_code == 2
    assert f"vars.yml:1:15: aliases repeat more than {MAX_ALIASED} values" in result.stderr


def _chain(tmp_path: Path, length: int) -> Path:
    directory = tmp_path / f"chain{length}"
    directory.mkdir()
    for index in range(length):
        extends = f"extends: w{index + 1}\n" if index + 1 < length else ""
        rule = "rules: [{name: r, sysctl: {vm.swappiness: 10}}]\n"
        (directory / f"w{index}.yml").write_text(f"layer: workload\nname: w{index}\n{extends}{rule}")
    return directory


@pytest.mark.parametrize("length", [MAX_EXTENDS + 1, 1500])
def test_long_extends_chains_are_refused_without_recursion(
    cli: Callable[..., Any], tmp_path: Path, length: int
) -> None:
    result = cli("validate", _chain(tmp_path, length))
    assert result.exit_code == 2, result.stderr
    assert f"extends chain deeper than {MAX_EXTENDS} policies" in result.stderr
    assert ".yml:3:" in result.stderr  # the extends line of the policy that goes one too far


def test_a_chain_within_the_bound_is_fine(cli: Callable[..., Any], tmp_path: Path) -> None:
    result = cli("validate", _chain(tmp_path, MAX_EXTENDS))
    assert result.exit_code == 0, result.stderr
