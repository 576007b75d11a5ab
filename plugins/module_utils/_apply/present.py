# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""state=present: compare a validated DesiredState with the host and plan only what differs."""

from __future__ import annotations

from ansible_collections.memtune.fleet.plugins.module_utils import _contract
from ansible_collections.memtune.fleet.plugins.module_utils._apply.changes import (
    Change,
    PlanError,
    daemon_reload_change,
    file_change,
    link_change,
    pool_change,
    raw_cgroup_change,
    read_link,
    sysctl_change,
    unit_change,
)
from ansible_collections.memtune.fleet.plugins.module_utils._apply.leftover import plan_leftovers
from ansible_collections.memtune.fleet.plugins.module_utils._apply.runtime import pool_path
from ansible_collections.memtune.fleet.plugins.module_utils._boot.bootloader import Bootloader, plan_args
from ansible_collections.memtune.fleet.plugins.module_utils._boot.sysctl_files import sysctl_sources
from ansible_collections.memtune.fleet.plugins.module_utils._host import persist as _persist
from ansible_collections.memtune.fleet.plugins.module_utils._host.cgroup import (
    below_usage,
    dropin_path,
    kernel_value,
    read_raw,
    render_dropin,
)
from ansible_collections.memtune.fleet.plugins.module_utils._host.procfs import sysctl_value
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import settings as _settings
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import read_sysctls


class Plan:
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


def find_conflicts(tree, values):
    """[{key, path, line, value, desired}]: the writer that lasts at boot, when it runs after memtune's
    file (sysctl.d order, /etc/sysctl.conf, TuneD) and sets another value."""
    conflicts = []
    for key, source in sorted(sysctl_sources(tree, sorted(values)).items()):
        beating = source["after_memtune"]
        if beating and sysctl_value(beating[-1]["value"]) != sysctl_value(str(values[key])):
            conflicts.append(dict(beating[-1], key=key, desired=values[key]))
    return conflicts


def _plan_sysctls(ctx, plan, want, snapshot):
    current = read_sysctls(ctx.tree, sorted(want))
    kept = {}
    for key in sorted(want):
        if current[key] is None:
            plan.skipped.append({"kind": "sysctl", "name": key, "reason": "this kernel has no %s" % key})
            continue
        kept[key] = want[key]
        _persist.remember(snapshot["runtime"], "sysctl", key, current[key])
        plan.compare(sysctl_change(ctx, key, current[key], want[key]))
        twin = _contract.TWINS.get(key)
        if twin and twin not in want:
            value = read_sysctls(ctx.tree, [twin])[twin]
            if value is not None:
                _persist.remember(snapshot["runtime"], "sysctl", twin, value)
    return kept


def _plan_pools(ctx, plan, pools, snapshot):
    writes = []
    for pool in pools:
        size = pool["size_kb"]
        for node in sorted(pool["per_node"]):
            path = pool_path(ctx.tree, size, node)
            before = ctx.tree.read_int(path, optional=True)
            if before is None:
                raise PlanError("node %d has no pool of %d kB hugepages (%s is missing)" % (node, size, path))
            change = pool_change(ctx, size, node, before, pool["per_node"][node])
            plan.compare(change)
            snapshot["runtime"]["hugepages"].setdefault(str(size), {}).setdefault(str(node), before)
            plan.pools.append(
                {
                    "size_kb": size,
                    "node": node,
                    "before": before,
                    "requested": pool["per_node"][node],
                    "boot": pool["boot"],
                    "required": pool["required"],
                    "change": change,
                }
            )
            writes.append((path, pool["per_node"][node]))
    return writes


def _plan_file(ctx, plan, snapshot, path, text):
    before = ctx.read_file(path)
    if plan.compare(file_change(ctx, path, before, text)):
        _persist.remember(snapshot, "files", path, before)


def _plan_boot_restore(ctx, plan, snapshot, writes):
    """The tmpfiles.d file and oneshot unit that restore pools and THP at boot, and the unit's enablement."""
    if writes and not ctx.tree.exists(_contract.SYSTEMD_DIR):
        ctx.warnings.append("no /etc/systemd on this host: hugepage pools and THP are not restored at boot")
        writes = []
    binary = next(
        (path for path in _persist.TMPFILES_BINARIES if ctx.tree.exists(path)), _persist.TMPFILES_BINARIES[0]
    )
    _plan_file(ctx, plan, snapshot, _contract.BOOT_CONF, _persist.render_boot_conf(writes))
    _plan_file(
        ctx, plan, snapshot, _contract.BOOT_UNIT, _persist.render_boot_unit(binary) if writes else None
    )
    plan.compare(
        link_change(
            ctx,
            _contract.BOOT_UNIT_LINK,
            read_link(ctx, _contract.BOOT_UNIT_LINK),
            _contract.BOOT_UNIT if writes else None,
        )
    )


def remember_limits(snapshot, target, limits):
    """Keep each limit's first value: a limit added to a target later gets its own original."""
    saved = snapshot["runtime"]["cgroups"].setdefault(target, {})
    for name in limits:
        saved.setdefault(name, limits[name])


