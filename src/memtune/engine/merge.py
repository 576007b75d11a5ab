"""How the values of workload policies that share a host combine (the knob catalog's ``merge``), and the
conflicts the plan reports when they cannot (docs/policies.md "Workloads that share a host")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memtune.engine.planned import Provenance
from memtune.errors import PolicyError
from memtune.report.format import format_value, origin

SETTLE = (
    "set {knob} in a group or host policy (it overrides the workload policies on purpose), "
    "or choose the workloads with memtune_workloads"
)


@dataclass(frozen=True)
class Conflict:
    """Two workload policies want different values for a knob that cannot combine them; ``owner``
    names the program that sets the knob itself (the kubelet), when that is why."""

    knob: str
    first: Provenance
    first_workload: str
    first_value: Any
    second: Provenance
    second_workload: str
    second_value: Any
    owner: str | None = None
    owned_by_first: bool = True

    def message(self) -> str:
        first = f"{origin(self.first)} ({self.first_workload}) sets {format_value(self.first_value)}"
        second = f"{origin(self.second)} ({self.second_workload}) wants {format_value(self.second_value)}"
        if self.owner is not None:
            owned = self.first if self.owned_by_first else self.second
            reason = (
                f"{self.knob} is the {self.owner}'s own setting ({origin(owned)}): the {self.owner} sets it "
                "itself at start-up, so no other workload policy may change it"
            )
        else:
            reason = f"{self.knob} is a mode: workload policies that want different values cannot be combined"
        settle = SETTLE.format(knob=self.knob)
        return f"conflict on {self.knob}: {first}; {second}. {reason}. Settle it: {settle}"


class ConflictError(PolicyError):
    """The plan has conflicts between workload policies; located at the later rule of the first one."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        first = conflicts[0]
        text = "\n".join(conflict.message() for conflict in conflicts)
        super().__init__(text, first.second.file, first.second.line)
        self.conflicts = conflicts
