# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""memtune.fleet.tune: plan a host with the memtune engine on the controller from its facts of the last
contact, send memory_apply the plan with a fingerprint of those facts, and check what the kernel reports back.

One remote call, changing or converged; two when the cached facts are stale (memory_apply returns fresh ones
and the action plans again), or, without cached facts, a probe (memory_facts) and then memory_apply only when
the host differs."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail

from ansible_collections.memtune.fleet.plugins.module_utils._contract import RollbackError, rollback_choice
from ansible_collections.memtune.fleet.plugins.module_utils._probe.fingerprint import fingerprint
from ansible_collections.memtune.fleet.plugins.plugin_utils.action_base import FACTS_MODULE, HostAction
from ansible_collections.memtune.fleet.plugins.plugin_utils.facts_cache import FactsCache

try:
    from memtune import DesiredState, HostFacts
    from memtune.audit.drift import boot_conflict
    from memtune.audit.drift import drift as host_drift
    from memtune.engine.kinds.sysctl import KIND as SYSCTL
    from memtune.engine.kinds.sysctl import SYSCTLS
except ImportError:  # reported by action_base.MEMTUNE_IMPORT_ERROR (ansible-test's import sanity)
    pass

APPLY_MODULE = "memtune.fleet.memory_apply"
PASSED_TO_APPLY = ("fail_on_conflict", "on_unsupported", "lock_timeout", "compact_retries", "new_ledger")
ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "policies": {"type": "list", "elements": "path"},
    "workloads": {"type": "list", "elements": "str"},
    "inputs": {"type": "dict"},
    "rollback": {"type": "raw", "default": False},
    "new_ledger": {"type": "bool", "default": False},
    "fail_on_conflict": {"type": "bool", "default": False},
    "on_unsupported": {"type": "str", "choices": ["skip", "fail"], "default": "skip"},
    "lock_timeout": {"type": "int", "default": 60},
    "compact_retries": {"type": "int", "default": 3},
    "facts_cache": {"type": "str"},
}


def conflicts(desired: DesiredState, facts: HostFacts) -> list[str]:
    """Managed sysctls that another writer, applied after memtune's file at boot, sets to something else."""
    found = []
    for key, planned in SYSCTL.desired_section(desired).items():
        if (beating := boot_conflict(key, planned.value, facts)) is not None:
            found.append(
                f"{key}: {beating.path} line {beating.line} sets {beating.value} and is applied after "
                f"memtune's file at boot, so {planned.value} will not last a reboot"
            )
    return found


def read_back_problems(applied: dict[str, Any]) -> list[str]:
    """Knobs whose value after the write is not what was written (the kernel clamped or refused it)."""
    return [
        f"{knob['kind']} {knob['name']}: wrote {knob['after']}, the kernel reports {knob['read_back']}"
        for knob in applied.get("knobs", [])
        if knob["kind"] in ("sysctl", "thp") and "read_back" in knob and knob["read_back"] != knob["after"]
    ]


def facts_back() -> dict[str, Any]:
    """memory_apply probes in-process and returns the facts (the probe's keys), so the next run needs no
    probe."""
    return {"return_facts": True, "facts_sysctls": sorted(SYSCTLS)}


def _warning_text(warning: Any) -> str:
    event = getattr(warning, "event", None)
    return str(getattr(event, "msg", None) or warning)


