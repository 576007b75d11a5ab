# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Leftovers: what the ledger's newest generation set and the plan of this run no longer contains.

Each goes back to its original value at runtime (the ledger's originals); memtune's files lose it because
they are rendered from the plan alone (90-memtune.conf, the boot restore file, drop-ins), and the kernel
command line loses the arguments memtune owns and no longer wants (_apply_present._plan_cmdline).
A value with no original (the host already had memtune's value when it was first planned) keeps its
runtime value and only leaves the files.
"""

from __future__ import annotations

from ansible_collections.memtune.fleet.plugins.module_utils._apply.changes import (
    pool_change,
    raw_cgroup_change,
    sysctl_change,
    unit_change,
)
from ansible_collections.memtune.fleet.plugins.module_utils._apply.desired import DesiredError, validate
from ansible_collections.memtune.fleet.plugins.module_utils._apply.runtime import pool_path
from ansible_collections.memtune.fleet.plugins.module_utils._contract import SETTING_KINDS, TWINS
from ansible_collections.memtune.fleet.plugins.module_utils._host.cgroup import read_raw
from ansible_collections.memtune.fleet.plugins.module_utils._host.ledger import (
    LEDGER,
    LedgerError,
    items,
    latest,
    to_desired,
)
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import settings as _settings
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import read_sysctls


def last_set(ledger):
    """The newest generation's values as a validated want, or None."""
    generation = latest(ledger)
    if generation is None:
        return None
    try:
        return validate(generation["desired"])
    except (DesiredError, KeyError) as exc:
        raise LedgerError(LEDGER, "generation %s cannot be read back: %s" % (generation["id"], exc)) from None


def _mark(plan, change):
    change.details["leftover"] = True
    plan.compare(change)


def _sysctls(ctx, plan, originals, gone, wanted):
    current = read_sysctls(ctx.tree, sorted(gone) + sorted(TWINS[k] for k in gone if k in TWINS))
    for key in sorted(gone):
        original, twin = originals.get(key), TWINS.get(key)
        if original == 0 and twin and originals.get(twin) and twin not in wanted:
            key, original = twin, originals[twin]  # writing the twin back zeroes this one
        if original is not None and current.get(key) is not None:
            _mark(plan, sysctl_change(ctx, key, current[key], original))


def _pools(ctx, plan, originals, before, want):
    kept = {(p["size_kb"], node) for p in want["hugepages"] for node in p["per_node"]}
    for pool in before["hugepages"]:
        for node in sorted(pool["per_node"]):
            original = originals.get(str(pool["size_kb"]), {}).get(str(node))
            if (pool["size_kb"], node) in kept or original is None:
                continue
            now = ctx.tree.read_int(pool_path(ctx.tree, pool["size_kb"], node), optional=True)
            if now is not None:
                _mark(plan, pool_change(ctx, pool["size_kb"], node, now, original))


def _cgroups(ctx, plan, originals, before, want):
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
                _mark(plan, raw_cgroup_change(ctx, target, info["flavor"], info["limits"], back))
        elif entry["unit"] and ctx.systemd is not None:
            now = {n: v for n, v in ctx.systemd.show(target)["limits"].items() if n in back}
            change = unit_change(ctx, target, now, back)
            change.details["leftover"] = True
            if change.before != change.after:
                units.append(change)
    return units


def plan_leftovers(ctx, plan, ledger, want):
    """Plan the restores of what the newest generation set and ``want`` drops. -> (the names of those
    values, as the audit names them; unit changes to carry out after a daemon-reload)."""
    before = last_set(ledger)
    if before is None:
        return [], []
    runtime = ledger["runtime"]
    _sysctls(
        ctx, plan, runtime["sysctl"], [k for k in before["sysctl"] if k not in want["sysctl"]], want["sysctl"]
    )
    for kind in SETTING_KINDS:
        gone = [name for name in before[kind.kind] if name not in want[kind.kind]]
        for change in _settings.restores(ctx, kind, runtime.get(kind.kind) or {}, gone):
            _mark(plan, change)
    _pools(ctx, plan, runtime["hugepages"], before, want)
    units = _cgroups(ctx, plan, runtime["cgroups"], before, want)
    gone = sorted(set(items(to_desired(before))) - set(items(to_desired(want))))
    return gone, units
