"""The knob catalog's types: a knob's unit, the kernels that have it and its valid range there, how the
values of workload policies combine, kernel versions. Each kind's entries are in its module (engine/kinds)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Version = tuple[int, int, int]
INT_MAX = 2**31 - 1
LONG_MAX = 2**63 - 1
Unit = Literal["kB", "bytes", "percent", "count", "mode"]
# How the values of two workload policies combine (docs/policies.md "Workloads that share a host"):
# max: a minimum requirement, the larger wins; min: a ceiling, the smaller wins; sum: pools of different
# workloads add up; agree: a mode, different values are a conflict. Group and host layers replace.
Merge = Literal["max", "min", "sum", "agree"]
UNIT_BYTES: dict[str, int] = {"kB": 1024, "bytes": 1}


@dataclass(frozen=True)
class Span:
    """Values ``low..high`` are valid on kernels ``since`` and newer (until a later span)."""

    since: Version
    low: int
    high: int


@dataclass(frozen=True)
class Knob:
    name: str
    unit: Unit
    spans: tuple[Span, ...]
    doc: str
    merge: Merge
    exclusive_with: str | None = None  # writing one of a bytes/ratio pair zeroes the other

    @property
    def since(self) -> Version:
        return self.spans[0].since

    def span_for(self, version: Version | None) -> Span:
        """The valid range on ``version``; the oldest (narrowest) when the version is unknown."""
        if version is None:
            return self.spans[0]
        chosen = self.spans[0]
        for span in self.spans:
            if version >= span.since:
                chosen = span
        return chosen

    @property
    def widest(self) -> Span:
        return Span(self.since, min(s.low for s in self.spans), max(s.high for s in self.spans))


# What each merge says in the policy JSON Schema and in provenance (``merge``).
MERGE_TEXT: dict[Merge, str] = {
    "max": "between workload policies the largest value wins (a minimum requirement)",
    "min": "between workload policies the smallest value wins (a ceiling)",
    "sum": "between workload policies the pools add up",
    "agree": "a mode: workload policies that want different values are a conflict",
}
NOTES: dict[Merge, str] = {
    "max": "the largest of the workload policies' values (a minimum requirement)",
    "min": "the smallest of the workload policies' values (a ceiling)",
    "sum": "the workload policies' pools added up",
    "agree": "the workload policies agree",
}


def parse_version(text: str) -> Version:
    """``"5.8"`` -> (5, 8, 0); ``"6.1.0-26-amd64"`` -> (6, 1, 0)."""
    parts: list[int] = []
    for piece in text.strip().split(".")[:3]:
        digits = ""
        for char in piece:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) != len(piece):
            break
    if not parts:
        raise ValueError(f"not a version: {text!r}")
    while len(parts) < 3:
        parts.append(0)
    return (parts[0], parts[1], parts[2])


def format_version(version: Version) -> str:
    return ".".join(str(part) for part in version)
