# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout role's health decision (roles/rollout/tasks/gate.yml), computed on the controller from what
the gate collected on the host:

- ``rollout_health(probe, oom_baseline, ...)``: the problems of one host, in the order the gate reports
  them (memory pressure ``some`` then ``full`` avg10 above its maximum, new OOM kills above their maximum,
  what the evidence shows worse than before, units not running, TCP ports not open, URLs not answering),
  and the figures the gate's success message prints: ``some``, ``full`` (the avg10 percentages, ``0``
  on a kernel without PSI), ``oom_new`` (OOM kills since the baseline) and ``pressure`` (whether the kernel
  has PSI).

``probe`` is the registered result of ``memtune.fleet.memory_facts``; a kernel without the ``oom_kill``
counter counts no new kill. Anything else malformed (a threshold that is not a number, a PSI line without
its avg10, a result that is not a mapping) is refused with a message naming it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.memtune.fleet.plugins.filter.evidence import memory_worsening

Number = int | float


def _fail(message: str) -> AnsibleFilterError:
    return AnsibleFilterError(f"rollout_health: {message}")


def _number(name: str, value: Any) -> Number:
    """A threshold or a figure given as an int, a float or a numeric string (``-e name=10``); never a bool."""
    number: Any = value
    if isinstance(value, str):
        for kind in (int, float):
            try:
                number = kind(value)
                break
            except ValueError:
                continue
    if isinstance(number, bool) or not isinstance(number, int | float) or math.isnan(number):
        raise _fail(f"{name} is not a number: {value!r}")
    return number


def _count(name: str, value: Any) -> int:
    number = _number(name, value)
    if not math.isfinite(number) or number != int(number):
        raise _fail(f"{name} is not a whole number: {value!r}")
    return int(number)


def _mapping(name: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(f"{name} is not a mapping: {value!r}")
    return value


def _list(name: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(f"{name} is not a list: {value!r}")
    return value


def _facts(probe: Any) -> Mapping[str, Any]:
    facts = _mapping("probe", probe).get("ansible_facts", {})
    return _mapping("probe.ansible_facts.memtune", _mapping("probe.ansible_facts", facts).get("memtune", {}))


def _avg10(pressure: Mapping[str, Any], kind: str) -> float:
    """A kind's avg10; ``0.0`` for a kind the kernel does not report (the gate's ``default(0)``)."""
    if kind not in pressure:
        return 0.0
    line = _mapping(f"pressure.{kind}", pressure[kind])
    if "avg10" not in line:
        # Issue 12: the Jinja gate turned a missing or non-numeric avg10 into 0.0 (`| float`) and passed.
        raise _fail(f"pressure.{kind} has no avg10: {dict(line)!r}")
    return float(_number(f"pressure.{kind}.avg10", line["avg10"]))


def _unit(unit: Any) -> str:
    if isinstance(unit, bool) or not isinstance(unit, str | int):
        raise _fail(f"units: a unit name is not a string: {unit!r}")
    name = str(unit)
    return name + ".service" if re.fullmatch(r"[^.\n]+", name) else name


def _running(services: Any) -> set[str]:
    return {
        name
        for name, state in _mapping("services", services).items()
        if isinstance(state, Mapping) and state.get("state") == "running"
    }


def _failed(name: str, results: Any, key: str) -> list[str]:
    """The ``key`` (port, url) of each failed loop result, in loop order."""
    found = []
    for index, result in enumerate(_list(name, results if results is not None else [])):
        result = _mapping(f"{name}[{index}]", result)
        if result.get("failed", False):
            item = _mapping(f"{name}[{index}].item", result.get("item"))
            if key not in item:
                raise _fail(f"{name}[{index}].item has no {key}: {dict(item)!r}")
            found.append(str(item[key]))
    return found


def rollout_health(
    probe: Any,
    *,
    oom_baseline: Any = 0,
    evidence: Any = None,
    max_worsening: Any = None,
    services: Any = None,
    units: Any = None,
    tcp: Any = None,
    http: Any = None,
    some_avg10_max: Any = 10.0,
    full_avg10_max: Any = 5.0,
    max_new_oom_kills: Any = 0,
) -> dict[str, Any]:
    """The health of one host against the thresholds (the role's ``rollout_health_*`` variables).

    ``evidence`` and ``max_worsening``: memory_worsening's arguments (``{}`` limits compare nothing);
    ``services``: ``ansible_facts.services``; ``units``: the units that must be running (a name without a
    dot is a ``.service``); ``tcp``, ``http``: the ``results`` of the wait_for and uri loops.
    """
    limits = {
        "some_avg10_max": _number("some_avg10_max", some_avg10_max),
        "full_avg10_max": _number("full_avg10_max", full_avg10_max),
        "max_new_oom_kills": _number("max_new_oom_kills", max_new_oom_kills),
    }
    facts = _facts(probe)
    raw = facts.get("pressure")
    pressure = _mapping("pressure", raw) if raw is not None else {}
    some: Number = _avg10(pressure, "some") if pressure else 0
    full: Number = _avg10(pressure, "full") if pressure else 0
    vmstat = _mapping("vmstat", facts.get("vmstat", {}))
    oom_new = _count("vmstat.oom_kill", vmstat.get("oom_kill", 0)) - _count("oom_baseline", oom_baseline)
    worsening = _mapping("max_worsening", max_worsening if max_worsening is not None else {})
    for metric, limit in worsening.items():
        _number(f"max_worsening.{metric}", limit)
    if evidence is not None:
        _mapping("evidence", evidence)

    problems = []
    # Issue 12: the Jinja gate compared the 0 of a kernel without PSI too (a negative maximum failed it),
    # where the role's argument spec says such a kernel skips the pressure checks; it skips them here.
    if pressure and some > limits["some_avg10_max"]:
        problems.append(f"memory pressure some avg10 {some} > {some_avg10_max}")
    if pressure and full > limits["full_avg10_max"]:
        problems.append(f"memory pressure full avg10 {full} > {full_avg10_max}")
    if oom_new > limits["max_new_oom_kills"]:
        problems.append(f"{oom_new} new OOM kill(s) > {max_new_oom_kills}")
    try:
        problems += memory_worsening(evidence, dict(worsening))
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(f"the evidence is not memory_rates windows ({type(exc).__name__}: {exc})") from None
    running = _running(services if services is not None else {})
    problems += [
        f"unit not active: {name}"
        for name in map(_unit, _list("units", units if units is not None else []))
        if name not in running
    ]
    problems += [f"TCP port not open: {port}" for port in _failed("tcp", tcp, "port")]
    problems += [f"URL not answering as expected: {url}" for url in _failed("http", http, "url")]
    return {"problems": problems, "some": some, "full": full, "oom_new": oom_new, "pressure": bool(pressure)}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"rollout_health": rollout_health}
