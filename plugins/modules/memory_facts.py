#!/usr/bin/python
# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: memory_facts
short_description: Probe a Linux host's memory, NUMA, hugepages, THP, zswap, cgroups, sysctl sources and workloads
version_added: "0.1.0"
description:
  - Reads C(/proc), C(/sys) and the sysctl configuration directories in one pass and returns them as
    C(ansible_facts.memtune), a versioned dict (RV(ansible_facts.memtune.schema_version)) that memtune's
    controller-side engine validates.
  - Reads files only. It never runs a command, never writes a file, and never executes a workload's binary.
  - Missing or unreadable optional files (no NUMA, no hugepages, no PSI, no THP) give partial facts and
    entries in RV(ansible_facts.memtune.warnings).
  - A tree without a usable C(/proc/meminfo) (a capture of C(/sys) alone, say) gives the facts it can, its
    C(memory.mem_total_kb) and C(mem_free_kb) summed over the NUMA nodes' C(meminfo), with a warning naming
    what is missing; a tree without C(/proc/sys) reports every sysctl as null with a warning. The task fails
    only when no C(MemTotal) can be read at all (not the root of a Linux host) or when C(/proc/meminfo) gives
    C(MemTotal) twice with different values.
  - Values no kernel writes are warnings, never facts, and never a traceback. Numbers are ASCII digits
    within 64 bits; CPU and node lists with an id beyond the kernel's limits (C(0-4294967295)), a range
    running backwards or non-ASCII digits are ignored; node directories not named C(node<digits>)
    (C(node01), C(node-1)) are left out; a C(/proc/meminfo) field given twice with different values is
    null; a managed sysctl whose file is not an integer, and any sysctl value that is unprintable or longer
    than 4096 characters, is null. Each comes with an entry in RV(ansible_facts.memtune.warnings).
  - Every file is read only if it is a regular file (a FIFO or a device is reported, never read; the open is
    non-blocking) and only up to 1 MiB; a larger file is reported and not read.
  - An unexpected error fails the task with a message that names the exception and says it is a bug in
    memtune, never with a bare module failure.
options:
  root:
    description:
      - Read C(/proc), C(/sys) and C(/etc) below this directory instead of C(/).
      - Use it to probe a captured tree (a sosreport, a chroot, a test fixture) offline.
      - Nothing outside this directory is read. Paths resolve as in a chroot; an absolute symbolic link
        starts again at this directory, C(..) stops at it, and more than 40 links in one path (the kernel's
        limit) is a loop, reported in RV(ansible_facts.memtune.warnings) like any unreadable file.
      - Below any root other than C(/), C(platform.proc_sys_vm_writable) in the result is false.
    type: path
    default: /
  sysctls:
    description:
      - The sysctl keys whose current value and configuration sources are reported.
      - Keys use dots, for example C(vm.swappiness); only C(vm.*) and C(kernel.*) keys are accepted.
    type: list
    elements: str
    default: [vm.swappiness, vm.min_free_kbytes, vm.watermark_scale_factor, vm.watermark_boost_factor,
              kernel.numa_balancing, vm.overcommit_memory, vm.overcommit_ratio, vm.overcommit_kbytes,
              vm.max_map_count, vm.zone_reclaim_mode, vm.nr_hugepages, vm.nr_overcommit_hugepages,
              vm.dirty_background_bytes, vm.dirty_background_ratio, vm.dirty_bytes, vm.dirty_ratio,
              vm.panic_on_oom]
  workloads:
    description: Scan C(/proc/<pid>) for known workloads.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode changes nothing about what it does.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
  facts:
    support: full
    description: The result is C(ansible_facts.memtune).
notes:
  - Target hosts need Python 3.8 or newer and nothing else.
author:
  - memtune contributors (@memtune)
"""

EXAMPLES = r"""
- name: Probe the memory of every host
  memtune.fleet.memory_facts:

- name: Show how much RAM each NUMA node has
  ansible.builtin.debug:
    msg: "{{ ansible_facts.memtune.numa.nodes | map(attribute='mem_total_kb') | list }}"

