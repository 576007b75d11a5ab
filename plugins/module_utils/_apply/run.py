# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One memory_apply run against the host ledger: load it (or refuse it), plan O(desired) or a rollback
(original, previous), and wrap the run's changes in the ledger's two saves: the originals before anything
changes, the new generation once everything is done."""

from __future__ import annotations

import copy
import os
import time

from ansible_collections.memtune.fleet.plugins.module_utils import _contract
from ansible_collections.memtune.fleet.plugins.module_utils._apply.absent import plan_absent
from ansible_collections.memtune.fleet.plugins.module_utils._apply.changes import Change, PlanError
from ansible_collections.memtune.fleet.plugins.module_utils._apply.desired import validate
from ansible_collections.memtune.fleet.plugins.module_utils._apply.present import plan_present
from ansible_collections.memtune.fleet.plugins.module_utils._host import ledger as _ledger
from ansible_collections.memtune.fleet.plugins.module_utils._host import persist as _persist
from ansible_collections.memtune.fleet.plugins.module_utils._kinds.check import DesiredError

EMPTY = _ledger.to_desired({"sysctl": {}, "thp": {}, "hugepages": [], "kernel_cmdline": [], "cgroups": []})


def _fail_if_conflicting(params, plan):
    if plan.conflicts and params["fail_on_conflict"]:
        raise PlanError(
            "; ".join(
                "%(key)s: %(path)s:%(line)s sets %(value)s after memtune's %(desired)s" % c
                for c in plan.conflicts
            )
            + " (fail_on_conflict is set; nothing was changed)"
        )


def _load_ledger(params, ctx):
    """-> (ledger or None, whether it comes from a version-1 snapshot, the file to move aside or None)."""
    try:
        ledger, migrated = _ledger.load(ctx.tree)
    except _ledger.LedgerError as exc:
        if not params["new_ledger"]:
            raise PlanError(
                "%s; nothing was changed. Move the file away or run with new_ledger=true, which moves it "
                "aside (%s.corrupt-<time>) and starts a new ledger" % (exc, exc.path)
            ) from None
        return None, False, exc.path
    return ledger, migrated, None


def _ledger_changes(ctx, ledger, migrated, aside, record):
    """The ledger's saves around the run's changes. Before anything is changed: the originals and
    ``record(ledger)``, the generation this run makes, so that a run that fails half way is the newest
    generation and ``rollback: previous`` goes back to the one before it. Once everything is done: what
    the changes updated (kernel arguments owned, directories created)."""
    path = ctx.path(_ledger.LEDGER)

    def save():
        ledger["dirs"].extend(d for d in ctx.created_dirs if d not in ledger["dirs"])
        _persist.save_snapshot(path, ledger)

    def save_first():
        if aside:
            moved = "%s.corrupt-%s" % (aside, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
            os.rename(ctx.path(aside), ctx.path(moved))
            ctx.warnings.append(
                "%s could not be read: moved aside to %s, a new ledger starts" % (aside, moved)
            )
        _persist.make_dirs(os.path.dirname(path), ctx.created_dirs)
        record(ledger)
        save()

    def save_final():
        save()
        if migrated:
            _persist.remove_file(ctx.path(_contract.SNAPSHOT))
        _persist.remove_empty_dirs(ledger["dirs"])  # those memtune created and no longer needs

    return (
        Change("ledger", _ledger.LEDGER, None, "saved", save_first),
        Change("ledger", _ledger.LEDGER, None, "updated", save_final),
    )


def _plan_original(ctx, ledger, migrated, aside):
    plan = plan_absent(ctx, ledger)
    if ledger is None or (
        not plan.changes and not migrated and _ledger.same_set(_ledger.latest(ledger), EMPTY)
    ):
        return plan, plan.changes
    ledger = copy.deepcopy(ledger)

    def record(saved):
        if not _ledger.same_set(_ledger.latest(saved), EMPTY):
            _ledger.append(
                saved, {"desired": EMPTY, "plan": {"hash": None, "sources": []}}, "rollback-original"
            )

    first, last = _ledger_changes(ctx, ledger, migrated, aside, record)
    return plan, [first, *plan.changes, last]


def plan_run(params, ctx, raw, rollback):
    """-> (plan, changes to carry out in order, ledger saves included), for O(desired) ``raw`` or the
    ``rollback`` (None, "original", "previous"). Raises PlanError, nothing changed."""
    ledger, migrated, aside = _load_ledger(params, ctx)
    action = "apply"
    if rollback == "previous":
        generation = _ledger.previous(ledger)
        if generation is None:
            ctx.warnings.append(
                "no previous generation in %s: rolling back to the original values" % _ledger.LEDGER
            )
            rollback = "original"
        else:
            raw, action = generation["desired"], "rollback-previous"
    if rollback == "original":
        return _plan_original(ctx, ledger, migrated, aside)
    try:
        want = validate(raw)
    except DesiredError as exc:
        raise PlanError("invalid desired state: %s" % exc) from None
    work = copy.deepcopy(ledger) if ledger else _ledger.new_ledger()
    plan = plan_present(ctx, want, work)
    _fail_if_conflicting(params, plan)
    desired = _ledger.to_desired(plan.kept)
    # Every run that changes the host is a generation, so `previous` is what the host had before it.
    new_generation = bool(plan.changes) or not _ledger.same_set(_ledger.latest(work), desired)
    if not new_generation:
        return plan, []

    def record(saved):
        if action == "rollback-previous":
            saved["generations"].pop()
        elif new_generation:
            _ledger.append(saved, {"desired": desired, "plan": _ledger.identity(desired, raw)}, action)

    first, last = _ledger_changes(ctx, work, migrated, aside, record)
    return plan, [first, *plan.changes, last]
