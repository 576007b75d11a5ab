# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Assemble ``ansible_facts.memtune`` from a host's files. One pass, no subprocess, no writes."""

from __future__ import annotations

from ansible_collections.memtune.fleet.plugins.module_utils import _platform
from ansible_collections.memtune.fleet.plugins.module_utils._memtune_state import read_memtune_state
from ansible_collections.memtune.fleet.plugins.module_utils._numa import HUGEPAGES_DIR, read_numa, read_pools
from ansible_collections.memtune.fleet.plugins.module_utils._procfs import (
    parse_bracketed,
    parse_kernel_version,
    parse_key_values,
    parse_meminfo,
    parse_pressure,
    parse_swaps,
    sysctl_value,
)
from ansible_collections.memtune.fleet.plugins.module_utils._sysctl_files import sysctl_sources, tuned_profile
from ansible_collections.memtune.fleet.plugins.module_utils._workloads import detect_workloads

SCHEMA_VERSION = 1

MANAGED_SYSCTLS = (
    "vm.swappiness", "vm.min_free_kbytes", "vm.watermark_scale_factor", "vm.watermark_boost_factor",
    "kernel.numa_balancing", "vm.overcommit_memory", "vm.overcommit_ratio", "vm.overcommit_kbytes",
    "vm.max_map_count", "vm.zone_reclaim_mode", "vm.nr_hugepages", "vm.nr_overcommit_hugepages",
    "vm.dirty_background_bytes", "vm.dirty_background_ratio", "vm.dirty_bytes", "vm.dirty_ratio",
)
VMSTAT_COUNTERS = (
    "pgmajfault", "compact_stall", "compact_fail", "compact_success", "numa_hit", "numa_miss",
    "numa_foreign", "pageoutrun", "pgscan_kswapd", "pgsteal_kswapd", "pgscan_direct", "pgsteal_direct",
    "kswapd_low_wmark_hit_quickly", "kswapd_high_wmark_hit_quickly", "oom_kill", "pswpin", "pswpout",
    "thp_fault_alloc", "thp_fault_fallback",
)
THP_DIR = "/sys/kernel/mm/transparent_hugepage"


class ProbeError(Exception):
    """The tree lacks what every set of facts needs (it is not a Linux host's root)."""


def sysctl_path(key):
    return "/proc/sys/" + key.replace(".", "/")


def read_sysctls(tree, keys):
    """{key: value}; None for a knob this kernel does not have."""
    values = {}
    for key in keys:
        text = tree.read(sysctl_path(key), optional=True)
        values[key] = None if text is None else sysctl_value(text)
    return values


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


def single_node(meminfo, cpuinfo, pools):
    """The one node a kernel without NUMA support has: the whole host, and its pools are the host's
    (memory_apply writes them in /sys/kernel/mm/hugepages)."""
    cpus = list(range(sum(1 for line in cpuinfo.splitlines() if line.startswith("processor"))))
    node_pools = {size: {key: pool.get(key) for key in ("nr", "free", "surplus")}
                  for size, pool in pools.items()}
    return {"id": 0, "mem_total_kb": meminfo["MemTotal"], "mem_free_kb": meminfo.get("MemFree"),
            "mem_used_kb": None, "file_pages_kb": None, "cpus": cpus, "distances": {"0": 10},
            "hugepages": node_pools, "has_memory": True}


def thp_facts(tree):
    enabled_text = tree.read(THP_DIR + "/enabled", optional=True)
    if enabled_text is None:
        return None
    enabled, enabled_choices = parse_bracketed(enabled_text)
    defrag, defrag_choices = parse_bracketed(tree.read(THP_DIR + "/defrag", optional=True) or "")
    return {"enabled": enabled, "enabled_choices": enabled_choices,
            "defrag": defrag, "defrag_choices": defrag_choices}


def vmstat_facts(text):
    counters = parse_key_values(text or "")
    selected = {name: counters[name] for name in VMSTAT_COUNTERS if name in counters}
    for name in counters:
        if name.startswith("allocstall"):
            selected[name] = counters[name]
    return selected


def kernel_facts(tree):
    release = tree.read("/proc/sys/kernel/osrelease") or ""
    version = parse_kernel_version(release)
    if version is None:
        tree.warn("kernel release %r has no version number" % release)
    return {"release": release, "version": version, "cmdline": tree.read("/proc/cmdline", optional=True)}


def collect(tree, sysctl_keys=MANAGED_SYSCTLS, workloads=True):
    """The facts dict for the host whose files ``tree`` reads. Raises ProbeError without /proc/meminfo."""
    meminfo_text = tree.read("/proc/meminfo", optional=True)
    meminfo = parse_meminfo(meminfo_text or "")
    if "MemTotal" not in meminfo:
        raise ProbeError("%s has no readable MemTotal: not the root of a Linux host"
                         % tree.path("/proc/meminfo"))
    cpuinfo = tree.read("/proc/cpuinfo", optional=True) or ""
    numa = read_numa(tree)
    pools = read_pools(tree, HUGEPAGES_DIR)
    if not numa["nodes"]:
        numa["nodes"] = [single_node(meminfo, cpuinfo, pools)]
    pressure_text = tree.read("/proc/pressure/memory", optional=True)
    keys = list(sysctl_keys)
    cgroup = _platform.detect_cgroup(tree, tree.read("/proc/self/mountinfo", optional=True))
    tuned = tuned_profile(tree)
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
        "thp": thp_facts(tree),
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
        "workloads": detect_workloads(tree) if workloads else [],
        "memtune": read_memtune_state(tree, cgroup["mount"]),
    }
    facts["hugepages"]["sizes_kb"] = sorted(int(size) for size in facts["hugepages"]["pools"])
    facts["warnings"] = list(tree.warnings)
    return facts
