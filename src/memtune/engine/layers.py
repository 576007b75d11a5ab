"""The planner: one host's facts, the rules of its layers applied in order. It holds what every knob kind
plans with (values and expressions, ``when``, skipped knobs, workload policies that share a host, the facts
read); each kind (engine/kinds) plans its own section of a rule."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from memtune.engine.kinds import KINDS
from memtune.engine.kinds.base import KnobKind
from memtune.engine.knobs import NOTES, Merge, parse_version
from memtune.engine.merge import Conflict
from memtune.engine.planned import Planned, Provenance, Skipped, kept
from memtune.engine.rules import RuleContext
from memtune.engine.sizes import parse_size
from memtune.facts.model import HostFacts, Node
from memtune.policy.expr import INT_LIMIT, ExpressionError, Scope, compile_expression, split_expression
from memtune.policy.model import Guards, When
from memtune.policy.source import Path_
from memtune.report.format import format_value

S = TypeVar("S")
DEFAULT_GUARDS = Guards()
# Expression inputs that summarize a fact -> the fact path that holds it (expr._VARIABLE_FACTS).
EXPRESSION_PATHS = {"numa.nodes": "numa.online"}


class Planner:
    def __init__(
        self,
        facts: HostFacts,
        workloads: frozenset[str],
        inputs: dict[str, Any],
        container_workloads: bool = False,
    ) -> None:
        self.facts = facts
        self.workloads = workloads
        # Whether workloads seen only in containers and pods count (memtune_container_workloads).
        self.container_workloads = container_workloads
        self.inputs = inputs
        self.scope = Scope(facts, inputs, workloads)
        self.guards = DEFAULT_GUARDS
        self.warnings: list[str] = []
        self.skipped: list[Skipped] = []
        # Each kind's planning state, by kind name (``state(kind)`` reads it typed).
        self.states: dict[str, object] = {kind.name: kind.start() for kind in KINDS}
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
            if path == "workloads":
                self.saw(self.workloads_path)
            else:
                self.saw(EXPRESSION_PATHS.get(path, path))

    @property
    def workloads_path(self) -> str:
        """The fingerprint path of the detected workloads' names, as this plan counts them."""
        return "workloads names" if self.container_workloads else "workloads host names"

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
            self.saw(self.workloads_path)
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
        self.saw(self.workloads_path, f"workloads[name={name}].version")
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
        if ctx.sections is None:  # the rule's sections are the same for every host: found once
            ctx.sections = [
                (kind, section)
                for kind in KINDS
                if kind.rule_key is not None and kind.sets(section := kind.rule_section(rule))
            ]
        for kind, section in ctx.sections:
            kind.plan(self, ctx, section, self.states[kind.name])

    def state(self, kind: KnobKind[Any, S, Any]) -> S:
        """What ``kind`` holds while this host is planned (its ``start()``, then its rules' values)."""
        return cast(S, self.states[kind.name])

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

    def combine(
        self,
        ctx: RuleContext,
        knob: str,
        old_key: str,
        old: Planned,
        new: Provenance,
        *,
        value: Any,
        merge: Merge,
        wins: Callable[[], bool],
    ) -> Planned | Provenance | None:
        """A workload value meets another workload's (``shared``) under ``merge``: None when they conflict
        (recorded); the old value, to keep, when it outweighs the new one (or they agree); else the new
        value's provenance with the merge noted. ``wins`` says whether the new value wins (max or min)."""
        same = old_key == knob and old.value == value
        if self.conflicting(
            ctx,
            knob,
            old_key=old_key,
            old=old.provenance,
            old_value=old.value,
            new=new,
            value=value,
            merge=merge,
            same=same,
        ):
            return None
        if merge == "agree" or not wins():
            return Planned.model_construct(
                value=old.value, provenance=kept(old.provenance, new, value, NOTES[merge])
            )
        return new.model_copy(update={"merge": NOTES[merge]})

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
