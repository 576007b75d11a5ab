"""The ``memtune`` command: validate policies, plan hosts offline from saved facts, explain, schema; audit,
baseline and diff live in ``memtune.cli.audit``.

Exit codes: 0 success; 2 invalid input (policy, facts, variables or arguments), with one message per
problem naming the file, line and column. ``audit`` also exits 1 on drift. A bug, an output that cannot be
written and Ctrl-C have their own codes (70, 74 or 141, 130: ``memtune.cli.errors``).
"""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from memtune import __version__
from memtune.cli import audit as cli_audit
from memtune.cli import cases as cli_policy_cases
from memtune.cli import report as cli_report
from memtune.cli.errors import GuardedGroup, OutputConsole, run_guarded
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
from memtune.engine.desired import DesiredState
from memtune.errors import PolicyError
from memtune.facts.model import FactsError
from memtune.hosts.files import facts_files
from memtune.hosts.jobs import fan_out, processes_for
from memtune.policy.load import load_policy_set
from memtune.policy.model import policy_json_schema
from memtune.report import baseline_json_schema, report_json_schema
from memtune.report.explain import explain as explain_knob
from memtune.report.explain import rows
from memtune.terminal import printable

app = typer.Typer(
    cls=GuardedGroup,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Plan Linux memory settings from policies and host facts; audit drift.",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"memtune {__version__}")
        raise typer.Exit()


@app.callback()
def options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Plan Linux memory settings from policies and host facts; audit drift."""


class Format(enum.StrEnum):
    table = "table"
    json = "json"


@app.command()
def validate(paths: Annotated[list[Path], typer.Argument(help="Policy files or directories.")]) -> None:
    """Check policy files: YAML, keys, types, expressions, layers. Prints one line per file."""
    try:
        policy_set = load_policy_set(paths)
    except PolicyError as exc:
        raise fail(str(exc)) from None
    names = [policy for policy in (policy_set.baseline,) if policy] + [
        *policy_set.workloads.values(),
        *policy_set.groups.values(),
        *policy_set.hosts.values(),
    ]
    for policy in names:
        typer.echo(f"ok  {policy.file}  ({policy.layer} {policy.name}, {len(policy.rules)} rules)")


@app.command()
def plan(
    facts: FactsOption,
    *,
    policy: PolicyOption = None,
    vars_file: VarsOption = None,
    workload: WorkloadOption = None,
    output: Annotated[
        Format, typer.Option("--format", help="table for people, json for machines.")
    ] = Format.table,
    jobs: JobsOption = 0,
) -> None:
    """Plan every host's desired memory settings from saved facts (offline)."""
    try:
        job = make_job(policy, vars_file, workload)
    except PolicyError as exc:
        raise fail(str(exc)) from None
    files = host_files(facts)
    if output is Format.json:
        results = fan_out(job.json_parts, files, processes_for(len(files), jobs))
        sys.stdout.write("{" + ",".join(part for parts, _errors in results for part in parts) + "}\n")
        report_errors([error for _parts, errors in results for error in errors])
        return
    plans: dict[str, DesiredState] = {}
    errors: list[str] = []
    for host, file in files:
        try:
            plans[host] = job.plan(host, file)
        except (PolicyError, FactsError) as exc:
            errors.append(str(exc))
    table = Table("host", "knob", "value", "from")
    for host, desired in plans.items():
        for knob, value, origin in rows(desired):
            table.add_row(Text(printable(host)), knob, Text(value), Text(origin))
    console = OutputConsole(highlight=False, soft_wrap=False, width=200)
    console.print(table)
    for host, desired in plans.items():
        for warning in desired.warnings:
            console.print(printable(f"warning: {host}: {warning}"), markup=False)
    report_errors(errors)


def report_errors(errors: list[str]) -> None:
    """Every host's error on standard error, then exit 2 when there was any (the others were planned)."""
    if errors:
        console = error_console()
        for error in errors:
            console.print(printable(f"error: {error}"), markup=False)
        raise typer.Exit(EXIT_INVALID)


@app.command()
def explain(
    knob: Annotated[
        str, typer.Argument(help="vm.swappiness, thp.enabled, hugepages.2048kB, cgroup.UNIT ...")
    ],
    facts: Annotated[
        Path, typer.Option("--facts", help="One host's facts JSON (or a directory with --host).")
    ],
    *,
    host: Annotated[
        str | None, typer.Option("--host", help="Host to explain when --facts has several.")
    ] = None,
    policy: PolicyOption = None,
    vars_file: VarsOption = None,
    workload: WorkloadOption = None,
) -> None:
    """Show where one knob's planned value comes from."""
    try:
        job = make_job(policy, vars_file, workload)
        files = facts_files(facts)
        if host is None and len(files) != 1:
            raise FactsError(
                f"{facts}: {len(files)} hosts; pick one with --host ({', '.join(list(files)[:5])}...)"
            )
        name = host or next(iter(files))
        if name not in files:
            raise FactsError(f"{facts}: no facts for host {name!r}")
        typer.echo(explain_knob(job.plan(name, files[name]), knob))
    except (PolicyError, FactsError) as exc:
        raise fail(str(exc)) from None


@app.command()
def schema(
    report: Annotated[
        bool, typer.Option("--report", help="The schema of `memtune audit --format json` instead.")
    ] = False,
    baseline: Annotated[
        bool, typer.Option("--baseline", help="The schema of `memtune baseline record`'s files instead.")
    ] = False,
) -> None:
    """Print the JSON Schema of policy files (for editors), of the audit report, or of baselines."""
    chosen = report_json_schema() if report else baseline_json_schema() if baseline else policy_json_schema()
    typer.echo(json.dumps(chosen, indent=2))


app.command(name="test")(cli_policy_cases.test)
app.command()(cli_audit.audit)
app.command()(cli_audit.diff)
app.add_typer(cli_audit.baseline_app, name="baseline")
app.add_typer(cli_report.report_app, name="report")


def main() -> None:
    run_guarded(app)
