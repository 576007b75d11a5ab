# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What memtune's action plugins share: ``MemtuneAction`` (the engine import check, the argument spec, a
bug turned into one task failure) for tune, audit and fleet_report, and ``HostAction`` (the probe, the facts
cache and the host's plan) for tune and audit. Each action implements ``act``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from ansible import constants as C
from ansible import context
from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.memtune.fleet.plugins.plugin_utils.engine import missing_engine, use_shipped_engine
from ansible_collections.memtune.fleet.plugins.plugin_utils.facts_cache import FactsCache, choose_directory

use_shipped_engine()
MEMTUNE_IMPORT_ERROR: ImportError | None = None
try:
    from memtune import DesiredState, HostFacts, PolicyError, load_policy_set, parse_facts
    from memtune.engine.kinds.sysctl import SYSCTLS
    from memtune.facts.model import FactsError
    from memtune.hosts.vars import HostVars
    from memtune.policy.model import bundled_policy_dir
except ImportError as exc:  # ansible-test's import sanity runs without the controller package
    MEMTUNE_IMPORT_ERROR = exc

FACTS_MODULE = "memtune.fleet.memory_facts"
INVENTORY_VARS = (
    "memtune_inputs",
    "memtune_workloads",
    "memtune_container_workloads",
    "memtune_group_policies",
    "memtune_host_policy",
)

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


class MemtuneAction(ActionBase):  # type: ignore[misc]  # ansible-core ships no type information
    """An action that runs the memtune engine on the controller: ``run`` checks that the engine imports
    and validates ``ARGUMENT_SPEC``, then ``act`` does the action's work."""

    TRANSFERS_FILES = False
    NAME: ClassVar[str]
    ARGUMENT_SPEC: ClassVar[dict[str, dict[str, Any]]]

    @fail_on_bug
    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result: dict[str, Any] = super().run(tmp, task_vars)
        if MEMTUNE_IMPORT_ERROR is not None:
            raise AnsibleActionFail(missing_engine(self.NAME, MEMTUNE_IMPORT_ERROR))
        args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)[1]
        return self.act(result, args, task_vars)

    def act(self, result: dict[str, Any], args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


class HostAction(MemtuneAction):
    """An action on one host: probe it (memory_facts), keep its facts, plan it. ``ARGUMENT_SPEC`` has
    ``policies``, ``workloads``, ``inputs`` and ``facts_cache``."""

    _requires_connection = True

    @staticmethod
    def _host(task_vars: dict[str, Any]) -> str:
        return str(task_vars.get("inventory_hostname", "localhost"))

    def _probe(self, task_vars: dict[str, Any]) -> dict[str, Any]:
        """The host's raw facts, probed now."""
        probed = self._remote(FACTS_MODULE, {"sysctls": sorted(SYSCTLS)}, task_vars)
        found = probed.get("ansible_facts", {})
        raw: dict[str, Any] = found.get("memtune", found) if isinstance(found, dict) else {}
        return raw

    def _facts_cache(self, args: dict[str, Any], task_vars: dict[str, Any]) -> FactsCache:
        directory = choose_directory(
            args["facts_cache"], task_vars.get("memtune_facts_cache"), str(C.CACHE_PLUGIN)
        )
        task_facts = (task_vars.get("ansible_facts") or {}).get("memtune")
        flush = bool(context.CLIARGS.get("flush_cache", False))
        return FactsCache(self._host(task_vars), directory, task_facts, flush, parse_facts)

    @staticmethod
    def _facts(raw: Any, source: str) -> HostFacts:
        try:
            return parse_facts(raw, source)
        except FactsError as exc:
            raise AnsibleActionFail(
                f"{exc} (are the memtune package and the memtune.fleet collection the same release?)"
            ) from None

    def _remote(self, module: str, module_args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        returned: dict[str, Any] = self._execute_module(
            module_name=module, module_args=module_args, task_vars=task_vars
        )
        if returned.get("failed") and module == FACTS_MODULE:
            raise AnsibleActionFail(f"{module} failed: {returned.get('msg', 'no message')}", result=returned)
        return returned

    def _plan(self, facts: HostFacts, args: dict[str, Any], task_vars: dict[str, Any]) -> DesiredState:
        """The engine's plan for this host: ``policies`` (default: the bundled ones), layered with the
        host's groups and its memtune_* inventory variables (``workloads`` and ``inputs`` over them)."""
        host = self._host(task_vars)
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
            return host_vars.plan(facts, load_policy_set(paths), host, f"inventory:{host}")
        except PolicyError as exc:
            raise AnsibleActionFail(f"policy error for {host}: {exc}") from None
