# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Before/after evidence of a rollout, computed on the controller from raw samples the role took on each
host (one ``cat /proc/uptime /proc/vmstat /proc/pressure/memory`` per sample):

- ``memory_sample(text)``: a sample's uptime, the reclaim and allocation counters of /proc/vmstat, and the
  lines of /proc/pressure/memory (None on a kernel without PSI);
- ``memory_rates(first, last)``: a window between two samples as flat metrics: each counter per second,
  the ``allocstall`` and ``workingset_refault`` sums, PSI ``some``/``full`` avg10 and avg60 at the window's
  end and their stall time per second (µs/s) over the window;
- ``memory_worsening(evidence, limits)``: the metrics that rose from the window before the change to the
  window after it by more than their limit, as sentences for the health gate;
- ``memory_fleet_evidence(hosts)``: per metric, the mean over the hosts before and after and the host
  whose metric rose most.
"""

from __future__ import annotations

import re
from typing import Any

from ansible.errors import AnsibleFilterError

COUNTERS = (
    "pgscan_kswapd",
    "pgscan_direct",
    "compact_stall",
    "compact_fail",
    "thp_fault_alloc",
    "thp_fault_fallback",
    "oom_kill",
    "pswpin",
    "pswpout",
)
# Families summed into one metric as well (allocstall_normal, _movable, ...; workingset_refault_anon,
# _file, or workingset_refault alone before Linux 5.9).
FAMILIES = ("allocstall", "workingset_refault")
PSI = ("psi_some_avg10", "psi_some_avg60", "psi_full_avg10", "psi_full_avg60")
STALLS = ("psi_some_stall_us_per_s", "psi_full_stall_us_per_s")
METRICS = (*PSI, *STALLS, *COUNTERS, *FAMILIES)
_PRESSURE = re.compile(r"^(some|full) avg10=([0-9.]+) avg60=([0-9.]+) avg300=([0-9.]+) total=([0-9]+)$")


def _tracked(name: str) -> bool:
    return name in COUNTERS or any(name == family or name.startswith(family + "_") for family in FAMILIES)


def memory_sample(text: str) -> dict[str, Any]:
    """``text``: /proc/uptime, then /proc/vmstat, then (when the kernel has PSI) /proc/pressure/memory."""
    if not isinstance(text, str) or not text.strip():
        raise AnsibleFilterError("memory_sample: expected the text of /proc/uptime, /proc/vmstat and PSI")
    lines = text.strip().splitlines()
    try:
        uptime = float(lines[0].split()[0])
    except (IndexError, ValueError):
        raise AnsibleFilterError(f"memory_sample: the first line is not /proc/uptime: {lines[0]!r}") from None
    vmstat: dict[str, int] = {}
    pressure: dict[str, dict[str, float]] = {}
    for line in lines[1:]:
        matched = _PRESSURE.match(line)
        if matched:
            kind, avg10, avg60, avg300, total = matched.groups()
            pressure[kind] = {
                "avg10": float(avg10),
                "avg60": float(avg60),
                "avg300": float(avg300),
                "total": int(total),
            }
            continue
        name, value = [*line.split(" ", 1), ""][:2]
        if _tracked(name) and value.strip().isdigit():
            vmstat[name] = int(value)
    if not vmstat:
        raise AnsibleFilterError("memory_sample: no /proc/vmstat counters in the sample")
    return {"uptime": uptime, "vmstat": vmstat, "pressure": pressure or None}


def memory_rates(first: dict[str, Any], last: dict[str, Any]) -> dict[str, Any]:
    """The window from ``first`` to ``last`` (two memory_sample results of one host)."""
    seconds = last["uptime"] - first["uptime"]
    if seconds <= 0:
        raise AnsibleFilterError(
            f"memory_rates: the window is {seconds:.3f} s long (did the host reboot between the samples?)"
        )
    metrics: dict[str, float | None] = {}
    for name in COUNTERS:
        before, after = first["vmstat"].get(name), last["vmstat"].get(name)
        metrics[name] = None if before is None or after is None else round((after - before) / seconds, 3)
    for family in FAMILIES:
        names = [n for n in last["vmstat"] if n == family or n.startswith(family + "_")]
        moved = [last["vmstat"][n] - first["vmstat"].get(n, last["vmstat"][n]) for n in names]
        metrics[family] = round(sum(moved) / seconds, 3) if names else None
    end, start = last["pressure"] or {}, first["pressure"] or {}
    for kind in ("some", "full"):
        line = end.get(kind)
        metrics[f"psi_{kind}_avg10"] = line["avg10"] if line else None
        metrics[f"psi_{kind}_avg60"] = line["avg60"] if line else None
        stalled = line["total"] - start[kind]["total"] if line and kind in start else None
        metrics[f"psi_{kind}_stall_us_per_s"] = None if stalled is None else round(stalled / seconds, 1)
    return {"seconds": round(seconds, 3), "metrics": {name: metrics[name] for name in METRICS}}


def _change(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else round(after - before, 3)


def memory_worsening(evidence: dict[str, Any] | None, limits: dict[str, Any]) -> list[str]:
    """What rose by more than ``limits`` (metric -> the largest rise allowed) from before to after."""
    unknown = sorted(set(limits) - set(METRICS))
    if unknown:
        raise AnsibleFilterError(
            f"memory_worsening: unknown metrics {', '.join(unknown)}; known: {', '.join(METRICS)}"
        )
    if not limits or not evidence or "before" not in evidence or "after" not in evidence:
        return []
    before, after = evidence["before"]["metrics"], evidence["after"]["metrics"]
    problems = []
    for name, limit in limits.items():
        rise = _change(before.get(name), after.get(name))
        if rise is not None and rise > float(limit):
            problems.append(f"{name} worse than before: {before[name]} -> {after[name]} (+{rise} > {limit})")
    return problems


def memory_fleet_evidence(hosts: list[dict[str, Any]]) -> dict[str, Any]:
    """Per metric over the hosts with both windows: mean before, mean after, the host that rose most."""
    windows = [
        (entry["host"], entry["evidence"]["before"]["metrics"], entry["evidence"]["after"]["metrics"])
        for entry in hosts
        if isinstance(entry.get("evidence"), dict) and {"before", "after"} <= set(entry["evidence"])
    ]
    fleet: dict[str, Any] = {}
    for name in METRICS:
        pairs = [
            (host, b[name], a[name])
            for host, b, a in windows
            if b.get(name) is not None and a.get(name) is not None
        ]
        if not pairs:
            continue
        worst = max(pairs, key=lambda pair: pair[2] - pair[1])
        fleet[name] = {
            "hosts": len(pairs),
            "before": round(sum(pair[1] for pair in pairs) / len(pairs), 3),
            "after": round(sum(pair[2] for pair in pairs) / len(pairs), 3),
            "most_risen": {"host": worst[0], "change": _change(worst[1], worst[2])},
        }
    return fleet


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "memory_sample": memory_sample,
            "memory_rates": memory_rates,
            "memory_worsening": memory_worsening,
            "memory_fleet_evidence": memory_fleet_evidence,
        }
