"""``memtune report render``: a saved JSON report (``memtune audit --format json``) as another format,
the self-contained HTML page first of all.

Exit codes: 0 written; 2 the file cannot be read, is not JSON (a truncated file), is a report of another
schema version, or does not match the report's schema; nothing is written then.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from memtune.atomic_write import write_atomically
from memtune.cli.options import fail
from memtune.report import SCHEMA_VERSION, FleetReport, Format, render

report_app = typer.Typer(no_args_is_help=True, help="Render saved reports.")


def load_report(path: Path) -> FleetReport:
    """The report saved in ``path``; a ``ValueError`` saying what is wrong with it, and where."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        document: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        # The decoder stops at the end of a cut file, or reports the string that runs into it.
        ends_early = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        hint = " (the file ends early: truncated?)" if ends_early else ""
        raise ValueError(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}{hint}") from None
    if not isinstance(document, dict):
        got = type(document).__name__
        raise ValueError(f"{path}: not a memtune report: expected a JSON object, got {got}")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(
            f"{path}: a report of schema version {version!r}; this memtune reads version {SCHEMA_VERSION} "
            "(render it with the memtune that wrote it, or audit again)"
        )
    try:
        return FleetReport.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ValueError(f"{path}: not a memtune report at {where}: {first['msg']}{more}") from None


@report_app.command("render")
def render_report(
    report: Annotated[Path, typer.Argument(help="A JSON report saved by memtune audit --format json.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write.")],
    *,
    output_format: Annotated[Format, typer.Option("--format", help="The format to write.")] = Format.html,
) -> None:
    """Render a saved JSON fleet report as a self-contained HTML page (or another report format)."""
    try:
        loaded = load_report(report)
    except ValueError as exc:
        raise fail(str(exc)) from None
    try:
        write_atomically(output, render(loaded, output_format))
    except OSError as exc:
        raise fail(f"{output}: cannot write: {exc.strerror}") from None
    typer.echo(f"wrote {output} ({len(loaded.hosts)} hosts, {loaded.summary.errors} not audited)")
