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
from typing_extensions import TypedDict

from memtune.audit.drift import pool_at_boot, thp_at_boot
from memtune.facts.model import FactsError, HostFacts
from memtune.model import Model

SCHEMA_VERSION: Literal[1] = 1


class Value(TypedDict):
    """One knob's value now and after the next boot (plain dicts: a fleet has hundreds of thousands)."""

    runtime: Any
    boot: Any
    boot_source: str | None


def _value(runtime: Any = None, boot: Any = None, boot_source: str | None = None) -> Value:
    return {"runtime": runtime, "boot": boot, "boot_source": boot_source}


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
    state: HostState = {}
    for key, value in sorted(facts.sysctl.items()):
        sources = facts.sysctl_sources.get(key)
        winner = sources.winner if sources else None
        state[key] = _value(
            runtime=value,
            boot=winner.value if winner else None,
            boot_source=f"{winner.path}:{winner.line}" if winner else None,
        )
    if facts.thp is not None:
        for name in ("enabled", "defrag"):
            boot, source = thp_at_boot(facts, name)
            state[f"thp.{name}"] = _value(getattr(facts.thp, name), boot, source)
    for node in facts.numa.nodes:
        for size_kb, pool in sorted(node.hugepages.items()):
            boot, source = pool_at_boot(facts, node.id, size_kb)
            state[f"hugepages.{size_kb}kB[node{node.id}]"] = _value(
                runtime=pool.nr, boot=boot, boot_source=source
            )
    entries = facts.memtune.bootloader
    state["cmdline"] = _value(
        runtime=facts.kernel.cmdline,
        boot=" ".join(sorted({arg for entry in entries for arg in entry.args})) or None,
        boot_source=", ".join(entry.path for entry in entries) or None,
    )
    for group in facts.memtune.cgroups:
        limits = sorted({*(group.runtime or {}), *(group.boot or {})})
        for name in limits:
            state[f"cgroup.{group.unit or group.path}.{name}"] = _value(
                runtime=(group.runtime or {}).get(name),
                boot=(group.boot or {}).get(name),
                boot_source=f"{group.unit}.d/50-memtune.conf" if group.unit else None,
            )
    return state


_NOTHING = _value()


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
