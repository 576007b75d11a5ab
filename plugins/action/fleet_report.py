# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""memtune.fleet.fleet_report: gather the memtune.fleet.audit results the play's hosts registered and write
one fleet report on the controller (JSON, JUnit XML, Markdown, Prometheus text, table); optionally compare
with a baseline and record a new one. Runs once, on the controller, without a connection to any host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail

from ansible_collections.memtune.fleet.plugins.plugin_utils.action_base import MemtuneAction

try:
    from memtune.atomic_write import write_atomically
    from memtune.audit.baseline import HOST_STATE, HostState, dump_baseline, load_baseline, moved
    from memtune.audit.drift import HostDrift
    from memtune.facts.model import FactsError
    from memtune.report import FleetReport, Format, HostError, fleet_report, host_result, render
    from memtune.report.picture import MemoryPicture
except ImportError:  # reported by action_base.MEMTUNE_IMPORT_ERROR (ansible-test's import sanity)
    pass

SUFFIXES = {
    "json": "json",
    "junit": "xml",
    "markdown": "md",
    "prometheus": "prom",
    "table": "txt",
    "html": "html",
}
ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "dest": {"type": "path", "required": True},
    "hosts": {"type": "list", "elements": "str"},
    "result_var": {"type": "str", "default": "memtune_audit"},
    "formats": {
        "type": "list",
        "elements": "str",
        "choices": list(SUFFIXES),
        "default": list(SUFFIXES),
    },
    "baseline": {"type": "path"},
    "record_baseline": {"type": "path"},
    "fail_on_drift": {"type": "bool", "default": True},
}


def same_content(path: Path, text: str) -> bool:
    """Whether ``path`` already holds exactly ``text`` (then it is not rewritten and nothing changed)."""
    try:
        return path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False


def _host_state(registered: dict[str, Any]) -> HostState:
    return HOST_STATE.validate_python(registered.get("state", {}))


class ActionModule(MemtuneAction):
    NAME = "fleet_report"
    ARGUMENT_SPEC = ARGUMENT_SPEC
    _requires_connection = False

    def act(self, result: dict[str, Any], args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        hosts = args["hosts"] if args["hosts"] is not None else task_vars.get("ansible_play_hosts_all", [])
        report, states = self._gather(list(hosts), args["result_var"], task_vars)
        if args["baseline"]:
            try:
                recorded = load_baseline(Path(args["baseline"]))
            except FactsError as exc:
                raise AnsibleActionFail(str(exc)) from None
            missing = {error.host for error in report.errors}
            report = fleet_report(
                report.hosts, report.errors, moved(recorded, states, missing), args["baseline"]
            )
        dest = Path(args["dest"]).absolute()  # a relative dest is below the controller's working directory
        written = {
            name: str(dest / f"memtune-audit.{SUFFIXES[name]}") for name in dict.fromkeys(args["formats"])
        }
        if args["record_baseline"]:
            written["baseline"] = args["record_baseline"]
        texts = {
            path: dump_baseline(states) if name == "baseline" else render(report, Format(name))
            for name, path in written.items()
        }
        changed = [path for path, text in texts.items() if not same_content(Path(path), text)]
        if not self._task.check_mode:
            for path in changed:
                write_atomically(Path(path), texts[path])
        summary = report.summary
        result.update(
            changed=bool(changed) and not self._task.check_mode,
            files=written,
            summary=summary.model_dump(mode="json"),
            exit_code=report.exit_code,
            errors=[error.model_dump(mode="json") for error in report.errors],
            msg=(
                f"{summary.hosts} hosts: {summary.drifted_hosts} drifted, {summary.errors} not audited, "
                f"{summary.moved} values moved; report in {dest}"
            ),
        )
        if report.exit_code and args["fail_on_drift"]:
            result["failed"] = True
        return result

    @staticmethod
    def _gather(
        hosts: list[str], result_var: str, task_vars: dict[str, Any]
    ) -> tuple[FleetReport, dict[str, HostState]]:
        """The report over each host's registered audit result; a host without one (unreachable, failed
        before the audit, not run) is an error with the reason."""
        results, errors, states = [], [], {}
        hostvars = task_vars.get("hostvars", {})
        for host in hosts:
            registered = hostvars[host].get(result_var) if host in hostvars else None
            if not isinstance(registered, dict) or "drift" not in registered:
                reason = (registered or {}).get("msg") if isinstance(registered, dict) else None
                errors.append(
                    HostError(host=host, message=str(reason or f"no {result_var} result registered"))
                )
                continue
            try:
                memory = registered.get("memory")
                results.append(
                    host_result(
                        HostDrift.model_validate(registered["drift"]),
                        hostvars[host].get("group_names", []),
                        MemoryPicture.model_validate(memory) if memory is not None else None,
                    )
                )
                states[host] = _host_state(registered)
            except ValueError as exc:
                errors.append(
                    HostError(host=host, message=f"{result_var} is not a memtune.fleet.audit result: {exc}")
                )
        return fleet_report(results, errors), states
