# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""memory_apply's result: per-knob before/after/read-back, hugepages requested vs allocated, files, diff."""

from __future__ import annotations

from ansible_collections.memtune.fleet.plugins.module_utils._apply.changes import RUNTIME_KINDS, build_diff
from ansible_collections.memtune.fleet.plugins.module_utils._kinds.settings import NAMES as SETTING_KIND_NAMES


def _knobs(plan):
    knobs = []
    for change in plan.changes + plan.unchanged:
        if change.kind in RUNTIME_KINDS:
            knob = change.as_result()
            knob["changed"] = change in plan.changes
            knobs.append(knob)
    return sorted(knobs, key=lambda k: (RUNTIME_KINDS.index(k["kind"]), k["name"]))


def _file_action(change):
    if change.after is None:
        return "removed"
    return "created" if change.before is None else "updated"


def _pools(plan, applied, ctx):
    """Requested vs allocated per node, plus the warnings and failures of the pools that came out short."""
    pools, failures = [], []
    for pool in plan.pools:
        change = pool.pop("change")
        if change in plan.changes:
            allocated = change.details.get("read_back") if applied else None
        else:
            allocated = pool["before"]
        entry = dict(
            pool,
            allocated=allocated,
            compactions=change.details.get("compactions", 0),
            shortfall=0 if allocated is None else max(0, pool["requested"] - allocated),
        )
        pools.append(entry)
        if not entry["shortfall"]:
            continue
        message = (
            "hugepages %(size_kb)d kB on node %(node)d: requested %(requested)d, allocated %(allocated)d "
            "after %(compactions)d compactions" % entry
        )
        if entry["boot"]:
            ctx.warnings.append(message + "; the kernel command line allocates the pool at the next boot")
        elif entry["required"]:
            failures.append(message + " (the pool is required)")
        else:
            ctx.warnings.append(message)
    return pools, failures


def _read_back_warnings(plan, ctx):
    for change in plan.changes:
        if (
            (change.kind == "sysctl" or change.kind in SETTING_KIND_NAMES)
            and "read_back" in change.details
            and change.details["read_back"] != change.after
        ):
            ctx.warnings.append(
                "%s %s: wrote %s, the kernel reports %s"
                % (change.kind, change.name, change.after, change.details["read_back"])
            )


def _summary(plan, skipped):
    if not plan.changes:
        return "no changes" + ("; %d knobs skipped" % skipped if skipped else "")
    counts = {}
    for change in plan.changes:
        counts[change.kind] = counts.get(change.kind, 0) + 1
    return "%d changes: %s" % (len(plan.changes), ", ".join("%d %s" % (counts[k], k) for k in sorted(counts)))


def report(plan, ctx, applied, diff):
    """-> (result dict for exit_json, failure messages)."""
    pools, failures = _pools(plan, applied, ctx)
    _read_back_warnings(plan, ctx)
    for conflict in plan.conflicts:
        ctx.warnings.append(
            "%(key)s: %(path)s line %(line)s sets %(value)s and is applied after memtune's file "
            "at boot, so %(desired)s will not last a reboot" % conflict
        )
    result = {
        "changed": bool(plan.changes),
        "msg": _summary(plan, len(plan.skipped)),
        "knobs": _knobs(plan),
        "skipped_knobs": plan.skipped,
        "hugepages": pools,
        "cgroups": plan.cgroups,
        "files": [
            {"path": c.name, "action": _file_action(c)} for c in plan.changes if c.kind in ("file", "link")
        ],
        "conflicts": plan.conflicts,
        "reboot_required": plan.reboot_required,
    }
    for change in plan.changes:
        if change.kind == "cmdline":
            result["kernel_cmdline"] = {
                "tool": change.details.get("tool"),
                "before": change.before,
                "after": change.after,
            }
    if diff:
        result["diff"] = build_diff(plan.changes, [c for c in plan.unchanged if c.kind in RUNTIME_KINDS])
    return result, failures
