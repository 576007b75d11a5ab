"""What drift and baselines are made of, which every knob kind produces: a ``Check`` of one planned value
with its ``Finding`` s, and the ``Value`` a baseline records for one knob."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

from typing_extensions import TypedDict

from memtune.engine.planned import Provenance
from memtune.model import Model

if TYPE_CHECKING:
    from memtune.facts.model import HostFacts

BOOT_UNIT = "memtune-boot.service"


class Kind(enum.StrEnum):
    runtime_drift = "runtime_drift"
    boot_drift = "boot_drift"
    shortfall = "shortfall"
    unsupported = "unsupported"
    unmanaged = "unmanaged"
    leftover = "leftover"


# What memory_apply can mend; unsupported and unmanaged need a policy or a kernel, not an apply.
APPLICABLE = frozenset({Kind.runtime_drift, Kind.boot_drift, Kind.shortfall, Kind.leftover})


class Finding(Model):
    """One way a check fails. ``mendable``: memory_apply can put it right (it never edits other people's
    files, so a sysctl file of theirs that wins at boot is reported, not mended)."""

    kind: Kind
    message: str
    mendable: bool = True


class Check(Model):
    """One planned value on one host (and NUMA node): what it should be, is, and will be after boot."""

    knob: str
    node: int | None = None
    desired: Any
    runtime: Any = None
    boot: Any = None
    boot_source: str | None = None
    provenance: Provenance | None = None
    findings: list[Finding] = []

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def name(self) -> str:
        return self.knob if self.node is None else f"{self.knob}[node{self.node}]"


def finding(kind: Kind, message: str, mendable: bool = True) -> list[Finding]:
    return [Finding(kind=kind, message=message, mendable=mendable)]


def unsupported(knob: str, wanted: Any, provenance: Provenance, message: str) -> Check:
    """The check of a planned value the host cannot hold."""
    return Check(
        knob=knob, desired=wanted, provenance=provenance, findings=finding(Kind.unsupported, message)
    )


def boot_write(facts: HostFacts, path: str) -> tuple[str | None, str | None]:
    """(value, source) the memtune boot unit writes to ``path`` at boot, if it is enabled."""
    state = facts.memtune
    if state.boot_unit.enabled and path in state.boot_writes:
        return state.boot_writes[path], BOOT_UNIT
    return None, None


class Value(TypedDict):
    """One knob's value now and after the next boot (plain dicts: a fleet has hundreds of thousands)."""

    runtime: Any
    boot: Any
    boot_source: str | None


def value(runtime: Any = None, boot: Any = None, boot_source: str | None = None) -> Value:
    return {"runtime": runtime, "boot": boot, "boot_source": boot_source}
