"""Hugepage pools after all layers: spreading over NUMA nodes, the per-node memory guard, and the kernel
command line for pools reserved at boot."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from memtune.engine.knobs import Version
from memtune.engine.planned import CmdlineArg, HugepagePlan
from memtune.errors import PolicyError
from memtune.facts.parts import Node

# hugepages=<node>:<count>,... on the command line (per-node boot allocation) since 5.16.
PER_NODE_CMDLINE_SINCE: Version = (5, 16, 0)


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


def check_node_memory(pools: Iterable[HugepagePlan], nodes: Iterable[Node], share: float) -> list[str]:
    """Fail, naming the pool's rule, when the pools would leave less than ``share`` % of a node's own
    memory free. -> warnings for nodes that report no memory size."""
    warnings: list[str] = []
    ordered = sorted(pools, key=lambda p: p.size_kb)
    for node in nodes:
        if node.mem_total_kb is None:
            warnings.append(f"NUMA node {node.id} reports no MemTotal; its hugepages are not checked")
            continue
        reserved = 0
        allowed = node.mem_total_kb * (100 - share) / 100
        for pool in ordered:
            reserved += pool.per_node.get(str(node.id), 0) * pool.size_kb
            if reserved > allowed:
                prov = pool.provenance
                raise PolicyError(
                    f"rule {prov.rule!r}: hugepages would take {reserved} kB of NUMA node {node.id}'s "
                    f"{node.mem_total_kb} kB, leaving less than {share:g} % of it free",
                    prov.file,
                    prov.line,
                )
    return warnings


def boot_arguments(
    pools: Iterable[HugepagePlan], version: Version | None, release: str
) -> tuple[list[CmdlineArg], list[str]]:
    """``hugepagesz=``/``hugepages=`` for the pools reserved at boot: per node on kernels that take it,
    else the total (which the kernel splits evenly). -> (arguments, warnings)."""
    args: list[CmdlineArg] = []
    warnings: list[str] = []
    for pool in sorted(pools, key=lambda p: p.size_kb):
        if not pool.boot:
            continue
        size = "1G" if pool.size_kb == 1048576 else "2M"
        counts = {int(node): count for node, count in pool.per_node.items()}
        if len(counts) > 1 and version is not None and version >= PER_NODE_CMDLINE_SINCE:
            value = ",".join(f"{node}:{count}" for node, count in sorted(counts.items()))
        else:
            value = str(sum(counts.values()))
            if len(set(counts.values())) > 1:
                warnings.append(
                    f"kernel {release} cannot place boot hugepages per node; {value} {size} pages will be "
                    "split evenly at boot"
                )
        args.append(CmdlineArg.model_construct(arg=f"hugepagesz={size}", provenance=pool.provenance))
        args.append(CmdlineArg.model_construct(arg=f"hugepages={value}", provenance=pool.provenance))
    return args, warnings
