"""The fleet report as Markdown, for a pull-request or merge-request comment: the verdict, a count per kind,
then each drifted host's findings in a collapsed block (the first MARKDOWN_HOSTS hosts: a comment holds at
most 65,536 characters), the hosts not audited and the values that moved."""

from __future__ import annotations

import html

from memtune.audit.drift import Kind
from memtune.report import Assembly, HostResult, summary_line
from memtune.report.format import markdown_cell

MARKDOWN_HOSTS = 40
VERDICT = {0: "no drift", 1: "drift found", 2: "hosts could not be audited"}


def fragment(result: HostResult) -> str:
    """The host's collapsed block of findings; empty for a host without drift."""
    failed = [check for check in result.checks if not check.ok]
    if not failed:
        return ""
    name = html.escape(result.host)
    lines = ["", f"<details><summary><code>{name}</code>: {len(failed)} checks failed</summary>", ""]
    lines += ["| check | kind | desired | runtime | boot | why |", "| --- | --- | --- | --- | --- | --- |"]
    for check in failed:
        for finding in check.findings:
            lines.append(
                f"| `{check.name}` | {finding.kind.value} | {markdown_cell(check.desired)} "
                f"| {markdown_cell(check.runtime)} | {markdown_cell(check.boot)} "
                f"| {markdown_cell(finding.message)} |"
            )
    return "\n".join([*lines, "", "</details>"])


def assemble(report: Assembly) -> str:
    summary = report.summary
    lines = [
        f"## memtune audit: {VERDICT[summary.exit_code]}",
        "",
        summary_line(summary, report.baseline),
        "",
    ]
    lines += ["| kind | findings |", "| --- | ---: |"]
    lines += [f"| `{kind.value}` | {summary.findings[kind]} |" for kind in Kind]
    if report.baseline is not None:
        lines.append(f"| `moved` (since the baseline) | {summary.moved} |")
    blocks = [block for block in report.fragments if block]
    lines += blocks[:MARKDOWN_HOSTS]
    if len(blocks) > MARKDOWN_HOSTS:
        lines += [
            "",
            f"… and {len(blocks) - MARKDOWN_HOSTS} more drifted hosts (the JSON or JUnit report has them).",
        ]
    if report.errors:
        lines += ["", "### Not audited", "", "| host | error |", "| --- | --- |"]
        lines += [f"| `{error.host}` | {markdown_cell(error.message)} |" for error in report.errors]
    if report.moved:
        lines += ["", f"### Moved since the baseline `{report.baseline}`", ""]
        lines += ["| host | knob | field | baseline | now |", "| --- | --- | --- | --- | --- |"]
        lines += [
            f"| `{m.host}` | `{m.knob}` | {m.field} | {markdown_cell(m.before)} | {markdown_cell(m.after)} |"
            for m in report.moved[: MARKDOWN_HOSTS * 10]
        ]
        if len(report.moved) > MARKDOWN_HOSTS * 10:
            lines.append(f"\n… and {len(report.moved) - MARKDOWN_HOSTS * 10} more moved values.")
    return "\n".join(lines) + "\n"
