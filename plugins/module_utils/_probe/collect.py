# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Assemble ``ansible_facts.memtune`` from a host's files. One pass, no subprocess, no writes."""

from __future__ import annotations

import os

from ansible_collections.memtune.fleet.plugins.module_utils._boot.sysctl_files import (
    sysctl_sources,
    tuned_profile,
)
from ansible_collections.memtune.fleet.plugins.module_utils._contract import (
    FACTS_SCHEMA_VERSION,
    SETTING_KINDS,
)
from ansible_collections.memtune.fleet.plugins.module_utils._host.procfs import (
    MAX_CPUS,
    parse_cpulist,
    parse_kernel_version,
    parse_key_values,
    parse_pressure,
    parse_swaps,
    sysctl_path,
    sysctl_value,
)
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import settings as _settings
from ansible_collections.memtune.fleet.plugins.module_utils._probe import platform as _platform
from ansible_collections.memtune.fleet.plugins.module_utils._probe.memtune_state import (
    read_memtune_state,
    running_units,
)
from ansible_collections.memtune.fleet.plugins.module_utils._probe.numa import (
    HUGEPAGES_DIR,
    checked_meminfo,
    read_numa,
    read_pools,
)
from ansible_collections.memtune.fleet.plugins.module_utils._probe.workloads import detect_workloads

SCHEMA_VERSION = FACTS_SCHEMA_VERSION

MANAGED_SYSCTLS = (
    "vm.swappiness", "vm.min_free_kbytes", "vm.watermark_scale_factor", "vm.watermark_boost_factor",
    "kernel.numa_balancing", "vm.overcommit_memory", "vm.overcommit_ratio", "vm.overcommit_kbytes",
    "vm.max_map_count", "vm.zone_reclaim_mode", "vm.nr_hugepages", "vm.nr_overcommit_hugepages",
    "vm.dirty_background_bytes", "vm.dirty_background_ratio", "vm.dirty_bytes", "vm.dirty_ratio",
    "vm.panic_on_oom",
)
VMSTAT_COUNTERS = (
    "pgmajfault", "compact_stall", "compact_fail", "compact_success", "numa_hit", "numa_miss",
    "numa_foreign", "pageoutrun", "pgscan_kswapd", "pgsteal_kswapd", "pgscan_direct", "pgsteal_direct",
    "kswapd_low_wmark_hit_quickly", "kswapd_high_wmark_hit_quickly", "oom_kill", "pswpin", "pswpout",
    "thp_fault_alloc", "thp_fault_fallback",
)
# Every knob memtune manages holds one integer; another value in its file is damage, not a value.
INTEGER_SYSCTLS = frozenset(MANAGED_SYSCTLS)
MAX_SYSCTL_TEXT = 4096  # PAGE_SIZE: the most a /proc/sys file writes for one value


class ProbeError(Exception):
    """The tree lacks what every set of facts needs (it is not a Linux host's root)."""


def read_sysctls(tree, keys):
    """{key: value}; None for a knob this kernel does not have, or (with a warning) whose file holds
    what no kernel writes there: not an integer for a managed knob, unprintable or over-long text."""
    values = {}
    if keys and not tree.exists("/proc/sys"):
        tree.warn("no /proc/sys in %s: every sysctl value is unknown, reported as null" % tree.root)
        return {key: None for key in keys}
    for key in keys:
        path = sysctl_path(key)
        text = tree.read(path, optional=True)
        values[key] = None if text is None else _checked_sysctl(tree, key, path, text)
    return values


def _checked_sysctl(tree, key, path, text):
    value = sysctl_value(text)
    if isinstance(value, int):
        return value
    if key in INTEGER_SYSCTLS:
        problem = "not an integer within 64 bits"
    elif len(value) > MAX_SYSCTL_TEXT:
        problem = "longer than %d characters" % MAX_SYSCTL_TEXT
    elif not value.isprintable():
        problem = "unprintable characters"
    else:
        return value
    tree.warn("%s: %s holds %r, %s: reported as null" % (key, path, value[:40], problem))
    return None


