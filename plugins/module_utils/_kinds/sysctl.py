# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sysctl kind on the host: vm.* and kernel.* knobs, written at runtime and persisted in memtune's
sysctl.d file (_contract.SYSCTL_FILE); planned (present, leftover, rollback) here."""

from __future__ import annotations

from ansible_collections.memtune.fleet.plugins.module_utils._apply.changes import Change, mark_leftover
from ansible_collections.memtune.fleet.plugins.module_utils._apply.runtime import write_value
from ansible_collections.memtune.fleet.plugins.module_utils._boot.sysctl_files import sysctl_sources
from ansible_collections.memtune.fleet.plugins.module_utils._contract import SYSCTL_KEY, TWINS
from ansible_collections.memtune.fleet.plugins.module_utils._host import persist as _persist
from ansible_collections.memtune.fleet.plugins.module_utils._host.procfs import sysctl_path, sysctl_value
from ansible_collections.memtune.fleet.plugins.module_utils._kinds.check import integer, require
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import read_sysctls


def change(ctx, key, before, after):
    path = sysctl_path(key)

    def act():
        write_value(ctx.tree, path, after)
        text = ctx.tree.read(path)
        return {"read_back": None if text is None else sysctl_value(text)}

    return Change("sysctl", key, before, after, act)


def find_conflicts(tree, values):
    """[{key, path, line, value, desired}]: the writer that lasts at boot, when it runs after memtune's
    file (sysctl.d order, /etc/sysctl.conf, TuneD) and sets another value."""
    conflicts = []
    for key, source in sorted(sysctl_sources(tree, sorted(values)).items()):
        beating = source["after_memtune"]
        if beating and sysctl_value(beating[-1]["value"]) != sysctl_value(str(values[key])):
            conflicts.append(dict(beating[-1], key=key, desired=values[key]))
    return conflicts


def plan_present(ctx, plan, want, snapshot):
    current = read_sysctls(ctx.tree, sorted(want))
    kept = {}
    for key in sorted(want):
        if current[key] is None:
            plan.skipped.append({"kind": "sysctl", "name": key, "reason": "this kernel has no %s" % key})
            continue
        kept[key] = want[key]
        _persist.remember(snapshot["runtime"], "sysctl", key, current[key])
        plan.compare(change(ctx, key, current[key], want[key]))
        twin = TWINS.get(key)
        if twin and twin not in want:
            value = read_sysctls(ctx.tree, [twin])[twin]
            if value is not None:
                _persist.remember(snapshot["runtime"], "sysctl", twin, value)
    return kept


def plan_leftover(ctx, plan, originals, gone, wanted):
    current = read_sysctls(ctx.tree, sorted(gone) + sorted(TWINS[k] for k in gone if k in TWINS))
    for key in sorted(gone):
        original, twin = originals.get(key), TWINS.get(key)
        if original == 0 and twin and originals.get(twin) and twin not in wanted:
            key, original = twin, originals[twin]  # writing the twin back zeroes this one
        if original is not None and current.get(key) is not None:
            mark_leftover(plan, change(ctx, key, current[key], original))


def restore(ctx, plan, saved):
    """Rollback: every saved sysctl back to its original."""
    current = read_sysctls(ctx.tree, sorted(saved))
    for key in sorted(saved):
        if saved[key] == 0 and saved.get(TWINS.get(key)):
            continue  # writing its twin back zeroes it
        if current[key] is not None:
            plan.compare(change(ctx, key, current[key], saved[key]))


def validate(section):
    require(isinstance(section, dict), "sysctl: expected a mapping of key to {value}")
    checked = {}
    for key, entry in section.items():
        require(bool(SYSCTL_KEY.match(key)), "sysctl: %r is not a vm.* or kernel.* key" % key)
        require(isinstance(entry, dict) and "value" in entry, "sysctl.%s: expected {value: ...}" % key)
        value = entry["value"]
        if isinstance(value, str):
            require(
                value.strip() != "" and "\n" not in value and "\0" not in value and "=" not in value,
                "sysctl.%s: value %r is not a single-line value" % (key, value),
            )
            value = " ".join(value.split())
        else:
            value = integer(value, "sysctl.%s" % key, minimum=-(2**63))
        checked[key] = value
    return checked
