# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NUMA nodes and hugepage pools from /sys/devices/system/node and /sys/kernel/mm."""

from __future__ import annotations

import re

from ansible_collections.memtune.fleet.plugins.module_utils._host.procfs import (
    MAX_CPUS,
    MAX_NODES,
    parse_cpulist,
    parse_int,
    parse_meminfo,
)

NODE_DIR = "/sys/devices/system/node"
HUGEPAGES_DIR = "/sys/kernel/mm/hugepages"
_POOL_DIR = re.compile(r"hugepages-([1-9][0-9]{0,19})kB", re.ASCII)
_NODE_NAME = re.compile(r"node(0|[1-9][0-9]{0,3})", re.ASCII)  # the kernel's "node%d"
# file in a pool directory -> key in the facts. Per-node pools have no resv or overcommit files.
_POOL_FILES = (("nr_hugepages", "nr"), ("free_hugepages", "free"), ("surplus_hugepages", "surplus"),
               ("resv_hugepages", "resv"), ("nr_overcommit_hugepages", "overcommit"))


def id_ranges(ids):
    """[0, 1, 2, 5] -> "0-2,5", the kernel's list format (for messages)."""
    ranges, start = [], None
    for index, item in enumerate(ids):
        if start is None:
            start = item
        if index + 1 == len(ids) or ids[index + 1] != item + 1:
            ranges.append(str(start) if start == item else "%d-%d" % (start, item))
            start = None
    return ",".join(ranges)


def _count(tree, path):
    value = tree.read_int(path)
    if value is not None and value < 0:
        tree.warn("%s: a page count cannot be negative, got %d" % (path, value))
        return None
    return value


def read_pools(tree, directory):
    """{"<size_kb>": {nr, free, surplus[, resv, overcommit]}} for the hugepages-*kB dirs of ``directory``."""
    pools = {}
    for name in tree.listdir(directory):
        match = _POOL_DIR.fullmatch(name)
        if not match:
            if name.startswith("hugepages-"):
                tree.warn("%s/%s: not a hugepages-<size>kB directory: ignored" % (directory, name))
            continue
        pool = {}
        for filename, key in _POOL_FILES:
            path = "%s/%s/%s" % (directory, name, filename)
            if tree.exists(path):
                pool[key] = _count(tree, path)
        pools[match.group(1)] = pool
    return pools


def _node_list(tree, name):
    text = tree.read("%s/%s" % (NODE_DIR, name), optional=True)
    if text is None:
        return None
    try:
        return parse_cpulist(text, MAX_NODES)
    except ValueError as exc:
        tree.warn("%s/%s: not a node list (%s): ignored" % (NODE_DIR, name, exc))
        return None


def checked_meminfo(tree, path, text):
    """-> (fields, {field: [values]} of the fields dropped). A field given twice with the same value is a
    warning; with different values it is dropped (which one the kernel meant cannot be told)."""
    repeated, dropped = {}, {}
    meminfo = parse_meminfo(text, repeated)
    for field, values in sorted(repeated.items()):
        if len(set(values)) > 1:
            del meminfo[field]
            dropped[field] = values
            tree.warn("%s: %s is given %d times with different values (%s): reported as null"
                      % (path, field, len(values), ", ".join(str(value) for value in values[:4])))
        else:
            tree.warn("%s: %s is given %d times" % (path, field, len(values)))
    return meminfo, dropped


def read_node(tree, node_id, online, columns=None):
    """One node's facts; ``columns`` are the node ids its distance row has a value for (the kernel's
    online list), ``online`` the ones reported."""
    columns = online if columns is None else columns
    base = "%s/node%d" % (NODE_DIR, node_id)
    meminfo = checked_meminfo(tree, base + "/meminfo", tree.read(base + "/meminfo") or "")[0]
    if "MemTotal" not in meminfo:
        tree.warn("%s/meminfo: MemTotal missing" % base)
    cpus = []
    cpulist = tree.read(base + "/cpulist", optional=True)
    try:
        cpus = parse_cpulist(cpulist or "", MAX_CPUS)
    except ValueError as exc:
        tree.warn("%s/cpulist: not a cpu list (%s): reported as no CPUs" % (base, exc))
    distances = {}
    row = (tree.read(base + "/distance") or "").split()
    values = [parse_int(item) for item in row]
    if len(row) == len(columns) and all(value is not None and 0 <= value <= 255 for value in values):
        distances = {str(other): value for other, value in zip(columns, values) if other in online}
    elif len(row) != len(columns) and row:
        tree.warn("%s/distance: %d values for %d online nodes" % (base, len(row), len(columns)))
    elif row:
        tree.warn("%s/distance: not distances from 0 to 255: %r" % (base, " ".join(row)[:60]))
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


def node_directories(tree):
    """The ids of the node<id> directories below NODE_DIR; other names starting with "node" (node01,
    node-1, a non-ASCII digit) are not the kernel's and are left out with a warning."""
    ids, strange = [], []
    for name in tree.listdir(NODE_DIR):
        if not name.startswith("node"):
            continue
        match = _NODE_NAME.fullmatch(name)
        if match and int(match.group(1)) < MAX_NODES:
            ids.append(int(match.group(1)))
        else:
            strange.append(name)
    if strange:
        tree.warn("%s: %s: not node<id> directories: ignored"
                  % (NODE_DIR, ", ".join(repr(name) for name in strange[:5])
                     + (" and %d more" % (len(strange) - 5) if len(strange) > 5 else "")))
    return sorted(ids)


def read_numa(tree):
    """{"available", "online", "possible", "nodes": [...]}. Without NUMA support there is one node 0
    whose memory is the whole host's (filled in by the caller); ``available`` says which case it is.
    Online nodes without a directory are left out of ``online`` and ``nodes``, with a warning."""
    present = node_directories(tree)
    online = columns = _node_list(tree, "online")
    if online is None:
        online = columns = present
    else:
        missing = sorted(set(online) - set(present))
        if missing:
            tree.warn("%s/online lists node(s) %s that have no directory: left out"
                      % (NODE_DIR, id_ranges(missing)))
            online = [node_id for node_id in online if node_id not in missing]
    if not online:
        return {"available": False, "online": [0], "possible": [0], "nodes": []}
    with_memory = _node_list(tree, "has_memory")
    nodes = [read_node(tree, node_id, online, columns) for node_id in online]
    for node in nodes:
        node["has_memory"] = with_memory is None or node["id"] in with_memory
    return {"available": True, "online": online, "possible": _node_list(tree, "possible") or online,
            "nodes": nodes}
