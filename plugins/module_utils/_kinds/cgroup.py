# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cgroup kind on the host: memory limits of systemd units (a drop-in plus ``set-property
--runtime``) and of raw cgroup directories; planned (present, leftover, rollback) here."""

from __future__ import annotations

import posixpath
import re

from ansible_collections.memtune.fleet.plugins.module_utils import _contract
from ansible_collections.memtune.fleet.plugins.module_utils._apply.changes import (
    Change,
    PlanError,
    mark_leftover,
    plan_file,
)
from ansible_collections.memtune.fleet.plugins.module_utils._apply.runtime import write_value
from ansible_collections.memtune.fleet.plugins.module_utils._host import persist as _persist
from ansible_collections.memtune.fleet.plugins.module_utils._host.cgroup import (
    below_usage,
    dropin_path,
    kernel_value,
    raw_write,
    read_raw,
    render_dropin,
)
from ansible_collections.memtune.fleet.plugins.module_utils._kinds.check import integer, mappings, require

UNIT_NAME = re.compile(_contract.UNIT_NAME_PATTERN)
CGROUP_ROOT = "/sys/fs/cgroup/"


def raw_cgroup_change(ctx, path, flavor, before, after):
    """Set the limits ``after`` ({name: value}) of a raw cgroup directory."""

    def act():
        for name in sorted(after):
            file_path, text = raw_write(path, flavor, name, after[name])
            write_value(ctx.tree, file_path, text)
        return {"read_back": read_raw(ctx.tree, path, sorted(after))["limits"]}

    return Change("cgroup", path, before, after, act)


def unit_change(ctx, unit, before, after):
    """``systemctl set-property --runtime``: the limits take effect now, the drop-in keeps them after boot."""
    return Change("cgroup", unit, before, after, lambda: ctx.systemd.set_runtime(unit, after))


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
    plan_file(ctx, plan, snapshot, dropin_path(unit), render_dropin(unit, limits, _persist.HEADER))
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


def plan_present(ctx, plan, snapshot, entries):
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
            plan_file(ctx, plan, snapshot, dropin_path(unit), None)
    if ctx.systemd is not None:
        reload_needed = any(
            c.kind in ("file", "link") and c.name.startswith(_contract.SYSTEMD_DIR) for c in plan.changes
        )
    return sorted(units), reload_needed


def plan_leftover(ctx, plan, originals, before, want):
    """-> unit changes (carried out after systemd has reloaded the drop-ins)."""
    kept = {(e["unit"] or e["path"], name) for e in want["cgroups"] for name in e["limits"]}
    units = []
    for entry in before["cgroups"]:
        target = entry["unit"] or entry["path"]
        saved = originals.get(target) or {}
        back = {n: saved[n] for n in sorted(entry["limits"]) if (target, n) not in kept and n in saved}
        if not back:
            continue
        if entry["path"] and ctx.tree.exists(target):
            info = read_raw(ctx.tree, target, sorted(back))
            if info["flavor"] is not None:
                mark_leftover(plan, raw_cgroup_change(ctx, target, info["flavor"], info["limits"], back))
        elif entry["unit"] and ctx.systemd is not None:
            now = {n: v for n, v in ctx.systemd.show(target)["limits"].items() if n in back}
            change = unit_change(ctx, target, now, back)
            change.details["leftover"] = True
            if change.before != change.after:
                units.append(change)
    return units


def restore(ctx, plan, cgroups):
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


def dropins(ctx, snapshot):
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


def cgroup_path_ok(path):
    return (
        isinstance(path, str)
        and path.startswith(CGROUP_ROOT)
        and posixpath.normpath(path) == path
        and "/../" not in path + "/"
    )


def validate(section):
    checked, seen = [], set()
    for where, entry in mappings(section, "cgroups"):
        unit, path = entry.get("unit"), entry.get("path")
        require((unit is None) != (path is None), "%s: set exactly one of unit and path" % where)
        if unit is not None:
            require(
                isinstance(unit, str) and bool(UNIT_NAME.match(unit)),
                "%s.unit: %r is not a .service, .slice or .scope name" % (where, unit),
            )
        else:
            require(
                cgroup_path_ok(path),
                "%s.path: %r is not a normalized path below %s" % (where, path, CGROUP_ROOT),
            )
        target = unit or path
        require(target not in seen, "%s: %s is listed twice" % (where, target))
        seen.add(target)
        limits = entry.get("limits")
        require(isinstance(limits, dict) and limits, "%s.limits: expected {MemoryMax: bytes, ...}" % where)
        for name, value in limits.items():
            require(
                name in _contract.CGROUP_LIMITS,
                "%s.limits: unknown limit %r (expected one of %s)"
                % (where, name, ", ".join(_contract.CGROUP_LIMITS)),
            )
            if value != "infinity":
                integer(value, "%s.limits.%s" % (where, name))
        checked.append(
            {"unit": unit, "path": path, "limits": dict(limits), "force": bool(entry.get("force", False))}
        )
    return checked
