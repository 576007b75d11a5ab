"""Facts of hosts that were not probed, derived from real captured facts: another RAM size, NUMA layout or
kernel. For benchmarks and tests of the engine across a fleet; the probe never uses it."""

from __future__ import annotations

from memtune.engine.knobs import Version
from memtune.facts.model import HostFacts
from memtune.facts.parts import Node, NodePool


def resize(facts: HostFacts, mem_total_kb: int, node_count: int, kernel: Version | None = None) -> HostFacts:
    """``facts`` with ``mem_total_kb`` of RAM split evenly over ``node_count`` NUMA nodes (CPUs dealt out
    round-robin, distance 10 local and 20 remote) and optionally another kernel version."""
    template = facts.numa.nodes[0]
    cpus = sorted(cpu for node in facts.numa.nodes for cpu in node.cpus) or [0]
    per_node_kb = mem_total_kb // node_count
    empty_pools = {size: NodePool(nr=0, free=0, surplus=0) for size in template.hugepages}
    nodes = [
        Node(
            id=index,
            mem_total_kb=per_node_kb,
            mem_free_kb=per_node_kb * 9 // 10,
            mem_used_kb=per_node_kb // 10,
            file_pages_kb=0,
            cpus=[cpu for position, cpu in enumerate(cpus) if position % node_count == index],
            distances={other: 10 if other == index else 20 for other in range(node_count)},
            has_memory=True,
            hugepages=empty_pools,
        )
        for index in range(node_count)
    ]
    ids = list(range(node_count))
    update: dict[str, object] = {
        "memory": facts.memory.model_copy(update={"mem_total_kb": mem_total_kb}),
        "numa": facts.numa.model_copy(
            update={
                "available": node_count > 1 or facts.numa.available,
                "online": ids,
                "possible": ids,
                "nodes": nodes,
            }
        ),
    }
    if kernel is not None:
        release = ".".join(str(part) for part in kernel)
        update["kernel"] = facts.kernel.model_copy(update={"version": kernel, "release": release})
    return facts.model_copy(update=update)
