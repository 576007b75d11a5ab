#!/usr/bin/python
# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: memory_apply
short_description: Apply a memtune DesiredState to a Linux host, changing only what differs
version_added: "0.1.0"
description:
  - Takes the DesiredState that memtune's engine plans (C(docs/desired-state.md)) and brings the host to it.
    It reads every value first, works out what differs, and then writes only that.
  - "Runtime: sysctls in C(/proc/sys), transparent hugepages in C(/sys/kernel/mm/transparent_hugepage), and
    per-NUMA-node hugepage pools in C(/sys/devices/system/node/nodeN/hugepages/hugepages-<size>kB/nr_hugepages).
    The count the kernel actually allocated is read back; on a shortfall memory is compacted
    (C(/proc/sys/vm/compact_memory)) and the pool asked for again, at most O(compact_retries) times."
  - "Persistence without a daemon: memtune's own C(/etc/sysctl.d/90-memtune.conf), a tmpfiles.d-format file
    C(/etc/memtune/boot-tmpfiles.conf) applied at boot by the oneshot unit C(memtune-boot.service) (enabled
    through a C(sysinit.target.wants) link) before workloads start, and the kernel command line through the
    host's bootloader tool (C(grubby), or C(/etc/default/grub) with C(update-grub) or C(grub(2\\)-mkconfig), or
    BLS entries in C(/boot/loader/entries)). Every file is written atomically (temp file, fsync, rename)."
  - "cgroup memory limits: a systemd unit gets a drop-in C(/etc/systemd/system/<unit>.d/50-memtune.conf) and
    C(systemctl set-property --runtime), so the limit holds now and after a reboot; a raw cgroup directory gets
    its v2 C(memory.*) files, or C(memory.limit_in_bytes) on cgroup v1 (raw limits do not survive a reboot).
    A C(MemoryHigh) or C(MemoryMax) below the current usage is refused unless the entry has C(force: true)."
  - "It keeps a ledger, C(/var/lib/memtune/ledger.json) (C(docs/desired-state.md)): the original value of everything
    it plans, saved before the first change and never overwritten, and the last 10 generations (what each run that
    changed the host set, when, and the plan's identity: a hash and the policy files and rules). A version-1
    C(/var/lib/memtune/snapshot.json) becomes the ledger's originals."
  - A value the newest generation set and O(desired) no longer contains goes back to its original value at runtime
    and out of every file memtune owns (RV(restored)); check and diff mode show it as a change.
  - O(rollback=original) (or V(true), or O(state=absent)) restores the originals and removes memtune's files and
    kernel command-line arguments, leaving the host as it was but for the ledger. O(rollback=previous) sets the
    generation before the last change again, at runtime and in memtune's files.
  - It never runs a shell. It writes only below C(/proc/sys/vm), C(/proc/sys/kernel), C(/sys/kernel/mm),
    C(/sys/devices/system/node), C(/sys/fs/cgroup) and to the files named above, and edits no file it does not
    own except the kernel command line. Two runs on one host cannot interleave (C(/run/lock/memtune.lock)).
extends_documentation_fragment:
  - memtune.fleet.apply
options:
  desired:
    description:
      - The DesiredState, as the engine's C(DesiredState.model_dump(mode="json")). C(provenance) is ignored.
      - Sysctl keys must be C(vm.*) or C(kernel.*); kernel command-line arguments are limited to memory
        parameters (C(hugepagesz), C(hugepages), C(default_hugepagesz), C(hugetlb_cma), C(hugetlb_free_vmemmap),
        C(transparent_hugepage), C(numa_balancing), C(kernelcore), C(movablecore)).
      - Required with O(state=present) unless O(rollback) is set.
    type: dict
  state:
    description:
      - V(present) applies O(desired); V(absent) restores the ledger's originals and removes what memtune persisted.
    type: str
    choices: [present, absent]
    default: present
  rollback:
    description:
      - V(original) (V(true), V(yes)) is the same as O(state=absent). V(previous) restores the generation of the ledger
        before the newest one, runtime values now and memtune's files rewritten to it (so the next boot sets it too),
        and drops the newest generation; what only the newest set goes back to its original value. With no
        previous generation it is V(original), with a warning. V(false) applies O(desired).
      - Kernel arguments that roll back take effect at the next boot; RV(reboot_required) says so.
    type: raw
    default: false
  new_ledger:
    description:
      - A ledger file that cannot be used (not JSON, not a memtune ledger, another version) fails the task with its
        path and the reason, and nothing is changed. V(true) moves it aside to C(ledger.json.corrupt-<time>) (it is
        never replaced) and starts a new ledger whose originals are the host's values now.
    type: bool
    default: false
  fingerprint:
    description:
      - The facts the plan in O(desired) was made from, a mapping of fact path to value (the engine's C(facts_read)
        resolved on those facts; paths as in C(plugins/module_utils/_probe/fingerprint.py), for example
        C(memory.mem_total_kb), C(numa.nodes[id=1].mem_total_kb) or C(sysctl.vm.swappiness is null)).
      - The module probes the host in-process (the collector of M(memtune.fleet.memory_facts)) under the host lock
        and applies O(desired) only when every value is the same; otherwise it changes nothing and returns
        RV(stale), RV(stale_facts) and the fresh RV(facts), so the caller can plan again.
    type: dict
  return_facts:
    description:
      - Return the host's facts (RV(facts), and RV(facts_after) when something changed), probed in-process as
        M(memtune.fleet.memory_facts) does, so the caller needs no second call. Implied by O(fingerprint).
    type: bool
    default: false
  facts_sysctls:
    description: The sysctl keys RV(facts) reports, as M(memtune.fleet.memory_facts)'s O(memtune.fleet.memory_facts#module:sysctls).
    type: list
    elements: str
  root:
    description:
      - Test hook. Read and write below this directory instead of C(/), for example a copy of a host's C(/etc),
        C(/proc/sys) and C(/sys) made of plain files. Below any root other than C(/) no command is run (no
        C(systemctl), C(grubby) or C(update-grub)), so cgroup units are skipped and bootloader files are only edited.
    type: path
    default: /
attributes:
  check_mode:
    support: full
    description: Everything is read and compared; nothing is written. The result says what would change.
  diff_mode:
    support: full
    description: The runtime knobs before and after, and the before and after text of every file and of the kernel
      command line that would change.
  platform:
    support: full
    platforms: [linux]
    description: Linux only; C(/proc) and C(/sys) are the interface.
notes:
  - Target hosts need Python 3.8 or newer and nothing else. Run it as root (C(become=true)).
  - Most hosts cannot allocate 1 GiB pages after boot; such pools come from the kernel command line, so
    their runtime shortfall is a warning and RV(reboot_required) says when the next boot will fix it.
  - Limits of a raw cgroup directory and hugepage pools of a pool that stays short are not retried at boot
    beyond what the restore unit asks for.
  - Files are replaced atomically through a C(.memtune-*) temporary file beside them. One that a run killed
    in the middle left behind is removed, with a warning, by the next run that changes something.
seealso:
  - name: DesiredState contract
    description: docs/desired-state.md in the memtune repository.
    link: https://example.invalid/memtune/docs/desired-state.md
author:
  - memtune contributors (@memtune)
"""

EXAMPLES = r"""
- name: Apply a plan computed by the memtune engine (usually done for you by memtune.fleet.tune)
  memtune.fleet.memory_apply:
    desired:
      schema_version: 1
      sysctl:
        vm.swappiness: {value: 10}
      thp:
        enabled: {value: madvise}
      hugepages:
        - {size_kb: 2048, per_node: {"0": 256}, boot: false, required: true}
  become: true

- name: Show what would change, without changing it
  memtune.fleet.memory_apply:
    desired: "{{ memtune_desired }}"
  check_mode: true
  diff: true

- name: Go back to the generation before the last change
  memtune.fleet.memory_apply:
    rollback: previous
  become: true

- name: Roll back everything memtune changed on the host
  memtune.fleet.memory_apply:
    rollback: original
  become: true
"""

RETURN = r"""
changed:
  description: Whether anything differed (in check mode, whether anything would be changed).
  returned: always
  type: bool
  sample: true
stale:
  description: The host's facts differ from O(fingerprint) in RV(stale_facts); nothing was changed.
  returned: when O(fingerprint) is given
  type: bool
  sample: false
stale_facts:
  description: Each fingerprinted fact whose value differs, with the value planned from and the value found.
  returned: when RV(stale) is true
  type: list
  elements: dict
  sample: [{fact: memory.mem_total_kb, expected: 2012380, found: 4108532}]
facts:
  description: The host's facts before this run changed anything (the C(ansible_facts.memtune) dict of M(memtune.fleet.memory_facts)).
  returned: when O(fingerprint) or O(return_facts) is given
  type: dict
  sample: {schema_version: 3, memory: {mem_total_kb: 2012380}}
facts_after:
  description: The host's facts after the changes, probed again.
  returned: when O(return_facts) or O(fingerprint) is given, something changed and not in check mode
  type: dict
  sample: {schema_version: 3, memory: {mem_total_kb: 2012380}}
skipped:
  description: True when the host cannot be tuned and O(on_unsupported=skip); RV(msg) says why.
  returned: when skipped
  type: bool
  sample: true
msg:
  description: A one-line summary, or the reason the host was skipped.
  returned: always
  type: str
  sample: "3 changes: 1 sysctl, 1 hugepages, 1 file"
knobs:
  description: Every managed runtime knob, changed or not, with the value before, the value wanted and what the
    kernel reports after the write.
  returned: success
  type: list
  elements: dict
  contains:
    kind:
      description: V(sysctl), V(thp), V(zswap), V(hugepages) or V(cgroup).
      type: str
    leftover:
      description: Present and true when the knob goes back to its original value because the plan dropped it.
      type: bool
    name:
      description: The sysctl key, THP or zswap setting, C(<size>kB node<N>), or cgroup unit or path.
      type: str
    before:
      description: The value read before the run.
      type: raw
    after:
      description: The value wanted.
      type: raw
    read_back:
      description: The value read after writing; absent in check mode and for knobs that did not change.
      type: raw
    changed:
      description: Whether this knob differed.
      type: bool
  sample: [{kind: sysctl, name: vm.swappiness, before: 60, after: 10, read_back: 10, changed: true}]
skipped_knobs:
  description: Knobs of the desired state this host cannot take, with the reason (for example a missing sysctl).
  returned: success
  type: list
  elements: dict
  sample: [{kind: sysctl, name: kernel.numa_balancing, reason: "this kernel has no kernel.numa_balancing"}]
hugepages:
  description: Each desired pool on each node, requested against allocated.
  returned: success
  type: list
  elements: dict
  contains:
    size_kb: {description: Page size in kB., type: int}
    node: {description: NUMA node id., type: int}
    before: {description: Pages in the pool before the run., type: int}
    requested: {description: Pages wanted., type: int}
    allocated: {description: Pages the kernel reports after the run; null in check mode when a change is due., type: int}
    shortfall: {description: requested - allocated (0 when the pool is complete)., type: int}
    compactions: {description: Times memory was compacted for this pool., type: int}
    boot: {description: The pool is also set on the kernel command line., type: bool}
    required: {description: A shortfall fails the task., type: bool}
  sample: [{size_kb: 2048, node: 0, before: 0, requested: 256, allocated: 256, shortfall: 0, compactions: 0,
            boot: false, required: false}]
cgroups:
  description: Each cgroup target with its memory usage in bytes and the limits before and wanted.
  returned: success
  type: list
  elements: dict
  sample: [{target: postgresql.service, usage: 73400320, before: {MemoryMax: infinity}, after: {MemoryMax: 1073741824}}]
files:
  description: memtune's files (and bootloader files) that changed or would change.
  returned: success
  type: list
  elements: dict
  sample: [{path: /etc/sysctl.d/90-memtune.conf, action: created}]
conflicts:
  description: Sysctl files the boot applies after memtune's that set a managed key to another value.
  returned: success
  type: list
  elements: dict
  sample: [{key: vm.swappiness, path: /etc/sysctl.conf, line: 12, value: "60", desired: 10}]
reboot_required:
  description: The kernel command line memtune manages differs from the running kernel's C(/proc/cmdline), and the
    bootloader has (or after this run will have) the new arguments.
  returned: success
  type: bool
  sample: false
kernel_cmdline:
  description: The bootloader tool and the command line before and after, when it changes.
  returned: when the kernel command line changes
  type: dict
  sample: {tool: grub, before: [quiet], after: [quiet, hugepagesz=1G, "hugepages=0:2"]}
ledger:
  description: The ledger file with the originals and the generations; null when there is none.
  returned: success
  type: str
  sample: /var/lib/memtune/ledger.json
restored:
  description: The values the newest generation set that this run's plan drops (or, on a rollback, that go back),
    named as the audit names them; each goes back to its original value and out of memtune's files.
  returned: success
  type: list
  elements: str
  sample: [vm.max_map_count, thp.enabled]
diff:
  description: In diff mode, Ansible's list of before/after texts, runtime knobs first, then each file.
  returned: when diff mode is on
  type: list
  elements: dict
  sample: [{before_header: runtime (before), after_header: runtime (after), before: "sysctl vm.swappiness = 60\n",
            after: "sysctl vm.swappiness = 10\n"}]
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.memtune.fleet.plugins.module_utils._apply.changes import (
    ApplyError,
    Context,
    PlanError,
    carry_out,
)
from ansible_collections.memtune.fleet.plugins.module_utils._apply.desired import validate
from ansible_collections.memtune.fleet.plugins.module_utils._apply.report import report
from ansible_collections.memtune.fleet.plugins.module_utils._apply.run import plan_run
from ansible_collections.memtune.fleet.plugins.module_utils._contract import (
    LOCK_FILE,
    SYSCTL_KEY,
    RollbackError,
    rollback_choice,
)
from ansible_collections.memtune.fleet.plugins.module_utils._host import ledger as _ledger
from ansible_collections.memtune.fleet.plugins.module_utils._host import persist as _persist
from ansible_collections.memtune.fleet.plugins.module_utils._host.cgroup import Systemd
from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._kinds.check import DesiredError
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import ProbeError
from ansible_collections.memtune.fleet.plugins.module_utils._probe.fingerprint import FactsProbe
from ansible_collections.memtune.fleet.plugins.module_utils._probe.platform import detect_systemd


def _context(module, tree):
    def run(argv):
        return module.run_command(argv, environ_update={"LC_ALL": "C"})

    systemctl = module.get_bin_path("systemctl") if tree.live and detect_systemd(tree) else None
    return Context(
        tree,
        run,
        module.get_bin_path,
        Systemd(run, systemctl) if systemctl else None,
        module.params["compact_retries"],
    )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            desired=dict(type="dict"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            rollback=dict(type="raw", default=False),
            new_ledger=dict(type="bool", default=False),
            fail_on_conflict=dict(type="bool", default=False),
            on_unsupported=dict(type="str", choices=["skip", "fail"], default="skip"),
            lock_timeout=dict(type="int", default=60),
            compact_retries=dict(type="int", default=3),
            fingerprint=dict(type="dict"),
            return_facts=dict(type="bool", default=False),
            facts_sysctls=dict(type="list", elements="str"),
            root=dict(type="path", default="/"),
        ),
        required_if=[("state", "present", ("desired", "rollback"), True)],
        mutually_exclusive=[("desired", "rollback")],
        supports_check_mode=True,
    )
    params = module.params
    if not os.path.isdir(params["root"]):
        module.fail_json(msg="root %s is not a directory" % params["root"])
    tree = Tree(params["root"])
    if not os.access(tree.path("/proc/sys/vm/swappiness"), os.W_OK):
        reason = "%s is not writable here (a container, or not root)" % tree.path("/proc/sys/vm")
        if params["on_unsupported"] == "fail":
            module.fail_json(msg=reason)
        module.exit_json(changed=False, skipped=True, msg=reason)
    try:
        rollback = "original" if params["state"] == "absent" else rollback_choice(params["rollback"])
        if rollback is None:
            validate(params["desired"])
    except (DesiredError, PlanError, RollbackError) as exc:
        module.fail_json(msg="invalid desired state: %s" % exc if isinstance(exc, DesiredError) else str(exc))
    bad_keys = [key for key in params["facts_sysctls"] or [] if not SYSCTL_KEY.match(key)]
    if bad_keys:
        module.fail_json(msg="facts_sysctls: %r is not a vm.* or kernel.* key" % bad_keys[0])
    ctx = _context(module, tree)
    probe = FactsProbe(params["root"], params["facts_sysctls"], params["return_facts"], params["fingerprint"])
    try:
        with _persist.HostLock(tree.path(LOCK_FILE), params["lock_timeout"]):
            stale = probe.before()
            if stale:
                module.exit_json(changed=False, stale=True, stale_facts=stale, facts=probe.facts,
                                 msg="the host's facts changed since the plan was made; nothing was changed")
            plan, changes = plan_run(params, ctx, params["desired"], rollback)
            if not module.check_mode:
                for path in _persist.remove_stale_temps(tree):
                    ctx.warnings.append("removed %s, left by an interrupted memtune run" % path)
                carry_out(changes)
    except (_persist.LockTimeout, PlanError, ProbeError, ValueError, OSError) as exc:
        module.fail_json(msg=str(exc))
    except ApplyError as exc:
        module.fail_json(
            msg="%s; the original values are in %s: run with rollback=original (or previous) to restore them"
            % (exc, _ledger.LEDGER),
            changed=True,
        )
    result, failures = report(plan, ctx, applied=not module.check_mode, diff=module._diff)
    result["restored"] = plan.restored
    result["ledger"] = _ledger.LEDGER if os.path.exists(tree.path(_ledger.LEDGER)) else None
    result.update(probe.after(changed=result["changed"] and not module.check_mode))
    for warning in ctx.warnings:
        module.warn(warning)
    if failures:
        result["msg"] = "; ".join(failures)
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
