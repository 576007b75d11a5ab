# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""state=absent (rollback): restore the snapshot's runtime values and remove what memtune persisted."""

from __future__ import annotations

from ansible_collections.memtune.fleet.plugins.module_utils import _contract
from ansible_collections.memtune.fleet.plugins.module_utils._apply.changes import (
    daemon_reload_change,
    file_change,
    link_change,
    read_link,
)
from ansible_collections.memtune.fleet.plugins.module_utils._apply.present import ChangeSet
from ansible_collections.memtune.fleet.plugins.module_utils._host import persist as _persist
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import cgroup as _cgroup
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import cmdline as _cmdline
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import hugepages as _hugepages
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import settings as _settings
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import sysctl as _sysctl

OWN_FILES = (_contract.SYSCTL_FILE, _contract.BOOT_CONF, _contract.BOOT_UNIT)


def _restore_runtime(ctx, plan, runtime):
    _sysctl.restore(ctx, plan, runtime["sysctl"])
    for kind in _contract.SETTING_KINDS:
        originals = runtime.get(kind.kind) or {}
        for change in _settings.restores(ctx, kind, originals, list(originals)):
            plan.compare(change)
    _hugepages.restore(ctx, plan, runtime["hugepages"])


def _restore_files(ctx, plan, snapshot):
    """memtune's own files go back to what the snapshot saved (usually: absent). Bootloader files the
    snapshot also saved are not restored whole: the command line is undone argument by argument."""
    for path in sorted(set(OWN_FILES) | set(_cgroup.dropins(ctx, snapshot))):
        plan.compare(file_change(ctx, path, ctx.read_file(path), snapshot["files"].get(path)))
    plan.compare(link_change(ctx, _contract.BOOT_UNIT_LINK, read_link(ctx, _contract.BOOT_UNIT_LINK), None))


def plan_absent(ctx, ledger):
    """-> ChangeSet that leaves the host as the ledger's originals found it. Without a ledger it still
    removes memtune's own files. The ledger itself stays (memory_apply records the rollback in it)."""
    plan = ChangeSet()
    if ledger is None:
        ledger = _persist.new_snapshot()
    else:
        _restore_runtime(ctx, plan, ledger["runtime"])
        if ledger.get("generations"):
            plan.restored = list(ledger["generations"][-1]["items"])
    unit_changes = _cgroup.restore(ctx, plan, ledger["runtime"]["cgroups"])
    _restore_files(ctx, plan, ledger)
    if ctx.systemd is not None and any(
        c.kind in ("file", "link") and c.name.startswith(_contract.SYSTEMD_DIR) for c in plan.changes
    ):
        plan.changes.append(daemon_reload_change(ctx))
    plan.changes.extend(unit_changes)
    _cmdline.plan_absent(ctx, plan, ledger)
    if plan.changes:
        ledger["owned"]["kernel_cmdline"], ledger["owned"]["dropins"] = [], []
    return plan
