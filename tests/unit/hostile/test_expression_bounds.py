"""Class 3 of issue 14: bounded expressions. Every way to build a huge value (formatting widths, sums of
lists, repeats, exponents, integers past 64 bits, deep nesting) is refused with the rule's file:line, and
``when.expr`` must give a boolean, checked when the policy is validated."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from memtune.policy.expr import MAX_DEPTH, MAX_SOURCE

AT = "policy0.yml:6:7: "
# (expression, what the error says); every one is refused with the knob's file:line, exit 2.
REFUSED = [
    ("'%0999999999d' % 1", "string formatting with % is not allowed"),
    ("'%s%s' % (1, 2)", "string formatting with % is not allowed"),
    ("'{:>999999999}'", "expected a number"),  # no .format: attributes are not reachable
    ("([[1] * 4096] * 4096) | sum(start=[])", "repeating a sequence 4096 times"),
    ("[[1], [2]] | sum(start=[])", "sum() adds numbers"),
    ("['a', 'b'] | sum(start='')", "sum() adds numbers"),
    ("[('a' * 4096)] * 4096", "repeating a sequence 4096 times"),
    ("('a' * 4096) * 2 * 2", "repeating a sequence 2 times"),
    ("('a' * 4000 + 'b' * 4000) * 9", "repeating a sequence 9 times"),
    ("2 ** 64 ** 64", "beyond 64 bits"),  # jinja2's ** groups to the left: (2 ** 64) ** 64
    ("2 ** (64 ** 64)", "beyond 64 bits"),
    ("2 ** 100000", "exponent 100000 is too large"),
    ("2 ** 64", "2 ** 64 is beyond 64 bits"),
    ("((2 ** 60) ** 60) ** 60", "beyond 64 bits"),
    ("(2 ** 63) * (2 ** 63)", "beyond 64 bits"),
    ("2 ** 63 + 2 ** 63", "integer 18446744073709551616 is beyond 64 bits"),
    ("99999999999999999999999", "integer 99999999999999999999999 is beyond 64 bits"),
    ("('9' * 4000) | int", "integer of 13288 bits is beyond 64 bits"),
    ("percent_of_ram('50')", "percent_of_ram() takes a percentage from 0 to 100, not '50'"),
    ("percent_of_ram(1e308)", "percent_of_ram() takes a percentage"),
    ("size('9' * 400 ~ 'G')", "size(): size '9999"),
    ("size(2 ** 63 * 2)", "beyond 64 bits"),
    ("clamp('9' * 400, 0, 1)", "clamp(): size '9999"),
    ("round_to(ram_kb, '1e999')", "round_to(): not a size"),
    ("(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1), f"nested deeper than {MAX_DEPTH} levels"),
    ("- " * 500 + "1", f"nested deeper than {MAX_DEPTH} levels"),
    ("not " * 500 + "true", f"nested deeper than {MAX_DEPTH} levels"),
    ("1" + " + 1" * 200, f"nested deeper than {MAX_DEPTH} levels"),
    ("'" + "a" * MAX_SOURCE + "'", f"expression of {MAX_SOURCE + 2} characters"),
    ("sqrt(-1)", "evaluation failed: ValueError"),
    ("1.0e308 * 10", "beyond 64 bits"),
]


@pytest.mark.parametrize(("expression", "message"), REFUSED, ids=[case[0][:40] for case in REFUSED])
def test_huge_values_are_refused_with_the_rules_place(
    cli: Callable[..., Any],
    knob_policy: Callable[[str], Path],
    facts_dir: Path,
    expression: str,
    message: str,
) -> None:
    result = cli("plan", "--facts", facts_dir, "--policy", knob_policy("{{ " + expression + " }}"))
    assert result.exit_code == 2, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines and all(AT in line and message in line for line in lines), result.stderr


@pytest.mark.parametrize(
    "expression",
    ["ram_kb // 1024 % 200", "[1, 2] | sum", "('ab' * 100) | length", "2 ** 63 - 1 > 0 and 1 or 0"],
)
def test_ordinary_arithmetic_still_works(
    cli: Callable[..., Any], knob_policy: Callable[[str], Path], facts_dir: Path, expression: str
) -> None:
    result = cli("plan", "--facts", facts_dir, "--policy", knob_policy("{{ " + expression + " }}"))
    assert result.exit_code == 0, result.stderr


WHEN = (
    'layer: baseline\nname: b\nrules:\n  - name: r\n    when:\n      expr: "{}"\n'
    "    sysctl:\n      vm.swappiness: 10\n"
)


@pytest.mark.parametrize(
    "expression",
    [
        "'yes'",
        "{{ 'yes' }}",
        "ram_kb + 1",
        "ram_kb > 0 and 'x'",
        "[1]",
        "ram_kb | length",
        "percent_of_ram(5)",
    ],
)
def test_when_expr_that_is_not_a_condition_fails_validate(
    cli: Callable[..., Any], policy_file: Callable[[str], Path], expression: str
) -> None:
    result = cli("validate", policy_file(WHEN.format(expression)))
    assert result.exit_code == 2
    assert "policy0.yml:6:7: rule 'r': when.expr must give true or false" in result.stderr


def test_when_expr_is_compiled_at_validate_time_without_braces(
    cli: Callable[..., Any], policy_file: Callable[[str], Path]
) -> None:
    result = cli("validate", policy_file(WHEN.format("ram_kb >")))
    assert result.exit_code == 2
    assert "policy0.yml:6:7: rule 'r': expression syntax" in result.stderr


def test_when_expr_giving_a_fact_that_is_not_boolean_fails_the_plan(
    cli: Callable[..., Any], policy_file: Callable[[str], Path], facts_dir: Path
) -> None:
    """A fact's type is known only with the facts: a number is not true, the plan says so."""
    policy = policy_file(WHEN.format("facts.memory.mem_total_kb"))
    assert cli("validate", policy).exit_code == 0
    result = cli("plan", "--facts", facts_dir, "--policy", policy)
    assert result.exit_code == 2
    assert (
        "policy0.yml:6:7: host numa2: rule 'r': when: the expression must give true or false" in result.stderr
    )


@pytest.mark.parametrize(
    "expression",
    ["ram_kb > 0", "has_workload('redis') or kernel_at_least('5.8')", "not facts.platform.systemd"],
)
def test_conditions_still_work(
    cli: Callable[..., Any], policy_file: Callable[[str], Path], facts_dir: Path, expression: str
) -> None:
    result = cli("plan", "--facts", facts_dir, "--policy", policy_file(WHEN.format(expression)))
    assert result.exit_code == 0, result.stderr
