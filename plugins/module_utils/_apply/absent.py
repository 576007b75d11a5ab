# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""state=absent (rollback): restore the snapshot's runtime values and remove what memtune persisted."""

from __future__ import annotations

from ansible_collections.memtune.fleet.plugins.module_utils import _contract
from ansible_collections.memtune.fleet.plugins.module_utils._apply.changes import (
    Change,
    daemon_reload_change,
    file_change,
    link_change,
    pool_change,
    raw_cgroup_change,
    read_link,
    sysctl_change,
    unit_change,
)
from ansible_collections.memtune.fleet.plugins.module_utils._apply.present import Plan
from ansible_collections.memtune.fleet.plugins.module_utils._apply.runtime import pool_path
from ansible_collections.memtune.fleet.plugins.module_utils._boot.bootloader import Bootloader, plan_args
from ansible_collections.memtune.fleet.plugins.module_utils._host import persist as _persist
from ansible_collections.memtune.fleet.plugins.module_utils._host.cgroup import read_raw
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import settings as _settings
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import read_sysctls

OWN_FILES = (_contract.SYSCTL_FILE, _contract.BOOT_CONF, _contract.BOOT_UNIT)


def _restore_runtime(ctx, plan, runtime):
    saved = runtime["sysctl"]
    current = read_sysctls(ctx.tree, sorted(saved))
    for key in sorted(saved):
        if saved[key] == 0 and saved.get(_contract.TWINS.get(key)):
            continue  # writing its twin back zeroes it
        if current[key] is not None:
            plan.compare(sysctl_change(ctx, key, current[key], saved[key]))
    for kind in _contract.SETTING_KINDS:
        saved = runtime.get(kind.kind) or {}
        for change in _settings.restores(ctx, kind, saved, list(saved)):
            plan.compare(change)
    for size in sorted(runtime["hugepages"], key=int):
        for node in sorted(runtime["hugepages"][size], key=int):
            before = ctx.tree.read_int(pool_path(ctx.tree, int(size), int(node)), optional=True)
            if before is not None:
                plan.compare(pool_change(ctx, int(size), int(node), before, runtime["hugepages"][size][node]))


def _restore_cgroups(ctx, plan, cgroups):
    """Raw cgroups get their old limits back; units their old runtime properties (after the drop-ins go)."""
    units = []
    for target in sorted(cgroups):
        previous = cgroups[target]
        if target.startswith("/"):
            if not ctx.tree.exists(target):
                continue
            info = read_raw(ctx.tree, target, sorted(previous))
            if info["flavor"] is not None:
                plan.compare(raw_cgroup_change(ctx, target, info["flavor"], info["limits"], previous))
        elif ctx.systemd is not None:
            before = {
                name: value for name, value in ctx.systemd.show(target)["limits"].items() if name in previous
            }
            change = unit_change(ctx, target, before, previous)
            if change.before != change.after:
                units.append(change)
    return units


def _dropins(ctx, snapshot):
    """memtune's drop-ins: those the snapshot lists and any 50-memtune.conf left in a unit's .d directory."""
    found = set(
        "%s/%s.d/%s" % (_contract.SYSTEMD_DIR, unit, _contract.DROPIN_NAME)
        for unit in snapshot["owned"]["dropins"]
    )
    for name in ctx.tree.listdir(_contract.SYSTEMD_DIR):
        if name.endswith(".d") and ctx.tree.exists(
            "%s/%s/%s" % (_contract.SYSTEMD_DIR, name, _contract.DROPIN_NAME)
        ):
            found.add("%s/%s/%s" % (_contract.SYSTEMD_DIR, name, _contract.DROPIN_NAME))
    return sorted(found)


def _restore_files(ctx, plan, snapshot):
    """memtune's own files go back to what the snapshot saved (usually: absent). Bootloader files the
    snapshot also saved are not restored whole: the command line is undone argument by argument."""
    for path in sorted(set(OWN_FILES) | set(_dropins(ctx, snapshot))):
        plan.compare(file_change(ctx, path, ctx.read_file(path), snapshot["files"].get(path)))
    plan.compare(link_change(ctx, _contract.BOOT_UNIT_LINK, read_link(ctx, _contract.BOOT_UNIT_LINK), None))


def _remove_cmdline(ctx, plan, snapshot):
    owned = snapshot["owned"]["kernel_cmdline"]
    if not owned:
        return
    bootloader = Bootloader(ctx.tree, ctx.run, ctx.which)
    if bootloader.tool is None:
        ctx.warnings.append(
            "memtune added %s to the kernel command line, but no bootloader tool is found now"
            % " ".join(owned)
        )
        return
    current = bootloader.current()
    running = (ctx.tree.read("/proc/cmdline", optional=True) or "").split()
    plan.reboot_required = any(arg in running for arg in owned)
    if not any(plan_args(args, owned, [])[0] != args for args in current):
        return

    def act():
        ctx.warnings.extend(bootloader.change(owned, [])[1])

    change = Change("cmdline", bootloader.tool, current[0], plan_args(current[0], owned, [])[0], act)
    change.details["tool"] = bootloader.tool
    plan.changes.append(change)


def plan_absent(ctx, ledger):
    """-> Plan that leaves the host as the ledger's originals found it. Without a ledger it still removes
    memtune's own files. The ledger itself stays (memory_apply records the rollback in it)."""
    plan = Plan()
    if ledger is None:
        ledger = _persist.new_snapshot()
    else:
        _restore_runtime(ctx, plan, ledger["runtime"])
        if ledger.get("generations"):
            plan.restored = list(ledger["generations"][-1]["items"])
    unit_changes = _restore_cgroups(ctx, plan, ledger["runtime"]["cgroups"])
    _restore_files(ctx, plan, ledger)
    if ctx.systemd is not None and any(
        c.kind in ("file", "link") and c.name.startswith(_contract.SYSTEMD_DIR) for c in plan.changes
    ):
        plan.changes.append(daemon_reload_change(ctx))
    plan.changes.extend(unit_changes)
    _remove_cmdline(ctx, plan, ledger)
    if plan.changes:
        ledger["owned"]["kernel_cmdline"], ledger["owned"]["dropins"] = [], []
    return plan
