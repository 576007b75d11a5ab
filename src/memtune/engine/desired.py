"""DesiredState: what the engine plans for one host and ``memory_apply`` takes (docs/desired-state.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from memtune.model import Model

SCHEMA_VERSION: Literal[1] = 1


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


class DesiredState(Model):
    schema_version: Literal[1] = SCHEMA_VERSION
    sysctl: dict[str, Planned] = {}
    thp: dict[
        Literal["enabled", "defrag", "shmem_enabled", "khugepaged_defrag", "khugepaged_max_ptes_none"],
        Planned,
    ] = {}
    hugepages: list[HugepagePlan] = []
    kernel_cmdline: list[CmdlineArg] = []
    cgroups: list[UnitCgroup | PathCgroup] = []
    skipped: list[Skipped] = []
    warnings: list[str] = Field(default_factory=list)
    # The facts this plan read (plugins/module_utils/_probe/fingerprint.py paths): memory_apply applies the
    # plan
    # only to a host whose fresh facts still have the values these had when it was planned.
    facts_read: list[str] = Field(default_factory=list)

    def values(self) -> dict[str, tuple[Any, Provenance]]:
        """Every planned value by knob name: ``vm.swappiness``, ``thp.enabled``, ``hugepages.2048kB``,
        ``cmdline.hugepagesz=1G``, ``cgroup.<unit or path>``."""
        found: dict[str, tuple[Any, Provenance]] = {}
        for key, planned in self.sysctl.items():
            found[key] = (planned.value, planned.provenance)
        for key, planned in self.thp.items():
            found[f"thp.{key}"] = (planned.value, planned.provenance)
        for pool in self.hugepages:
            found[f"hugepages.{pool.size_kb}kB"] = (pool.per_node, pool.provenance)
        for arg in self.kernel_cmdline:
            found[f"cmdline.{arg.arg}"] = (arg.arg, arg.provenance)
        for group in self.cgroups:
            target = group.unit if isinstance(group, UnitCgroup) else group.path
            found[f"cgroup.{target}"] = (group.limits, group.provenance)
        return found
