"""The fleet report in Prometheus' text exposition format, for node_exporter's textfile collector.

``memtune_drift{host,knob,node,kind} 1`` for each finding (``node`` empty where no NUMA node applies),
``memtune_moved{host,knob,field} 1`` for each value that moved since the baseline, and per host
``memtune_checks``, ``memtune_checks_failed``, ``memtune_host_drifted`` and ``memtune_host_error``.
"""

from __future__ import annotations

from collections.abc import Iterable

from memtune.report import FleetReport

Labels = tuple[tuple[str, str], ...]


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(name: str, help_text: str, samples: Iterable[tuple[Labels, int]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    seen: set[Labels] = set()
    for labels, value in samples:
        if labels in seen:
            continue
        seen.add(labels)
        pairs = ",".join(f'{key}="{_label_value(text)}"' for key, text in labels)
        lines.append(f"{name}{{{pairs}}} {value}")
    return lines


def _per_host(name: str, help_text: str, values: Iterable[tuple[str, int]]) -> list[str]:
    return _family(name, help_text, (((("host", host),), value) for host, value in values))


def render(report: FleetReport) -> str:
    hosts = report.hosts
    drift = (
        (
            (
                ("host", host.host),
                ("knob", check.knob),
                ("node", "" if check.node is None else str(check.node)),
                ("kind", finding.kind.value),
            ),
            1,
        )
        for host in hosts
        for check in host.checks
        for finding in check.findings
    )
    lines = [
        *_family("memtune_drift", "A memtune audit finding (host, knob, NUMA node, kind).", drift),
        *_per_host(
            "memtune_checks",
            "Planned values memtune checked on the host.",
            ((host.host, len(host.checks)) for host in hosts),
        ),
        *_per_host(
            "memtune_checks_failed",
            "Checks with at least one finding on the host.",
            ((host.host, sum(not check.ok for check in host.checks)) for host in hosts),
        ),
        *_per_host(
            "memtune_host_drifted",
            "1 when the host differs from its policies, else 0.",
            ((host.host, int(host.drifted)) for host in hosts),
        ),
        *_per_host(
            "memtune_host_error",
            "1 when the host could not be audited (unreadable facts, plan error, unreachable).",
            ((error.host, 1) for error in report.errors),
        ),
    ]
    if report.baseline is not None:
        lines += _family(
            "memtune_moved",
            "A value that moved since the baseline (host, knob, runtime or boot).",
            (((("host", m.host), ("knob", m.knob), ("field", m.field)), 1) for m in report.moved),
        )
    return "\n".join(lines) + "\n"
