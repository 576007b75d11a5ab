"""What a policy change does to a fleet: every host planned with the old and the new policies, and each
planned value that changes (old -> new, each with the policy rule it comes from). ``memtune diff``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from memtune.engine.desired import DesiredState
from memtune.errors import PolicyError
from memtune.facts.model import FactsError
from memtune.hosts.files import load_host_facts
from memtune.hosts.jobs import Files, Job
from memtune.model import Model
from memtune.report.format import console_text, markdown_cell, rule_origin, text_cells, value_text
from memtune.terminal import printable


class PlanChange(Model):
    """One planned value that differs; ``old``/``new`` None when the knob is not planned on that side."""

    host: str
    knob: str
    old: Any
    new: Any
    old_from: str | None
    new_from: str | None


def plan_changes(host: str, old: DesiredState, new: DesiredState) -> list[PlanChange]:
    before, after = old.values(), new.values()
    changes = []
    for knob in sorted(before.keys() | after.keys()):
        was, was_from = before.get(knob, (None, None))
        now, now_from = after.get(knob, (None, None))
        if was != now:
            changes.append(
                PlanChange(
                    host=host,
                    knob=knob,
                    old=was,
                    new=now,
                    old_from=rule_origin(was_from),
                    new_from=rule_origin(now_from),
                )
            )
    return changes


@dataclass(frozen=True)
class DiffJob:
    old: Job
    new: Job

    def diff(self, files: Files) -> list[tuple[str, list[PlanChange], str | None]]:
        """(host, changes, error) per host; a host whose facts or plans fail gets its error."""
        found: list[tuple[str, list[PlanChange], str | None]] = []
        for host, file in files:
            try:
                facts = load_host_facts(file)
                found.append(
                    (
                        host,
                        plan_changes(
                            host, self.old.plan_facts(host, facts), self.new.plan_facts(host, facts)
                        ),
                        None,
                    )
                )
            except (PolicyError, FactsError) as exc:
                found.append((host, [], str(exc)))
        return found


def render_diff(changes: list[PlanChange], errors: dict[str, str], hosts: int, output: str) -> str:
    """``changes`` over ``hosts`` hosts as a table, json or markdown."""
    changed_hosts = len({change.host for change in changes})
    summary = f"{len(changes)} planned values change on {changed_hosts} of {hosts} hosts"
    if errors:
        summary += f"; {len(errors)} hosts could not be planned"
    if output == "json":
        document = {
            "changes": [change.model_dump(mode="json") for change in changes],
            "errors": [{"host": host, "message": message} for host, message in errors.items()],
            "hosts": hosts,
        }
        return json.dumps(document) + "\n"
    if output == "markdown":
        lines = ["## memtune: what this policy change does to the fleet", "", summary]
        if changes:
            lines += ["", "| host | knob | old | new | new value from |", "| --- | --- | --- | --- | --- |"]
            lines += [
                f"| `{c.host}` | `{c.knob}` | {markdown_cell(c.old)} | {markdown_cell(c.new)} "
                f"| {markdown_cell(c.new_from or c.old_from)} |"
                for c in changes[:400]
            ]
            if len(changes) > 400:
                lines.append(f"\n… and {len(changes) - 400} more (see the JSON output).")
        lines += [f"\n- `{host}`: {message}" for host, message in errors.items()]
        return "\n".join(lines) + "\n"
    return console_text(lambda console: _draw_table(console, changes, errors, summary))


def _draw_table(console: Console, changes: list[PlanChange], errors: dict[str, str], summary: str) -> None:
    if changes:
        table = Table("host", "knob", "old", "new", "old from", "new from")
        for c in changes:
            cells = (
                c.host,
                c.knob,
                value_text(c.old),
                value_text(c.new),
                c.old_from or "-",
                c.new_from or "-",
            )
            table.add_row(*text_cells(cells))
        console.print(table)
    for host, message in errors.items():
        console.print(printable(f"error: {host}: {message}"), markup=False)
    console.print(summary, markup=False)