def _plan_unit(ctx, plan, snapshot, entry):
    unit, limits = entry["unit"], entry["limits"]
    if ctx.systemd is None:
        plan.skipped.append(
            {"kind": "cgroup", "name": unit, "reason": "systemd is not the running init here"}
        )
        return False
    info = ctx.systemd.show(unit)
    refused = [] if entry["force"] else below_usage(limits, info["usage"])
    if refused:
        raise PlanError(
            "%s uses %d bytes; %s below that is refused (set force: true to apply anyway)"
            % (unit, info["usage"], ", ".join("%s=%s" % (n, limits[n]) for n in refused))
        )
    _plan_file(ctx, plan, snapshot, dropin_path(unit), render_dropin(unit, limits, _persist.HEADER))
    before = {name: info["limits"].get(name) for name in limits}
    plan.cgroups.append({"target": unit, "usage": info["usage"], "before": before, "after": dict(limits)})
    if info["load_state"] == "not-found":
        ctx.warnings.append("%s is not installed: its drop-in takes effect when it is" % unit)
        return True
    remember_limits(snapshot, unit, before)
    plan.compare(unit_change(ctx, unit, before, dict(limits)))
    return True


def _plan_raw_cgroup(ctx, plan, snapshot, entry):
    path = entry["path"]
    if not ctx.tree.exists(path):
        raise PlanError("cgroup %s does not exist" % path)
    info = read_raw(ctx.tree, path, sorted(entry["limits"]))
    if info["flavor"] is None:
        raise PlanError(
            "cgroup %s has no memory controller files (memory.max or memory.limit_in_bytes)" % path
        )
    for name in info["unsupported"]:
        plan.skipped.append(
            {
                "kind": "cgroup",
                "name": "%s %s" % (path, name),
                "reason": "no cgroup %s file for %s" % (info["flavor"], name),
            }
        )
    want = {name: kernel_value(entry["limits"][name]) for name in info["limits"]}
    entry["limits"] = {name: entry["limits"][name] for name in info["limits"]}
    refused = [] if entry["force"] else below_usage(want, info["usage"])
    if refused:
        raise PlanError(
            "cgroup %s uses %d bytes; %s below that is refused (set force: true to apply anyway)"
            % (path, info["usage"], ", ".join("%s=%s" % (n, want[n]) for n in refused))
        )
    remember_limits(snapshot, path, info["limits"])
    plan.compare(raw_cgroup_change(ctx, path, info["flavor"], info["limits"], want))
    plan.cgroups.append({"target": path, "usage": info["usage"], "before": info["limits"], "after": want})


def _plan_cgroups(ctx, plan, snapshot, entries):
    units = set()
    reload_needed = False
    for entry in entries:
        if entry["unit"]:
            units.add(entry["unit"])
            _plan_unit(ctx, plan, snapshot, entry)
        else:
            _plan_raw_cgroup(ctx, plan, snapshot, entry)
    for unit in snapshot["owned"]["dropins"]:
        if unit not in units:
            _plan_file(ctx, plan, snapshot, dropin_path(unit), None)
    if ctx.systemd is not None:
        reload_needed = any(
            c.kind in ("file", "link") and c.name.startswith(_contract.SYSTEMD_DIR) for c in plan.changes
        )
    return sorted(units), reload_needed


def _plan_cmdline(ctx, plan, snapshot, want):
    owned = snapshot["owned"]["kernel_cmdline"]
    if not want and not owned:
        return
    bootloader = Bootloader(ctx.tree, ctx.run, ctx.which)
    if bootloader.tool is None:
        if want:
            ctx.warnings.append(
                "no bootloader found (grubby, %s, BLS entries): kernel command line %s not persisted"
                % ("/etc/default/grub", " ".join(want))
            )
        return
    running = (ctx.tree.read("/proc/cmdline", optional=True) or "").split()
    stale = [arg for arg in owned if arg not in want]
    plan.reboot_required = any(arg not in running for arg in want) or any(arg in running for arg in stale)
    current = bootloader.current()
    if not any(plan_args(args, owned, want)[0] != args for args in current):
        return
    for path in bootloader.files():
        _persist.remember(snapshot, "files", path, ctx.read_file(path))

    def act():
        new_owned, warnings = bootloader.change(owned, want)
        snapshot["owned"]["kernel_cmdline"] = new_owned
        ctx.warnings.extend(warnings)
        return {"tool": bootloader.tool}

    change = Change(
        "cmdline",
        bootloader.tool,
        current[0] if current else [],
        plan_args(current[0] if current else [], owned, want)[0],
        act,
    )
    change.details["tool"] = bootloader.tool
    plan.changes.append(change)


def plan_present(ctx, want, snapshot):
    """-> Plan. ``snapshot`` (the ledger, loaded or new) is updated in memory with the originals of every
    value planned. ``plan.kept`` is ``want`` without what this host cannot take; ``plan.restored`` names
    the values of the ledger's newest generation that ``want`` drops, which go back to their originals."""
    plan = Plan()
    kept = _plan_sysctls(ctx, plan, want["sysctl"], snapshot)
    plan.conflicts = find_conflicts(ctx.tree, kept)
    boot_writes = []
    for kind in _contract.SETTING_KINDS:
        boot_writes += _settings.plan_present(ctx, plan, kind, want[kind.kind], snapshot)
    boot_writes += _plan_pools(ctx, plan, want["hugepages"], snapshot)
    _plan_file(ctx, plan, snapshot, _contract.SYSCTL_FILE, _persist.render_sysctl(kept))
    _plan_boot_restore(ctx, plan, snapshot, boot_writes)
    units, reload_needed = _plan_cgroups(ctx, plan, snapshot, want["cgroups"])
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
    _plan_cmdline(ctx, plan, snapshot, want["kernel_cmdline"])
    if plan.changes:
        snapshot["owned"]["dropins"] = units
    return plan
