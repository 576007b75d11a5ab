"""``memtune audit``, ``memtune baseline record`` and ``memtune diff``: drift, baselines and policy changes
from saved facts, offline, for CI jobs that cannot reach the hosts.

Exit codes: 0 no drift (nothing moved, nothing changed with ``diff --exit-code``); 1 drift found, values moved
since the baseline, or (``diff --exit-code``) planned values change; 2 invalid input: a policy, variables or
baseline file that cannot be used stops before any host; a host whose facts or plan fail is reported as an
error while the other hosts are still audited, and the exit code is 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from memtune.atomic_write import write_atomically
from memtune.audit.baseline import dump_baseline, load_baseline, moved
from memtune.audit.diff import DiffJob, PlanChange, render_diff
from memtune.cli.errors import EXIT_OUTPUT, OUTPUT_ERRNOS
from memtune.cli.options import (
    EXIT_INVALID,
    FactsOption,
    JobsOption,
    PolicyOption,
    VarsOption,
    WorkloadOption,
    error_console,
    fail,
    host_files,
    make_job,
)
from memtune.errors import PolicyError
from memtune.facts.model import FactsError
from memtune.hosts.jobs import AuditJob, AuditOutcome, StateReader, fan_out, processes_for
from memtune.report import Format, HostError, assemble, summarize
from memtune.terminal import printable

baseline_app = typer.Typer(no_args_is_help=True, help="Record the fleet's current state as a baseline.")

SaveOption = Annotated[
    list[str] | None,
    typer.Option(
        "--save",
        metavar="FORMAT=FILE",
        help="Write the report in FORMAT (json, junit, markdown, prometheus, table, html) to FILE; "
        "repeatable.",
    ),
]


def _saves(saves: list[str] | None) -> list[tuple[Format, Path]]:
    found = []
    for item in saves or []:
        name, sep, file = item.partition("=")
        if not sep or not file or name not in Format.__members__:
            raise fail(f"--save {item}: expected FORMAT=FILE with FORMAT one of {', '.join(Format)}")
        found.append((Format(name), Path(file)))
    return found


def _report_errors(errors: list[HostError]) -> None:
    console = error_console()
    for error in errors:
        console.print(printable(f"error: host {error.host}: {error.message}"), markup=False)


def _write(path: Path, text: str) -> None:
    """A --save file; a full disk is an output error (74), a path that cannot be written bad input (2)."""
    try:
        write_atomically(path, text)
    except OSError as exc:
        if exc.errno in OUTPUT_ERRNOS:
            error_console().print(printable(f"error: {path}: cannot write: {exc.strerror}"), markup=False)
            raise typer.Exit(EXIT_OUTPUT) from None
        raise fail(f"{path}: cannot write: {exc.strerror}") from None


def audit(
    facts: FactsOption,
    *,
    policy: PolicyOption = None,
    vars_file: VarsOption = None,
    workload: WorkloadOption = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline", help="Also report what moved since this baseline (memtune baseline record)."
        ),
    ] = None,
    output: Annotated[
        Format, typer.Option("--format", help="Report format on standard output.")
    ] = Format.table,
    save: SaveOption = None,
    jobs: JobsOption = 0,
) -> None:
    """Audit drift from saved facts (offline): every host against its policies, and optionally a baseline.

    Exit 0: no drift; 1: drift found or values moved; 2: invalid input (other hosts are still reported)."""
    saves = _saves(save)
    try:
        plans = make_job(policy, vars_file, workload)
        recorded = load_baseline(baseline) if baseline else None
    except (PolicyError, FactsError) as exc:
        raise fail(str(exc)) from None
    files = host_files(facts)
    formats = tuple(dict.fromkeys([output, *(fmt for fmt, _path in saves)]))
    job = AuditJob(plans, formats, with_state=recorded is not None)
    outcomes: list[AuditOutcome] = [
        outcome for part in fan_out(job.audit, files, processes_for(len(files), jobs)) for outcome in part
    ]
    parts = [o.part for o in outcomes if o.part is not None]
    errors = [HostError(host=o.host, message=o.error) for o in outcomes if o.error is not None]
    movements = []
    if recorded is not None:
        current = {o.host: o.state for o in outcomes if o.state is not None}
        movements = moved(recorded, current, {error.host for error in errors})
    where = str(baseline) if baseline else None
    summary = summarize(parts, errors, movements)
    texts = {fmt: assemble(fmt, parts, errors, movements, where, summary=summary) for fmt in formats}
    for fmt, path in saves:
        _write(path, texts[fmt])
    sys.stdout.write(texts[output])
    sys.stdout.flush()
    _report_errors(errors)
    raise typer.Exit(summary.exit_code)


@baseline_app.command("record")
def record(
    facts: FactsOption,
    output: Annotated[Path, typer.Option("--output", "-o", help="The baseline file to write.")],
    *,
    jobs: JobsOption = 0,
) -> None:
    """Store every host's current values (runtime and boot, per knob and NUMA node) from saved facts.

    Hosts whose facts cannot be read are left out, named on standard error, and the exit code is 2."""
    files = host_files(facts)
    outcomes = [
        o for part in fan_out(StateReader().states, files, processes_for(len(files), jobs)) for o in part
    ]
    hosts = {o.host: o.state for o in outcomes if o.state is not None}
    _write(output, dump_baseline(hosts))
    errors = [HostError(host=o.host, message=o.error) for o in outcomes if o.error is not None]
    _report_errors(errors)
    typer.echo(f"recorded {len(hosts)} hosts in {output}" + (f"; {len(errors)} left out" if errors else ""))
    raise typer.Exit(EXIT_INVALID if errors else 0)


def diff(
    facts: FactsOption,
    policy_new: Annotated[
        list[Path], typer.Option("--policy-new", help="The changed policy file or directory (repeatable).")
    ],
    *,
    policy: PolicyOption = None,
    vars_file: VarsOption = None,
    workload: WorkloadOption = None,
    output: Annotated[
        str, typer.Option("--format", help="table, json or markdown (for a pull-request comment).")
    ] = "table",
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 1 when any planned value changes.")
    ] = False,
    jobs: JobsOption = 0,
) -> None:
    """Show which planned values a policy change moves on each host of a saved fleet (--policy: the old
    policies, default the bundled ones; --policy-new: the new)."""
    if output not in ("table", "json", "markdown"):
        raise fail(f"--format {output}: expected table, json or markdown")
    try:
        job = DiffJob(make_job(policy, vars_file, workload), make_job(policy_new, vars_file, workload))
    except PolicyError as exc:
        raise fail(str(exc)) from None
    files = host_files(facts)
    changes: list[PlanChange] = []
    errors: dict[str, str] = {}
    for part in fan_out(job.diff, files, processes_for(len(files), jobs)):
        for host, host_changes, error in part:
            changes += host_changes
            if error is not None:
                errors[host] = error
    typer.echo(render_diff(changes, errors, len(files), output), nl=False)
    if errors:
        raise typer.Exit(EXIT_INVALID)
    raise typer.Exit(1 if exit_code and changes else 0)
