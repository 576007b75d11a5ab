"""The fleet report: every host's drift, the hosts that could not be audited, and what moved since a
baseline, rendered for people (table), machines (json, schema in ``schemas/report.schema.json``), CI (junit,
markdown) and monitoring (prometheus).

``FleetReport.exit_code`` is the audit's: 0 nothing to report, 1 drift or movement, 2 any host or input
that could not be read (bad input wins over drift).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from memtune.baseline import Movement
from memtune.drift import Check, HostDrift, Kind

SCHEMA_VERSION: Literal[1] = 1
EXIT_CLEAN, EXIT_DRIFT, EXIT_INVALID = 0, 1, 2


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    junit = "junit"
    markdown = "markdown"
    prometheus = "prometheus"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HostError(_Model):
    """A host that could not be audited (unreadable or invalid facts, a plan error, unreachable)."""

    host: str
    message: str


class HostResult(_Model):
    """One host's checks; ``counts``: findings per kind (every kind present)."""

    host: str
    drifted: bool
    counts: dict[Kind, int]
    checks: list[Check]


class Summary(_Model):
    hosts: int
    drifted_hosts: int
    errors: int
    checks: int
    failed_checks: int
    findings: dict[Kind, int]
    moved: int


class FleetReport(_Model):
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
        if self.errors:
            return EXIT_INVALID
        return EXIT_DRIFT if self.summary.drifted_hosts or self.moved else EXIT_CLEAN


def _counts(checks: Iterable[Check]) -> Counter[Kind]:
    return Counter(finding.kind for check in checks for finding in check.findings)


def host_result(drift: HostDrift) -> HostResult:
    counts = _counts(drift.checks)
    return HostResult(
        host=drift.host,
        drifted=drift.drifted,
        counts={kind: counts[kind] for kind in Kind},
        checks=drift.checks,
    )


def fleet_report(
    results: Iterable[HostResult],
    errors: Iterable[HostError] = (),
    moved: Iterable[Movement] = (),
    baseline: str | None = None,
) -> FleetReport:
    """The report over the hosts' results (in the order given), errors and baseline movements."""
    hosts = list(results)
    findings: Counter[Kind] = Counter()
    for host in hosts:
        findings.update(host.counts)
    errors, moved = list(errors), list(moved)
    summary = Summary(
        hosts=len(hosts) + len(errors),
        drifted_hosts=sum(host.drifted for host in hosts),
        errors=len(errors),
        checks=sum(len(host.checks) for host in hosts),
        failed_checks=sum(not check.ok for host in hosts for check in host.checks),
        findings={kind: findings[kind] for kind in Kind},
        moved=len(moved),
    )
    return FleetReport(summary=summary, hosts=hosts, errors=errors, moved=moved, baseline=baseline)


def report_json_schema() -> dict[str, Any]:
    """The JSON Schema of ``memtune audit --format json`` (published as ``schemas/report.schema.json``)."""
    schema = FleetReport.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "memtune fleet report"
    return schema


def render(report: FleetReport, output: Format) -> str:
    """The report as text in ``output``'s format, ending with a newline."""
    from memtune.report import junit, prometheus, text  # the renderers import this module's models

    if output is Format.json:
        return report.model_dump_json() + "\n"
    renderers = {
        Format.table: text.table,
        Format.junit: junit.render,
        Format.markdown: text.markdown,
        Format.prometheus: prometheus.render,
    }
    return renderers[output](report)


def value_text(value: Any) -> str:
    """A value as people read it: ``-`` for none, dicts as ``k=v`` pairs."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{key}={item}" for key, item in value.items())
    return str(value)