def memory_facts(meminfo, swaps_text):
    swap_total, swap_free = meminfo.get("SwapTotal"), meminfo.get("SwapFree")
    return {
        "mem_total_kb": meminfo["MemTotal"],
        "mem_free_kb": meminfo.get("MemFree"),
        "mem_available_kb": meminfo.get("MemAvailable"),
        "buffers_kb": meminfo.get("Buffers"),
        "cached_kb": meminfo.get("Cached"),
        "swap_total_kb": swap_total,
        "swap_free_kb": swap_free,
        "swap_used_kb": None if swap_total is None or swap_free is None else swap_total - swap_free,
        "committed_as_kb": meminfo.get("Committed_AS"),
        "commit_limit_kb": meminfo.get("CommitLimit"),
        "hugetlb_kb": meminfo.get("Hugetlb"),
        "anon_hugepages_kb": meminfo.get("AnonHugePages"),
        "swap_devices": parse_swaps(swaps_text or ""),
    }


def host_cpus(tree, cpuinfo):
    """The CPU ids of a host without NUMA nodes: /proc/cpuinfo's processors, else /sys's online list."""
    if cpuinfo:
        return list(range(sum(1 for line in cpuinfo.splitlines() if line.startswith("processor"))))
    text = tree.read("/sys/devices/system/cpu/online", optional=True)
    try:
        return parse_cpulist(text or "", MAX_CPUS)
    except ValueError as exc:
        tree.warn("/sys/devices/system/cpu/online: not a cpu list (%s)" % exc)
        return []


def single_node(meminfo, cpus, pools):
    """The one node a kernel without NUMA support has: the whole host, and its pools are the host's
    (memory_apply writes them in /sys/kernel/mm/hugepages)."""
    node_pools = {size: {key: pool.get(key) for key in ("nr", "free", "surplus")}
                  for size, pool in pools.items()}
    return {"id": 0, "mem_total_kb": meminfo["MemTotal"], "mem_free_kb": meminfo.get("MemFree"),
            "mem_used_kb": None, "file_pages_kb": None, "cpus": cpus, "distances": {"0": 10},
            "hugepages": node_pools, "has_memory": True}


def vmstat_facts(text):
    counters = parse_key_values(text or "")
    selected = {name: counters[name] for name in VMSTAT_COUNTERS if name in counters}
    for name in counters:
        if name.startswith("allocstall"):
            selected[name] = counters[name]
    return selected


def kernel_facts(tree):
    release = tree.read("/proc/sys/kernel/osrelease") or ""
    if len(release) > 256 or not release.isprintable():
        tree.warn("/proc/sys/kernel/osrelease holds %r, not a kernel release: reported as empty"
                  % release[:40])
        release = ""
    version = parse_kernel_version(release)
    if version is None:
        tree.warn("kernel release %r has no version number" % release)
    return {"release": release, "version": version, "cmdline": tree.read("/proc/cmdline", optional=True)}


def host_meminfo(tree):
    """-> (/proc/meminfo's fields, None) or ({...}, why it gives no MemTotal). A field given twice with
    different values is dropped with a warning; for MemTotal, which every size is computed from, the
    tree contradicts itself and the probe stops (ProbeError)."""
    text = tree.read("/proc/meminfo", optional=True)
    if text is None:
        return {}, "no /proc/meminfo"
    meminfo, dropped = checked_meminfo(tree, "/proc/meminfo", text)
    if "MemTotal" in dropped:
        values = dropped["MemTotal"]
        raise ProbeError("%s: MemTotal is given %d times with different values (%s): the host's memory "
                         "cannot be told" % (os.path.join(tree.root, "proc/meminfo"), len(values),
                                             ", ".join(str(value) for value in values[:4])))
    if meminfo.get("MemTotal") == 0:
        del meminfo["MemTotal"]
        return meminfo, "/proc/meminfo says MemTotal is 0"
    if "MemTotal" not in meminfo:
        return meminfo, "/proc/meminfo has no readable MemTotal line"
    return meminfo, None