- name: Probe a captured tree offline
  memtune.fleet.memory_facts:
    root: /srv/sosreports/db01
  delegate_to: localhost
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to ansible_facts.
  returned: always
  type: complex
  contains:
    memtune:
      description: The host's memory facts. Fields a kernel lacks are null, never missing.
      returned: always
      type: complex
      contains:
        schema_version:
          description: Version of this dict's shape; memtune's engine refuses versions it does not know. Version 2
            added C(memtune.ledger).
          type: int
          sample: 2
        root:
          description: The directory the files were read below.
          type: str
          sample: /
        kernel:
          description: Kernel release, its version as C([major, minor, patch]) for comparisons, and C(/proc/cmdline).
          type: dict
          sample: {release: 6.1.0-26-amd64, version: [6, 1, 0], cmdline: "BOOT_IMAGE=/vmlinuz root=/dev/vda1"}
        memory:
          description: >-
            From C(/proc/meminfo) and C(/proc/swaps), in kB: C(mem_total_kb), C(mem_free_kb), C(mem_available_kb),
            C(buffers_kb), C(cached_kb), C(swap_total_kb), C(swap_free_kb), C(swap_used_kb), C(committed_as_kb),
            C(commit_limit_kb), C(hugetlb_kb), C(anon_hugepages_kb), and C(swap_devices) (path, type, size_kb,
            used_kb, priority). Overcommit settings are under RV(ansible_facts.memtune.sysctl).
          type: dict
          sample: {mem_total_kb: 4028104, mem_available_kb: 3640016, swap_total_kb: 0, swap_devices: []}
        numa:
          description: >-
            C(available) (the kernel exposes NUMA nodes), C(online) and C(possible) node ids, and C(nodes): one
            entry per online node with C(id), C(mem_total_kb), C(mem_free_kb), C(mem_used_kb), C(file_pages_kb),
            C(cpus) (empty for a node without CPUs), C(distances) (node id to distance), C(has_memory) and
            C(hugepages) (page size in kB to C(nr), C(free), C(surplus)). A kernel without NUMA reports one
            node 0 holding the whole host. Nodes that C(online) lists but that have no directory are left
            out, with a warning.
          type: dict
          sample: {available: true, online: [0, 1], possible: [0, 1], nodes: [{id: 0, mem_total_kb: 2015744,
                   mem_free_kb: 1790000, cpus: [0, 1], distances: {"0": 10, "1": 20},
                   hugepages: {"2048": {nr: 0, free: 0, surplus: 0}}}]}
        hugepages:
          description: >-
            C(default_size_kb) (C(Hugepagesize)), C(sizes_kb) (supported sizes) and C(pools): page size in kB to
            the host-wide C(nr), C(free), C(surplus), C(resv) and C(overcommit) counts.
          type: dict
          sample: {default_size_kb: 2048, sizes_kb: [2048, 1048576],
                   pools: {"2048": {nr: 0, free: 0, surplus: 0, resv: 0, overcommit: 0}}}
        thp:
          description:
            - Transparent hugepages' C(enabled), C(defrag) and C(shmem_enabled) choices and the choices offered, and
              khugepaged's C(defrag) and C(max_ptes_none) as C(khugepaged_defrag) and C(khugepaged_max_ptes_none).
            - null without THP; a setting whose file this kernel lacks is null (its choices empty).
          type: dict
          sample: {enabled: madvise, enabled_choices: [always, madvise, never], defrag: madvise,
                   defrag_choices: [always, defer, defer+madvise, madvise, never], shmem_enabled: never,
                   shmem_enabled_choices: [always, within_size, advise, never, deny, force],
                   khugepaged_defrag: 1, khugepaged_max_ptes_none: 511}
        zswap:
          description:
            - zswap's parameters (C(/sys/module/zswap/parameters)) C(enabled) and C(shrinker_enabled) (C(Y) or C(N)),
              C(max_pool_percent) and C(accept_threshold_percent) (integers).
            - null without zswap; a parameter whose file this kernel lacks is null.
          type: dict
          sample: {enabled: N, max_pool_percent: 20, accept_threshold_percent: 90, shrinker_enabled: N}
        sysctl:
          description: >-
            Current value of each requested key; null when this kernel does not have it, or, with a
            warning, when the tree has no C(/proc/sys) or the key's file holds no valid value.
          type: dict
          sample: {vm.swappiness: 60, kernel.numa_balancing: null}
        sysctl_sources:
          description: >-
            What the next boot sets for each requested key, computed as the boot does it: C(sysctl.*=) kernel
            arguments first, then an active TuneD profile's C([sysctl]) lines when TuneD re-applies the system's
            files (its default), the C(sysctl.d) files merged by file name over C(/etc), C(/run),
            C(/usr/local/lib), C(/usr/lib) and C(/lib) (an earlier directory masks the same name, a link to
            C(/dev/null) masks it) and applied in file-name order, C(/etc/sysctl.conf) where it is applied on its
            own (hosts without systemd), and TuneD's lines last when it does not re-apply them. C(entries) (path,
            line, value) in that order, C(winner) (the last one, or null), and C(after_memtune): the entries
            applied after memtune's own file C(/etc/sysctl.d/90-memtune.conf), which memtune cannot win against.
          type: dict
          sample: {vm.swappiness: {entries: [{path: /etc/sysctl.d/99-sysctl.conf, line: 3, value: "10"}],
                   winner: {path: /etc/sysctl.d/99-sysctl.conf, line: 3, value: "10"},
                   after_memtune: [{path: /etc/sysctl.d/99-sysctl.conf, line: 3, value: "10"}]}}
        tuned:
          description: >-
            The active TuneD profile, another writer of memory settings at boot, or null: C(profiles) (from
            C(/etc/tuned/active_profile)), C(reapply_sysctl) (C(/etc/tuned/tuned-main.conf)) and C(thp), its
            transparent hugepage writes (C([vm]) and C([sysfs]) lines: path, line, knob, value), which run after
            memtune's boot unit. Its sysctls are in C(sysctl_sources).
          type: dict
          sample: {profiles: [throughput-performance], reapply_sysctl: true,
                   thp: [{path: /usr/lib/tuned/throughput-performance/tuned.conf, line: 30, knob: enabled,
                          value: always}]}
        platform:
          description: >-
            C(virtualization) (a systemd-detect-virt name or C(none)), C(container) (null when not in one),
            C(proc_sys_vm_writable), C(systemd) (the running init) and C(cgroup) (C(version) v1, v2, hybrid or
            none; C(memory_controller); C(mount) of the memory hierarchy).
          type: dict
          sample: {virtualization: kvm, container: null, proc_sys_vm_writable: true, systemd: true,
                   cgroup: {version: v2, memory_controller: true, mount: /sys/fs/cgroup}}
        pressure:
          description: C(/proc/pressure/memory) as C(some) and C(full), each with avg10, avg60, avg300, total; null without PSI.
          type: dict
          sample: {some: {avg10: 0.0, avg60: 0.0, avg300: 0.0, total: 0}, full: {avg10: 0.0, avg60: 0.0, avg300: 0.0, total: 0}}
        vmstat:
          description: Selected C(/proc/vmstat) counters (major faults, allocation stalls, compaction, NUMA hits and misses, kswapd, OOM kills).
          type: dict
          sample: {pgmajfault: 1520, allocstall_normal: 0, numa_hit: 9912345, numa_miss: 0, oom_kill: 0}
        workloads:
          description: >-
            Detected workloads with C(name), C(pids), C(evidence) (pid, comm, match), C(version) (the first
            instance's that has one, the host's instances before containers') and C(instances): one per
            process tree of the workload (a PostgreSQL postmaster and its backends; processes whose parent is
            unknown join the one instance of their cgroup), each with C(pids), C(leader) (the pid whose files
            were read), C(cgroup) and C(cgroup_version) (v1's memory hierarchy where it is mounted, else v2's),
            C(unit) (from systemd's own hierarchy, v1 C(name=systemd) or v2) and C(unit_manager) (C(system) or
            C(user@<uid>.service)), C(container) (C(runtime) docker,
            containerd, cri-o, podman, lxc, or null where a cgroupfs path does not name it; C(id)), C(pod)
            (C(uid), C(qos) Guaranteed, Burstable or BestEffort), C(root) (C(/proc/<pid>/root), through which
            its files are read), C(data_dir) (PostgreSQL's C(-D)), C(version) (from files: PG_VERSION, jar
            names, the dpkg status file, where a root has none the RPM database (rpm 4.16+'s
            C(/var/lib/rpm/rpmdb.sqlite) or C(/usr/lib/sysimage/rpm/rpmdb.sqlite), read-only; Berkeley DB
            and ndb databases are named, not read), Oracle's comps.xml; where none says it, the binary's own C(--version) for
            MongoDB, Redis, MySQL/MariaDB and PostgreSQL, only on the live host, only for a root-owned binary of
            the host's own root (never a container's), one binary per probe, 2 s at most) and
            C(evidence) (field to why). A process that exits while it is read is in no instance; at most 256 instances of a workload are
            listed (a warning says how many there were).
          type: list
          elements: dict
          sample:
            - name: postgresql
              pids: [812, 813]
              evidence: [{pid: 812, comm: postgres, match: postgres}]
              version: "15"
              instances:
                - pids: [812, 813]
                  leader: 812
                  cgroup: /system.slice/postgresql@15-main.service
                  cgroup_version: 2
                  unit: postgresql@15-main.service
                  unit_manager: system
                  container: null
                  pod: null
                  root: /proc/812/root
                  data_dir: /var/lib/postgresql/15/main
                  version: "15"
                  evidence: {version: /var/lib/postgresql/15/main/PG_VERSION says 15, root: /proc/812/root -> /}
        memtune:
          description: >-
            What memtune itself left on the host and what the next boot restores from it:
            C(sysctl_file) (C(/etc/sysctl.d/90-memtune.conf) exists), C(boot_unit) (C(installed), C(enabled)),
            C(boot_writes) (path to value, from C(/etc/memtune/boot-tmpfiles.conf): THP and per-node pools),
            C(snapshot) (a ledger, or a version-1 snapshot, exists), C(ledger) (null without one: its C(path),
            C(error) (why the file cannot be used, else null), C(originals) (the names of the values whose original
            memtune keeps) and C(generations) (oldest first: C(id), C(time), C(action), C(plan_hash) and C(items),
            the names of the values each run set, as the audit names its checks)),
            C(owned_cmdline) (kernel arguments memtune added),
            C(bootloader) (each bootloader configuration's C(path) and the C(args) it boots with) and
            C(cgroups) (each managed C(unit) or raw C(path) with its C(boot) limits from the drop-in and the
            C(runtime) limits in force now, in bytes or C(infinity)).
          type: dict
          sample: {sysctl_file: true, boot_unit: {installed: true, enabled: true},
                   boot_writes: {/sys/kernel/mm/transparent_hugepage/enabled: never}, snapshot: true,
                   ledger: {path: /var/lib/memtune/ledger.json, error: null, originals: [vm.swappiness],
                            generations: [{id: 1, time: "2026-12-01T06:00:00Z", action: apply,
                                           plan_hash: "sha256:3f0c9a1b2c3d4e5f", items: [vm.swappiness]}]},
                   owned_cmdline: [], bootloader: [{path: /etc/default/grub, args: [quiet]}],
                   cgroups: [{unit: postgresql.service, path: null, boot: {MemoryHigh: 8589934592},
                              runtime: {MemoryHigh: 8589934592, MemoryMax: infinity}}]}
        warnings:
          description: >-
            Files that could not be read or parsed (missing, unreadable, a link loop, not a regular file,
            over 1 MiB, values no kernel writes) and what was derived instead; the facts they feed are null
            or partial.
          type: list
          elements: str
          sample: ["cannot read /sys/devices/system/node/node1/meminfo: Permission denied"]
"""

import os
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.memtune.fleet.plugins.module_utils._contract import SYSCTL_KEY
from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import (
    MANAGED_SYSCTLS,
    ProbeError,
    collect,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", default="/"),
            sysctls=dict(type="list", elements="str", default=list(MANAGED_SYSCTLS)),
            workloads=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    root = module.params["root"]
    if not os.path.isdir(root):
        module.fail_json(msg="root %s is not a directory" % root)
    bad_keys = [key for key in module.params["sysctls"] if not SYSCTL_KEY.match(key)]
    if bad_keys:
        module.fail_json(msg="not vm.* or kernel.* sysctl keys: %s" % ", ".join(bad_keys))
    try:
        facts = collect(Tree(root), module.params["sysctls"], module.params["workloads"])
    except ProbeError as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # a bug: the task fails with a message, never a bare traceback
        module.fail_json(msg="memory_facts failed on %s with %s: %s (a bug in memtune: please report it)"
                         % (root, type(exc).__name__, exc), exception=traceback.format_exc())
    module.exit_json(changed=False, ansible_facts={"memtune": facts})


if __name__ == "__main__":
    main()
