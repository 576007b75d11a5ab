# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""memtune.fleet.tune: probe a host (memory_facts), plan it with the memtune engine on the controller, and
only when the host differs from the plan run memory_apply and check what the kernel reports back.

A converged host costs one remote call; a host with differences costs two."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ansible import constants as C
from ansible import context
from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.memtune.fleet.plugins.module_utils._probe.fingerprint import fingerprint
from ansible_collections.memtune.fleet.plugins.plugin_utils.engine import missing_engine, use_shipped_engine
from ansible_collections.memtune.fleet.plugins.plugin_utils.facts_cache import FactsCache, choose_directory

use_shipped_engine()
MEMTUNE_IMPORT_ERROR: ImportError | None = None
try:
    from memtune import DesiredState, HostFacts, PolicyError, load_policy_set, parse_facts, plan
    from memtune.audit.drift import boot_conflict
    from memtune.audit.drift import drift as host_drift
    from memtune.engine.knobs import SYSCTLS
    from memtune.facts.model import FactsError
    from memtune.hosts.vars import HostVars
    from memtune.policy.model import bundled_policy_dir
except ImportError as exc:  # ansible-test's import sanity runs without the controller package
    MEMTUNE_IMPORT_ERROR = exc

FACTS_MODULE = "memtune.fleet.memory_facts"
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

INVENTORY_VARS = ("memtune_inputs", "memtune_workloads", "memtune_group_policies", "memtune_host_policy")
ROLLBACK_OFF = ("false", "no", "off", "0", "none", "")
ROLLBACK_CHOICES = {"original": ("true", "yes", "on", "1", "original"), "previous": ("previous",)}


def rollback_choice(value: Any) -> str | None:
    """``rollback`` -> None, "original" or "previous"; ``true`` is "original", as in earlier releases.
    (memory_apply's copy is module_utils/_apply_ledger.rollback_choice; a test keeps the two equal.)"""
    text = str(value).strip().lower()
    if text in ROLLBACK_OFF:
        return None
    for choice, spellings in ROLLBACK_CHOICES.items():
        if text in spellings:
            return choice
    raise AnsibleActionFail(f"rollback: {value!r} is not one of original, previous (true means original)")


Run = Callable[[Any, "str | None", "dict[str, Any] | None"], "dict[str, Any]"]


def fail_on_bug(run: Run) -> Run:
    """An unexpected exception in an action's ``run`` fails the task with one message saying it is a bug
    (the traceback goes with it, shown at -vvv) instead of Ansible's raw traceback; errors Ansible knows
    (AnsibleActionFail and the like) pass through as they are."""

    @functools.wraps(run)
    def guarded(self: Any, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            return run(self, tmp, task_vars)
        except AnsibleError:
            raise
        except Exception as exc:
            detail = (str(exc).strip().splitlines() or [""])[0][:200]
            raise AnsibleActionFail(
                f"memtune internal error (a bug in memtune, not a problem with your input): "
                f"{type(exc).__name__}: {detail}; run with -vvv for the traceback and report it"
            ) from exc

    return guarded


def conflicts(desired: DesiredState, facts: HostFacts) -> list[str]:
    """Managed sysctls that another writer, applied after memtune's file at boot, sets to something else."""
    found = []
    for key, planned in desired.sysctl.items():
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


class ActionModule(ActionBase):  # type: ignore[misc]  # ansible-core ships no type information
    TRANSFERS_FILES = False
    _requires_connection = True

    @fail_on_bug
    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result: dict[str, Any] = super().run(tmp, task_vars)
        if MEMTUNE_IMPORT_ERROR is not None:
            raise AnsibleActionFail(missing_engine("tune", MEMTUNE_IMPORT_ERROR))
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        passed = {name: args[name] for name in PASSED_TO_APPLY}
        cache = self._facts_cache(args, task_vars)
        if rollback := rollback_choice(args["rollback"]):
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
        host = str(task_vars.get("inventory_hostname", "localhost"))
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
        probed = self._remote(FACTS_MODULE, {"sysctls": sorted(SYSCTLS)}, task_vars)
        raw = probed.get("ansible_facts", {}).get("memtune", probed.get("ansible_facts", {}))
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
        host = str(task_vars.get("inventory_hostname", "localhost"))
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

    def _facts_cache(self, args: dict[str, Any], task_vars: dict[str, Any]) -> FactsCache:
        host = str(task_vars.get("inventory_hostname", "localhost"))
        directory = choose_directory(
            args["facts_cache"], task_vars.get("memtune_facts_cache"), str(C.CACHE_PLUGIN)
        )
        task_facts = (task_vars.get("ansible_facts") or {}).get("memtune")
        flush = bool(context.CLIARGS.get("flush_cache", False))
        return FactsCache(host, directory, task_facts, flush, parse_facts)

    @staticmethod
    def _facts(raw: Any, source: str) -> HostFacts:
        try:
            return parse_facts(raw, source)
        except FactsError as exc:
            raise AnsibleActionFail(
                f"{exc} (are the memtune package and the memtune.fleet collection the same release?)"
            ) from None

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

    def _remote(self, module: str, module_args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        returned: dict[str, Any] = self._execute_module(
            module_name=module, module_args=module_args, task_vars=task_vars
        )
        if returned.get("failed") and module == FACTS_MODULE:
            raise AnsibleActionFail(f"{module} failed: {returned.get('msg', 'no message')}", result=returned)
        return returned

    def _plan(self, facts: HostFacts, args: dict[str, Any], task_vars: dict[str, Any]) -> DesiredState:
        """The engine's plan for this host: ``policies`` (default: the bundled ones), layered with the
        host's groups and its memtune_* inventory variables."""
        host = str(task_vars.get("inventory_hostname", "localhost"))
        values = {
            name: self._templar.template(task_vars[name]) for name in INVENTORY_VARS if name in task_vars
        }
        if args["workloads"] is not None:
            values["memtune_workloads"] = args["workloads"]
        if args["inputs"] is not None:
            values["memtune_inputs"] = {**values.get("memtune_inputs", {}), **args["inputs"]}
        try:
            host_vars = HostVars.model_validate(
                {**values, "group_names": list(task_vars.get("group_names", []))}
            )
        except ValueError as exc:
            raise AnsibleActionFail(f"inventory variables of {host}: {exc}") from None
        paths = [Path(p) for p in args["policies"] or [str(bundled_policy_dir())]]
        try:
            return plan(
                facts,
                load_policy_set(paths),
                host=host,
                groups=host_vars.group_names,
                workloads=host_vars.memtune_workloads,
                inputs=host_vars.memtune_inputs,
                inline=host_vars.inline_policies(f"inventory:{host}", host),
            )
        except PolicyError as exc:
            raise AnsibleActionFail(f"policy error for {host}: {exc}") from None

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
