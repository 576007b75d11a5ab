"""Render planned values and their provenance for people."""

from __future__ import annotations

import json

from memtune.engine.desired import DesiredState, Provenance
from memtune.errors import PolicyError
from memtune.report.format import format_value, origin


def _inputs(provenance: Provenance) -> str:
    return ", ".join(f"{key}={json.dumps(value)}" for key, value in sorted(provenance.inputs.items()))


def explain(desired: DesiredState, knob: str) -> str:
    """How ``knob`` got its value: the winning rule, its expression and inputs, and what it overrode."""
    values = desired.values()
    if knob in values:
        value, provenance = values[knob]
        lines = [f"{knob} = {format_value(value)} ← {origin(provenance)}", f"  layer: {provenance.layer}"]
        if provenance.inputs:
            lines.append(f"  inputs: {_inputs(provenance)}")
        if provenance.source:
            lines.append(f"  source: {provenance.source}")
        if provenance.merge:
            lines.append(f"  merge: {provenance.merge}")
        for old in reversed(provenance.overrides):
            lines.append(f"  overrides {format_value(old.value)} ← {origin(old)} ({old.layer})")
        return "\n".join(lines)
    skipped = [entry for entry in desired.skipped if entry.knob == knob]
    if skipped:
        return "\n".join(f"{knob} skipped: {entry.reason} ← {origin(entry.provenance)}" for entry in skipped)
    known = ", ".join(sorted(values)) or "none"
    raise PolicyError(f"the plan does not set {knob!r} (it sets: {known})", "explain")


def rows(desired: DesiredState) -> list[tuple[str, str, str]]:
    """(knob, value, origin) for every planned value, then the skipped ones."""
    result = [
        (knob, format_value(value), origin(provenance))
        for knob, (value, provenance) in desired.values().items()
    ]
    result += [
        (entry.knob, f"skipped: {entry.reason}", origin(entry.provenance)) for entry in desired.skipped
    ]
    return result