def meminfo_from_nodes(tree, meminfo, why, nodes):
    """A tree without a usable /proc/meminfo (a capture of /sys alone): MemTotal and MemFree summed over
    the NUMA nodes, with a warning; ProbeError when a node lacks them too."""
    totals = [node["mem_total_kb"] for node in nodes]
    if not totals or None in totals or not sum(totals):
        raise ProbeError("%s: %s, and no NUMA node meminfo to sum instead: not the root of a Linux host "
                         "(no readable MemTotal)" % (tree.root, why))
    meminfo = dict(meminfo, MemTotal=sum(totals))
    free = [node["mem_free_kb"] for node in nodes]
    summed = "mem_total_kb"
    if None not in free:
        meminfo["MemFree"] = sum(free)
        summed += " and mem_free_kb"
    tree.warn("%s: memory.%s summed over the %d NUMA nodes' meminfo (lazily onlined memory can make it "
              "less than the host's); the other /proc/meminfo fields are null" % (why, summed, len(nodes)))
    return meminfo


def collect(tree, sysctl_keys=MANAGED_SYSCTLS, workloads=True):
    """The facts dict for the host whose files ``tree`` reads. Without /proc/meminfo, MemTotal comes from
    the NUMA nodes (with a warning); raises ProbeError when neither has it."""
    meminfo, why = host_meminfo(tree)
    numa = read_numa(tree)
    if why is not None:
        meminfo = meminfo_from_nodes(tree, meminfo, why, numa["nodes"])
    cpuinfo = tree.read("/proc/cpuinfo", optional=True) or ""
    pools = read_pools(tree, HUGEPAGES_DIR)
    if not numa["nodes"]:
        numa["nodes"] = [single_node(meminfo, host_cpus(tree, cpuinfo), pools)]
    pressure_text = tree.read("/proc/pressure/memory", optional=True)
    keys = list(sysctl_keys)
    cgroup = _platform.detect_cgroup(tree, tree.read("/proc/self/mountinfo", optional=True))
    tuned = tuned_profile(tree)
    found = detect_workloads(tree) if workloads else []
    facts = {
        "schema_version": SCHEMA_VERSION,
        "root": tree.root,
        "kernel": kernel_facts(tree),
        "memory": memory_facts(meminfo, tree.read("/proc/swaps", optional=True)),
        "numa": numa,
        "hugepages": {
            "default_size_kb": meminfo.get("Hugepagesize"),
            "pools": pools,
        },
        "sysctl": read_sysctls(tree, keys),
        "sysctl_sources": sysctl_sources(tree, keys, tuned),
        "tuned": None if tuned is None else {
            "profiles": tuned["profiles"], "reapply_sysctl": tuned["reapply_sysctl"], "thp": tuned["thp"]},
        "platform": {
            "virtualization": _platform.detect_virtualization(tree, cpuinfo),
            "container": _platform.detect_container(tree),
            "proc_sys_vm_writable": tree.writable("/proc/sys/vm/swappiness"),
            "systemd": _platform.detect_systemd(tree),
            "cgroup": cgroup,
        },
        "pressure": parse_pressure(pressure_text) if pressure_text else None,
        "vmstat": vmstat_facts(tree.read("/proc/vmstat", optional=True)),
        "workloads": found,
        "memtune": read_memtune_state(tree, cgroup["mount"], running_units(found)),
    }
    for kind in SETTING_KINDS:
        facts[kind.kind] = _settings.probe(tree, kind)
    facts["hugepages"]["sizes_kb"] = sorted(int(size) for size in facts["hugepages"]["pools"])
    facts["warnings"] = list(tree.warnings)
    return facts
