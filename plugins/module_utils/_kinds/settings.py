# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The setting-files kinds (THP, zswap: _contract.SETTING_KINDS): a directory of kernel files, one
setting per file, each file in one format (_contract.FORMATS). One kind is one declaration; this module
probes, validates, plans (present, leftover, rollback), writes and reads back every one of them.

Facts: ``{name: value}`` in the declaration's order (a CHOICE setting also gives ``<name>_choices``), or
None when the kernel has no such kind; a missing file is a null value. The ledger keeps the originals under
``runtime.<kind>``; the boot restore file gets one ``w`` line per planned setting.
"""

from __future__ import annotations

import re

from ansible_collections.memtune.fleet.plugins.module_utils._apply.changes import Change, PlanError
from ansible_collections.memtune.fleet.plugins.module_utils._apply.runtime import write_value
from ansible_collections.memtune.fleet.plugins.module_utils._contract import (
    CHOICE,
    INTEGER,
    PERCENT,
    SETTING_KINDS,
    YES_NO,
)
from ansible_collections.memtune.fleet.plugins.module_utils._host import persist as _persist
from ansible_collections.memtune.fleet.plugins.module_utils._host.procfs import parse_bracketed
from ansible_collections.memtune.fleet.plugins.module_utils._kinds.check import integer, require

CHOICE_VALUE = re.compile(r"^[a-z+]+$")
YES_NO_WORDS = ("Y", "N")
NAMES = tuple(kind.kind for kind in SETTING_KINDS)


def path(kind, setting):
    return "%s/%s" % (kind.directory, setting.file)


def setting(kind, name):
    return next(s for s in kind.settings if s.name == name)


def _read(tree, kind, entry):
    """-> (value, choices or None); None for a missing file, or (with a warning) a Y/N file holding
    another word."""
    file_path = path(kind, entry)
    if entry.format == CHOICE:
        return parse_bracketed(tree.read(file_path, optional=True) or "")
    if entry.format in (INTEGER, PERCENT):
        return tree.read_int(file_path, optional=True), None
    text = tree.read(file_path, optional=True)
    if text is None:
        return None, None
    word = text.strip()
    if word not in YES_NO_WORDS:
        tree.warn("%s: expected Y or N, got %r: reported as null" % (file_path, text[:40]))
        return None, None
    return word, None


def probe(tree, kind):
    """The facts section of ``kind``, or None when this kernel has none."""
    if kind.present_when:
        if tree.read("%s/%s" % (kind.directory, kind.present_when), optional=True) is None:
            return None
    elif not tree.exists(kind.directory):
        return None
    facts = {}
    for entry in kind.settings:
        value, choices = _read(tree, kind, entry)
        facts[entry.name] = value
        if entry.format == CHOICE:
            facts[entry.name + "_choices"] = choices
    return facts


def validate(kind, section):
    """A DesiredState section -> {name: value}; DesiredError names what is wrong."""
    names = tuple(entry.name for entry in kind.settings)
    require(isinstance(section, dict), "%s: expected a mapping" % kind.kind)
    checked = {}
    for name, entry in section.items():
        require(
            name in names, "%s: unknown knob %r (expected one of %s)" % (kind.kind, name, ", ".join(names))
        )
        where = "%s.%s" % (kind.kind, name)
        require(isinstance(entry, dict), "%s: expected {value: ...}" % where)
        value, fmt = entry.get("value"), setting(kind, name).format
        if fmt == CHOICE:
            require(
                isinstance(value, str) and bool(CHOICE_VALUE.match(value)),
                "%s: expected {value: <word>}" % where,
            )
        elif fmt == YES_NO:
            require(
                value in YES_NO_WORDS and isinstance(value, str),
                "%s: expected {value: Y or N}, got %r" % (where, value),
            )
        else:
            integer(value, where)
            require(
                fmt != PERCENT or value <= 100, "%s: expected a percentage 0..100, got %r" % (where, value)
            )
        checked[name] = value
    return checked


def change(ctx, kind, name, before, after):
    """Write one setting and read it back."""
    entry = setting(kind, name)
    file_path = path(kind, entry)

    def act():
        write_value(ctx.tree, file_path, after)
        return {"read_back": _read(ctx.tree, kind, entry)[0]}

    return Change(kind.kind, name, before, after, act)


def plan_present(ctx, plan, kind, want, snapshot):
    """Plan ``want`` ({name: value}); the originals go to the ledger. -> [(path, value)] for the boot file."""
    writes = []
    facts = probe(ctx.tree, kind) if want else None
    for name in sorted(want):
        if facts is None:
            plan.skipped.append(
                {"kind": kind.kind, "name": name, "reason": "this kernel has no %s" % kind.directory}
            )
            continue
        entry = setting(kind, name)
        file_path = path(kind, entry)
        if facts[name] is None:
            plan.skipped.append(
                {"kind": kind.kind, "name": name, "reason": "this kernel has no %s" % file_path}
            )
            continue
        choices = facts[name + "_choices"] if entry.format == CHOICE else None
        if choices is not None and want[name] not in choices:
            raise PlanError(
                "%s.%s: %r is not one of this kernel's choices (%s)"
                % (kind.kind, name, want[name], ", ".join(choices))
            )
        snapshot["runtime"].setdefault(kind.kind, {})
        _persist.remember(snapshot["runtime"], kind.kind, name, facts[name])
        plan.compare(change(ctx, kind, name, facts[name], want[name]))
        writes.append((file_path, want[name]))
    return writes


def kept(tree, kind, want):
    """``want`` without what this host cannot take: nothing when the kernel has no such kind."""
    return want if want and probe(tree, kind) is not None else {}


def restores(ctx, kind, originals, names):
    """The changes that put ``names`` back to their ``originals`` (those that have one): none when the
    kernel has no such kind now."""
    facts = probe(ctx.tree, kind) if names else None
    return [
        change(ctx, kind, name, facts[name], originals[name])
        for name in (sorted(names) if facts else ())
        if name in originals
    ]
