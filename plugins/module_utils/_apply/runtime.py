# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read and write the kernel's runtime memory knobs: sysctls, setting files (THP, zswap), hugepage pools.

Every path written is built here from validated names, below /proc/sys/vm, /proc/sys/kernel, the
setting-files kinds' directories (_contract.SETTING_KINDS), /sys/devices/system/node (or
/sys/kernel/mm/hugepages on a kernel without NUMA). Nothing runs a command.
"""

from __future__ import annotations

from ansible_collections.memtune.fleet.plugins.module_utils._contract import SETTING_KINDS
from ansible_collections.memtune.fleet.plugins.module_utils._probe.numa import HUGEPAGES_DIR, NODE_DIR

COMPACT_MEMORY = "/proc/sys/vm/compact_memory"
WRITABLE_PREFIXES = (
    "/proc/sys/vm/",
    "/proc/sys/kernel/",
    *(kind.directory + "/" for kind in SETTING_KINDS),
    NODE_DIR + "/",
    HUGEPAGES_DIR + "/",
    "/sys/fs/cgroup/",
)


def pool_path(tree, size_kb, node):
    """nr_hugepages of one node's pool; the host-wide pool when the kernel has no NUMA node directories."""
    if node == 0 and not tree.exists(NODE_DIR + "/node0"):
        return "%s/hugepages-%dkB/nr_hugepages" % (HUGEPAGES_DIR, size_kb)
    return "%s/node%d/hugepages/hugepages-%dkB/nr_hugepages" % (NODE_DIR, node, size_kb)


def write_value(tree, path, value):
    """Write one value to a kernel file on the allowlist; raises OSError as the kernel answers."""
    if not path.startswith(WRITABLE_PREFIXES) or "/../" in path:
        raise ValueError("refusing to write %s: not a memory knob memtune manages" % path)
    with open(tree.path(path), "w") as handle:
        handle.write("%s\n" % value)


def allocate_pool(write, read, compact, requested, retries):
    """Ask for ``requested`` pages, read back what the kernel gave; on a shortfall compact memory and ask
    again, at most ``retries`` times. -> (allocated, compactions)."""
    write(requested)
    allocated = read()
    compactions = 0
    while allocated is not None and allocated < requested and compactions < retries:
        compact()
        compactions += 1
        write(requested)
        allocated = read()
    return allocated, compactions


def apply_pool(tree, size_kb, node, requested, retries):
    path = pool_path(tree, size_kb, node)
    return allocate_pool(
        write=lambda count: write_value(tree, path, count),
        read=lambda: tree.read_int(path),
        compact=lambda: write_value(tree, COMPACT_MEMORY, 1),
        requested=requested,
        retries=retries,
    )
