"""Hugepage pools (/sys/kernel/mm/hugepages, per NUMA node below /sys/devices/system/node): a rule's
``hugepages:`` list, planned per node, checked against the pages the kernel holds and what memtune's boot
unit (or the kernel command line, for pools reserved at boot: the cmdline kind) restores."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

from pydantic import BeforeValidator, Discriminator, Field, StrictBool, StrictStr, Tag, WithJsonSchema

from memtune.audit.checks import BOOT_UNIT, Check, Finding, Kind, Value, boot_write, finding, value
from memtune.engine.hugepages import check_node_memory, spread
from memtune.engine.kinds.base import KnobKind, RuleChecks, read
from memtune.engine.knobs import MERGE_TEXT, NOTES, Merge
from memtune.engine.planned import CmdlineArg, HugepagePlan, Provenance, replacing
from memtune.engine.sizes import is_size
from memtune.facts.parts import Hugepages as HugepagesFacts
from memtune.facts.parts import Node
from memtune.model import Model
from memtune.policy.expr import ExpressionError, compile_expression, split_expression
from memtune.policy.fields import Value as RuleValue
from memtune.policy.fields import one_of, to_bytes
from memtune.policy.source import Path_

if TYPE_CHECKING:
    from pydantic import BaseModel

    from memtune.engine.layers import Planner
    from memtune.engine.rules import RuleContext
    from memtune.facts.model import HostFacts

NODES_DIR = "/sys/devices/system/node"
HUGEPAGES_DIR = "/sys/kernel/mm/hugepages"
HUGEPAGE_SIZES_KB = (2048, 1048576)
# Hugepage pools of different workloads add up by default; a rule may say ``merge: max`` for a pool it
# knows is shared (the larger request covers both).
HUGEPAGE_MERGES: tuple[Merge, ...] = ("sum", "max")


def _hugepage_size(value: Any) -> Any:
    n_bytes = to_bytes(value)
    if isinstance(n_bytes, int) and n_bytes // 1024 in HUGEPAGE_SIZES_KB and n_bytes % 1024 == 0:
        return n_bytes // 1024
    raise ValueError("hugepage size must be 2MiB or 1GiB")


class _Pool(Model):
    size: Annotated[
        int, BeforeValidator(_hugepage_size), WithJsonSchema({"type": "string", "enum": ["2MiB", "1GiB"]})
    ]
    placement: Literal["spread", "per_node"] = "spread"
    nodes: list[Annotated[int, Field(ge=0)]] | None = None
    boot: StrictBool = False
    required: StrictBool = False


class PoolCount(_Pool):
    count: RuleValue


class PoolTotal(_Pool):
    total: RuleValue


class PoolFraction(_Pool):
    fraction: Annotated[float, Field(gt=0, lt=1)] | StrictStr


def pool_amount(pool: PoolCount | PoolTotal | PoolFraction) -> tuple[str, Any]:
    """-> ("count" | "total" | "fraction", the value as written)."""
    if isinstance(pool, PoolCount):
        return "count", pool.count
    if isinstance(pool, PoolTotal):
        return "total", pool.total
    return "fraction", pool.fraction


HugepagePool = Annotated[
    Annotated[PoolCount, Tag("count")]
    | Annotated[PoolTotal, Tag("total")]
    | Annotated[PoolFraction, Tag("fraction")],
    Discriminator(
        one_of(("count", "total", "fraction")),
        custom_error_type="pool_amount",
        custom_error_message="a hugepage pool needs exactly one of count, total or fraction",
    ),
]

Section = list[PoolCount | PoolTotal | PoolFraction]
State = dict[int, HugepagePlan]
Desired = list[HugepagePlan]


def facts_hugepages(facts: HostFacts) -> HugepagesFacts:
    return cast(HugepagesFacts, read(facts, "hugepages"))


def pool_at_boot(facts: HostFacts, node: int, size_kb: int) -> tuple[str | None, str | None]:
    """(pages, source) memtune's boot unit restores in the ``size_kb`` pool of NUMA node ``node``; on a
    kernel without NUMA nodes, node 0's pool is the host-wide one memory_apply writes."""
    if node == 0 and not facts.numa.available:
        return boot_write(facts, f"{HUGEPAGES_DIR}/hugepages-{size_kb}kB/nr_hugepages")
    return boot_write(facts, f"{NODES_DIR}/node{node}/hugepages/hugepages-{size_kb}kB/nr_hugepages")


