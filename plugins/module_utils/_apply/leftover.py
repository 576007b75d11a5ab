# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Leftovers: what the ledger's newest generation set and the plan of this run no longer contains.

Each goes back to its original value at runtime (the ledger's originals); memtune's files lose it because
they are rendered from the plan alone (90-memtune.conf, the boot restore file, drop-ins), and the kernel
command line loses the arguments memtune owns and no longer wants (_kinds/cmdline.py).
A value with no original (the host already had memtune's value when it was first planned) keeps its
runtime value and only leaves the files.
"""

from __future__ import annotations

from ansible_collections.memtune.fleet.plugins.module_utils._apply.changes import mark_leftover
from ansible_collections.memtune.fleet.plugins.module_utils._apply.desired import validate
from ansible_collections.memtune.fleet.plugins.module_utils._contract import SETTING_KINDS
from ansible_collections.memtune.fleet.plugins.module_utils._host.ledger import (
    LEDGER,
    LedgerError,
    items,
    latest,
    to_desired,
)
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import cgroup as _cgroup
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import hugepages as _hugepages
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import settings as _settings
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import sysctl as _sysctl
from ansible_collections.memtune.fleet.plugins.module_utils._kinds.check import DesiredError


def last_set(ledger):
    """The newest generation's values as a validated want, or None."""
    generation = latest(ledger)
    if generation is None:
        return None
    try:
        return validate(generation["desired"])
    except (DesiredError, KeyError) as exc:
        raise LedgerError(LEDGER, "generation %s cannot be read back: %s" % (generation["id"], exc)) from None


def plan_leftovers(ctx, plan, ledger, want):
    """Plan the restores of what the newest generation set and ``want`` drops. -> (the names of those
    values, as the audit names them; unit changes to carry out after a daemon-reload)."""
    before = last_set(ledger)
    if before is None:
        return [], []
    runtime = ledger["runtime"]
    _sysctl.plan_leftover(
        ctx, plan, runtime["sysctl"], [k for k in before["sysctl"] if k not in want["sysctl"]], want["sysctl"]
    )
    for kind in SETTING_KINDS:
        gone = [name for name in before[kind.kind] if name not in want[kind.kind]]
        for change in _settings.restores(ctx, kind, runtime.get(kind.kind) or {}, gone):
            mark_leftover(plan, change)
    _hugepages.plan_leftover(ctx, plan, runtime["hugepages"], before, want)
    units = _cgroup.plan_leftover(ctx, plan, runtime["cgroups"], before, want)
    gone = sorted(set(items(to_desired(before))) - set(items(to_desired(want))))
    return gone, units
