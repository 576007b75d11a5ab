"""`memtune test`: the bundled policies' own cases (tests/policy-cases/) pass; a case that does not hold
fails with exit 1 and says why; an invalid case file is exit 2 with file:line; JUnit output validates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import xmlschema
from typer.testing import CliRunner

from memtune.cli.main import app

REPO = Path(__file__).resolve().parents[3]
CASES = REPO / "tests" / "policy-cases"
HOSTS = REPO / "tests" / "fixtures" / "hosts"


def run(*args: str | Path) -> Any:
    return CliRunner().invoke(app, [str(arg) for arg in args])


def test_the_bundled_cases_pass_and_write_valid_junit(tmp_path: Path) -> None:
    report = tmp_path / "cases.xml"
    result = run("test", CASES, "--junit", report)
    assert result.exit_code == 0, result.output
    assert "0 failed, 0 invalid" in result.output
    xmlschema.XMLSchema(REPO / "schemas" / "junit.xsd").validate(report.read_text())


def test_a_case_that_does_not_hold_fails_with_the_reason(tmp_path: Path) -> None:
    case = tmp_path / "mine.yml"
    case.write_text(
        f"cases:\n"
        f"  - name: swappiness of postgres\n"
        f"    tree: {HOSTS / 'numa2'}\n"
        f"    workloads: [postgresql]\n"
        f"    expect:\n"
        f"      vm.swappiness: 1\n"
        f"      vm.overcommit_memory: {{conflict: kubelet}}\n"
        f"      vm.swappiness_typo: 3\n"
    )
    report = tmp_path / "mine.xml"
    result = run("test", case, "--junit", report)
    assert result.exit_code == 1, result.output
    assert "vm.swappiness: expected vm.swappiness = 1; planned 3 (" in result.output
    assert (
        "expected a conflict on vm.overcommit_memory mentioning 'kubelet'; the plan has none" in result.output
    )
    assert "the plan does not set it" in result.output
    assert "0 passed, 3 failed, 0 invalid" in result.output
    xml = report.read_text()
    xmlschema.XMLSchema(REPO / "schemas" / "junit.xsd").validate(xml)
    assert xml.count("<failure ") == 3


def test_an_invalid_case_file_is_exit_2_with_file_and_line(tmp_path: Path) -> None:
    case = tmp_path / "bad.yml"
    case.write_text("cases:\n  - name: x\n    tree: somewhere\n    expekt: {}\n")
    result = run("test", case)
    assert result.exit_code == 2, result.output
    assert f"{case}:4:5: cases[0]: unknown key 'expekt'" in result.output
    missing = tmp_path / "missing.yml"
    missing.write_text("cases:\n  - name: x\n    tree: nowhere\n")
    result = run("test", missing)
    assert result.exit_code == 2 and "nowhere: no such captured tree" in result.output