class ActionModule(HostAction):
    NAME = "tune"
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def act(self, result: dict[str, Any], args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        passed = {name: args[name] for name in PASSED_TO_APPLY}
        cache = self._facts_cache(args, task_vars)
        try:
            rollback = rollback_choice(args["rollback"])
        except RollbackError as exc:
            raise AnsibleActionFail(str(exc)) from None
        if rollback:
            applied = self._remote(APPLY_MODULE, {"rollback": rollback, **passed, **facts_back()}, task_vars)
            self._keep(cache, applied, result)
            return self._finish(result, None, [], applied, remote_calls=1)

        raw, source = cache.load()
        if raw is None:
            return self._probe_then_apply(result, args, passed, cache, task_vars)
        desired = self._plan(self._facts(raw, source), args, task_vars)
        applied = self._apply(desired, raw, passed, task_vars)
        calls, stale = 1, applied.get("stale_facts", [])
        if applied.get("stale"):  # the host changed since its last contact: plan again from what it is now
            raw = applied["facts"]
            desired = self._plan(self._facts(raw, "memory_apply"), args, task_vars)
            applied = self._apply(desired, raw, passed, task_vars)
            calls = 2
            if applied.get("stale"):
                raise AnsibleActionFail(
                    "the host's facts changed again between two calls ("
                    + ", ".join(item["fact"] for item in applied["stale_facts"])
                    + "): the plan reads facts that do not hold still; nothing was changed"
                )
        result.update(facts_source="cache", stale=bool(stale), stale_facts=stale)
        if applied.get("skipped") or (applied.get("failed") and "facts" not in applied):
            return self._finish(result, desired, [], applied, remote_calls=calls)
        now = self._facts(applied["facts"], APPLY_MODULE)
        host = self._host(task_vars)
        drift = [check.model_dump(mode="json") for check in host_drift(desired, now, host).applicable()]
        result["warnings"] = conflicts(desired, now)
        self._keep(cache, applied, result)
        return self._finish(result, desired, drift, applied, remote_calls=calls)

    def _probe_then_apply(
        self,
        result: dict[str, Any],
        args: dict[str, Any],
        passed: dict[str, Any],
        cache: FactsCache,
        task_vars: dict[str, Any],
    ) -> dict[str, Any]:
        """No facts from an earlier contact: probe, plan, and apply only when the host differs."""
        raw = self._probe(task_vars)
        facts = self._facts(raw, FACTS_MODULE)
        cache.store(raw)
        result.update(facts_source="probe", stale=False, stale_facts=[], ansible_facts={"memtune": raw})
        result["warnings"] = list(cache.warnings)
        ledger = facts.memtune.ledger
        if ledger is not None and ledger.error is not None and not args["new_ledger"]:
            host = task_vars.get("inventory_hostname")
            raise AnsibleActionFail(
                f"{ledger.path} on {host}: {ledger.error}; nothing was changed. Move it away, or run with "
                "new_ledger: true to move it aside and start a new ledger"
            )
        desired = self._plan(facts, args, task_vars)
        if not facts.platform.proc_sys_vm_writable:
            reason = "/proc/sys/vm is not writable on this host (a container, or not root: use become)"
            if args["on_unsupported"] == "fail":
                raise AnsibleActionFail(reason)
            result.update(skipped=True, msg=reason, plan=desired.model_dump(mode="json"), remote_calls=1)
            return result
        clashes = conflicts(desired, facts)
        if clashes and args["fail_on_conflict"]:
            raise AnsibleActionFail("; ".join(clashes) + " (fail_on_conflict is set; nothing was changed)")
        host = self._host(task_vars)
        drift = [check.model_dump(mode="json") for check in host_drift(desired, facts, host).applicable()]
        result["warnings"] += clashes
        if not drift:
            return self._finish(result, desired, drift, None, remote_calls=1)
        applied = self._apply(desired, raw, passed, task_vars)
        if applied.get("stale"):
            raise AnsibleActionFail(
                "the host's facts changed between the probe and the apply ("
                + ", ".join(item["fact"] for item in applied["stale_facts"])
                + "); nothing was changed: run again"
            )
        self._keep(cache, applied, result)
        return self._finish(result, desired, drift, applied, remote_calls=2)

    def _apply(
        self, desired: DesiredState, raw: dict[str, Any], passed: dict[str, Any], task_vars: dict[str, Any]
    ) -> dict[str, Any]:
        """One memory_apply call with the plan and the fingerprint of the facts it was made from."""
        module_args = {
            "desired": desired.model_dump(mode="json"),
            "fingerprint": fingerprint(raw, desired.facts_read),
            **passed,
            **facts_back(),
        }
        return self._remote(APPLY_MODULE, module_args, task_vars)

    @staticmethod
    def _keep(cache: FactsCache, applied: dict[str, Any], result: dict[str, Any]) -> None:
        """Store the facts memory_apply saw last (after its changes) for the next run."""
        latest = applied.get("facts_after") or applied.get("facts")
        if isinstance(latest, dict):
            cache.store(latest)
            result["ansible_facts"] = {"memtune": latest}
        result.setdefault("warnings", [])
        result["warnings"] = [*result["warnings"], *cache.warnings]

    def _finish(
        self,
        result: dict[str, Any],
        desired: DesiredState | None,
        drift: list[dict[str, Any]],
        applied: dict[str, Any] | None,
        remote_calls: int,
    ) -> dict[str, Any]:
        warnings = [*(desired.warnings if desired else []), *result.pop("warnings", [])]
        result.update(
            changed=False,
            plan=desired.model_dump(mode="json") if desired else None,
            differences=drift,
            skipped_knobs=[s.model_dump(mode="json") for s in desired.skipped] if desired else [],
            reboot_required=False,
            remote_calls=remote_calls,
        )
        if applied is None:
            result["msg"] = "converged: the host matches the plan"
        else:
            warnings += [_warning_text(w) for w in applied.get("warnings", [])]
            result.update(
                changed=bool(applied.get("changed")),
                reboot_required=bool(applied.get("reboot_required")),
                applied={
                    k: v for k, v in applied.items() if k not in ("warnings", "invocation", "diff", "changed")
                },
                msg=applied.get("msg", ""),
            )
            result["skipped_knobs"] += applied.get("skipped_knobs", [])
            if "diff" in applied:
                result["diff"] = applied["diff"]
            if applied.get("failed") or applied.get("skipped"):
                result.update(failed=bool(applied.get("failed")), skipped=bool(applied.get("skipped")))
            elif not self._task.check_mode and (problems := read_back_problems(applied)):
                result.update(failed=True, msg="read-back differs from the plan: " + "; ".join(problems))
        result["warnings"] = warnings
        result["memtune_warnings"] = warnings
        return result
