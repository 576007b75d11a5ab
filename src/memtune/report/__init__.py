"""The fleet report: every host's drift, the hosts that could not be audited, and what moved since a
baseline, rendered for people (table, and html: one self-contained page), machines (json, schema in
``schemas/report.schema.json``), CI (junit, markdown) and monitoring (prometheus).

``FleetReport.exit_code`` is the audit's: 0 nothing to report, 1 drift or movement, 2 any host or input
that could not be read (bad input wins over drift).
"""

from __future__ import annotations

import enum
import functools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from memtune.audit.baseline import Baseline, Movement
from memtune.audit.drift import Check, HostDrift, Kind
from memtune.model import Model
from memtune.report.picture import MemoryPicture

SCHEMA_VERSION: Literal[1] = 1
EXIT_CLEAN, EXIT_DRIFT, EXIT_INVALID = 0, 1, 2


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    junit = "junit"
    markdown = "markdown"
    prometheus = "prometheus"
    html = "html"


class HostError(Model):
    """A host that could not be audited (unreadable or invalid facts, a plan error, unreachable)."""

    host: str
    message: str


class HostResult(Model):
    """One host's checks; ``counts``: findings per kind (every kind present); ``groups``: its inventory
    groups (empty when the audit had no inventory variables); ``memory``: its memory picture (none in
    reports written before it was added)."""

    host: str
    drifted: bool
    counts: dict[Kind, int]
    checks: list[Check]
    groups: list[str] = []
    memory: MemoryPicture | None = None


class Summary(Model):
    hosts: int
    drifted_hosts: int
    errors: int
    checks: int
    failed_checks: int
    findings: dict[Kind, int]
    moved: int

    @property
    def exit_code(self) -> int:
        if self.errors:
            return EXIT_INVALID
        return EXIT_DRIFT if self.drifted_hosts or self.moved else EXIT_CLEAN


class FleetReport(Model):
    """What ``memtune audit`` and ``memtune.fleet.fleet_report`` report; ``moved`` is empty without a
    baseline and kept apart from the policy findings in every format."""

    schema_version: Literal[1] = SCHEMA_VERSION
    summary: Summary
    hosts: list[HostResult]
    errors: list[HostError] = []
    moved: list[Movement] = []
    baseline: str | None = None

    @property
    def exit_code(self) -> int:
        return self.summary.exit_code


def _counts(checks: Iterable[Check]) -> Counter[Kind]:
    return Counter(finding.kind for check in checks for finding in check.findings)


def host_result(
    drift: HostDrift, groups: Iterable[str] = (), memory: MemoryPicture | None = None
) -> HostResult:
    counts = _counts(drift.checks)
    return HostResult(
        host=drift.host,
        drifted=drift.drifted,
        counts={kind: counts[kind] for kind in Kind},
        checks=drift.checks,
        groups=list(groups),
        memory=memory,
    )


@dataclass(frozen=True)
class HostPart:
    """A host's counts and its rendered fragment in each format: what a worker process hands back, so
    the parent only sums and joins (``assemble``)."""

    host: str
    drifted: bool
    counts: dict[Kind, int]
    checks: int
    failed_checks: int
    fragments: dict[Format, Any]


def host_part(result: HostResult, formats: Iterable[Format]) -> HostPart:
    return HostPart(
        host=result.host,
        drifted=result.drifted,
        counts=result.counts,
        checks=len(result.checks),
        failed_checks=sum(not check.ok for check in result.checks),
        fragments={output: _renderer(output).fragment(result) for output in formats},
    )


def summarize(parts: list[HostPart], errors: list[HostError], moved: list[Movement]) -> Summary:
    findings = dict.fromkeys(Kind, 0)
    for part in parts:
        for kind, count in part.counts.items():
            findings[kind] += count
    return Summary(
        hosts=len(parts) + len(errors),
        drifted_hosts=sum(part.drifted for part in parts),
        errors=len(errors),
        checks=sum(part.checks for part in parts),
        failed_checks=sum(part.failed_checks for part in parts),
        findings=findings,
        moved=len(moved),
    )


def fleet_report(
    results: Iterable[HostResult],
    errors: Iterable[HostError] = (),
    moved: Iterable[Movement] = (),
    baseline: str | None = None,
) -> FleetReport:
    """The report over the hosts' results (in the order given), errors and baseline movements."""
    hosts, errors, moved = list(results), list(errors), list(moved)
    summary = summarize([host_part(host, ()) for host in hosts], errors, moved)
    return FleetReport(summary=summary, hosts=hosts, errors=errors, moved=moved, baseline=baseline)


class Renderer(Protocol):
    def fragment(self, result: HostResult) -> Any: ...

    def assemble(self, report: Assembly) -> str: ...


@dataclass(frozen=True)
class Assembly:
    """Everything a renderer joins: the summary, the hosts' fragments in its format, errors, movements."""

    summary: Summary
    fragments: list[Any]
    errors: list[HostError]
    moved: list[Movement]
    baseline: str | None


def assemble(
    output: Format,
    parts: list[HostPart],
    errors: list[HostError],
    moved: list[Movement],
    baseline: str | None,
    *,
    summary: Summary | None = None,
) -> str:
    """The whole report in ``output`` from the hosts' parts (each rendered with ``output`` among its
    formats) and their ``summary`` (computed when not given); ends with a newline."""
    summary = summary or summarize(parts, errors, moved)
    fragments = [part.fragments[output] for part in parts]
    return _renderer(output).assemble(Assembly(summary, fragments, errors, moved, baseline))


def render(report: FleetReport, output: Format) -> str:
    """The report as text in ``output``'s format, ending with a newline."""
    parts = [host_part(host, (output,)) for host in report.hosts]
    return assemble(output, parts, report.errors, report.moved, report.baseline)


@functools.cache
def _renderer(output: Format) -> Renderer:
    from memtune.report import html, json_text, junit, markdown, prometheus, table  # they import this module

    modules: dict[Format, Any] = {
        Format.html: html,
        Format.json: json_text,
        Format.junit: junit,
        Format.markdown: markdown,
        Format.prometheus: prometheus,
        Format.table: table,
    }
    renderer: Renderer = modules[output]
    return renderer


def json_schema(model: type[BaseModel], title: str) -> dict[str, Any]:
    """``model``'s JSON Schema (draft 2020-12) as published under ``schemas/``."""
    schema = model.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = title
    return schema


def report_json_schema() -> dict[str, Any]:
    """The JSON Schema of ``memtune audit --format json`` (``schemas/report.schema.json``)."""
    return json_schema(FleetReport, "memtune fleet report")


def baseline_json_schema() -> dict[str, Any]:
    """The JSON Schema of ``memtune baseline record``'s files (``schemas/baseline.schema.json``)."""
    return json_schema(Baseline, "memtune baseline")


def summary_line(summary: Summary, baseline: str | None) -> str:
    kinds = ", ".join(f"{count} {kind.value}" for kind, count in summary.findings.items() if count)
    text = (
        f"{summary.hosts} hosts: {summary.drifted_hosts} drifted, {summary.errors} not audited; "
        f"{summary.failed_checks} of {summary.checks} checks failed" + (f" ({kinds})" if kinds else "")
    )
    if baseline is not None:
        text += f"; {summary.moved} values moved since the baseline {baseline}"
    return text
