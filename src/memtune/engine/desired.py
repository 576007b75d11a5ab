"""DesiredState: what the engine plans for one host and ``memory_apply`` takes (docs/desired-state.md).
Its knob sections (``sysctl``, ``thp``, ``hugepages``, ``kernel_cmdline``, ``cgroups``, ...) come from the
kinds registry (engine/kinds), in the kinds' order; a kind reads its own through a typed accessor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, create_model

from memtune.engine.kinds import KINDS
from memtune.engine.planned import (
    CmdlineArg,
    HugepagePlan,
    Limit,
    PathCgroup,
    Planned,
    Provenance,
    Skipped,
    UnitCgroup,
)
from memtune.model import Model

__all__ = [
    "SCHEMA_VERSION",
    "CmdlineArg",
    "DesiredState",
    "HugepagePlan",
    "Limit",
    "PathCgroup",
    "Planned",
    "Provenance",
    "Skipped",
    "UnitCgroup",
]

SCHEMA_VERSION: Literal[1] = 1


class DesiredStateBase(Model):
    """The fields of every desired state but the kinds' sections (see ``DesiredState``)."""

    schema_version: Literal[1] = SCHEMA_VERSION

    if TYPE_CHECKING:
        skipped: list[Skipped]
        warnings: list[str]
        facts_read: list[str]

    def values(self) -> dict[str, tuple[Any, Provenance]]:
        """Every planned value by knob name: ``vm.swappiness``, ``thp.enabled``, ``hugepages.2048kB``,
        ``cmdline.hugepagesz=1G``, ``cgroup.<unit or path>``."""
        found: dict[str, tuple[Any, Provenance]] = {}
        for kind in KINDS:
            for name, value, provenance in kind.values(kind.desired_section(self)):
                found[name] = (value, provenance)
        return found


if TYPE_CHECKING:
    DesiredState = DesiredStateBase
else:
    DesiredState = create_model(
        "DesiredState",
        __base__=DesiredStateBase,
        __module__=__name__,
        **{name: field for kind in KINDS for name, field in kind.desired_fields.items()},
        skipped=(list[Skipped], []),
        warnings=(list[str], Field(default_factory=list)),
        # The facts this plan read (plugins/module_utils/_probe/fingerprint.py paths): memory_apply applies
        # the plan only to a host whose fresh facts still have the values these had when it was planned.
        facts_read=(list[str], Field(default_factory=list)),
    )
