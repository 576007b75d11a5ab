"""Planning many hosts from saved facts, in forked worker processes for big fleets (the CLI's engine room).

A ``Job`` holds what every host needs (the policies, the hosts' variables); ``fan_out(work, files,
processes)`` calls ``work(slice)`` (a job's bound method) over contiguous slices of the hosts, in this process
or in forked workers that inherit it, and returns the slices' results in the hosts' order.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from memtune.audit.baseline import HostState, host_state
from memtune.audit.drift import drift
from memtune.engine.desired import DesiredState
from memtune.errors import PolicyError
from memtune.facts.model import FactsError, HostFacts
from memtune.hosts.files import FactsSource, load_host_facts
from memtune.hosts.vars import HostVars
from memtune.policy.model import PolicySet
from memtune.report import Format, HostPart, host_part, host_result
from memtune.report.picture import memory_picture

HOSTS_PER_WORKER = 2000
Files = list[tuple[str, FactsSource]]
Result = TypeVar("Result")
_NO_VARS = HostVars()


@dataclass(frozen=True)
class AuditOutcome:
    """One host of an offline audit: its result and (when asked) its baseline state, or why it has none."""

    host: str
    part: HostPart | None = None
    state: HostState | None = None
    error: str | None = None


@dataclass(frozen=True)
class Job:
    """Everything needed to plan a host from its facts file; shared by worker processes."""

    policies: PolicySet
    host_vars: dict[str, HostVars]
    vars_file: Path | None
    workload: list[str] | None

    def plan(self, host: str, file: FactsSource) -> DesiredState:
        return self.plan_facts(host, load_host_facts(file))

    def plan_facts(self, host: str, facts: HostFacts) -> DesiredState:
        values = self.host_vars.get(host, _NO_VARS)
        try:
            return values.plan(facts, self.policies, host, f"{self.vars_file}:{host}", self.workload)
        except PolicyError as exc:
            exc.message = f"host {host}: {exc.message}"
            raise

    def json_parts(self, files: Files) -> tuple[list[str], list[str]]:
        """``"host":{desired state}`` texts of the hosts that could be planned, and the others' errors."""
        parts, errors = [], []
        for host, file in files:
            try:
                parts.append(f"{json.dumps(host)}:{self.plan(host, file).model_dump_json()}")
            except (PolicyError, FactsError) as exc:
                errors.append(str(exc))
        return parts, errors


@dataclass(frozen=True)
class AuditJob:
    """Audit hosts with ``job``'s plans and render each host in ``formats`` where it is audited (in the
    worker processes), with its baseline state when ``with_state``."""

    job: Job
    formats: tuple[Format, ...]
    with_state: bool = False

    def audit(self, files: Files) -> list[AuditOutcome]:
        """Each host's part; a host whose facts or plan fail gets its error, and the others are still
        audited."""
        outcomes = []
        for host, file in files:
            try:
                facts = load_host_facts(file)
                desired = self.job.plan_facts(host, facts)
                groups = self.job.host_vars.get(host, _NO_VARS).group_names
                result = host_result(drift(desired, facts, host), groups, memory_picture(facts))
            except (PolicyError, FactsError) as exc:
                outcomes.append(AuditOutcome(host, error=str(exc)))
                continue
            state = host_state(facts) if self.with_state else None
            outcomes.append(AuditOutcome(host, host_part(result, self.formats), state))
        return outcomes


class StateReader:
    """Baseline states straight from facts files: no policies needed."""

    def states(self, files: Files) -> list[AuditOutcome]:
        """Each host's baseline state, or why its facts cannot be read."""
        outcomes = []
        for host, file in files:
            try:
                outcomes.append(AuditOutcome(host, state=host_state(load_host_facts(file))))
            except FactsError as exc:
                outcomes.append(AuditOutcome(host, error=str(exc)))
        return outcomes


_WORKER: dict[str, Callable[[Files], Any]] = {}


def _start_worker(work: Callable[[Files], Any]) -> None:
    # Ctrl-C reaches the whole process group: the parent stops the pool and exits 130; workers say nothing.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER["work"] = work


def _run_slice(files: Files) -> Any:
    return _WORKER["work"](files)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, which a container or taskset narrows)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def processes_for(hosts: int, requested: int) -> int:
    """``requested``, or (0) one process per HOSTS_PER_WORKER hosts; never more than the usable CPUs (a
    request above them is capped, with a note on standard error)."""
    cpus = usable_cpus()
    if requested > cpus:
        sys.stderr.write(f"note: --jobs {requested} capped at {cpus}, the CPUs this process can use\n")
        return cpus
    return requested or min(cpus, max(1, hosts // HOSTS_PER_WORKER))


def fan_out(work: Callable[[Files], Result], files: Files, processes: int) -> list[Result]:
    """``work(slice)`` for contiguous slices of ``files``, one per process; the results in order. ``work``
    reaches forked workers by inheritance (never pickled); the slices and results are."""
    # Policies, caches and imports live as long as the process: keep the collector off them (and, in
    # forked workers, from copying their pages).
    gc.freeze()
    if processes <= 1 or len(files) < 2:
        return [work(files)]
    size = -(-len(files) // processes)
    slices = [files[start : start + size] for start in range(0, len(files), size)]
    with multiprocessing.get_context("fork").Pool(processes, _start_worker, (work,)) as pool:
        results: list[Result] = pool.map(_run_slice, slices)
    return results
