"""The fleet report for people: rich tables of the failed checks, the hosts not audited and the values that
moved, then a summary line. A big fleet's findings are cut at TABLE_ROWS rows (the JSON has them all)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from memtune.report import Assembly, HostResult, summary_line
from memtune.report.format import console_text, text_cells, value_text

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
    return console_text(lambda console: _draw(console, report))


def _draw(console: Console, report: Assembly) -> None:
    rows = [row for rows in report.fragments for row in rows]
    if rows:
        drift = Table("host", "check", "kind", "desired", "runtime", "boot", "why", title="drift")
        for row in rows[:TABLE_ROWS]:
            drift.add_row(*text_cells(row))
        console.print(drift)
        if len(rows) > TABLE_ROWS:
            console.print(f"… and {len(rows) - TABLE_ROWS} more findings (--format json has them all)")
    if report.errors:
        errors = Table("host", "error", title="not audited")
        for error in report.errors:
            errors.add_row(*text_cells((error.host, error.message)))
        console.print(errors)
    if report.moved:
        moved = Table("host", "knob", "field", "baseline", "now", title=f"moved since {report.baseline}")
        for move in report.moved[:TABLE_ROWS]:
            cells = (move.host, move.knob, move.field, value_text(move.before), value_text(move.after))
            moved.add_row(*text_cells(cells))
        console.print(moved)
        if len(report.moved) > TABLE_ROWS:
            console.print(f"… and {len(report.moved) - TABLE_ROWS} more moved values")
    console.print(summary_line(report.summary, report.baseline), markup=False)
