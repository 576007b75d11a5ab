#!/usr/bin/python
# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The work is done by the action plugin plugins/action/audit.py on the controller; this file holds its
# documentation for ansible-doc and the action-plugin-docs sanity test.

DOCUMENTATION = r"""
---
module: audit
short_description: Report how a host's memory settings differ from its policies, now and at the next boot
version_added: "0.1.0"
description:
  - An action that runs on the controller. It probes the host with M(memtune.fleet.memory_facts) (one remote call),
    plans the host with memtune's engine exactly as M(memtune.fleet.tune) does (same policies, layers and inventory
    variables), and compares the plan with the facts. It never changes the host and never runs
    M(memtune.fleet.memory_apply).
  - "For every planned value (one knob, and one NUMA node for hugepage pools) it makes a check with the desired
    value and its provenance, the value in force now, and what the next boot restores and from where. A check fails
    with one or more findings: V(runtime_drift) (the kernel runs another value), V(boot_drift) (the next boot
    restores another value, for example because another C(/etc/sysctl.d) file wins over memtune's, or memtune's
    boot unit or bootloader entry is missing), V(shortfall) (the kernel holds fewer hugepages than memtune asked
    for), V(unsupported) (the kernel lacks the knob, NUMA node or page size), V(unmanaged) (no policy covers the
    host)."
  - The task fails when any check fails, unless O(fail_on_drift=false); the result holds the whole drift either
    way, for M(memtune.fleet.fleet_report) or C(memtune audit).
  - Needs the C(memtune) Python package on the controller; the host needs only Python 3.8.
extends_documentation_fragment:
  - memtune.fleet.plan
options:
  fail_on_drift:
    description:
      - Fail the task when the host has drift of any kind. With V(false) the task only reports it.
    type: bool
    default: true
attributes:
  action:
    support: full
    description: Runs on the controller and calls M(memtune.fleet.memory_facts) once.
  async:
    support: none
    description: One remote call within the task.
  check_mode:
    support: full
    description: The audit changes nothing, so it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff; the drift is in the result.
  platform:
    support: full
    platforms: [linux]
    description: The audited hosts must be Linux.
notes:
  - Reading some values (cgroup limits of other users' units, C(/etc/sysctl.d) files that only root may read) needs
    root on the host; use C(become=true) where the connecting user is not root.
  - The audit does not write anything on the host or the controller. C(playbooks/audit.yml) gathers every host's
    result and writes one fleet report with M(memtune.fleet.fleet_report).
seealso:
  - module: memtune.fleet.tune
  - module: memtune.fleet.fleet_report
  - module: memtune.fleet.memory_facts
author:
  - memtune contributors (@memtune)
"""

EXAMPLES = r"""
- name: Fail on any host whose memory settings drifted from the bundled policies
  memtune.fleet.audit:

- name: Audit against the site's own policies, report only, and keep the result for a fleet report
  memtune.fleet.audit:
    policies:
      - /srv/memtune/policies
    fail_on_drift: false
  register: memtune_audit

- name: Check a rolled-back host against an empty policy directory (nothing managed)
  memtune.fleet.audit:
    policies: [/srv/memtune/empty]
    fail_on_drift: false
  register: after_rollback
"""

RETURN = r"""
changed:
  description: Always false; the audit changes nothing.
  returned: always
  type: bool
  sample: false
msg:
  description: A summary, with every finding when there is drift.
  returned: always
  type: str
  sample: "drift: 1 runtime_drift in 9 checks: vm.swappiness: runtime_drift: vm.swappiness is 60, the plan says 10"
drifted:
  description: Whether any check failed.
  returned: always
  type: bool
  sample: true
counts:
  description: The number of findings of each kind (every kind is present, zero included).
  returned: always
  type: dict
  sample: {runtime_drift: 1, boot_drift: 0, shortfall: 0, unsupported: 0, unmanaged: 0}
findings:
  description: "One line per finding, C(<knob>[node<N>]: <kind>: <message>)."
  returned: always
  type: list
  elements: str
  sample: ["vm.swappiness: boot_drift: /etc/sysctl.d/99-site.conf:2 sets vm.swappiness = 30 at boot (it wins over
    memtune's file)"]
drift:
  description: The host's drift as memtune's C(HostDrift) (the same shape as one host of C(memtune audit --format
    json)).
  returned: always
  type: dict
  contains:
    host: {description: The inventory host name., type: str}
    checks:
      description: One per planned value (and NUMA node).
      type: list
      elements: dict
      contains:
        knob: {description: "C(vm.swappiness), C(thp.enabled), C(hugepages.2048kB), C(cmdline.<arg>),
          C(cgroup.<unit>.<limit>), or C(policy) for an unmanaged host.", type: str}
        node: {description: "The NUMA node for hugepage pools, else null.", type: int}
        desired: {description: The planned value., type: raw}
        runtime: {description: The value in force now., type: raw}
        boot: {description: What the next boot restores., type: raw}
        boot_source: {description: "Where that comes from (C(/etc/sysctl.d/99-site.conf:2), C(memtune-boot.service),
          bootloader files).", type: str}
        provenance: {description: "The planned value's provenance (file, line, rule, layer, ...).", type: dict}
        findings:
          description: Why the check fails; empty when it passes.
          type: list
          elements: dict
          contains:
            kind: {description: "V(runtime_drift), V(boot_drift), V(shortfall), V(unsupported) or V(unmanaged).",
              type: str}
            message: {description: "What differs, naming files and values.", type: str}
            mendable: {description: Whether M(memtune.fleet.tune) can put it right., type: bool}
  sample: {host: db1, checks: [{knob: vm.swappiness, node: null, desired: 10, runtime: 60, boot: "10",
           boot_source: "/etc/sysctl.d/90-memtune.conf:3", provenance: {file: policies/baseline.yml, line: 11,
           rule: swappiness, layer: baseline}, findings: [{kind: runtime_drift,
           message: "vm.swappiness is 60, the plan says 10", mendable: true}]}]}
state:
  description: The host's current values as a baseline records them (C(memtune baseline record)), by knob name
    (C(vm.swappiness), C(thp.enabled), C(hugepages.2048kB[node0]), C(cmdline), C(cgroup.<unit>.<limit>)).
  returned: always
  type: dict
  sample: {vm.swappiness: {runtime: 60, boot: "60", boot_source: "/etc/sysctl.d/99-site.conf:2"}}
memory:
  description: The host's memory picture for the fleet report's HTML page - RAM and swap, NUMA nodes with their
    huge page pools, THP modes, memory pressure (the C(memory) of a host in C(schemas/report.schema.json)).
  returned: always
  type: dict
  sample: {mem_total_kb: 16318508, mem_available_kb: 12001220, swap_total_kb: 0, swap_used_kb: 0,
           nodes: [{node: 0, mem_total_kb: 16318508, mem_free_kb: 9120000, hugepages: {"2048": 0}}],
           pools: [{size_kb: 2048, nr: 0, free: 0}], thp_enabled: madvise, thp_defrag: madvise,
           psi_some: {avg10: 0.0, avg60: 0.0, total: 1520}, psi_full: {avg10: 0.0, avg60: 0.0, total: 800}}
remote_calls:
  description: Module calls made on the host (always 1).
  returned: always
  type: int
  sample: 1
ansible_facts:
  description: The facts just probed, as C(memtune); they also refresh the facts cache C(memtune.fleet.tune) plans from.
  returned: always
  type: dict
  sample: {memtune: {schema_version: 1}}
"""
