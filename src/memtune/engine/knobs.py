"""The knob catalog: every sysctl memtune plans, its unit, the kernels that have it and its valid range there.

Ranges follow Documentation/admin-guide/sysctl/vm.rst and kernel.rst and the ``extra1``/``extra2`` bounds
of the kernel's sysctl tables; ``since`` is the first mainline release with the knob or the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Version = tuple[int, int, int]
INT_MAX = 2**31 - 1
LONG_MAX = 2**63 - 1
Unit = Literal["kB", "bytes", "percent", "count", "mode"]
# How the values of two workload policies combine (docs/policies.md "Workloads that share a host"):
# max: a minimum requirement, the larger wins; min: a ceiling, the smaller wins; sum: pools of different
# workloads add up; agree: a mode, different values are a conflict. Group and host layers replace.
Merge = Literal["max", "min", "sum", "agree"]
MERGES: tuple[Merge, ...] = ("max", "min", "sum", "agree")
UNIT_BYTES: dict[str, int] = {"kB": 1024, "bytes": 1}


@dataclass(frozen=True)
class Span:
    """Values ``low..high`` are valid on kernels ``since`` and newer (until a later span)."""

    since: Version
    low: int
    high: int


@dataclass(frozen=True)
class Knob:
    name: str
    unit: Unit
    spans: tuple[Span, ...]
    doc: str
    merge: Merge
    exclusive_with: str | None = None  # writing one of a bytes/ratio pair zeroes the other

    @property
    def since(self) -> Version:
        return self.spans[0].since

    def span_for(self, version: Version | None) -> Span:
        """The valid range on ``version``; the oldest (narrowest) when the version is unknown."""
        if version is None:
            return self.spans[0]
        chosen = self.spans[0]
        for span in self.spans:
            if version >= span.since:
                chosen = span
        return chosen

    @property
    def widest(self) -> Span:
        return Span(self.since, min(s.low for s in self.spans), max(s.high for s in self.spans))


_VM = "https://docs.kernel.org/admin-guide/sysctl/vm.html"
_KERNEL = "https://docs.kernel.org/admin-guide/sysctl/kernel.html"

SYSCTLS: dict[str, Knob] = {
    knob.name: knob
    for knob in (
        # 0..200 since "mm: allow swappiness that prefers reclaiming anon over the file workingset" (5.8).
        Knob(
            "vm.swappiness",
            "percent",
            (Span((2, 6, 0), 0, 100), Span((5, 8, 0), 0, 200)),
            f"{_VM}#swappiness",
            merge="min",
        ),
        Knob(
            "vm.min_free_kbytes", "kB", (Span((2, 6, 0), 0, INT_MAX),), f"{_VM}#min-free-kbytes", merge="max"
        ),
        # Added in 4.6 with a ceiling of 1000 (10 % of memory); vm.rst now documents 3000 (30 %).
        Knob(
            "vm.watermark_scale_factor",
            "count",
            (Span((4, 6, 0), 1, 1000), Span((5, 19, 0), 1, 3000)),
            f"{_VM}#watermark-scale-factor",
            merge="max",
        ),
        Knob(
            "vm.watermark_boost_factor",
            "count",
            (Span((5, 0, 0), 0, INT_MAX),),
            f"{_VM}#watermark-boost-factor",
            merge="max",
        ),
        # Bit 1 (2, memory tiering) since 5.18 ("NUMA balancing: optimize page placement for memory tiering").
        Knob(
            "kernel.numa_balancing",
            "mode",
            (Span((3, 8, 0), 0, 1), Span((5, 18, 0), 0, 3)),
            f"{_KERNEL}#numa-balancing",
            merge="agree",
        ),
        Knob(
            "vm.overcommit_memory",
            "mode",
            (Span((2, 6, 0), 0, 2),),
            f"{_VM}#overcommit-memory",
            merge="agree",
        ),
        # A share of RAM (or kB, its twin) that mode 2 lets be committed: more is the larger requirement.
        Knob(
            "vm.overcommit_ratio",
            "percent",
            (Span((2, 6, 0), 0, INT_MAX),),
            f"{_VM}#overcommit-ratio",
            merge="max",
            exclusive_with="vm.overcommit_kbytes",
        ),
        # Added in 3.14 ("mm: add overcommit_kbytes sysctl variable"); writing it zeroes overcommit_ratio.
        Knob(
            "vm.overcommit_kbytes",
            "kB",
            (Span((3, 14, 0), 0, LONG_MAX // 1024),),
            f"{_VM}#overcommit-kbytes",
            merge="max",
            exclusive_with="vm.overcommit_ratio",
        ),
        # 0 kills a task, 1 panics unless the OOM is confined to a cpuset/mempolicy, 2 always panics.
        Knob("vm.panic_on_oom", "mode", (Span((2, 6, 0), 0, 2),), f"{_VM}#panic-on-oom", merge="agree"),
        Knob(
            "vm.max_map_count", "count", (Span((2, 6, 0), 0, INT_MAX),), f"{_VM}#max-map-count", merge="max"
        ),
        Knob(
            "vm.zone_reclaim_mode",
            "mode",
            (Span((2, 6, 0), 0, 7),),
            f"{_VM}#zone-reclaim-mode",
            merge="agree",
        ),
        Knob(
            "vm.dirty_background_bytes",
            "bytes",
            (Span((2, 6, 29), 1, LONG_MAX),),
            f"{_VM}#dirty-background-bytes",
            merge="min",
            exclusive_with="vm.dirty_background_ratio",
        ),
        Knob(
            "vm.dirty_background_ratio",
            "percent",
            (Span((2, 6, 0), 0, 100),),
            f"{_VM}#dirty-background-ratio",
            merge="min",
            exclusive_with="vm.dirty_background_bytes",
        ),
        # The kernel refuses dirty_bytes below two pages.
        Knob(
            "vm.dirty_bytes",
            "bytes",
            (Span((2, 6, 29), 8192, LONG_MAX),),
            f"{_VM}#dirty-bytes",
            merge="min",
            exclusive_with="vm.dirty_ratio",
        ),
        Knob(
            "vm.dirty_ratio",
            "percent",
            (Span((2, 6, 0), 0, 100),),
            f"{_VM}#dirty-ratio",
            merge="min",
            exclusive_with="vm.dirty_bytes",
        ),
    )
}

_THP_DOC = "https://docs.kernel.org/admin-guide/mm/transhuge.html"
THP_DIR = "/sys/kernel/mm/transparent_hugepage"
# The THP settings memtune manages -> their file below /sys/kernel/mm/transparent_hugepage (the host side's
# copy is plugins/module_utils/_probe/collect.py THP_FILES; tests/contract/test_contract.py keeps them equal).
THP_FILES: dict[str, str] = {
    "enabled": "enabled",
    "defrag": "defrag",
    "shmem_enabled": "shmem_enabled",
    "khugepaged_defrag": "khugepaged/defrag",
    "khugepaged_max_ptes_none": "khugepaged/max_ptes_none",
}
# Integer THP settings and their range: khugepaged/defrag is 0 or 1; max_ptes_none is 0..HPAGE_PMD_NR - 1,
# 511 with 4 KiB pages (transhuge.rst "khugepaged will be automatically started..."; a kernel with larger
# base pages has a larger bound, which the kernel itself enforces on write).
THP_INTEGERS: dict[str, Span] = {
    "khugepaged_defrag": Span((2, 6, 38), 0, 1),
    "khugepaged_max_ptes_none": Span((2, 6, 38), 0, 511),
}
# Choice -> first kernel offering it (defer: 4.6, defer+madvise: 4.11; shmem_enabled: 4.8).
THP_CHOICES: dict[str, dict[str, Version]] = {
    "enabled": {"always": (2, 6, 38), "madvise": (2, 6, 38), "never": (2, 6, 38)},
    "defrag": {
        "always": (2, 6, 38),
        "defer": (4, 6, 0),
        "defer+madvise": (4, 11, 0),
        "madvise": (2, 6, 38),
        "never": (2, 6, 38),
    },
    "shmem_enabled": {
        choice: (4, 8, 0) for choice in ("always", "within_size", "advise", "never", "deny", "force")
    },
}
# THP settings combine as modes: two workloads wanting different choices are a conflict.
THP_MERGE: Merge = "agree"
HUGEPAGE_SIZES_KB = (2048, 1048576)
# Hugepage pools of different workloads add up by default; a rule may say ``merge: max`` for a pool it
# knows is shared (the larger request covers both).
HUGEPAGE_MERGES: tuple[Merge, ...] = ("sum", "max")
# hugepages=<node>:<count>,... on the command line (per-node boot allocation) since 5.16.
PER_NODE_CMDLINE_SINCE: Version = (5, 16, 0)
CGROUP_LIMITS = ("MemoryMin", "MemoryLow", "MemoryHigh", "MemoryMax", "MemorySwapMax")
# What a cgroup v1 memory controller can hold: memory.limit_in_bytes, which systemd sets from MemoryMax= (its
# legacy MemoryLimit=); it ignores the others there (systemd.resource-control(5)). The host side's copy is
# plugins/module_utils/_host/cgroup.py V1_FILES (tests/contract/test_contract.py keeps them equal).
CGROUP_V1_LIMITS = ("MemoryMax",)


def parse_version(text: str) -> Version:
    """``"5.8"`` -> (5, 8, 0); ``"6.1.0-26-amd64"`` -> (6, 1, 0)."""
    parts: list[int] = []
    for piece in text.strip().split(".")[:3]:
        digits = ""
        for char in piece:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) != len(piece):
            break
    if not parts:
        raise ValueError(f"not a version: {text!r}")
    while len(parts) < 3:
        parts.append(0)
    return (parts[0], parts[1], parts[2])


def format_version(version: Version) -> str:
    return ".".join(str(part) for part in version)
