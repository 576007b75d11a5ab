"""A host's memory picture for the reports: RAM and swap, NUMA nodes with their huge page pools, THP and
memory pressure, taken from the facts the audit read (a summary, not the facts themselves)."""

from __future__ import annotations

from memtune.engine.kinds.hugepages import facts_hugepages
from memtune.engine.kinds.thp import KIND as THP
from memtune.facts.model import HostFacts, PressureLine
from memtune.model import Model


class NodeMemory(Model):
    """One NUMA node: its memory and, per huge page size in kB, the pages in its pool."""

    node: int
    mem_total_kb: int | None
    mem_free_kb: int | None
    hugepages: dict[int, int | None] = {}


class PoolMemory(Model):
    """One huge page size (kB) across the host: pages in the pool and free."""

    size_kb: int
    nr: int | None
    free: int | None


class PressureAverages(Model):
    """One line of /proc/pressure/memory: percentages over 10 s and 60 s, and the total stall in µs."""

    avg10: float
    avg60: float
    total: int


class MemoryPicture(Model):
    mem_total_kb: int
    mem_available_kb: int | None = None
    swap_total_kb: int | None = None
    swap_used_kb: int | None = None
    nodes: list[NodeMemory] = []
    pools: list[PoolMemory] = []
    thp_enabled: str | None = None
    thp_defrag: str | None = None
    psi_some: PressureAverages | None = None
    psi_full: PressureAverages | None = None


def _pressure(line: PressureLine | None) -> PressureAverages | None:
    return None if line is None else PressureAverages(avg10=line.avg10, avg60=line.avg60, total=line.total)


def memory_picture(facts: HostFacts) -> MemoryPicture:
    memory, pressure = facts.memory, facts.pressure
    return MemoryPicture(
        mem_total_kb=memory.mem_total_kb,
        mem_available_kb=memory.mem_available_kb,
        swap_total_kb=memory.swap_total_kb,
        swap_used_kb=memory.swap_used_kb,
        nodes=[
            NodeMemory(
                node=node.id,
                mem_total_kb=node.mem_total_kb,
                mem_free_kb=node.mem_free_kb,
                hugepages={size: pool.nr for size, pool in sorted(node.hugepages.items())},
            )
            for node in facts.numa.nodes
        ],
        pools=[
            PoolMemory(size_kb=size, nr=pool.nr, free=pool.free)
            for size, pool in sorted(facts_hugepages(facts).pools.items())
        ],
        thp_enabled=_text(THP.fact(facts, "enabled")),
        thp_defrag=_text(THP.fact(facts, "defrag")),
        psi_some=_pressure(pressure.some) if pressure else None,
        psi_full=_pressure(pressure.full) if pressure else None,
    )


def _text(value: int | str | None) -> str | None:
    return None if value is None else str(value)
