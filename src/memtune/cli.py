"""The ``memtune`` command: validate policies, plan hosts offline from saved facts, explain, schema.

Exit codes: 0 success; 2 invalid input (policy, facts, variables or arguments), with one message naming
the file, line and column.
"""

from __future__ import annotations

import enum
import gc
import json
import multiprocessing
import os
import sys
from dataclasses import dataclass
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
from memtune.policy import PolicySet, bundled_policy_dir, policy_json_schema
from memtune.policy_load import load_policy_set

EXIT_INVALID = 2
_HOSTS_PER_WORKER = 2000
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


@dataclass(frozen=True)
class _Job:
    """Everything needed to plan a host from its facts file; shared by worker processes."""

    policies: PolicySet
    host_vars: dict[str, HostVars]
    vars_file: Path | None
    workload: list[str] | None

    def plan(self, host: str, file: Path) -> DesiredState:
        values = self.host_vars.get(host, _NO_VARS)
        try:
            return plan_host(
                load_host_facts(file),
                self.policies,
                host=host,
                groups=values.group_names,
                workloads=self.workload or values.memtune_workloads,
                inputs=values.memtune_inputs,
                inline=values.inline_policies(f"{self.vars_file}:{host}", host)
                if values is not _NO_VARS
                else (),
            )
        except PolicyError as exc:
            exc.message = f"host {host}: {exc.message}"
            raise

    def json_parts(self, files: list[tuple[str, Path]]) -> tuple[list[str], str | None]:
        """``"host":{desired state}`` texts, or the first error's message."""
        try:
            return [
                f"{json.dumps(host)}:{self.plan(host, file).model_dump_json()}" for host, file in files
            ], None
        except (PolicyError, FactsError) as exc:
            return [], str(exc)


_NO_VARS = HostVars()
_WORKER: dict[str, _Job] = {}


def _start_worker(job: _Job) -> None:
    _WORKER["job"] = job


def _worker_parts(files: list[tuple[str, Path]]) -> tuple[list[str], str | None]:
    return _WORKER["job"].json_parts(files)


def _job(policy: list[Path] | None, vars_file: Path | None, workload: list[str] | None) -> _Job:
    return _Job(_policies(policy), load_vars(vars_file) if vars_file else {}, vars_file, workload)


def _json_parts(job: _Job, files: list[tuple[str, Path]], jobs: int) -> list[str]:
    """Plan in ``jobs`` forked processes (contiguous slices, so the output order is the hosts' order)."""
    # Policies, caches and imports live as long as the process: keep the collector off them (and, in
    # forked workers, from copying their pages).
    gc.freeze()
    if jobs <= 1:
        parts, error = job.json_parts(files)
        results = [(parts, error)]
    else:
        size = -(-len(files) // jobs)
        slices = [files[start : start + size] for start in range(0, len(files), size)]
        with multiprocessing.get_context("fork").Pool(jobs, _start_worker, (job,)) as pool:
            results = pool.map(_worker_parts, slices)
    for _, error in results:
        if error is not None:
            raise _fail(error)
    return [part for parts, _ in results for part in parts]


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
    *,
    policy: PolicyOption = None,
    vars_file: VarsOption = None,
    workload: WorkloadOption = None,
    output: Annotated[
        Format, typer.Option("--format", help="table for people, json for machines.")
    ] = Format.table,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs", min=0, help="Processes for --format json; 0: one per 2000 hosts, up to the CPUs."
        ),
    ] = 0,
) -> None:
    """Plan every host's desired memory settings from saved facts (offline)."""
    try:
        job = _job(policy, vars_file, workload)
        files = list(facts_files(facts).items())
    except (PolicyError, FactsError) as exc:
        raise _fail(str(exc)) from None
    if output is Format.json:
        workers = jobs or min(os.cpu_count() or 1, max(1, len(files) // _HOSTS_PER_WORKER))
        sys.stdout.write("{" + ",".join(_json_parts(job, files, workers)) + "}\n")
        return
    try:
        plans = {host: job.plan(host, file) for host, file in files}
    except (PolicyError, FactsError) as exc:
        raise _fail(str(exc)) from None
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
        job = _job(policy, vars_file, workload)
        plans = {name: job.plan(name, file) for name, file in facts_files(facts).items()}
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
