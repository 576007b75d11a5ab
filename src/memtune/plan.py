"""``plan(facts, policies) -> DesiredState``: pure and deterministic; reads no file and no clock."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from memtune.desired import (
    CmdlineArg,
    DesiredState,
    HugepagePlan,
    Limit,
    PathCgroup,
    Planned,
    Provenance,
    Skipped,
    UnitCgroup,
)
from memtune.errors import PolicyError
from memtune.expr import ExpressionError, Scope, compile_expression, split_expression
from memtune.facts import HostFacts, Node
from memtune.knobs import (
    CGROUP_LIMITS,
    PER_NODE_CMDLINE_SINCE,
    SYSCTLS,
    THP_CHOICES,
    UNIT_BYTES,
    format_version,
    parse_version,
)
from memtune.policy import (
    CgroupUnit,
    Guards,
    HugepagePool,
    InputSpec,
    Policy,
    PolicySet,
    Rule,
    When,
    pool_amount,
)
from memtune.sizes import parse_percent, parse_size
from memtune.yaml_source import Path_

INPUTS_SOURCE = "memtune_inputs"
DEFAULT_GUARDS = Guards()


class _Rule:
    """A rule in its layer: where it is, for provenance and error messages. Built once per policy and
    layer; the provenance of literal values is shared by every host planned with it."""

    def __init__(self, layer: str, policy: Policy, index: int, rule: Rule) -> None:
        self.layer, self.policy, self.rule, self.at = layer, policy, rule, ("rules", index)
        self.file = policy.file
        self._base: dict[Path_, Provenance] = {}
        self._planned: dict[tuple[Path_, int | str], Planned] = {}

    def provenance(
        self, path: Path_, expression: str | None = None, inputs: Mapping[str, Any] | None = None
    ) -> Provenance:
        base = self._base.get(path)
        if base is None:
            line, _ = self.policy.mark((*self.at, *path))
            base = _provenance(self.file, line, self.rule, self.layer, expression=None, inputs={})
            self._base[path] = base
        if expression is None and not inputs:
            return base
        return _provenance(
            self.file, base.line, self.rule, self.layer, expression=expression, inputs=dict(inputs or {})
        )

    def planned(self, path: Path_, value: int | str, provenance: Provenance) -> Planned:
        """A Planned value; the ones with this rule's literal provenance are shared between hosts."""
        if provenance is not self._base.get(path):
            return Planned.model_construct(value=value, provenance=provenance)
        key = (path, value)
        found = self._planned.get(key)
        if found is None:
            found = self._planned[key] = Planned.model_construct(value=value, provenance=provenance)
        return found

    def error(self, message: str, path: Path_ = ()) -> PolicyError:
        return self.policy.error(f"rule {self.rule.name!r}: {message}", (*self.at, *path))


def _provenance(
    file: str, line: int | None, rule: Rule, layer: str, *, expression: str | None, inputs: dict[str, Any]
) -> Provenance:
    return Provenance.model_construct(
        file=file,
        line=line,
        rule=rule.name,
        layer=layer,
        source=rule.source,
        expression=expression,
        inputs=inputs,
        overrides=[],
        value=None,
    )


def _rules_of(policy: Policy, layer: str) -> list[_Rule]:
    """The policy's rules for ``layer``, memoized on the policy (it is immutable)."""
    memo = policy.memo
    if layer not in memo:
        memo[layer] = [_Rule(layer, policy, index, rule) for index, rule in enumerate(policy.rules)]
    rules: list[_Rule] = memo[layer]
    return rules


def _replacing(new: Provenance, old: Any) -> Provenance:
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


