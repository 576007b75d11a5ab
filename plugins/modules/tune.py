#!/usr/bin/python
# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The work is done by the action plugin plugins/action/tune.py on the controller; this file holds its
# documentation for ansible-doc and the action-plugin-docs sanity test.

DOCUMENTATION = r"""
---
module: tune
short_description: Probe a host, plan its memory settings from policies, and apply only what differs
version_added: "0.1.0"
description:
  - An action that runs on the controller. It plans the host with memtune's engine from the policy files, the host's
    inventory variables and the host's facts from its last contact (O(facts_cache)), and sends the plan in one call to
    M(memtune.fleet.memory_apply) with a fingerprint of exactly the facts the plan read (each value's inputs, what
    the C(when) conditions tested, the detected workloads, the kernel, the nodes). C(memory_apply) probes the host
    in-process, applies only what differs when the fingerprint holds (nothing on a converged host), and returns
    the fresh facts, kept for the next run. One remote call, changing or converged.
  - When the host's facts no longer match (RAM, nodes, kernel or workloads changed), C(memory_apply) changes
    nothing and returns the fresh facts with RV(stale); the action plans again and calls once more (two calls).
  - With no facts from an earlier contact (the first run, C(--flush-cache), O(facts_cache=off) and no Ansible
    fact cache), it probes with M(memtune.fleet.memory_facts) first and calls C(memory_apply) only when the host
    differs (one call for a converged host, two otherwise). Either way it checks that what the kernel reports after
    the writes is what was planned.
  - A value the host ledger's newest generation set and the plan no longer contains (a C(leftover)) is a
    difference too, even when everything planned is converged; M(memtune.fleet.memory_apply) restores its original
    value and removes it from memtune's files.
  - "Layers, lowest first: the baseline policy, the policies of the workloads detected on the host (or named in
    O(workloads)), the host's inventory groups' policies, the host's policy, then inline policies from the inventory
    variables C(memtune_group_policies) and C(memtune_host_policy). C(memtune_inputs) and C(memtune_workloads)
    from the inventory are read too; O(inputs) and O(workloads) override them."
  - "A workload seen only in containers or Kubernetes pods does not choose its policy for the host unless the
    inventory variable C(memtune_container_workloads) is true or C(memtune_workloads) names it."
  - Needs the C(memtune) Python package on the controller; the host needs only Python 3.8.
extends_documentation_fragment:
  - memtune.fleet.plan
  - memtune.fleet.apply
options:
  rollback:
    description:
      - Skip probing and planning and run M(memtune.fleet.memory_apply) with this O(rollback), one remote call.
      - V(original) restores the values the host ledger (C(/var/lib/memtune/ledger.json)) saved before memtune's
        first change and removes memtune's files and kernel arguments. V(true) (and V(yes)) is V(original), as in
        earlier releases.
      - V(previous) restores the generation before the last change (the rollout role's automatic rollback), its
        runtime values now, and memtune's files rewritten to it, so the next boot sets it too. What the last
        generation set and the previous one did not goes back to its original value. With no previous generation
        it is V(original).
      - Kernel arguments take effect at the next boot; RV(reboot_required) says when one rolled back.
      - V(false) (the default) tunes the host.
    type: raw
    default: false
  new_ledger:
    description:
      - A ledger file the probe cannot use (not JSON, not memtune's, another version) stops the task with its path
        and the reason, and nothing changes, because rolling back from it would be wrong. V(true) moves that file
        aside (C(ledger.json.corrupt-<time>), kept for a person to read) and starts a new ledger, whose originals
        are the host's values now.
    type: bool
    default: false
attributes:
  action:
    support: full
    description: Runs on the controller and calls M(memtune.fleet.memory_facts) and M(memtune.fleet.memory_apply).
  async:
    support: none
    description: The two remote calls run one after the other within the task.
  check_mode:
    support: full
    description: The probe and the plan run as usual; M(memtune.fleet.memory_apply) runs in check mode and reports
      what it would change.
  diff_mode:
    support: full
    description: The diff of M(memtune.fleet.memory_apply), runtime knobs and files, before and after.
  platform:
    support: full
    platforms: [linux]
    description: The managed hosts must be Linux.
notes:
  - Run it with C(become=true); without root the host is skipped (see O(on_unsupported)).
seealso:
  - module: memtune.fleet.memory_facts
  - module: memtune.fleet.memory_apply
author:
  - memtune contributors (@memtune)
"""