class Hugepages(KnobKind[Section, State, Desired]):
    name = "hugepages"
    order = 30
    rule_key = "hugepages"
    desired_key = "hugepages"
    rule_fields = {"hugepages": (list[HugepagePool], [])}
    rule_models = (PoolCount, PoolTotal, PoolFraction)
    facts_fields = {"hugepages": (HugepagesFacts, ...)}
    desired_fields = {"hugepages": (list[HugepagePlan], [])}
    merge_pattern = "hugepages"

    def merges(self, key: str) -> tuple[Merge, ...]:
        return HUGEPAGE_MERGES if key == "hugepages" else ()

    def merge_keys(self, section: Section) -> set[str]:
        return {"hugepages"} if section else set()

    def checks(self, section: Section, rule: RuleChecks) -> Iterator[Callable[[], None]]:
        def check(index: int, pool: PoolCount | PoolTotal | PoolFraction) -> None:
            kind, amount = pool_amount(pool)
            path = ("hugepages", index, kind)
            if isinstance(amount, int) and not 0 <= amount < 2**63:
                raise rule.error(f"hugepage {kind} {amount} is not a count from 0 to 2^63-1", path)
            plain = not rule.expression(amount, path) and isinstance(amount, str)
            if plain and (kind != "total" or not is_size(str(amount))):
                raise rule.error(
                    f"hugepage {kind} {amount!r} is not a "
                    f"{'size' if kind == 'total' else 'number'} or an expression",
                    path,
                )

        for index, pool in enumerate(section):
            yield lambda index=index, pool=pool: check(index, pool)  # type: ignore[misc]

    def schema(self, defs: dict[str, Any], rule: dict[str, Any]) -> None:
        rule["hugepages"]["description"] = (
            f"Hugepage pools; {MERGE_TEXT['sum']} (a rule may say merge: {{hugepages: max}})"
        )
        rule["hugepages"]["x-merge"] = list(HUGEPAGE_MERGES)

    # -- planning -----------------------------------------------------------------------------------------
    def start(self) -> State:
        return {}

    def plan(self, planner: Planner, ctx: RuleContext, section: Section, state: State) -> None:
        for index, pool in enumerate(section):
            self._plan(planner, ctx, index, pool, state)

    def _plan(
        self,
        planner: Planner,
        ctx: RuleContext,
        index: int,
        pool: PoolCount | PoolTotal | PoolFraction,
        state: State,
    ) -> None:
        kind, raw = pool_amount(pool)
        path: Path_ = ("hugepages", index, kind)
        size_kb = pool.size
        name = f"hugepages.{size_kb}kB"
        planner.saw_kernel()
        planner.saw("hugepages.sizes_kb")
        planner.saw_nodes()
        sizes = facts_hugepages(planner.facts).sizes_kb
        if sizes and size_kb not in sizes:
            return planner.lacking(
                ctx, name, f"kernel {planner.facts.kernel.release} has no {size_kb} kB hugepages", path
            )
        known = {node.id for node in planner.memory_nodes}
        unknown = sorted(set(pool.nodes or ()) - known)
        if unknown:
            raise ctx.error(
                f"hugepages: NUMA node {unknown[0]} does not exist (nodes with memory: {sorted(known)})",
                ("hugepages", index, "nodes"),
            )
        nodes = [node for node in planner.memory_nodes if pool.nodes is None or node.id in pool.nodes]
        used: dict[str, Any] = {}
        expression: str | None = None
        if pool.placement == "per_node":
            counts = {}
            for node in nodes:
                counts[node.id], expression, node_used = self._pages(
                    planner, ctx, path, raw, kind=kind, size_kb=size_kb, node=node
                )
                used.update(node_used)
        else:
            total, expression, used = self._pages(
                planner, ctx, path, raw, kind=kind, size_kb=size_kb, node=None
            )
            counts = spread(total, {node.id: node.mem_total_kb or 0 for node in nodes})
        per_node = {str(node.id): counts.get(node.id, 0) for node in planner.memory_nodes}
        new = ctx.provenance(path, expression, used)
        old = state.get(size_kb)
        boot, required = pool.boot or size_kb >= 1048576, pool.required
        if old is not None and planner.shared(ctx, name, old.provenance):
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
            new = planner.settling(ctx, name, None, new)
        state[size_kb] = HugepagePlan.model_construct(
            size_kb=size_kb, per_node=per_node, boot=boot, required=required, provenance=replacing(new, old)
        )
        planner.hold(ctx, name)
        return None

    @staticmethod
    def _pages(
        planner: Planner,
        ctx: RuleContext,
        path: Path_,
        raw: Any,
        *,
        kind: str,
        size_kb: int,
        node: Node | None,
    ) -> tuple[int, str | None, dict[str, Any]]:
        what = f"hugepages {kind}"
        if kind == "count":
            pages, expression, used = planner.value(
                ctx, path, raw, unit_bytes=size_kb * 1024, what=what, node=node
            )
        elif kind == "total":
            n_bytes, expression, used = planner.value(ctx, path, raw, unit_bytes=1, what=what, node=node)
            pages = -(-n_bytes // (size_kb * 1024))
        else:
            expression, used, fraction = None, {}, raw
            if isinstance(raw, str):
                try:
                    source = split_expression(raw) or raw
                    fraction, used = planner.scope.evaluate(compile_expression(source), None, what, node)
                    planner.saw_used(used)
                    expression = source
                except ExpressionError as exc:
                    raise ctx.error(f"{what}: {exc.message}", path) from None
            if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction < 1:
                raise ctx.error(f"{what}: expected a fraction between 0 and 1, got {fraction!r}", path)
            planner.saw("memory.mem_total_kb")
            base_kb = (node.mem_total_kb or 0) if node is not None else planner.facts.memory.mem_total_kb
            pages = math.floor(base_kb * fraction / size_kb)
        if pages < 0:
            raise ctx.error(f"{what}: {pages} pages is negative", path)
        return pages, expression, used

    def finish(self, planner: Planner, state: State) -> dict[str, Any]:
        share = planner.guards.hugepages_min_node_free_percent
        planner.warnings += check_node_memory(state.values(), planner.memory_nodes, share)
        if any(pool.boot for pool in state.values()):
            planner.saw_kernel()
        return {"hugepages": sorted(state.values(), key=lambda pool: pool.size_kb)}

    # -- the desired state and the host -------------------------------------------------------------------
    def values(self, section: Desired) -> Iterator[tuple[str, Any, Provenance]]:
        for pool in section:
            yield f"hugepages.{pool.size_kb}kB", pool.per_node, pool.provenance

    def items(self, section: Desired) -> Iterator[str]:
        for pool in section:
            yield from (f"hugepages.{pool.size_kb}kB[node{node}]" for node in pool.per_node)

    def drift(self, section: Desired, facts: HostFacts, desired: BaseModel) -> Iterator[Check]:
        cmdline = [arg.arg for arg in cast(list[CmdlineArg], read(desired, "kernel_cmdline"))]
        for pool in section:
            yield from self._checks(pool, facts, cmdline)

    @staticmethod
    def _checks(pool: HugepagePlan, facts: HostFacts, cmdline: list[str]) -> Iterator[Check]:
        knob = f"hugepages.{pool.size_kb}kB"
        nodes = {node.id: node for node in facts.numa.nodes}
        boot_args = [arg for arg in cmdline if arg.startswith(("hugepages=", "hugepagesz="))]
        for node_key, count in sorted(pool.per_node.items(), key=lambda item: int(item[0])):
            node_id = int(node_key)
            node = nodes.get(node_id)
            held = node.hugepages.get(pool.size_kb) if node else None
            base = {"knob": knob, "node": node_id, "desired": count, "provenance": pool.provenance}
            if held is None or held.nr is None:
                missing = f"node {node_id}" if node is None else f"{pool.size_kb} kB pages on node {node_id}"
                yield Check(**base, findings=finding(Kind.unsupported, f"this host has no {missing}"))
                continue
            boot, source = pool_at_boot(facts, node_id, pool.size_kb)
            requested = boot == str(count)
            findings: list[Finding] = []
            if held.nr < count and (requested or (pool.boot and boot_args)):
                findings += finding(
                    Kind.shortfall, f"node {node_id} holds {held.nr} of {count} requested pages"
                )
            elif held.nr != count:
                findings += finding(
                    Kind.runtime_drift, f"node {node_id} holds {held.nr} pages, the plan {count}"
                )
            if not pool.boot and not requested:
                findings += finding(
                    Kind.boot_drift,
                    f"{BOOT_UNIT} restores {boot} pages on node {node_id}"
                    if boot is not None
                    else f"nothing restores this pool on node {node_id} at boot",
                )
            yield Check(**base, runtime=held.nr, boot=boot, boot_source=source, findings=findings)

    def host_state(self, facts: HostFacts) -> Iterator[tuple[str, Value]]:
        for node in facts.numa.nodes:
            for size_kb, pool in sorted(node.hugepages.items()):
                boot, source = pool_at_boot(facts, node.id, size_kb)
                yield (
                    f"hugepages.{size_kb}kB[node{node.id}]",
                    value(runtime=pool.nr, boot=boot, boot_source=source),
                )


KIND = Hugepages()
