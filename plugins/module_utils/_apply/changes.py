# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The unit of work of memory_apply: one Change per knob, file or command, planned before anything
is written, then carried out in order behind the module's single check-mode gate."""

from __future__ import annotations

import os

from ansible_collections.memtune.fleet.plugins.module_utils._contract import SETTING_KINDS
from ansible_collections.memtune.fleet.plugins.module_utils._host import persist as _persist

# The kinds of runtime knobs, in the order of the result's knobs and of the diff.
RUNTIME_KINDS = ("sysctl", *(kind.kind for kind in SETTING_KINDS), "hugepages", "cgroup")


class PlanError(Exception):
    """The desired state cannot be applied to this host as it is; nothing was changed."""


class Change:
    """``before`` -> ``after`` for one thing; ``act()`` makes it so and may return details for the result."""

    def __init__(self, kind, name, before, after, act):
        self.kind, self.name, self.before, self.after, self.act = kind, name, before, after, act
        self.details = {}

    def as_result(self):
        result = {"kind": self.kind, "name": self.name, "before": self.before, "after": self.after}
        result.update(self.details)
        return result


class Context:
    """What planning and acting share: the tree, how to run a command, and the warnings so far."""

    def __init__(self, tree, run, which, systemd, compact_retries):
        self.tree, self.run, self.which, self.systemd = tree, run, which, systemd
        self.compact_retries = compact_retries
        self.warnings = []
        self.created_dirs = []

    def path(self, path):
        return self.tree.path(path)

    def link_path(self, link):
        """Where the link ``link`` itself lives (Tree.path would follow it inside a captured root)."""
        return os.path.join(self.tree.path(os.path.dirname(link)), os.path.basename(link))

    def read_file(self, path):
        return _persist.read_text(self.tree.path(path))


def daemon_reload_change(ctx):
    return Change("systemd", "daemon-reload", None, None, ctx.systemd.daemon_reload)


def file_change(ctx, path, before, after, mode=0o644):
    """Write ``after`` to ``path`` (atomic), or remove the file when ``after`` is None."""
    full = ctx.path(path)

    def act():
        if after is None:
            _persist.remove_file(full)
        else:
            _persist.atomic_write(full, after, mode=mode, created_dirs=ctx.created_dirs)

    return Change("file", path, before, after, act)


def plan_file(ctx, plan, snapshot, path, text):
    """Plan ``path`` to hold ``text`` (None: absent); its text before goes to the ledger's files."""
    before = ctx.read_file(path)
    if plan.compare(file_change(ctx, path, before, text)):
        _persist.remember(snapshot, "files", path, before)


def mark_leftover(plan, change):
    """File a change that puts back a value the plan no longer has."""
    change.details["leftover"] = True
    plan.compare(change)


def link_change(ctx, link, before, after):
    """Point the symlink ``link`` at ``after`` (remove it when None); ``before`` is its current target."""
    full = ctx.link_path(link)

    def act():
        if after is None:
            _persist.remove_file(full)
        else:
            _persist.symlink(after, full, ctx.created_dirs)

    return Change("link", link, before, after, act)


def read_link(ctx, link):
    full = ctx.link_path(link)
    return os.readlink(full) if os.path.islink(full) else None


def runtime_text(changes):
    """``name = value`` lines for the diff of runtime knobs, before and after."""
    before = "".join("%s %s = %s\n" % (c.kind, c.name, c.before) for c in changes if c.kind in RUNTIME_KINDS)
    after = "".join("%s %s = %s\n" % (c.kind, c.name, c.after) for c in changes if c.kind in RUNTIME_KINDS)
    return before, after


def build_diff(changes, runtime_unchanged):
    """Ansible's list-of-diffs form: the runtime knobs (all managed ones, so unchanged ones give context),
    then one entry per file or link that changes."""
    runtime = [c for c in changes if c.kind in RUNTIME_KINDS] + runtime_unchanged
    runtime.sort(key=lambda c: (RUNTIME_KINDS.index(c.kind), c.name))
    before, after = runtime_text(runtime)
    diffs = [
        {
            "before_header": "runtime (before)",
            "after_header": "runtime (after)",
            "before": before,
            "after": after,
        }
    ]
    for change in changes:
        if change.kind in ("file", "link"):
            diffs.append(
                {
                    "before_header": change.name,
                    "after_header": change.name,
                    "before": _diff_text(change.kind, change.before),
                    "after": _diff_text(change.kind, change.after),
                }
            )
        elif change.kind == "cmdline":
            diffs.append(
                {
                    "before_header": "kernel command line (%s)" % change.details.get("tool"),
                    "after_header": "kernel command line (%s)" % change.details.get("tool"),
                    "before": " ".join(change.before) + "\n",
                    "after": " ".join(change.after) + "\n",
                }
            )
    return diffs


def _diff_text(kind, value):
    if value is None:
        return ""
    return "-> %s\n" % value if kind == "link" else value


def carry_out(changes):
    """Act on every change in order; an OSError stops the run and names the change that failed."""
    for change in changes:
        try:
            details = change.act()
        except (OSError, ValueError) as exc:
            raise ApplyError("%s %s: %s" % (change.kind, change.name, exc), change) from exc
        if details:
            change.details.update(details)


class ApplyError(Exception):
    def __init__(self, message, change):
        Exception.__init__(self, message)
        self.change = change
