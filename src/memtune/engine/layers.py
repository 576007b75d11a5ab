"""The planner: one host's facts, the rules of its layers applied in order, values checked against the
knob catalog and the guards."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

from memtune.engine.desired import HugepagePlan, Limit, PathCgroup, Planned, Provenance, Skipped, UnitCgroup
from memtune.engine.hugepages import spread
from memtune.engine.knobs import (
    CGROUP_LIMITS,
    CGROUP_V1_LIMITS,
    SYSCTLS,
    THP_CHOICES,
    THP_DIR,
    THP_FILES,
    THP_INTEGERS,
    THP_MERGE,
    UNIT_BYTES,
    Merge,
    format_version,
    parse_version,
)
from memtune.engine.merge import NOTES, Conflict
from memtune.engine.rules import RuleContext, replacing
from memtune.engine.sizes import parse_percent, parse_size
from memtune.facts.model import HostFacts, Node
from memtune.policy.expr import INT_LIMIT, ExpressionError, Scope, compile_expression, split_expression
from memtune.policy.model import CgroupUnit, Guards, HugepagePool, When, pool_amount
from memtune.policy.source import Path_
from memtune.report.format import format_value

DEFAULT_GUARDS = Guards()
# Expression inputs that summarize a fact -> the fact path that holds it (expr._VARIABLE_FACTS).
EXPRESSION_PATHS = {"numa.nodes": "numa.online", "workloads": "workloads names"}


class Planner:
    def __init__(self, facts: HostFacts, workloads: frozenset[str], inputs: dict[str, Any]) -> None:
        self.facts = facts
        self.workloads = workloads
        self.inputs = inputs
        self.scope = Scope(facts, inputs, workloads)
        self.guards = DEFAULT_GUARDS
        self.warnings: list[str] = []
        self.skipped: list[Skipped] = []
        self.sysctl: dict[str, Planned] = {}
        self.thp: dict[str, Planned] = {}
        self.pools: dict[int, HugepagePlan] = {}
        self.cgroups: dict[str, UnitCgroup | PathCgroup] = {}
        # Workload policies that share a host: the workload each policy came in for (set by ``plan``),
        # the workload (and owner, e.g. the kubelet) behind each value a workload policy set, conflicts.
        self.origins: dict[int, str] = {}
        self.holders: dict[str, tuple[str, str | None]] = {}
        self.conflicts: dict[str, list[Conflict]] = {}
        self.version = facts.kernel.version
        self.memory_nodes = [node for node in facts.numa.nodes if node.has_memory] or list(facts.numa.nodes)
        # The facts this plan read, as _fingerprint paths: what memory_apply checks before it applies.
        self.reads: dict[str, None] = {}

    def saw(self, *paths: str) -> None:
        self.reads.update(dict.fromkeys(paths))

    def saw_used(self, used: Mapping[str, Any]) -> None:
        """The facts an expression read (its ``inputs``, less the inventory's), as fingerprint paths."""
        for path in used:
            if path.startswith("inputs.") or path == "inputs":
                continue
            self.saw(EXPRESSION_PATHS.get(path, path))

    def saw_kernel(self) -> None:
        self.saw("kernel.version", "kernel.release")

    def saw_nodes(self) -> None:
        """Pools read the nodes: which exist, which have memory, and how much (spread weights, the guard)."""
        self.saw("numa.online")
        for node in self.facts.numa.nodes:
            self.saw(f"numa.nodes[id={node.id}].has_memory", f"numa.nodes[id={node.id}].mem_total_kb")

    # -- values ---------------------------------------------------------------------------------------
    def value(
        self,
        ctx: RuleContext,
        path: Path_,
        raw: Any,
        *,
        unit_bytes: int | None,
        what: str,
        node: Node | None = None,
    ) -> tuple[Any, str | None, dict[str, Any]]:
        """-> (value, expression, inputs). Sizes become ``unit_bytes`` units; expressions are evaluated."""
        if isinstance(raw, str):
            try:
                source = split_expression(raw)
                if source is not None:
                    result, used = self.scope.evaluate(compile_expression(source), unit_bytes, what, node)
                    self.saw_used(used)
                    return self._number(ctx, path, result, unit_bytes, what), source, used
            except ExpressionError as exc:
                raise ctx.error(f"{what}: {exc.message}", path) from None
        return self._number(ctx, path, raw, unit_bytes, what), None, {}

    @staticmethod
    def _number(ctx: RuleContext, path: Path_, value: Any, unit_bytes: int | None, what: str) -> int:
        if isinstance(value, bool) or value is None:
            raise ctx.error(f"{what}: expected a number, the expression gave {value!r}", path)
        if isinstance(value, float):
            if not math.isfinite(value) or abs(value) >= INT_LIMIT:
                raise ctx.error(f"{what}: the expression gave {value}, beyond 64 bits", path)
            return math.floor(value)
        if isinstance(value, str):
            try:
                if unit_bytes is None:
                    raise ValueError
                return parse_size(value) // unit_bytes
            except ValueError:
                raise ctx.error(
                    f"{what}: expected a number{' or a size' if unit_bytes else ''}, got {value!r}", path
                ) from None
        if not isinstance(value, int):
            raise ctx.error(f"{what}: expected a number, got {repr(value)[:80]}", path)
        if abs(value) >= INT_LIMIT:
            raise ctx.error(f"{what}: {value} is beyond 64 bits", path)
        return value

    def lacking(self, ctx: RuleContext, knob: str, reason: str, path: Path_) -> None:
        if ctx.rule.required:
            raise ctx.error(f"{reason} (the rule is required)", path)
        self.skipped.append(
            Skipped.model_construct(knob=knob, reason=reason, provenance=ctx.provenance(path))
        )

    # -- when -----------------------------------------------------------------------------------------
    def matches(self, ctx: RuleContext, when: When) -> bool:
        facts = self.facts
        if when.workload is not None:
            self.saw("workloads names")
            if not self.workloads.intersection(when.workload):
                return False
        if when.ram is not None:
            self.saw("memory.mem_total_kb")
            if not _within(facts.memory.mem_total_kb * 1024, when.ram.min, when.ram.max):
                return False
        if when.numa_nodes is not None:
            self.saw("numa.online")
            if not _within(len(facts.numa.nodes), when.numa_nodes.min, when.numa_nodes.max):
                return False
        if when.kernel is not None:
            self.saw("kernel.version")
            if not all(_compare(self.version, cond) for cond in when.kernel):
                return False
        if when.virtualization is not None:
            self.saw("platform.virtualization")
            if facts.platform.virtualization not in when.virtualization:
                return False
        if when.inputs is not None and any(self.inputs.get(name) is None for name in when.inputs):
            return False
        if when.workload_version is not None and not all(
            _compare(self.workload_version(name), cond) for name, cond in when.workload_version.items()
        ):
            return False
        return when.expr is None or self.when_expression(ctx, when.expr)

    def workload_version(self, name: str) -> tuple[int, int, int] | None:
        given = self.inputs.get(f"{name}_version")
        if isinstance(given, str):
            return parse_version(given)
        self.saw("workloads names", f"workloads[name={name}].version")
        for workload in self.facts.workloads:
            if workload.name == name and workload.version:
                try:
                    return parse_version(workload.version)
                except ValueError:
                    return None
        return None

    def when_expression(self, ctx: RuleContext, raw: str) -> bool:
        try:
            source = split_expression(raw) or raw
            result, used = self.scope.evaluate(compile_expression(source), None, "when")
        except ExpressionError as exc:
            raise ctx.error(f"when: {exc.message}", ("when", "expr")) from None
        self.saw_used(used)
        if not isinstance(result, bool):
            raise ctx.error(
                f"when: the expression must give true or false, it gave {str(result)[:60]!r}",
                ("when", "expr"),
            )
        return result

    # -- knobs ----------------------------------------------------------------------------------------
    def apply(self, ctx: RuleContext) -> None:
        rule = ctx.rule
        if rule.when is not None and not self.matches(ctx, rule.when):
            return
        if rule.warn:
            line, _column = ctx.policy.mark((*ctx.at, "warn"))
            self.warnings.append(f"{ctx.policy.file}:{line} rule {rule.name!r}: {rule.warn}")
        for key, raw in rule.sysctl.items():
            self.apply_sysctl(ctx, key, raw)
        if rule.thp is not None:
            for key, choice in rule.thp.settings().items():
                self.apply_thp(ctx, key, choice)
        for index, pool in enumerate(rule.hugepages):
            self.apply_pool(ctx, index, pool)
        for index, group in enumerate(rule.cgroups):
            self.apply_cgroup(ctx, index, group)

    def apply_sysctl(self, ctx: RuleContext, key: str, raw: Any) -> None:
        knob = SYSCTLS[key]
        path = ("sysctl", key)
        release = self.facts.kernel.release
        self.saw_kernel()
        self.saw(f"sysctl.{key} is null")
        if key in self.facts.sysctl and self.facts.sysctl[key] is None:
            return self.lacking(ctx, key, f"kernel {release} has no {key}", path)
        if self.version is not None and self.version < knob.since:
            return self.lacking(
                ctx, key, f"{key} first appeared in {format_version(knob.since)}; kernel is {release}", path
            )
        value, expression, used = self.value(ctx, path, raw, unit_bytes=UNIT_BYTES.get(knob.unit), what=key)
        span = knob.span_for(self.version)
        if not span.low <= value <= span.high:
            raise ctx.error(
                f"{key} = {value} is outside {span.low}..{span.high}, its range on kernel {release}", path
            )
        if key == "vm.min_free_kbytes":
            self.saw("memory.mem_total_kb")
            limit = self.facts.memory.mem_total_kb * self.guards.min_free_kbytes_max_percent / 100
            if value > limit:
                raise ctx.error(
                    f"{key} = {value} is above {self.guards.min_free_kbytes_max_percent:g} % of RAM "
                    f"({int(limit)} kB): the host would be short of memory",
                    path,
                )
        new = ctx.provenance(path, expression, used)
        twin = knob.exclusive_with if knob.exclusive_with in self.sysctl else None
        old_key = key if key in self.sysctl else twin
        old = self.sysctl.get(old_key) if old_key else None
        if old_key is not None and old is not None and self.shared(ctx, old_key, old.provenance):
            merge = ctx.rule.merge.get(key, knob.merge)
            same = old_key == key and old.value == value
            if self.conflicting(
                ctx,
                key,
                old_key=old_key,
                old=old.provenance,
                old_value=old.value,
                new=new,
                value=value,
                merge=merge,
                same=same,
            ):
                return None
            if merge == "agree" or not self._wins(merge, (old_key, old.value), (key, value)):
                self.sysctl[old_key] = Planned.model_construct(
                    value=old.value, provenance=_kept(old.provenance, new, value, NOTES[merge])
                )
                return None
            new = new.model_copy(update={"merge": NOTES[merge]})
        changes = old is None or old_key != key or old.value != value
        new = self.settling(ctx, key, twin, new, changes=changes)
        provenance = replacing(new, self.sysctl.get(key))
        if twin is not None:
            provenance = replacing(provenance, self.sysctl.pop(twin))
            self.holders.pop(twin, None)
        self.sysctl[key] = ctx.planned(path, value, provenance)
        self.hold(ctx, key)
        return None

    # -- workload policies that share a host --------------------------------------------------------------
    def origin(self, ctx: RuleContext) -> str:
        return self.origins.get(id(ctx.policy), ctx.policy.name)

    def shared(self, ctx: RuleContext, key: str, old: Provenance) -> bool:
        """Whether a workload rule meets a value another workload's policy set (then values combine)."""
        holder = self.holders.get(key)
        return (
            ctx.layer == "workload"
            and old.layer == "workload"
            and holder is not None
            and holder[0] != self.origin(ctx)
        )

    def hold(self, ctx: RuleContext, key: str) -> None:
        if ctx.layer == "workload":
            self.holders[key] = (self.origin(ctx), ctx.rule.owner)
        else:
            self.holders.pop(key, None)

    def conflicting(
        self,
        ctx: RuleContext,
        knob: str,
        *,
        old_key: str,
        old: Provenance,
        old_value: Any,
        new: Provenance,
        value: Any,
        merge: Merge,
        same: bool,
    ) -> bool:
        """Record a conflict when the values cannot combine: a mode both ways, or a knob its owner sets."""
        holder, held_owner = self.holders[old_key]
        owner = held_owner or ctx.rule.owner
        if same or (owner is None and merge != "agree"):
            if ctx.rule.owner is not None:
                self.holders[old_key] = (holder, ctx.rule.owner)
            return False
        conflict = Conflict(
            knob=knob if old_key == knob else f"{old_key}/{knob}",
            first=old,
            first_workload=holder,
            first_value=old_value if old_key == knob else f"{old_key} = {old_value}",
            second=new,
            second_workload=self.origin(ctx),
            second_value=value,
            owner=owner,
            owned_by_first=held_owner is not None,
        )
        self.conflicts.setdefault(old_key, []).append(conflict)
        return True

    def settling(
        self, ctx: RuleContext, key: str, twin: str | None, new: Provenance, *, changes: bool = True
    ) -> Provenance:
        """A group or host value for a knob in conflict (or one its owner sets) says so in provenance."""
        if ctx.layer not in ("group", "host"):
            return new
        notes: list[str] = []
        for name in (key, twin):
            if name is None:
                continue
            for conflict in self.conflicts.pop(name, []):
                first, second = conflict.first, conflict.second
                notes.append(
                    f"settles the conflict between {conflict.first_workload} "
                    f"({format_value(conflict.first_value)}, {first.at()}) and "
                    f"{conflict.second_workload} ({format_value(conflict.second_value)}, {second.at()})"
                )
            held = self.holders.get(name)
            if held is not None and held[1] is not None and changes:
                notes.append(f"overrides on purpose a value the {held[1]} sets itself")
                line, _column = ctx.policy.mark((*ctx.at, "name"))
                self.warnings.append(
                    f"{ctx.policy.file}:{line} rule {ctx.rule.name!r}: {key} is set by the {held[1]} "
                    f"itself; the {ctx.layer} layer overrides it on purpose"
                )
        return new.model_copy(update={"merge": "; ".join(notes)}) if notes else new

    def _wins(self, merge: Merge, old: tuple[str, Any], new: tuple[str, Any]) -> bool:
        """Whether the new value wins under ``merge`` (max or min), comparing twins in bytes."""
        before, after = self._magnitude(*old), self._magnitude(*new)
        return after > before if merge == "max" else after < before

    def _magnitude(self, key: str, value: Any) -> int:
        unit = SYSCTLS[key].unit
        if unit == "percent" and SYSCTLS[key].exclusive_with:
            self.saw("memory.mem_total_kb")
            # A ratio is a share of the memory the kernel counts (at most MemTotal) against its twin in bytes.
            return int(self.facts.memory.mem_total_kb * 1024 * int(value) // 100)
        return int(value) * UNIT_BYTES.get(unit, 1)

    def apply_thp(self, ctx: RuleContext, key: str, choice: int | str) -> None:
        path = ("thp", key)
        thp = self.facts.thp
        self.saw_kernel()
        self.saw("thp is null")
        self.saw(f"thp.{key} is null" if key in THP_INTEGERS else f"thp.{key}_choices")
        if key == "shmem_enabled":
            self.saw("thp.shmem_enabled is null")
        if thp is None:
            return self.lacking(ctx, f"thp.{key}", "this kernel has no transparent hugepages", path)
        release = self.facts.kernel.release
        if (key in THP_INTEGERS or key == "shmem_enabled") and getattr(thp, key) is None:
            reason = f"kernel {release} has no {THP_DIR}/{THP_FILES[key]} (or the probe did not read it)"
            return self.lacking(ctx, f"thp.{key}", reason, path)
        choices: list[str] = getattr(thp, f"{key}_choices", [])
        if key not in THP_INTEGERS and choices and choice not in choices:
            reason = f"kernel {release} offers THP {key} {'/'.join(choices)}, not {choice}"
            return self.lacking(ctx, f"thp.{key}", reason, path)
        since = THP_INTEGERS[key].since if key in THP_INTEGERS else THP_CHOICES[key][str(choice)]
        if not choices and self.version is not None and self.version < since:
            reason = f"THP {key} {choice} first appeared in {format_version(since)}; kernel is {release}"
            return self.lacking(ctx, f"thp.{key}", reason, path)
        name = f"thp.{key}"
        new = ctx.provenance(path)
        old = self.thp.get(key)
        if old is not None and self.shared(ctx, name, old.provenance):
            same = old.value == choice
            if self.conflicting(
                ctx,
                name,
                old_key=name,
                old=old.provenance,
                old_value=old.value,
                new=new,
                value=choice,
                merge=THP_MERGE,
                same=same,
            ):
                return None
            self.thp[key] = Planned.model_construct(
                value=old.value, provenance=_kept(old.provenance, new, choice, NOTES[THP_MERGE])
            )
            return None
        changes = old is None or old.value != choice
        provenance = replacing(self.settling(ctx, name, None, new, changes=changes), old)
        self.thp[key] = ctx.planned(path, choice, provenance)
        self.hold(ctx, name)
        return None

    def apply_pool(self, ctx: RuleContext, index: int, pool: HugepagePool) -> None:
        kind, raw = pool_amount(pool)
        path: Path_ = ("hugepages", index, kind)
        size_kb = pool.size
        name = f"hugepages.{size_kb}kB"
        self.saw_kernel()
        self.saw("hugepages.sizes_kb")
        self.saw_nodes()
        if self.facts.hugepages.sizes_kb and size_kb not in self.facts.hugepages.sizes_kb:
            return self.lacking(
                ctx, name, f"kernel {self.facts.kernel.release} has no {size_kb} kB hugepages", path
            )
        known = {node.id for node in self.memory_nodes}
        unknown = sorted(set(pool.nodes or ()) - known)
        if unknown:
            raise ctx.error(
                f"hugepages: NUMA node {unknown[0]} does not exist (nodes with memory: {sorted(known)})",
                ("hugepages", index, "nodes"),
            )
        nodes = [node for node in self.memory_nodes if pool.nodes is None or node.id in pool.nodes]
        used: dict[str, Any] = {}
        expression: str | None = None
        if pool.placement == "per_node":
            counts = {}
            for node in nodes:
                counts[node.id], expression, node_used = self.pool_pages(
                    ctx, path, raw, kind=kind, size_kb=size_kb, node=node
                )
                used.update(node_used)
        else:
            total, expression, used = self.pool_pages(ctx, path, raw, kind=kind, size_kb=size_kb, node=None)
            counts = spread(total, {node.id: node.mem_total_kb or 0 for node in nodes})
        per_node = {str(node.id): counts.get(node.id, 0) for node in self.memory_nodes}
        new = ctx.provenance(path, expression, used)
        old = self.pools.get(size_kb)
        boot, required = pool.boot or size_kb >= 1048576, pool.required
        if old is not None and self.shared(ctx, name, old.provenance):
            # Pools of different workloads add up (or, with merge: max, the larger request covers both).
            merge = ctx.rule.merge.get("hugepages", "sum")
            per_node = {
                node: old.per_node.get(node, 0) + pages
                if merge == "sum"
                else max(old.per_node.get(node, 0), pages)
                for node, pages in per_node.items()
            }
            new = new.model_copy(update={"merge": NOTES[merge]})
            boot, required = boot or old.boot, required or old.required
        else:
            new = self.settling(ctx, name, None, new)
        self.pools[size_kb] = HugepagePlan.model_construct(
            size_kb=size_kb, per_node=per_node, boot=boot, required=required, provenance=replacing(new, old)
        )
        self.hold(ctx, name)
        return None

    def pool_pages(
        self, ctx: RuleContext, path: Path_, raw: Any, *, kind: str, size_kb: int, node: Node | None
    ) -> tuple[int, str | None, dict[str, Any]]:
        what = f"hugepages {kind}"
        if kind == "count":
            pages, expression, used = self.value(
                ctx, path, raw, unit_bytes=size_kb * 1024, what=what, node=node
            )
        elif kind == "total":
            n_bytes, expression, used = self.value(ctx, path, raw, unit_bytes=1, what=what, node=node)
            pages = -(-n_bytes // (size_kb * 1024))
        else:
            expression, used, fraction = None, {}, raw
            if isinstance(raw, str):
                try:
                    source = split_expression(raw) or raw
                    fraction, used = self.scope.evaluate(compile_expression(source), None, what, node)
                    self.saw_used(used)
                    expression = source
                except ExpressionError as exc:
                    raise ctx.error(f"{what}: {exc.message}", path) from None
            if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction < 1:
                raise ctx.error(f"{what}: expected a fraction between 0 and 1, got {fraction!r}", path)
            self.saw("memory.mem_total_kb")
            base_kb = (node.mem_total_kb or 0) if node is not None else self.facts.memory.mem_total_kb
            pages = math.floor(base_kb * fraction / size_kb)
        if pages < 0:
            raise ctx.error(f"{what}: {pages} pages is negative", path)
        return pages, expression, used

    def apply_cgroup(self, ctx: RuleContext, index: int, group: Any) -> None:
        is_unit = isinstance(group, CgroupUnit)
        target = group.unit if is_unit else group.path
        path: Path_ = ("cgroups", index)
        platform = self.facts.platform
        self.saw("platform.cgroup.memory_controller", "platform.cgroup.version", "platform.systemd")
        if not platform.cgroup.memory_controller or platform.cgroup.version == "none":
            return self.lacking(ctx, f"cgroup.{target}", "this host has no cgroup memory controller", path)
        if is_unit and not platform.systemd:
            return self.lacking(ctx, f"cgroup.{target}", "this host does not run systemd", path)
        limits: dict[str, Limit] = {}
        used: dict[str, Any] = {}
        expressions: list[str] = []
        wanted = group.limits()
        if platform.cgroup.version in ("v1", "hybrid"):
            for name in [name for name in wanted if name not in CGROUP_V1_LIMITS]:
                self.lacking(
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
                self.saw("memory.mem_total_kb")
                limits[name] = self.facts.memory.mem_total_kb * 1024 * int(percent * 100) // 10000
                used["memory.mem_total_kb"] = self.facts.memory.mem_total_kb
            else:
                limits[name], expression, limit_used = self.value(
                    ctx, (*path, name), raw, unit_bytes=1, what=name
                )
                used.update(limit_used)
                expressions += [f"{name}: {expression}"] if expression else []
        old = self.cgroups.get(target)
        merged = {**(old.limits if old else {}), **limits}
        _check_limit_order(ctx, path, merged)
        provenance = replacing(ctx.provenance(path, "; ".join(expressions) or None, used), old)
        force = group.force or bool(old and old.force)
        self.cgroups[target] = (
            UnitCgroup.model_construct(unit=target, limits=merged, force=force, provenance=provenance)
            if is_unit
            else PathCgroup.model_construct(path=target, limits=merged, force=force, provenance=provenance)
        )
        return None


def _kept(old: Provenance, loser: Provenance, value: Any, note: str) -> Provenance:
    """``old``, which keeps its value under a merge, with the workload value it outweighed recorded."""
    outweighed = loser.model_copy(update={"overrides": [], "value": value})
    return old.model_copy(update={"overrides": [*old.overrides, outweighed], "merge": note})


def _within(value: int, low: int | None, high: int | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _compare(version: tuple[int, int, int] | None, condition: str) -> bool:
    if condition == "unknown":
        return version is None
    if version is None:
        return False
    op = condition[:2] if condition[:2] in ("==", "!=", ">=", "<=") else condition[:1]
    other = parse_version(condition[len(op) :])
    return {
        "==": version == other,
        "!=": version != other,
        ">=": version >= other,
        "<=": version <= other,
        ">": version > other,
        "<": version < other,
    }[op]


def _check_limit_order(ctx: RuleContext, path: Path_, limits: Mapping[str, Limit]) -> None:
    ordered = [(name, limits[name]) for name in CGROUP_LIMITS[:4] if isinstance(limits.get(name), int)]
    for (low_name, low), (high_name, high) in itertools.pairwise(ordered):
        if isinstance(low, int) and isinstance(high, int) and low > high:
            raise ctx.error(f"cgroups: {low_name} ({low}) is above {high_name} ({high})", path)
