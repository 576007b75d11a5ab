"""What the ``memtune`` commands share: their options, the error exit, and loading a planning job."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from memtune.facts.model import FactsError
from memtune.hosts.files import facts_files
from memtune.hosts.jobs import Files, Job
from memtune.hosts.vars import load_vars
from memtune.policy.load import load_policy_set
from memtune.policy.model import PolicySet, bundled_policy_dir
from memtune.terminal import printable

EXIT_INVALID = 2

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
FactsOption = Annotated[
    Path,
    typer.Option("--facts", help="Facts JSON file, directory of them, or an Ansible jsonfile fact cache."),
]
JobsOption = Annotated[
    int,
    typer.Option("--jobs", min=0, help="Worker processes; 0: one per 2000 hosts, up to the CPUs."),
]


def error_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str) -> typer.Exit:
    console = error_console()
    for line in message.splitlines() or [message]:  # PolicyErrors: one problem per line
        console.print(printable(f"error: {line}"), markup=False)
    return typer.Exit(EXIT_INVALID)


def host_files(facts: Path) -> Files:
    """The hosts' facts files under ``--facts``, in order; exit 2 when ``--facts`` cannot be read."""
    try:
        return list(facts_files(facts).items())
    except FactsError as exc:
        raise fail(str(exc)) from None


def policies(paths: list[Path] | None) -> PolicySet:
    return load_policy_set(paths or [bundled_policy_dir()])


def make_job(policy: list[Path] | None, vars_file: Path | None, workload: list[str] | None) -> Job:
    """The policies and variables every host is planned with (PolicyError when one is invalid)."""
    return Job(policies(policy), load_vars(vars_file) if vars_file else {}, vars_file, workload)
