"""The fleet report for people: a rich table for terminals, Markdown for pull-request comments."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from memtune.drift import Kind
from memtune.report import FleetReport, value_text

# A pull-request comment holds at most 65,536 characters: list this many hosts in full, count the rest.
MARKDOWN_HOSTS = 40


def _summary(report: FleetReport) -> str:
    summary = report.summary
    kinds = ", ".join(f"{count} {kind.value}" for kind, count in summary.findings.items() if count)
    text = (
        f"{summary.hosts} hosts: {summary.drifted_hosts} drifted, {summary.errors} not audited; "
        f"{summary.failed_checks} of {summary.checks} checks failed" + (f" ({kinds})" if kinds else "")
    )
    if report.baseline is not None:
        text += f"; {summary.moved} values moved since the baseline {report.baseline}"
    return text


def table(report: FleetReport) -> str:
    """Failed checks, hosts not audited and moved values as tables, then the summary line."""
    out = io.StringIO()
    console = Console(file=out, highlight=False, soft_wrap=False, width=200, color_system=None)
    if report.summary.failed_checks:
        drift = Table("host", "check", "kind", "desired", "runtime", "boot", "why", title="drift")
        for host in report.hosts:
            for check in host.checks:
                for finding in check.findings:
                    drift.add_row(
                        host.host,
                        check.name,
                        finding.kind.value,
                        value_text(check.desired),
                        value_text(check.runtime),
                        value_text(check.boot),
                        finding.message,
                    )
        console.print(drift)
    if report.errors:
        errors = Table("host", "error", title="not audited")
        for error in report.errors:
            errors.add_row(error.host, error.message)
        console.print(errors)
    if report.moved:
        moved = Table("host", "knob", "field", "baseline", "now", title=f"moved since {report.baseline}")
        for move in report.moved:
            moved.add_row(move.host, move.knob, move.field, value_text(move.before), value_text(move.after))
        console.print(moved)
    console.print(_summary(report), markup=False)
    return out.getvalue()


def _cell(value: object) -> str:
    return value_text(value).replace("|", "\\|").replace("\n", " ")


def markdown(report: FleetReport) -> str:
    """A summary, a count per kind, then each drifted host's findings (the first MARKDOWN_HOSTS hosts)."""
    verdict = {0: "no drift", 1: "drift found", 2: "hosts could not be audited"}[report.exit_code]
    lines = [
        f"## memtune audit: {verdict}",
        "",
        _summary(report),
        "",
        "| kind | findings |",
        "| --- | ---: |",
    ]
    lines += [f"| `{kind.value}` | {report.summary.findings[kind]} |" for kind in Kind]
    if report.baseline is not None:
        lines.append(f"| `moved` (since the baseline) | {report.summary.moved} |")
    drifted = [host for host in report.hosts if host.drifted]
    for host in drifted[:MARKDOWN_HOSTS]:
        failed = [check for check in host.checks if not check.ok]
        lines += [
            "",
            f"<details><summary><code>{host.host}</code>: {len(failed)} checks failed</summary>",
            "",
        ]
        lines += [
            "| check | kind | desired | runtime | boot | why |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for check in failed:
            for finding in check.findings:
                lines.append(
                    f"| `{check.name}` | {finding.kind.value} | {_cell(check.desired)} "
                    f"| {_cell(check.runtime)} | {_cell(check.boot)} | {_cell(finding.message)} |"
                )
        lines += ["", "</details>"]
    if len(drifted) > MARKDOWN_HOSTS:
        lines += [
            "",
            f"… and {len(drifted) - MARKDOWN_HOSTS} more drifted hosts (see the JSON or JUnit report).",
        ]
    if report.errors:
        lines += ["", "### Not audited", "", "| host | error |", "| --- | --- |"]
        lines += [f"| `{error.host}` | {_cell(error.message)} |" for error in report.errors]
    if report.moved:
        lines += ["", f"### Moved since the baseline `{report.baseline}`", ""]
        lines += ["| host | knob | field | baseline | now |", "| --- | --- | --- | --- | --- |"]
        lines += [
            f"| `{m.host}` | `{m.knob}` | {m.field} | {_cell(m.before)} | {_cell(m.after)} |"
            for m in report.moved[: MARKDOWN_HOSTS * 10]
        ]
    return "\n".join(lines) + "\n"
