"""The fleet report in Prometheus' text exposition format, for node_exporter's textfile collector.

``memtune_drift{host,knob,node,kind} 1`` for each finding (``node`` empty where no NUMA node applies),
``memtune_moved{host,knob,field} 1`` for each value that moved since the baseline, and per host
``memtune_checks``, ``memtune_checks_failed``, ``memtune_host_drifted`` and ``memtune_host_error``.
"""

from __future__ import annotations

from memtune.report import Assembly, HostResult

Labels = tuple[tuple[str, str], ...]


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sample(name: str, labels: Labels, value: int) -> str:
    pairs = ",".join(f'{key}="{_label_value(text)}"' for key, text in labels)
    return f"{name}{{{pairs}}} {value}\n"


def _family(name: str, help_text: str, samples: list[str]) -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} gauge\n" + "".join(samples)


# One sample text per host and per-host family, in the order of PER_HOST.
PER_HOST = (
    ("memtune_checks", "Planned values memtune checked on the host."),
    ("memtune_checks_failed", "Checks with at least one finding on the host."),
    ("memtune_host_drifted", "1 when the host differs from its policies, else 0."),
)


def fragment(result: HostResult) -> tuple[str, ...]:
    """(the host's memtune_drift samples, then one sample per PER_HOST family)."""
    host = ("host", result.host)
    drift = {
        _sample(
            "memtune_drift",
            (
                host,
                ("knob", check.knob),
                ("node", "" if check.node is None else str(check.node)),
                ("kind", finding.kind.value),
            ),
            1,
        ): None
        for check in result.checks
        for finding in check.findings
    }
    failed = sum(not check.ok for check in result.checks)
    values = (len(result.checks), failed, int(result.drifted))
    return (
        "".join(drift),
        *(_sample(name, (host,), value) for (name, _help), value in zip(PER_HOST, values, strict=True)),
    )


def assemble(report: Assembly) -> str:
    parts = report.fragments
    families = [
        _family(
            "memtune_drift", "A memtune audit finding (host, knob, NUMA node, kind).", [p[0] for p in parts]
        )
    ]
    families += [
        _family(name, help_text, [p[index] for p in parts])
        for index, (name, help_text) in enumerate(PER_HOST, 1)
    ]
    families.append(
        _family(
            "memtune_host_error",
            "1 when the host could not be audited (unreadable facts, plan error, unreachable).",
            [_sample("memtune_host_error", (("host", error.host),), 1) for error in report.errors],
        )
    )
    if report.baseline is not None:
        moved = {
            _sample("memtune_moved", (("host", m.host), ("knob", m.knob), ("field", m.field)), 1): None
            for m in report.moved
        }
        families.append(
            _family(
                "memtune_moved",
                "A value that moved since the baseline (host, knob, runtime or boot).",
                list(moved),
            )
        )
    return "".join(families)
