"""The fleet report for people: rich tables of the failed checks, the hosts not audited and the values that
moved, then a summary line. A big fleet's findings are cut at TABLE_ROWS rows (the JSON has them all)."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table
from rich.text import Text

from memtune.report import Assembly, HostResult, summary_line, value_text
from memtune.terminal import printable

TABLE_ROWS = 500
Row = tuple[str, str, str, str, str, str, str]


def fragment(result: HostResult) -> list[Row]:
    """One row per finding of the host."""
    return [
        (
            result.host,
            check.name,
            finding.kind.value,
            value_text(check.desired),
            value_text(check.runtime),
            value_text(check.boot),
            finding.message,
        )
        for check in result.checks
        for finding in check.findings
    ]


def assemble(report: Assembly) -> str:
    out = io.StringIO()
    console = Console(file=out, highlight=False, soft_wrap=False, width=200, color_system=None)
    rows = [row for rows in report.fragments for row in rows]
    if rows:
        drift = Table("host", "check", "kind", "desired", "runtime", "boot", "why", title="drift")
        for row in rows[:TABLE_ROWS]:
            drift.add_row(*(Text(printable(cell)) for cell in row))
        console.print(drift)
        if len(rows) > TABLE_ROWS:
            console.print(f"… and {len(rows) - TABLE_ROWS} more findings (--format json has them all)")
    if report.errors:
        errors = Table("host", "error", title="not audited")
        for error in report.errors:
            errors.add_row(Text(printable(error.host)), Text(printable(error.message)))
        console.print(errors)
    if report.moved:
        moved = Table("host", "knob", "field", "baseline", "now", title=f"moved since {report.baseline}")
        for move in report.moved[:TABLE_ROWS]:
            cells = (move.host, move.knob, move.field, value_text(move.before), value_text(move.after))
            moved.add_row(*(Text(printable(cell)) for cell in cells))
        console.print(moved)
        if len(report.moved) > TABLE_ROWS:
            console.print(f"… and {len(report.moved) - TABLE_ROWS} more moved values")
    console.print(summary_line(report.summary, report.baseline), markup=False)
    return out.getvalue()
