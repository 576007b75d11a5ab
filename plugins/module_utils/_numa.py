# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NUMA nodes and hugepage pools from /sys/devices/system/node and /sys/kernel/mm."""

from __future__ import annotations

import re

from ansible_collections.memtune.fleet.plugins.module_utils._procfs import parse_cpulist, parse_meminfo

NODE_DIR = "/sys/devices/system/node"
HUGEPAGES_DIR = "/sys/kernel/mm/hugepages"
_POOL_DIR = re.compile(r"^hugepages-(\d+)kB$")
# file in a pool directory -> key in the facts. Per-node pools have no resv or overcommit files.
_POOL_FILES = (("nr_hugepages", "nr"), ("free_hugepages", "free"), ("surplus_hugepages", "surplus"),
               ("resv_hugepages", "resv"), ("nr_overcommit_hugepages", "overcommit"))


def read_pools(tree, directory):
    """{"<size_kb>": {nr, free, surplus[, resv, overcommit]}} for the hugepages-*kB dirs of ``directory``."""
    pools = {}
    for name in tree.listdir(directory):
        match = _POOL_DIR.match(name)
        if not match:
            continue
        pool = {}
        for filename, key in _POOL_FILES:
            path = "%s/%s/%s" % (directory, name, filename)
            if tree.exists(path):
                pool[key] = tree.read_int(path)
        pools[match.group(1)] = pool
    return pools


def _node_list(tree, name):
    text = tree.read("%s/%s" % (NODE_DIR, name), optional=True)
    if text is None:
        return None
    try:
        return parse_cpulist(text)
    except ValueError:
        tree.warn("%s/%s: not a node list: %r" % (NODE_DIR, name, text[:40]))
        return None


def read_node(tree, node_id, online):
    base = "%s/node%d" % (NODE_DIR, node_id)
    meminfo = parse_meminfo(tree.read(base + "/meminfo") or "")
    if "MemTotal" not in meminfo:
        tree.warn("%s/meminfo: MemTotal missing" % base)
    cpus = []
    cpulist = tree.read(base + "/cpulist", optional=True)
    try:
        cpus = parse_cpulist(cpulist or "")
    except ValueError:
        tree.warn("%s/cpulist: not a cpu list: %r" % (base, cpulist))
    distances = {}
    row = (tree.read(base + "/distance") or "").split()
    if len(row) == len(online) and all(item.isdigit() for item in row):
        distances = {str(other): int(value) for other, value in zip(online, row)}
    elif row:
        tree.warn("%s/distance: %d values for %d online nodes" % (base, len(row), len(online)))
    return {
        "id": node_id,
        "mem_total_kb": meminfo.get("MemTotal"),
        "mem_free_kb": meminfo.get("MemFree"),
        "mem_used_kb": meminfo.get("MemUsed"),
        "file_pages_kb": meminfo.get("FilePages"),
        "cpus": cpus,
        "distances": distances,
        "hugepages": read_pools(tree, base + "/hugepages"),
    }


def read_numa(tree):
    """{"available", "online", "possible", "nodes": [...]}. Without NUMA support there is one node 0
    whose memory is the whole host's (filled in by the caller); ``available`` says which case it is."""
    online = _node_list(tree, "online")
    if online is None:
        present = sorted(int(name[4:]) for name in tree.listdir(NODE_DIR)
                         if name.startswith("node") and name[4:].isdigit())
        online = present
    if not online:
        return {"available": False, "online": [0], "possible": [0], "nodes": []}
    with_memory = _node_list(tree, "has_memory")
    nodes = [read_node(tree, node_id, online) for node_id in online]
    for node in nodes:
        node["has_memory"] = with_memory is None or node["id"] in with_memory
    return {"available": True, "online": online, "possible": _node_list(tree, "possible") or online,
            "nodes": nodes}
