"""The values a plan holds, each with its provenance: the pieces of DesiredState every knob kind builds."""

from __future__ import annotations

from typing import Any, Literal

from memtune.model import Model


class Provenance(Model):
    """Where a planned value comes from. ``overrides`` lists the values of lower layers (or earlier rules)
    it replaced, oldest first; only those entries carry the replaced ``value``."""

    file: str
    line: int | None
    rule: str
    layer: str
    source: str | None = None
    expression: str | None = None
    inputs: dict[str, Any] = {}
    overrides: list[Provenance] = []
    value: Any = None
    # How the value came out of several workload policies or why it replaced theirs, e.g. "max of the
    # workload policies' values" or "settles a conflict between workload policies".
    merge: str | None = None

    def at(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file


class Planned(Model):
    value: int | str
    provenance: Provenance


class HugepagePlan(Model):
    size_kb: int
    per_node: dict[str, int]
    boot: bool
    required: bool
    provenance: Provenance


class CmdlineArg(Model):
    arg: str
    provenance: Provenance


Limit = int | Literal["infinity"]


class UnitCgroup(Model):
    unit: str
    limits: dict[str, Limit]
    force: bool
    provenance: Provenance


class PathCgroup(Model):
    path: str
    limits: dict[str, Limit]
    force: bool
    provenance: Provenance


class Skipped(Model):
    knob: str
    reason: str
    provenance: Provenance


def replacing(new: Provenance, old: Any) -> Provenance:
    """``new`` with the value it replaces (a Planned, HugepagePlan or cgroup entry) added to its overrides."""
    if old is None:
        return new
    value = (
        old.value
        if isinstance(old, Planned)
        else old.per_node
        if isinstance(old, HugepagePlan)
        else old.limits
    )
    replaced = old.provenance.model_copy(update={"overrides": [], "value": value})
    return new.model_copy(update={"overrides": [*old.provenance.overrides, replaced]})


def kept(old: Provenance, loser: Provenance, value: Any, note: str) -> Provenance:
    """``old``, which keeps its value under a merge, with the workload value it outweighed recorded."""
    outweighed = loser.model_copy(update={"overrides": [], "value": value})
    return old.model_copy(update={"overrides": [*old.overrides, outweighed], "merge": note})
