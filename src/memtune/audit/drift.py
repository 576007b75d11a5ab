"""Drift: how a host differs from its plan, per knob and NUMA node, now and at the next boot.

``drift(desired, facts, host)`` is pure. For every planned value it makes one ``Check`` (one knob, one
node where that applies) holding the desired value, the value in force now, what the next boot will
restore and where that comes from, and the ``Finding`` s that make it fail:

- ``runtime_drift``: the kernel runs another value now;
- ``boot_drift``: the next boot will restore another value (another sysctl file wins, memtune's boot
  restore or bootloader entry is missing or stale);
- ``shortfall``: memtune asked for a hugepage pool and the kernel holds fewer pages;
- ``unsupported``: the host's kernel lacks the knob (the plan skipped it) or the node or page size;
- ``leftover``: memtune set the value (the host ledger's newest generation names it), the plan no longer
  contains it, and it is not restored yet: the next tune puts its original value back and takes it out of
  memtune's files;
- ``unmanaged``: no policy covers the host at all.
"""

from __future__ import annotations

from collections.abc import Iterator

from memtune.audit.checks import APPLICABLE, BOOT_UNIT, Check, Finding, Kind, finding
from memtune.engine.desired import DesiredState
from memtune.engine.kinds import KINDS
from memtune.engine.kinds.cgroup import CGROUP_ROUNDING
from memtune.engine.kinds.hugepages import HUGEPAGES_DIR, NODES_DIR, pool_at_boot
from memtune.engine.kinds.sysctl import MEMTUNE_SYSCTL_FILE, boot_conflict, same_sysctl
from memtune.engine.kinds.thp import KIND as THP
from memtune.engine.kinds.thp import THP_DIR, tuned_thp
from memtune.facts.model import HostFacts
from memtune.model import Model

__all__ = [
    "APPLICABLE",
    "BOOT_UNIT",
    "CGROUP_ROUNDING",
    "HUGEPAGES_DIR",
    "MEMTUNE_SYSCTL_FILE",
    "NODES_DIR",
    "THP_DIR",
    "Check",
    "Finding",
    "HostDrift",
    "Kind",
    "boot_conflict",
    "drift",
    "leftovers",
    "planned_items",
    "pool_at_boot",
    "same_sysctl",
    "thp_at_boot",
    "tuned_thp",
]


class HostDrift(Model):
    host: str
    checks: list[Check]

    @property
    def drifted(self) -> bool:
        return any(not check.ok for check in self.checks)

    def findings(self) -> Iterator[tuple[Check, Finding]]:
        for check in self.checks:
            for found in check.findings:
                yield check, found

    def applicable(self) -> list[Check]:
        """Checks memory_apply can mend: the ones that make the tune action call it."""
        return [c for c in self.checks if any(f.kind in APPLICABLE and f.mendable for f in c.findings)]


def thp_at_boot(facts: HostFacts, name: str) -> tuple[str | None, str | None]:
    """(value, source) of THP ``name`` (enabled, defrag) after the next boot: an active TuneD profile, else
    memtune's boot unit, else the running kernel's command line for ``enabled``."""
    return THP.at_boot(facts, name)


def planned_items(desired: DesiredState) -> set[str]:
    """The names of every value ``desired`` sets, as the host ledger's generations name them
    (plugins/module_utils/_ledger.items is the remote copy; a test keeps the two equal)."""
    return {item for kind in KINDS for item in kind.items(kind.desired_section(desired))}


def _leftover_runtime(item: str, facts: HostFacts) -> object:
    for kind in KINDS:
        mine, runtime = kind.leftover(item, facts)
        if mine:
            return runtime
    return None


def leftovers(desired: DesiredState, facts: HostFacts) -> list[Check]:
    """What the ledger's newest generation set and ``desired`` no longer plans (see ``leftover``)."""
    ledger = facts.memtune.ledger
    if ledger is None or not ledger.generations:
        return []
    newest = ledger.generations[-1]
    return [
        Check(
            knob=item,
            desired=None,
            runtime=_leftover_runtime(item, facts),
            findings=finding(
                Kind.leftover,
                f"{item} was set by memtune (generation {newest.id}) and is no longer planned: the next tune "
                + (
                    "restores its original value and removes it from memtune's files"
                    if item in ledger.originals
                    else "removes it from memtune's files"
                ),
            ),
        )
        for item in sorted(ledger.managed - planned_items(desired))
    ]


def drift(desired: DesiredState, facts: HostFacts, host: str) -> HostDrift:
    """Every planned value of ``host`` against its facts; see the module docstring for the kinds."""
    checks: list[Check] = []
    for kind in KINDS:
        checks.extend(kind.drift(kind.desired_section(desired), facts, desired))
    for skipped in desired.skipped:
        checks.append(
            Check(
                knob=skipped.knob,
                desired=None,
                provenance=skipped.provenance,
                findings=finding(Kind.unsupported, skipped.reason),
            )
        )
    checks.extend(leftovers(desired, facts))
    if not checks:
        checks.append(
            Check(
                knob="policy",
                desired=None,
                findings=finding(Kind.unmanaged, "no policy rule applies to this host"),
            )
        )
    return HostDrift(host=host, checks=checks)
