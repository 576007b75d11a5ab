"""Baselines: what each host of a fleet runs now, and what moved since.

``host_state(facts)`` reads, from one host's facts, every value memtune can manage: each probed sysctl, THP,
each hugepage pool per NUMA node, the kernel command line and the cgroups memtune manages, with the value
in force now (``runtime``) and what the next boot restores (``boot``, and where from). A ``Baseline`` is
that for every host, saved by ``memtune baseline record``; ``moved(baseline, states)`` lists the values
that changed since, whatever the policies say (the ``moved`` finding of ``memtune audit --baseline``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from memtune.audit.checks import Value, value
from memtune.engine.kinds import KINDS
from memtune.facts.model import FactsError, HostFacts
from memtune.model import Model

SCHEMA_VERSION: Literal[1] = 1


HostState = dict[str, Value]
HOST_STATE: TypeAdapter[HostState] = TypeAdapter(HostState)


class Baseline(Model):
    """The saved state of a fleet: host -> knob name (``vm.swappiness``, ``hugepages.2048kB[node0]``,
    ``thp.enabled``, ``cmdline``, ``cgroup.<unit or path>.<limit>``) -> value now and at boot."""

    schema_version: Literal[1] = SCHEMA_VERSION
    hosts: dict[str, HostState]


class Movement(Model):
    """One value that is not what the baseline recorded (``field``: runtime, boot, or host when the whole
    host appeared or disappeared)."""

    host: str
    knob: str
    field: Literal["runtime", "boot", "host"]
    before: Any
    after: Any
    message: str


def host_state(facts: HostFacts) -> HostState:
    """Every value of ``facts`` a baseline records, by knob name."""
    return {name: found for kind in KINDS for name, found in kind.host_state(facts)}


_NOTHING = value()


def _host_moves(host: str, before: HostState, after: HostState) -> list[Movement]:
    found = []
    for knob in sorted(before.keys() | after.keys()):
        old, new = before.get(knob, _NOTHING), after.get(knob, _NOTHING)
        for field in ("runtime", "boot"):
            was, now = old[field], new[field]
            if was == now:
                continue
            where = f" ({new['boot_source']})" if field == "boot" and new["boot_source"] else ""
            verb = "runs" if field == "runtime" else "boots as"
            found.append(
                Movement(
                    host=host,
                    knob=knob,
                    field=field,
                    before=was,
                    after=now,
                    message=f"{knob} {verb} {now}{where}, the baseline recorded {was}",
                )
            )
    return found


def moved(
    baseline: Baseline, states: dict[str, HostState], missing: set[str] | None = None
) -> list[Movement]:
    """What differs between ``baseline`` and the hosts' ``states`` now. Hosts in ``missing`` (their facts
    could not be read: reported as errors) are not counted as gone."""
    found: list[Movement] = []
    for host in sorted(baseline.hosts.keys() | states.keys()):
        if host in states and host in baseline.hosts:
            found.extend(_host_moves(host, baseline.hosts[host], states[host]))
        elif host not in states and host in (missing or set()):
            continue
        else:
            now = "present" if host in states else "absent"
            found.append(
                Movement(
                    host=host,
                    knob="host",
                    field="host",
                    before="absent" if host in states else "present",
                    after=now,
                    message="not in the baseline"
                    if host in states
                    else "in the baseline, but no facts for it now",
                )
            )
    return found


def load_baseline(path: Path) -> Baseline:
    """Read a baseline file written by ``memtune baseline record``; FactsError with the file name on any
    problem."""
    try:
        return Baseline.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise FactsError(f"{path}: cannot read the baseline: {exc.strerror}") from None
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in error["loc"]) or "(top)"
        raise FactsError(f"{path}: not a memtune baseline: {where}: {error['msg']}") from None


def dump_baseline(hosts: dict[str, HostState]) -> str:
    """A baseline file's text for the hosts' states."""
    return json.dumps({"schema_version": SCHEMA_VERSION, "hosts": hosts}, indent=1, sort_keys=True) + "\n"
