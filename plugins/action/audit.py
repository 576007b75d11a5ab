# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""memtune.fleet.audit: probe a host (memory_facts), plan it with the memtune engine on the controller, and
report how the host differs from the plan, now and at the next boot. It never changes the host: one remote
call, memory_apply is never run."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ansible_collections.memtune.fleet.plugins.plugin_utils.action_base import FACTS_MODULE, HostAction

try:
    from memtune.audit.baseline import host_state
    from memtune.audit.drift import Kind
    from memtune.audit.drift import drift as host_drift
    from memtune.report.picture import memory_picture
except ImportError:  # reported by action_base.MEMTUNE_IMPORT_ERROR (ansible-test's import sanity)
    pass

ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "policies": {"type": "list", "elements": "path"},
    "workloads": {"type": "list", "elements": "str"},
    "inputs": {"type": "dict"},
    "fail_on_drift": {"type": "bool", "default": True},
    "facts_cache": {"type": "str"},
}


class ActionModule(HostAction):
    """The host's probe and plan, then drift instead of apply."""

    NAME = "audit"
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def act(self, result: dict[str, Any], args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        host = self._host(task_vars)
        raw = self._probe(task_vars)
        facts = self._facts(raw, f"{FACTS_MODULE} on {host}")
        cache = self._facts_cache(args, task_vars)  # always probed fresh: refresh what tune plans from
        cache.store(raw)
        drift = host_drift(self._plan(facts, args, task_vars), facts, host)
        counts = Counter(finding.kind.value for check in drift.checks for finding in check.findings)
        findings = [f"{check.name}: {finding.kind}: {finding.message}" for check, finding in drift.findings()]
        result.update(
            changed=False,
            drift=drift.model_dump(mode="json"),
            drifted=drift.drifted,
            counts={kind.value: counts.get(kind.value, 0) for kind in Kind},
            findings=findings,
            state=host_state(facts),
            memory=memory_picture(facts).model_dump(mode="json"),
            remote_calls=1,
            ansible_facts={"memtune": raw},
        )
        if cache.warnings:
            result["warnings"] = cache.warnings
        checks = len(drift.checks)
        if not drift.drifted:
            result["msg"] = f"no drift: {checks} checks pass"
            return result
        summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
        result["msg"] = f"drift: {summary} in {checks} checks: " + "; ".join(findings)
        result["failed"] = bool(args["fail_on_drift"])
        return result
