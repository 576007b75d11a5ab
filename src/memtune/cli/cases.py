"""``memtune test``: run YAML policy cases (memtune.policy.cases) like a test suite, for CI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memtune.policy.cases import junit, run_files, verdict


def test(
    paths: Annotated[list[Path], typer.Argument(help="Case files or directories of *.yml cases.")],
    *,
    junit_file: Annotated[
        Path | None, typer.Option("--junit", help="Also write the results as JUnit XML to this file.")
    ] = None,
) -> None:
    """Plan each case's facts with its policies and check the expected values, conflicts, skips and errors.

    Exit 0: every expectation holds; 1: some do not; 2: invalid input (a case file, policy or facts)."""
    outcomes, errors = run_files(paths)
    for outcome in outcomes:
        if outcome.problem is not None:
            typer.echo(f"FAIL  {outcome.file}: {outcome.case}: {outcome.what}: {outcome.problem}")
    for error in errors:
        typer.echo(f"error: {error}", err=True)
    failed = sum(1 for o in outcomes if o.problem)
    typer.echo(f"{len(outcomes) - failed} passed, {failed} failed, {len(errors)} invalid")
    if junit_file is not None:
        junit_file.write_text(junit(outcomes, errors), encoding="utf-8")
    raise typer.Exit(verdict(outcomes, errors))