EXAMPLES = r"""
- name: Show what memtune would change on every host
  memtune.fleet.tune:
  check_mode: true
  diff: true

- name: Tune memory from the site's own policies, failing on sysctl files that would undo it at boot
  memtune.fleet.tune:
    policies:
      - /srv/memtune/policies
    fail_on_conflict: true
  become: true

- name: Size PostgreSQL's hugepage pool from its shared_buffers
  memtune.fleet.tune:
    workloads: [postgresql]
    inputs:
      postgresql_shared_buffers: 8GiB
  become: true

- name: Go back to the generation before the last change (what a failed rollout does)
  memtune.fleet.tune:
    rollback: previous
  become: true

- name: Undo everything memtune changed
  memtune.fleet.tune:
    rollback: original
  become: true
"""

RETURN = r"""
changed:
  description: Whether memory_apply changed (in check mode, would change) anything.
  returned: always
  type: bool
  sample: false
msg:
  description: A one-line summary.
  returned: always
  type: str
  sample: "converged: the host matches the plan"
plan:
  description: The engine's DesiredState for the host, every value with its provenance (file, line, rule, layer,
    expression, inputs, the values it overrode). See C(docs/desired-state.md).
  returned: unless rollback
  type: dict
  sample: {schema_version: 1, sysctl: {vm.swappiness: {value: 10, provenance: {file: policies/baseline.yml, line: 11,
           rule: swappiness, layer: baseline}}}, thp: {}, hugepages: [], kernel_cmdline: [], cgroups: []}
differences:
  description: What differed between the plan and the probed host; empty on a converged host.
  returned: unless rollback
  type: list
  elements: dict
  contains:
    knob: {description: "The knob (C(vm.swappiness), C(thp.enabled), C(hugepages.2048kB.node0), ...).", type: str}
    current: {description: What the probe found., type: raw}
    desired: {description: What the plan wants., type: raw}
    why: {description: "C(runtime), C(not in /etc/sysctl.d/90-memtune.conf), ...", type: str}
  sample: [{knob: vm.swappiness, current: 60, desired: 10, why: runtime}]
applied:
  description: The result of memory_apply (knobs with before, after and read-back; hugepages requested against
    allocated per node; files; cgroups; conflicts; the values restored because the plan dropped them; the ledger)
    when it ran.
  returned: when the host differed (leftovers included), or on rollback
  type: dict
  sample: {knobs: [{kind: sysctl, name: vm.swappiness, before: 60, after: 10, read_back: 10, changed: true}],
           hugepages: [], files: [{path: /etc/sysctl.d/90-memtune.conf, action: created}], restored: [],
           ledger: /var/lib/memtune/ledger.json}
skipped_knobs:
  description: Knobs the plan or memory_apply left out on this host, with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{knob: kernel.numa_balancing, reason: "the host has one NUMA node"}]
reboot_required:
  description: The kernel command line memtune manages is not yet the running kernel's.
  returned: always
  type: bool
  sample: false
remote_calls:
  description: Module calls made on the host (1 with facts from the last contact, 2 when they were stale or for a
    changing host without them).
  returned: always
  type: int
  sample: 1
facts_source:
  description: Where the plan's facts came from, V(cache) (the last contact) or V(probe).
  returned: unless O(rollback)
  type: str
  sample: cache
stale:
  description: The cached facts no longer matched the host, so the plan was made again from fresh facts.
  returned: unless O(rollback)
  type: bool
  sample: false
stale_facts:
  description: The fingerprinted facts that had changed, with the value planned from and the value found.
  returned: unless O(rollback)
  type: list
  elements: dict
  sample: [{fact: memory.mem_total_kb, expected: 2012380, found: 4108532}]
ansible_facts:
  description: The host's facts after the run, as C(memtune) (what M(memtune.fleet.memory_facts) returns).
  returned: when the host was reached
  type: dict
  sample: {memtune: {schema_version: 1}}
memtune_warnings:
  description: The plan's and memory_apply's warnings (conflicting sysctl files, hugepage shortfalls), also shown
    as task warnings.
  returned: always
  type: list
  elements: str
  sample: ["vm.swappiness: /etc/sysctl.d/99-site.conf line 2 sets 30 and is applied after memtune's file at boot"]
"""
