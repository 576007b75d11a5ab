"""The fleet report as JUnit XML (the Ant/Jenkins flavour every CI reads; ``schemas/junit.xsd``).

One ``testsuite`` per host with one ``testcase`` per check (host, knob and NUMA node): a failed check has one
``failure`` whose ``type`` lists its finding kinds. A host that could not be audited is a suite with one
errored testcase; baseline movements are a suite of their own, ``baseline``, one failed testcase each.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape, quoteattr

from memtune.audit.drift import Check
from memtune.report import Assembly, HostResult
from memtune.report.format import value_text

# Characters XML 1.0 cannot carry, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
SUITES_NAME = "memtune audit"


def _attr(value: object) -> str:
    return quoteattr(_NOT_XML.sub("?", str(value)))


def _text(value: object) -> str:
    return escape(_NOT_XML.sub("?", str(value)))


def _suite(name: str, tests: int, failures: int, errors: int, cases: list[str]) -> str:
    head = (
        f'  <testsuite name={_attr(name)} tests="{tests}" failures="{failures}" errors="{errors}" '
        f'skipped="0" time="0">\n'
    )
    return head + "".join(cases) + "  </testsuite>\n"


def _case(classname: str, name: str, problem: str = "") -> str:
    opening = f'    <testcase classname={_attr(classname)} name={_attr(name)} time="0"'
    return f"{opening}/>\n" if not problem else f"{opening}>\n{problem}    </testcase>\n"


def _failure(check: Check) -> str:
    kinds = ",".join(dict.fromkeys(finding.kind.value for finding in check.findings))
    message = "; ".join(finding.message for finding in check.findings)
    details = [
        f"desired: {value_text(check.desired)}",
        f"runtime: {value_text(check.runtime)}",
        f"boot: {value_text(check.boot)}" + (f" ({check.boot_source})" if check.boot_source else ""),
    ]
    if check.provenance is not None:
        details.append(
            f"from: {check.provenance.at()} rule {check.provenance.rule} ({check.provenance.layer})"
        )
    details += [f"{finding.kind.value}: {finding.message}" for finding in check.findings]
    body = _text("\n".join(details))
    return f"      <failure type={_attr(kinds)} message={_attr(message)}>{body}</failure>\n"


def fragment(result: HostResult) -> str:
    """The host's testsuite."""
    classname = f"memtune.{result.host}"
    cases = [
        _case(classname, check.name, _failure(check) if check.findings else "") for check in result.checks
    ]
    failed = sum(not check.ok for check in result.checks)
    return _suite(result.host, len(cases), failed, 0, cases)


def assemble(report: Assembly) -> str:
    suites = list(report.fragments)
    for error in report.errors:
        problem = f'      <error type="error" message={_attr(error.message)}>{_text(error.message)}</error>\n'
        suites.append(_suite(error.host, 1, 0, 1, [_case(f"memtune.{error.host}", "audit", problem)]))
    if report.moved:
        cases = [
            _case(
                f"memtune.{move.host}",
                f"{move.knob} ({move.field})",
                f'      <failure type="moved" message={_attr(move.message)}>'
                f"{_text(f'before: {value_text(move.before)}{chr(10)}after: {value_text(move.after)}')}"
                "</failure>\n",
            )
            for move in report.moved
        ]
        suites.append(_suite(f"baseline {report.baseline or ''}".strip(), len(cases), len(cases), 0, cases))
    summary = report.summary
    tests = summary.checks + summary.errors + summary.moved
    failures = summary.failed_checks + summary.moved
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<testsuites name={_attr(SUITES_NAME)} tests="{tests}" failures="{failures}" '
        f'errors="{summary.errors}" time="0">\n' + "".join(suites) + "</testsuites>\n"
    )
