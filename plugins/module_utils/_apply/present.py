# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""state=present: compare a validated DesiredState with the host and plan only what differs."""

from __future__ import annotations

from ansible_collections.memtune.fleet.plugins.module_utils import _contract
from ansible_collections.memtune.fleet.plugins.module_utils._apply.changes import (
    daemon_reload_change,
    link_change,
    plan_file,
    read_link,
)
from ansible_collections.memtune.fleet.plugins.module_utils._apply.leftover import plan_leftovers
from ansible_collections.memtune.fleet.plugins.module_utils._host import persist as _persist
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import cgroup as _cgroup
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import cmdline as _cmdline
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import hugepages as _hugepages
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import settings as _settings
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import sysctl as _sysctl


class ChangeSet:
    """What memory_apply changes on this host, and what it leaves (the controller's plan is the DesiredState;
    this is the host's list of changes that carry it out)."""

    def __init__(self):
        self.changes, self.unchanged, self.skipped, self.conflicts = [], [], [], []
        self.pools, self.cgroups = [], []
        self.reboot_required = False
        self.kept, self.restored = None, []

    def compare(self, change):
        """File ``change`` under changes or unchanged; True when it changes something."""
        differs = change.before != change.after
        (self.changes if differs else self.unchanged).append(change)
        return differs


def _plan_boot_restore(ctx, plan, snapshot, writes):
    """The tmpfiles.d file and oneshot unit that restore pools and THP at boot, and the unit's enablement."""
    if writes and not ctx.tree.exists(_contract.SYSTEMD_DIR):
        ctx.warnings.append("no /etc/systemd on this host: hugepage pools and THP are not restored at boot")
        writes = []
    binary = next(
        (path for path in _persist.TMPFILES_BINARIES if ctx.tree.exists(path)), _persist.TMPFILES_BINARIES[0]
    )
    plan_file(ctx, plan, snapshot, _contract.BOOT_CONF, _persist.render_boot_conf(writes))
    plan_file(ctx, plan, snapshot, _contract.BOOT_UNIT, _persist.render_boot_unit(binary) if writes else None)
    plan.compare(
        link_change(
            ctx,
            _contract.BOOT_UNIT_LINK,
            read_link(ctx, _contract.BOOT_UNIT_LINK),
            _contract.BOOT_UNIT if writes else None,
        )
    )


def plan_present(ctx, want, snapshot):
    """-> ChangeSet. ``snapshot`` (the ledger, loaded or new) is updated in memory with the originals of
    every value planned. ``plan.kept`` is ``want`` without what this host cannot take; ``plan.restored`` names
    the values of the ledger's newest generation that ``want`` drops, which go back to their originals."""
    plan = ChangeSet()
    kept = _sysctl.plan_present(ctx, plan, want["sysctl"], snapshot)
    plan.conflicts = _sysctl.find_conflicts(ctx.tree, kept)
    boot_writes = []
    for kind in _contract.SETTING_KINDS:
        boot_writes += _settings.plan_present(ctx, plan, kind, want[kind.kind], snapshot)
    boot_writes += _hugepages.plan_present(ctx, plan, want["hugepages"], snapshot)
    plan_file(ctx, plan, snapshot, _contract.SYSCTL_FILE, _persist.render_sysctl(kept))
    _plan_boot_restore(ctx, plan, snapshot, boot_writes)
    units, reload_needed = _cgroup.plan_present(ctx, plan, snapshot, want["cgroups"])
    plan.kept = dict(
        want,
        sysctl=kept,
        cgroups=[e for e in want["cgroups"] if e["path"] or ctx.systemd is not None],
    )
    for kind in _contract.SETTING_KINDS:
        plan.kept[kind.kind] = _settings.kept(ctx.tree, kind, want[kind.kind])
    plan.restored, leftover_units = plan_leftovers(ctx, plan, snapshot, plan.kept)
    reload_needed = reload_needed or bool(leftover_units and ctx.systemd is not None)
    if reload_needed:
        unit_changes = [c for c in plan.changes if c.kind == "cgroup" and c.name in units]
        plan.changes = (
            [c for c in plan.changes if c not in unit_changes]
            + [daemon_reload_change(ctx)]
            + unit_changes
            + leftover_units
        )
    _cmdline.plan_present(ctx, plan, snapshot, want["kernel_cmdline"])
    if plan.changes:
        snapshot["owned"]["dropins"] = units
    return plan
