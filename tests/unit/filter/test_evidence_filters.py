"""The rollout's evidence filters (plugins/filter/evidence.py) on samples in the kernel's own formats:
rates per second over a window, PSI with and without the kernel support, the worsening gate, the fleet
summary, and bad samples refused with a message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.memtune.fleet.plugins.filter.evidence import (
    METRICS,
    memory_fleet_evidence,
    memory_rates,
    memory_sample,
    memory_worsening,
)

HOSTS = Path(__file__).resolve().parents[2] / "fixtures" / "hosts"


def sample(uptime: float, vmstat: dict[str, int], some_total: int | None, some_avg10: float = 0.0) -> str:
    lines = [f"{uptime:.2f} 1000.00", *(f"{name} {value}" for name, value in vmstat.items())]
    if some_total is not None:
        lines += [
            f"some avg10={some_avg10:.2f} avg60=1.50 avg300=0.20 total={some_total}",
            f"full avg10=0.00 avg60=0.50 avg300=0.10 total={some_total // 2}",
        ]
    return "\n".join(lines) + "\n"


BASE = {
    "pgscan_kswapd": 100,
    "pgscan_direct": 0,
    "allocstall_normal": 5,
    "allocstall_movable": 1,
    "workingset_refault_anon": 0,
    "workingset_refault_file": 40,
    "oom_kill": 0,
    "nr_free_pages": 9,
}


def test_a_captured_vmstat_gives_every_tracked_counter() -> None:
    """The captured hosts' /proc/vmstat files, as the role's cat prints them."""
    for host in ("small", "numa2"):
        vmstat = (HOSTS / host / "proc" / "vmstat").read_text()
        parsed = memory_sample("12.5 3.0\n" + vmstat)
        assert parsed["uptime"] == 12.5 and parsed["pressure"] is None
        assert {"pgscan_kswapd", "pgscan_direct", "oom_kill", "compact_stall"} <= set(parsed["vmstat"])
        assert any(name.startswith("allocstall_") for name in parsed["vmstat"])
        assert "nr_free_pages" not in parsed["vmstat"]


def test_rates_are_per_second_over_the_window() -> None:
    first = memory_sample(sample(100.0, BASE, 1_000_000))
    moved = {**BASE, "pgscan_kswapd": 600, "allocstall_normal": 25, "allocstall_movable": 6}
    moved.update(workingset_refault_file=140, oom_kill=1)
    last = memory_sample(sample(110.0, moved, 3_000_000, some_avg10=22.5))
    window = memory_rates(first, last)
    assert window["seconds"] == 10.0 and list(window["metrics"]) == list(METRICS)
    metrics = window["metrics"]
    assert metrics["pgscan_kswapd"] == 50.0 and metrics["pgscan_direct"] == 0.0
    assert (
        metrics["allocstall"] == 2.5 and metrics["workingset_refault"] == 10.0 and metrics["oom_kill"] == 0.1
    )
    assert metrics["psi_some_avg10"] == 22.5 and metrics["psi_some_avg60"] == 1.5
    assert metrics["psi_some_stall_us_per_s"] == 200_000.0 and metrics["psi_full_stall_us_per_s"] == 100_000.0
    assert metrics["pswpin"] is None  # a counter this sample lacks stays unknown, not zero


def test_a_kernel_without_psi_has_no_pressure_metrics() -> None:
    window = memory_rates(memory_sample(sample(1.0, BASE, None)), memory_sample(sample(2.0, BASE, None)))
    assert all(window["metrics"][name] is None for name in METRICS if name.startswith("psi_"))
    assert window["metrics"]["pgscan_kswapd"] == 0.0


def evidence(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {"before": {"seconds": 5, "metrics": before}, "after": {"seconds": 5, "metrics": after}}


@pytest.mark.parametrize(
    ("limits", "problems"),
    [
        ({}, []),
        ({"psi_some_avg10": 5}, ["psi_some_avg10 worse than before: 1.0 -> 30.0 (+29.0 > 5)"]),
        ({"psi_some_avg10": 40}, []),
        ({"pgscan_direct": 0}, []),  # it fell
        ({"pswpin": 0}, []),  # unknown on both sides
    ],
)
def test_the_gate_fails_only_what_rose_by_more_than_its_limit(
    limits: dict[str, float], problems: list[str]
) -> None:
    before = {"psi_some_avg10": 1.0, "pgscan_direct": 50.0, "pswpin": None}
    after = {"psi_some_avg10": 30.0, "pgscan_direct": 10.0, "pswpin": None}
    assert memory_worsening(evidence(before, after), limits) == problems


def test_the_gate_without_evidence_passes_and_unknown_metrics_are_refused() -> None:
    assert memory_worsening(None, {"psi_some_avg10": 1}) == []
    assert memory_worsening({"before": {"metrics": {}}}, {"psi_some_avg10": 1}) == []
    with pytest.raises(AnsibleFilterError, match="unknown metrics psi_avg; known: psi_some_avg10"):
        memory_worsening(None, {"psi_avg": 1})


def test_the_fleet_summary_names_the_host_that_rose_most() -> None:
    hosts = [
        {"host": "a", "evidence": evidence({"psi_some_avg10": 0.0}, {"psi_some_avg10": 2.0})},
        {"host": "b", "evidence": evidence({"psi_some_avg10": 1.0}, {"psi_some_avg10": 41.0})},
        {"host": "c", "evidence": {"before": {"metrics": {"psi_some_avg10": 0.0}}}},  # stopped before "after"
        {"host": "d", "status": "not_reached"},
    ]
    fleet = memory_fleet_evidence(hosts)
    assert fleet == {
        "psi_some_avg10": {
            "hosts": 2,
            "before": 0.5,
            "after": 21.5,
            "most_risen": {"host": "b", "change": 40.0},
        }
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected the text of /proc/uptime"),
        ("pgscan_kswapd 1\n", "the first line is not /proc/uptime"),
        ("12.0 1.0\nnr_free_pages 5\n", "no /proc/vmstat counters"),
    ],
)
def test_a_bad_sample_is_refused(text: str, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        memory_sample(text)


def test_a_window_across_a_reboot_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match="did the host reboot"):
        memory_rates(memory_sample(sample(100.0, BASE, 1)), memory_sample(sample(3.0, BASE, 1)))