class _Planner:
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
        self.version = facts.kernel.version
        self.memory_nodes = [node for node in facts.numa.nodes if node.has_memory] or list(facts.numa.nodes)

    # -- values ---------------------------------------------------------------------------------------
    def value(
        self,
        ctx: _Rule,
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
                    return self._number(ctx, path, result, unit_bytes, what), source, used
            except ExpressionError as exc:
                raise ctx.error(f"{what}: {exc.message}", path) from None
        return self._number(ctx, path, raw, unit_bytes, what), None, {}

    @staticmethod
    def _number(ctx: _Rule, path: Path_, value: Any, unit_bytes: int | None, what: str) -> int:
        if isinstance(value, bool) or value is None:
            raise ctx.error(f"{what}: expected a number, the expression gave {value!r}", path)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ctx.error(f"{what}: the expression gave {value}", path)
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
            raise ctx.error(f"{what}: expected a number, got {value!r}", path)
        return value

    def lacking(self, ctx: _Rule, knob: str, reason: str, path: Path_) -> None:
        if ctx.rule.required:
            raise ctx.error(f"{reason} (the rule is required)", path)
        self.skipped.append(
            Skipped.model_construct(knob=knob, reason=reason, provenance=ctx.provenance(path))
        )

    # -- when -----------------------------------------------------------------------------------------
    def matches(self, ctx: _Rule, when: When) -> bool:
        facts = self.facts
        if when.workload is not None and not self.workloads.intersection(when.workload):
            return False
        if when.ram is not None and not _within(facts.memory.mem_total_kb * 1024, when.ram.min, when.ram.max):
            return False
        if when.numa_nodes is not None and not _within(
            len(facts.numa.nodes), when.numa_nodes.min, when.numa_nodes.max
        ):
            return False
        if when.kernel is not None and not all(_compare(self.version, cond) for cond in when.kernel):
            return False
        if when.virtualization is not None and facts.platform.virtualization not in when.virtualization:
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
        for workload in self.facts.workloads:
            if workload.name == name and workload.version:
                try:
                    return parse_version(workload.version)
                except ValueError:
                    return None
        return None

    def when_expression(self, ctx: _Rule, raw: str) -> bool:
        try:
            source = split_expression(raw) or raw
            result, _ = self.scope.evaluate(compile_expression(source), None, "when")
        except ExpressionError as exc:
            raise ctx.error(f"when: {exc.message}", ("when", "expr")) from None
        return bool(result)

    # -- knobs ----------------------------------------------------------------------------------------
    def apply(self, ctx: _Rule) -> None:
        rule = ctx.rule
        if rule.when is not None and not self.matches(ctx, rule.when):
            return
        if rule.warn:
            line, _ = ctx.policy.mark((*ctx.at, "warn"))
            self.warnings.append(f"{ctx.policy.file}:{line} rule {rule.name!r}: {rule.warn}")
        for key, raw in rule.sysctl.items():
            self.apply_sysctl(ctx, key, raw)
        if rule.thp is not None:
            for key in ("enabled", "defrag"):
                choice = getattr(rule.thp, key)
                if choice is not None:
                    self.apply_thp(ctx, key, choice)
        for index, pool in enumerate(rule.hugepages):
            self.apply_pool(ctx, index, pool)
        for index, group in enumerate(rule.cgroups):
            self.apply_cgroup(ctx, index, group)

    def apply_sysctl(self, ctx: _Rule, key: str, raw: Any) -> None:
        knob = SYSCTLS[key]
        path = ("sysctl", key)
        release = self.facts.kernel.release
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
            limit = self.facts.memory.mem_total_kb * self.guards.min_free_kbytes_max_percent / 100
            if value > limit:
                raise ctx.error(
                    f"{key} = {value} is above {self.guards.min_free_kbytes_max_percent:g} % of RAM "
                    f"({int(limit)} kB): the host would be short of memory",
                    path,
                )
        provenance = _replacing(ctx.provenance(path, expression, used), self.sysctl.get(key))
        if knob.exclusive_with and knob.exclusive_with in self.sysctl:
            provenance = _replacing(provenance, self.sysctl.pop(knob.exclusive_with))
        self.sysctl[key] = ctx.planned(path, value, provenance)
        return None

    def apply_thp(self, ctx: _Rule, key: str, choice: str) -> None:
        path = ("thp", key)
        thp = self.facts.thp
        if thp is None:
            return self.lacking(ctx, f"thp.{key}", "this kernel has no transparent hugepages", path)
        choices = thp.enabled_choices if key == "enabled" else thp.defrag_choices
        release = self.facts.kernel.release
        if choices and choice not in choices:
            reason = f"kernel {release} offers THP {key} {'/'.join(choices)}, not {choice}"
            return self.lacking(ctx, f"thp.{key}", reason, path)
        since = THP_CHOICES[key][choice]
        if not choices and self.version is not None and self.version < since:
            reason = f"THP {key} {choice} first appeared in {format_version(since)}; kernel is {release}"
            return self.lacking(ctx, f"thp.{key}", reason, path)
        provenance = _replacing(ctx.provenance(path), self.thp.get(key))
        self.thp[key] = ctx.planned(path, choice, provenance)
        return None

    def apply_pool(self, ctx: _Rule, index: int, pool: HugepagePool) -> None:
        kind, raw = pool_amount(pool)
        path: Path_ = ("hugepages", index, kind)
        size_kb = pool.size
        name = f"hugepages.{size_kb}kB"
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
        provenance = _replacing(ctx.provenance(path, expression, used), self.pools.get(size_kb))
        self.pools[size_kb] = HugepagePlan.model_construct(
            size_kb=size_kb,
            per_node=per_node,
            boot=pool.boot or size_kb >= 1048576,
            required=pool.required,
            provenance=provenance,
        )
        return None

    def pool_pages(
        self, ctx: _Rule, path: Path_, raw: Any, *, kind: str, size_kb: int, node: Node | None
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
                    expression = source
                except ExpressionError as exc:
                    raise ctx.error(f"{what}: {exc.message}", path) from None
            if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction < 1:
                raise ctx.error(f"{what}: expected a fraction between 0 and 1, got {fraction!r}", path)
            base_kb = (node.mem_total_kb or 0) if node is not None else self.facts.memory.mem_total_kb
            pages = math.floor(base_kb * fraction / size_kb)
        if pages < 0:
            raise ctx.error(f"{what}: {pages} pages is negative", path)
        return pages, expression, used

    def apply_cgroup(self, ctx: _Rule, index: int, group: Any) -> None:
        is_unit = isinstance(group, CgroupUnit)
        target = group.unit if is_unit else group.path
        path: Path_ = ("cgroups", index)
        platform = self.facts.platform
        if not platform.cgroup.memory_controller or platform.cgroup.version == "none":
            return self.lacking(ctx, f"cgroup.{target}", "this host has no cgroup memory controller", path)
        if is_unit and not platform.systemd:
            return self.lacking(ctx, f"cgroup.{target}", "this host does not run systemd", path)
        limits: dict[str, Limit] = {}
        used: dict[str, Any] = {}
        expressions: list[str] = []
        for name, raw in group.limits().items():
            percent = parse_percent(raw) if isinstance(raw, str) else None
            if raw == "infinity":
                limits[name] = "infinity"
            elif percent is not None:
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
        provenance = _replacing(ctx.provenance(path, "; ".join(expressions) or None, used), old)
        force = group.force or bool(old and old.force)
        self.cgroups[target] = (
            UnitCgroup.model_construct(unit=target, limits=merged, force=force, provenance=provenance)
            if is_unit
            else PathCgroup.model_construct(path=target, limits=merged, force=force, provenance=provenance)
        )
        return None

    # -- after all layers -----------------------------------------------------------------------------
    def check_node_memory(self) -> None:
        share = self.guards.hugepages_min_node_free_percent
        for node in self.memory_nodes:
            if node.mem_total_kb is None:
                self.warnings.append(
                    f"NUMA node {node.id} reports no MemTotal; its hugepages are not checked"
                )
                continue
            reserved = 0
            for pool in sorted(self.pools.values(), key=lambda p: p.size_kb):
                reserved += pool.per_node.get(str(node.id), 0) * pool.size_kb
                allowed = node.mem_total_kb * (100 - share) / 100
                if reserved > allowed:
                    prov = pool.provenance
                    raise PolicyError(
                        f"rule {prov.rule!r}: hugepages would take {reserved} kB of NUMA node {node.id}'s "
                        f"{node.mem_total_kb} kB, leaving less than {share:g} % of it free",
                        prov.file,
                        prov.line,
                    )

    def cmdline(self) -> list[CmdlineArg]:
        args: list[CmdlineArg] = []
        for pool in sorted(self.pools.values(), key=lambda p: p.size_kb):
            if not pool.boot:
                continue
            size = "1G" if pool.size_kb == 1048576 else "2M"
            counts = {int(node): count for node, count in pool.per_node.items()}
            per_node = len(counts) > 1 and self.version is not None and self.version >= PER_NODE_CMDLINE_SINCE
            if per_node:
                value = ",".join(f"{node}:{count}" for node, count in sorted(counts.items()))
            else:
                value = str(sum(counts.values()))
                if len(set(counts.values())) > 1:
                    self.warnings.append(
                        f"kernel {self.facts.kernel.release} cannot place boot hugepages per "
                        f"node; {value} {size} pages will be split evenly at boot"
                    )
            args.append(CmdlineArg.model_construct(arg=f"hugepagesz={size}", provenance=pool.provenance))
            args.append(CmdlineArg.model_construct(arg=f"hugepages={value}", provenance=pool.provenance))
        return args


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


def _check_limit_order(ctx: _Rule, path: Path_, limits: Mapping[str, Limit]) -> None:
    ordered = [(name, limits[name]) for name in CGROUP_LIMITS[:4] if isinstance(limits.get(name), int)]
    for (low_name, low), (high_name, high) in itertools.pairwise(ordered):
        if isinstance(low, int) and isinstance(high, int) and low > high:
            raise ctx.error(f"cgroups: {low_name} ({low}) is above {high_name} ({high})", path)


def spread(total: int, weights: Mapping[int, int]) -> dict[int, int]:
    """Split ``total`` over nodes in proportion to ``weights`` (largest remainder; ties to the lower id)."""
    if not weights:
        return {}
    weight_sum = sum(weights.values())
    if weight_sum <= 0:
        weights = dict.fromkeys(weights, 1)
        weight_sum = len(weights)
    shares = {node: total * weight // weight_sum for node, weight in weights.items()}
    remainders = sorted(weights, key=lambda node: (-(total * weights[node] % weight_sum), node))
    for node in remainders[: total - sum(shares.values())]:
        shares[node] += 1
    return shares


def resolve_inputs(policies: Sequence[Policy], given: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Check the inventory's inputs against what the active policies declare; apply defaults."""
    specs: dict[str, InputSpec] = {}
    for policy in policies:
        for name, spec in policy.inputs.items():
            specs.setdefault(name, spec)
    resolved: dict[str, Any] = {
        name: _input_value(name, spec, spec.default)
        for name, spec in specs.items()
        if spec.default is not None
    }
    warnings: list[str] = []
    for name, value in given.items():
        if name not in specs:
            warnings.append(f"{INPUTS_SOURCE}.{name} is not used by the policies of this host")
            continue
        resolved[name] = _input_value(name, specs[name], value)
    return resolved, warnings


def _input_value(name: str, spec: InputSpec, value: Any) -> Any:
    if value is None:
        return None
    try:
        if spec.type == "int":
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ValueError
            return int(value)  # a str that is not an integer raises ValueError
        if spec.type == "size":
            if isinstance(value, bool):
                raise ValueError
            return parse_size(value)
        if spec.type == "bool":
            if not isinstance(value, bool):
                raise ValueError
            return value
        if spec.type == "version":
            parse_version(str(value))
        return str(value)
    except ValueError:
        raise PolicyError(
            f"{name}: expected {'a ' + spec.type if spec.type != 'int' else 'an int'}, got {value!r}",
            INPUTS_SOURCE,
        ) from None


def plan(
    facts: HostFacts,
    policies: PolicySet,
    *,
    host: str | None = None,
    groups: Sequence[str] = (),
    workloads: Sequence[str] | None = None,
    inputs: Mapping[str, Any] | None = None,
    inline: Sequence[Policy] = (),
) -> DesiredState:
    """Plan one host. Layers, lowest first: baseline, workloads (``workloads`` forces them; by default the
    detected ones that have a policy, in name order), ``groups`` in the given order, then ``host``'s policy;
    ``inline`` group and host policies (from inventory variables) follow the files of their layer."""
    warnings: list[str] = []
    if workloads is None:
        chosen = sorted(facts.workload_names & policies.workloads.keys())
        warnings += [
            f"workload {name} detected; no policy for it"
            for name in sorted(facts.workload_names - policies.workloads.keys())
        ]
    else:
        missing = [name for name in workloads if name not in policies.workloads]
        if missing:
            raise PolicyError(
                f"no workload policy {missing[0]!r} (have: {', '.join(sorted(policies.workloads))})",
                "memtune_workloads",
            )
        chosen = list(dict.fromkeys(workloads))
    layers: list[tuple[str, Policy]] = [("baseline", policies.baseline)] if policies.baseline else []
    for name in chosen:
        layers += [
            ("workload", policy)
            for policy in policies.workload_chain(name)
            if not any(policy is seen for _, seen in layers)
        ]
    layers += [("group", policies.groups[name]) for name in groups if name in policies.groups]
    layers += [("group", policy) for policy in inline if policy.layer == "group"]
    if host is not None and host in policies.hosts:
        layers.append(("host", policies.hosts[host]))
    layers += [("host", policy) for policy in inline if policy.layer == "host"]
    resolved, input_warnings = resolve_inputs([policy for _, policy in layers], inputs or {})
    planner = _Planner(facts, frozenset(chosen), resolved)
    planner.warnings += warnings + input_warnings
    for layer, policy in layers:
        if policy.guards is not None:
            planner.guards = policy.guards
        for rule in _rules_of(policy, layer):
            planner.apply(rule)
    planner.check_node_memory()
    return DesiredState.model_construct(
        schema_version=1,
        sysctl=dict(sorted(planner.sysctl.items())),
        thp={key: planner.thp[key] for key in ("enabled", "defrag") if key in planner.thp},
        hugepages=sorted(planner.pools.values(), key=lambda pool: pool.size_kb),
        kernel_cmdline=planner.cmdline(),
        cgroups=[planner.cgroups[key] for key in sorted(planner.cgroups)],
        skipped=planner.skipped,
        warnings=planner.warnings,
    )
