"""cgroup memory limits (systemd units' Memory*= drop-ins, or raw cgroup paths): a rule's ``cgroups:``
list, checked against the limits in force and, for units, memtune's drop-in at boot. An entry names a
unit, a path, or a detected workload (``workload: postgresql``): each of its instances on the host
becomes its unit's entry (or its cgroup path's, when no unit runs it)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, Discriminator, Field, StrictBool, Tag, model_validator

from memtune.audit.checks import Check, Finding, Kind, Value, finding, value
from memtune.engine.kinds.base import KnobKind, RuleChecks
from memtune.engine.planned import Limit, PathCgroup, Provenance, UnitCgroup, replacing
from memtune.engine.sizes import MAX_BYTES, is_size, parse_percent
from memtune.facts.parts import ManagedCgroup
from memtune.model import Model
from memtune.policy.fields import Name, one_of
from memtune.policy.fields import Value as RuleValue
from memtune.policy.source import Path_

if TYPE_CHECKING:
    from pydantic import BaseModel

    from memtune.engine.layers import Planner
    from memtune.engine.rules import RuleContext
    from memtune.facts.model import HostFacts

CGROUP_LIMITS = ("MemoryMin", "MemoryLow", "MemoryHigh", "MemoryMax", "MemorySwapMax")
# What a cgroup v1 memory controller can hold: memory.limit_in_bytes, which systemd sets from MemoryMax= (its
# legacy MemoryLimit=); it ignores the others there (systemd.resource-control(5)). The host side's copy is
# plugins/module_utils/_host/cgroup.py V1_FILES (tests/contract/test_contract.py keeps them equal).
CGROUP_V1_LIMITS = ("MemoryMax",)
# The kernel keeps cgroup limits in whole pages: a runtime value up to this much below the planned
# byte count is the same limit (64 KiB covers every page size Linux runs with).
CGROUP_ROUNDING = 65536


class _Cgroup(Model):
    force: StrictBool = False
    MemoryMin: RuleValue | None = None
    MemoryLow: RuleValue | None = None
    MemoryHigh: RuleValue | None = None
    MemoryMax: RuleValue | None = None
    MemorySwapMax: RuleValue | None = None

    @model_validator(mode="after")
    def _has_limits(self) -> _Cgroup:
        if not self.limits():
            raise ValueError(f"set at least one of {', '.join(CGROUP_LIMITS)}")
        return self

    def limits(self) -> dict[str, int | str]:
        return {name: value for name in CGROUP_LIMITS if (value := getattr(self, name)) is not None}


class CgroupUnit(_Cgroup):
    unit: Annotated[str, Field(pattern=r"^[A-Za-z0-9:_.@\\-]+\.(service|slice|scope)$")]


def _inside_cgroup_root(path: str) -> str:
    if any(part in (".", "..") for part in path.split("/")):
        raise ValueError(f"cgroup path {path!r} must stay below /sys/fs/cgroup (no '.' or '..' parts)")
    return path


class CgroupPath(_Cgroup):
    path: Annotated[
        str, Field(pattern=r"^/sys/fs/cgroup(/[A-Za-z0-9:_.@-]+)+$"), AfterValidator(_inside_cgroup_root)
    ]


class CgroupWorkload(_Cgroup):
    """Every instance of a detected workload that runs on the host: its unit, or its cgroup path."""

    workload: Name


Cgroup = Annotated[
    Annotated[CgroupUnit, Tag("unit")]
    | Annotated[CgroupPath, Tag("path")]
    | Annotated[CgroupWorkload, Tag("workload")],
    Discriminator(
        one_of(("unit", "path", "workload")),
        custom_error_type="cgroup_target",
        custom_error_message="a cgroup entry needs exactly one of unit, path or workload",
    ),
]

Section = list[CgroupUnit | CgroupPath | CgroupWorkload]
Entry = UnitCgroup | PathCgroup
State = dict[str, Entry]
Desired = list[Entry]


def _target(group: Entry) -> str:
    return group.unit if isinstance(group, UnitCgroup) else group.path


class Cgroups(KnobKind[Section, State, Desired]):
    name = "cgroup"
    order = 50
    rule_key = "cgroups"
    desired_key = "cgroups"
    rule_fields = {"cgroups": (list[Cgroup], [])}
    rule_models = (CgroupUnit, CgroupPath, CgroupWorkload)
    desired_fields = {"cgroups": (list[UnitCgroup | PathCgroup], [])}

    def checks(self, section: Section, rule: RuleChecks) -> Iterator[Callable[[], None]]:
        def check(index: int, name: str, limit: int | str) -> None:
            path = ("cgroups", index, name)
            if rule.expression(limit, path):
                return
            if isinstance(limit, int):
                if not 0 <= limit <= MAX_BYTES:
                    raise rule.error(f"{name} {limit} is not a number of bytes from 0 to 2^64-1", path)
                return
            if limit != "infinity" and parse_percent(limit) is None and not is_size(limit):
                raise rule.error(
                    f"{name} {limit!r} is not a size, a percentage of RAM, 'infinity' or an expression", path
                )

        for index, group in enumerate(section):
            for name, limit in group.limits().items():
                yield lambda index=index, name=name, limit=limit: check(index, name, limit)  # type: ignore[misc]

    # -- planning -----------------------------------------------------------------------------------------
    def start(self) -> State:
        return {}

    def plan(self, planner: Planner, ctx: RuleContext, section: Section, state: State) -> None:
        for index, group in enumerate(section):
            if isinstance(group, CgroupWorkload):
                for target in _workload_targets(planner, ctx, index, group):
                    self._plan(planner, ctx, index, target, state)
            else:
                self._plan(planner, ctx, index, group, state)

    def _plan(
        self, planner: Planner, ctx: RuleContext, index: int, group: CgroupUnit | CgroupPath, state: State
    ) -> None:
        is_unit = isinstance(group, CgroupUnit)
        target = group.unit if isinstance(group, CgroupUnit) else group.path
        path: Path_ = ("cgroups", index)
        facts = planner.facts
        platform = facts.platform
        planner.saw("platform.cgroup.memory_controller", "platform.cgroup.version", "platform.systemd")
        if not platform.cgroup.memory_controller or platform.cgroup.version == "none":
            return planner.lacking(ctx, f"cgroup.{target}", "this host has no cgroup memory controller", path)
        if is_unit and not platform.systemd:
            return planner.lacking(ctx, f"cgroup.{target}", "this host does not run systemd", path)
        limits: dict[str, Limit] = {}
        used: dict[str, Any] = {}
        expressions: list[str] = []
        wanted = group.limits()
        if platform.cgroup.version in ("v1", "hybrid"):
            for name in [name for name in wanted if name not in CGROUP_V1_LIMITS]:
                planner.lacking(
                    ctx,
                    f"cgroup.{target}.{name}",
                    f"cgroup v1 memory controller ({platform.cgroup.version} hierarchy): it has no {name} "
                    f"and systemd ignores {name}= (only {', '.join(CGROUP_V1_LIMITS)} applies)",
                    (*path, name),
                )
                del wanted[name]
            if not wanted:
                return None
        for name, raw in wanted.items():
            percent = parse_percent(raw) if isinstance(raw, str) else None
            if raw == "infinity":
                limits[name] = "infinity"
            elif percent is not None:
                planner.saw("memory.mem_total_kb")
                limits[name] = facts.memory.mem_total_kb * 1024 * int(percent * 100) // 10000
                used["memory.mem_total_kb"] = facts.memory.mem_total_kb
            else:
                limits[name], expression, limit_used = planner.value(
                    ctx, (*path, name), raw, unit_bytes=1, what=name
                )
                used.update(limit_used)
                expressions += [f"{name}: {expression}"] if expression else []
        old = state.get(target)
        merged = {**(old.limits if old else {}), **limits}
        _check_limit_order(ctx, path, merged)
        provenance = replacing(ctx.provenance(path, "; ".join(expressions) or None, used), old)
        force = group.force or bool(old and old.force)
        state[target] = (
            UnitCgroup.model_construct(unit=target, limits=merged, force=force, provenance=provenance)
            if is_unit
            else PathCgroup.model_construct(path=target, limits=merged, force=force, provenance=provenance)
        )
        return None

    def finish(self, planner: Planner, state: State) -> dict[str, Any]:
        return {"cgroups": [state[key] for key in sorted(state)]}

    # -- the desired state and the host -------------------------------------------------------------------
    def values(self, section: Desired) -> Iterator[tuple[str, Any, Provenance]]:
        for group in section:
            yield f"cgroup.{_target(group)}", group.limits, group.provenance

    def items(self, section: Desired) -> Iterator[str]:
        for group in section:
            yield from (f"cgroup.{_target(group)}.{name}" for name in group.limits)

    def drift(self, section: Desired, facts: HostFacts, desired: BaseModel) -> Iterator[Check]:
        for group in section:
            yield from _checks(group, facts)

    def host_state(self, facts: HostFacts) -> Iterator[tuple[str, Value]]:
        for group in facts.memtune.cgroups:
            for name in sorted({*(group.runtime or {}), *(group.boot or {})}):
                yield (
                    f"cgroup.{group.unit or group.path}.{name}",
                    value(
                        runtime=(group.runtime or {}).get(name),
                        boot=(group.boot or {}).get(name),
                        boot_source=f"{group.unit}.d/50-memtune.conf" if group.unit else None,
                    ),
                )


def _workload_targets(
    planner: Planner, ctx: RuleContext, index: int, group: CgroupWorkload
) -> list[CgroupUnit | CgroupPath]:
    """The unit or path entries a ``workload:`` entry stands for on this host, one per distinct cgroup;
    the instances it cannot target are skipped with the reason."""
    name, path = group.workload, ("cgroups", index)
    planner.saw("workloads targets")
    workload = planner.facts.workload(name)
    if workload is None or not workload.instances:
        reason = "its processes exited while the probe read them" if workload else "it is not detected"
        planner.lacking(ctx, f"cgroup.workload:{name}", f"no instance of {name} to limit: {reason}", path)
        return []
    limits = {**group.limits(), "force": group.force}
    targets: dict[str, CgroupUnit | CgroupPath] = {}
    for instance in workload.instances:
        target, reason = instance.limit_target()
        if target is not None:
            try:
                entry = (
                    CgroupUnit.model_validate({"unit": target, **limits})
                    if target == instance.unit
                    else CgroupPath.model_validate({"path": target, **limits})
                )
            except ValueError:
                reason = f"its cgroup {target!r} is not a name memtune writes"
            else:
                targets.setdefault(target, entry)
                continue
        planner.lacking(
            ctx, f"cgroup.workload:{name}:{instance.where()}", f"{name} in {instance.where()}: {reason}", path
        )
    return list(targets.values())


def _check_limit_order(ctx: RuleContext, path: Path_, limits: Mapping[str, Limit]) -> None:
    ordered = [(name, limits[name]) for name in CGROUP_LIMITS[:4] if isinstance(limits.get(name), int)]
    for (low_name, low), (high_name, high) in itertools.pairwise(ordered):
        if isinstance(low, int) and isinstance(high, int) and low > high:
            raise ctx.error(f"cgroups: {low_name} ({low}) is above {high_name} ({high})", path)


def _same_limit(current: Any, wanted: int | str) -> bool:
    if isinstance(wanted, int) and isinstance(current, int):
        return wanted - CGROUP_ROUNDING < current <= wanted
    return bool(current == wanted)


def _managed(facts: HostFacts, unit: str | None, path: str | None) -> ManagedCgroup | None:
    for entry in facts.memtune.cgroups:
        if (unit and entry.unit == unit) or (path and entry.path == path):
            return entry
    return None


def _checks(group: Entry, facts: HostFacts) -> Iterator[Check]:
    unit = group.unit if isinstance(group, UnitCgroup) else None
    path = None if isinstance(group, UnitCgroup) else group.path
    entry = _managed(facts, unit, path)
    for name, wanted in sorted(group.limits.items()):
        runtime = entry.runtime.get(name) if entry and entry.runtime else None
        boot = entry.boot.get(name) if entry and entry.boot else None
        findings: list[Finding] = []
        if entry is None or entry.runtime is None:
            where = f"unit {unit} has no cgroup (not running?)" if unit else f"cgroup {path} does not exist"
            findings += finding(Kind.runtime_drift, f"{name} is not in force: {where}")
        elif not _same_limit(runtime, wanted):
            findings += finding(Kind.runtime_drift, f"{name} is {runtime}, the plan says {wanted}")
        if unit and not _same_limit(boot, wanted):
            findings += finding(
                Kind.boot_drift,
                f"memtune's drop-in for {unit} sets {name}={boot}"
                if boot is not None
                else f"no memtune drop-in sets {name} for {unit} at boot",
            )
        yield Check(
            knob=f"cgroup.{unit or path}.{name}",
            desired=wanted,
            runtime=runtime,
            boot=boot,
            boot_source=f"{unit}.d/50-memtune.conf" if boot is not None else None,
            provenance=group.provenance,
            findings=findings,
        )


KIND = Cgroups()
