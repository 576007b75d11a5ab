"""The ``memtune`` command: validate policies, plan hosts offline from saved facts, explain, schema.

Exit codes: 0 success; 2 invalid input (policy, facts, variables or arguments), with one message naming
the file, line and column.
"""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from memtune.desired import DesiredState
from memtune.errors import PolicyError
from memtune.explain import explain as explain_knob
from memtune.explain import rows
from memtune.facts import FactsError
from memtune.hosts import HostVars, facts_files, load_host_facts, load_vars
from memtune.plan import plan as plan_host
from memtune.policy import PolicySet, bundled_policy_dir, load_policy_set, policy_json_schema

EXIT_INVALID = 2
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Plan Linux memory settings from policies and host facts.",
)


class Format(enum.StrEnum):
    table = "table"
    json = "json"


PolicyOption = Annotated[
    list[Path] | None,
    typer.Option("--policy", help="Policy file or directory (repeatable); default: the bundled policies/."),
]
VarsOption = Annotated[
    Path | None,
    typer.Option(
        "--vars", help="YAML/JSON mapping host -> memtune_inputs, memtune_workloads, group_names, ..."
    ),
]
WorkloadOption = Annotated[
    list[str] | None,
    typer.Option(
        "--workload", help="Force these workloads for every host instead of the detected ones (repeatable)."
    ),
]


def _fail(message: str) -> typer.Exit:
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"error: {message}", markup=False)
    return typer.Exit(EXIT_INVALID)


def _policies(paths: list[Path] | None) -> PolicySet:
    return load_policy_set(paths or [bundled_policy_dir()])


def _plan_all(
    facts: Path, policy: list[Path] | None, vars_file: Path | None, workload: list[str] | None
) -> dict[str, DesiredState]:
    policies = _policies(policy)
    host_vars = load_vars(vars_file) if vars_file else {}
    plans: dict[str, DesiredState] = {}
    for host, file in facts_files(facts).items():
        values = host_vars.get(host, HostVars())
        try:
            plans[host] = plan_host(
                load_host_facts(file),
                policies,
                host=host,
                groups=values.group_names,
                workloads=workload or values.memtune_workloads,
                inputs=values.memtune_inputs,
                inline=values.inline_policies(f"{vars_file}:{host}"),
            )
        except PolicyError as exc:
            exc.message = f"host {host}: {exc.message}"
            raise
    return plans


@app.command()
def validate(paths: Annotated[list[Path], typer.Argument(help="Policy files or directories.")]) -> None:
    """Check policy files: YAML, keys, types, expressions, layers. Prints one line per file."""
    try:
        policy_set = load_policy_set(paths)
    except PolicyError as exc:
        raise _fail(str(exc)) from None
    names = [policy for policy in (policy_set.baseline,) if policy] + [
        *policy_set.workloads.values(),
        *policy_set.groups.values(),
        *policy_set.hosts.values(),
    ]
    for policy in names:
        typer.echo(f"ok  {policy.file}  ({policy.layer} {policy.name}, {len(policy.rules)} rules)")


@app.command()
def plan(
    facts: Annotated[
        Path, typer.Option("--facts", help="Facts JSON file, directory of them, or fact cache.")
    ],
    policy: PolicyOption = None,
    vars_file: VarsOption = None,
    workload: WorkloadOption = None,
    output: Annotated[
        Format, typer.Option("--format", help="table for people, json for machines.")
    ] = Format.table,
) -> None:
    """Plan every host's desired memory settings from saved facts (offline)."""
    try:
        plans = _plan_all(facts, policy, vars_file, workload)
    except (PolicyError, FactsError) as exc:
        raise _fail(str(exc)) from None
    if output is Format.json:
        document = {host: desired.model_dump(mode="json") for host, desired in plans.items()}
        sys.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")
        return
    table = Table("host", "knob", "value", "from")
    for host, desired in plans.items():
        for knob, value, origin in rows(desired):
            table.add_row(host, knob, value, origin)
    console = Console(highlight=False, soft_wrap=False, width=200)
    console.print(table)
    for host, desired in plans.items():
        for warning in desired.warnings:
            console.print(f"warning: {host}: {warning}", markup=False)


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
        plans = _plan_all(facts, policy, vars_file, workload)
        if host is None and len(plans) != 1:
            raise FactsError(
                f"{facts}: {len(plans)} hosts; pick one with --host ({', '.join(list(plans)[:5])}...)"
            )
        name = host or next(iter(plans))
        if name not in plans:
            raise FactsError(f"{facts}: no facts for host {name!r}")
        typer.echo(explain_knob(plans[name], knob))
    except (PolicyError, FactsError) as exc:
        raise _fail(str(exc)) from None


@app.command()
def schema() -> None:
    """Print the JSON Schema of policy files (for editors)."""
    typer.echo(json.dumps(policy_json_schema(), indent=2))


def main() -> None:
    app()
