# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The facts a plan read, by path, and whether a host's fresh facts still have those values.

The engine lists the facts each plan read (``DesiredState.facts_read``); the tune action resolves them on
the facts it planned from and sends that fingerprint with the plan; memory_apply resolves them again on
the facts it probes in-process and applies the plan only when every value is the same. Both sides use this
module (the action imports it), so a path means one thing everywhere.

A path walks the facts dict: ``memory.mem_total_kb``; list items by index ``numa.nodes[0].cpus`` or by a
field ``numa.nodes[id=1].mem_total_kb``, ``workloads[name=redis].version``; keys that hold dots are matched
whole (``sysctl.vm.swappiness``). Suffixes ask a question instead: ``PATH is null``, ``PATH names`` (the
sorted ``name`` fields of a list), and for the workloads list ``workloads host names`` (the workloads that
run on the host itself, see ``on_host``) and ``workloads targets`` (per workload, where its instances run:
unit, manager, cgroup, cgroup version and whether in a container or pod; never pids, which come and go).
"""

from __future__ import annotations

import json
import re

from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import MANAGED_SYSCTLS, collect
from ansible_collections.memtune.fleet.plugins.module_utils._probe.placement import contained

MISSING = "<missing>"
_SELECT = re.compile(r"^([^\[]*)\[(?:(\d+)|([a-z_]+)=([^\]]*))\]$")


def _walk_key(value, parts):
    """Consume the longest run of ``parts`` (joined with dots) that is a key of the dict ``value``."""
    for end in range(len(parts), 0, -1):
        key = ".".join(parts[:end])
        if key in value:
            return value[key], parts[end:]
    return MISSING, []


def _select(value, index, field, wanted):
    if not isinstance(value, list):
        return MISSING
    if index is not None:
        return value[int(index)] if int(index) < len(value) else MISSING
    for item in value:
        if isinstance(item, dict) and str(item.get(field)) == wanted:
            return item
    return MISSING


def on_host(workload):
    """Whether a workload runs on the host itself: an instance outside containers and pods, or no instance
    known (its processes exited while read). The controller's copy: ``Workload.on_host``."""
    instances = workload.get("instances") or []
    return not instances or any(isinstance(i, dict) and not contained(i) for i in instances)


_PLACE = ("unit", "unit_manager", "cgroup", "cgroup_version")


def _targets(workloads):
    """{name: sorted [unit, manager, cgroup, cgroup version, contained]} of each workload's instances."""
    found = {}
    for workload in workloads:
        if isinstance(workload, dict):
            instances = [i for i in workload.get("instances") or [] if isinstance(i, dict)]
            places = {(*(str(i.get(key)) for key in _PLACE), contained(i)) for i in instances}
            found[str(workload.get("name"))] = sorted(places)
    return found


_QUESTIONS = (" is null", " host names", " names", " targets")


def resolve(facts, path):
    """The value at ``path`` in the facts dict, or MISSING."""
    question = None
    for suffix in _QUESTIONS:
        if path.endswith(suffix):
            path, question = path[: -len(suffix)], suffix.strip()
            break
    value = facts
    parts = path.split(".") if path else []
    while parts and value is not MISSING:
        match = _SELECT.match(parts[0])
        if match:
            head, index, field, wanted = match.groups()
            if head:
                value = _walk_key(value, [head])[0] if isinstance(value, dict) else MISSING
            value = _select(value, index, field, wanted) if value is not MISSING else MISSING
            parts = parts[1:]
        elif isinstance(value, dict):
            value, parts = _walk_key(value, parts)
        else:
            value = MISSING
    if question == "is null":
        return None if value is MISSING else value is None
    if question in ("names", "host names", "targets") and not isinstance(value, list):
        return MISSING
    if question == "names":
        return sorted(str(item.get("name")) for item in value if isinstance(item, dict))
    if question == "host names":
        return sorted(str(item.get("name")) for item in value if isinstance(item, dict) and on_host(item))
    if question == "targets":
        return _targets(value)
    return value


def _plain(value):
    """The value as JSON gives it back (tuples become lists, keys strings), for comparison."""
    return json.loads(json.dumps(value, sort_keys=True))


def fingerprint(facts, paths):
    """{path: value} of ``paths`` in ``facts``."""
    return {path: _plain(resolve(facts, path)) for path in paths}


def stale(facts, expected):
    """[{fact, expected, found}] for every path whose value in ``facts`` differs from ``expected``."""
    differ = []
    for path in sorted(expected):
        found = _plain(resolve(facts, path))
        if found != _plain(expected[path]):
            differ.append({"fact": path, "expected": expected[path], "found": found})
    return differ


class FactsProbe:
    """memory_apply's in-process probe: the facts before the run (checked against a fingerprint), after."""

    def __init__(self, root, sysctls, wanted, expected):
        self.root, self.expected = root, expected
        self.sysctls = list(sysctls or MANAGED_SYSCTLS)
        self.wanted = bool(wanted) or expected is not None
        self.facts = None

    def before(self):
        """Probe when asked to; -> the stale facts ([] when the fingerprint holds or there is none)."""
        if not self.wanted:
            return []
        self.facts = collect(Tree(self.root), self.sysctls)
        return stale(self.facts, self.expected) if self.expected is not None else []

    def after(self, changed):
        """The result keys: ``facts`` (and ``stale: false``), ``facts_after`` when the host changed."""
        if not self.wanted:
            return {}
        found = {"facts": self.facts}
        if self.expected is not None:
            found["stale"] = False
        if changed:
            found["facts_after"] = collect(Tree(self.root), self.sysctls)
        return found
