"""Before/after evidence on the QEMU fleet: a memory hog (and a reader thrashing its page cache) started on
numa3 while the rollout tunes it (after its window before the change, before its window after) shows as
higher memory pressure and reclaim on numa3 than on the other guests, in rollout.json and on rollout.html,
and the worse-than-before gate (rollout_health_max_worsening) fails and rolls back numa3 alone while the
absolute thresholds are out of the way. The fleet's audit page after it: one heat map cell per guest and
knob, numa3 drifted again."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.support.browser import browser, expected_cells, open_page, screenshot, shown_cells

from .fleetlab import BIN, REPO, Fleet
from .test_rollout_fleet import HOG, HOG_UNIT, wait_for_line

pytestmark = pytest.mark.fleet
__all__ = ["browser"]
READER_UNIT = "memtune-test-refaults"
READER_FILE = "/var/tmp/memtune-test-refaults"
# Beside test_rollout_fleet's hog (stalls that PSI counts, in its own cgroup): a reader of a 64 MiB file
# in a cgroup held to 24 MiB, whose page cache is reclaimed and faulted in again on every pass, which
# /proc/vmstat counts as workingset refaults (reclaim inside a cgroup is not in the global pgscan
# counters, and the hog's anonymous memory, without swap, is not reclaimed at all).
READER = (
    f"systemd-run --unit={READER_UNIT} -p MemoryHigh=24M python3 -c '"
    f'data = open("{READER_FILE}", "rb", buffering=0)\n'
    "chunk = bytearray(1 << 20)\n"
    "while True:\n"
    "    data.seek(0)\n"
    "    while data.readinto(chunk):\n"
    "        pass\n'"
)
TUNE_TASK = "TASK [memtune.fleet.rollout : Probe, plan and apply only what differs]"
# Stall time per second over the window: the hog, held to 64 MiB, stalls on memory most of the time.
WORSENING = {"psi_some_stall_us_per_s": 50_000}


@pytest.fixture
def hog_on_numa3(untuned: Fleet) -> Iterator[None]:
    """The reader's file, out of the page cache; the hog and the reader stopped and the file gone after."""
    make = f"dd if=/dev/zero of={READER_FILE} bs=1M count=64 status=none && sync"
    untuned.ssh("numa3", f"{make} && echo 1 > /proc/sys/vm/drop_caches")
    units = f"{HOG_UNIT} {READER_UNIT}"
    try:
        yield
    finally:
        stop = f"systemctl stop {units}; systemctl reset-failed {units}; rm -f {READER_FILE}"
        untuned.ssh("numa3", stop, check=False)


def audit_page(fleet: Fleet, directory: Path) -> tuple[Path, dict[str, Any]]:
    """`memtune audit --format html` on facts probed from the guests now (and its JSON)."""
    facts = directory / "facts"
    facts.mkdir()
    for host, result in fleet.module("lab", "memtune.fleet.memory_facts").items():
        assert not result.get("failed") and not result.get("unreachable"), result
        (facts / f"{host}.json").write_text(json.dumps({"ansible_facts": result["ansible_facts"]}))
    page, saved = directory / "memtune-audit.html", directory / "memtune-audit.json"
    done = fleet_cli(["audit", "--facts", str(facts), "--format", "html", "--save", f"json={saved}"])
    page.write_text(done)
    return page, json.loads(saved.read_text())


def fleet_cli(args: list[str]) -> str:
    done = subprocess.run(
        [str(BIN / "memtune"), *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode in (0, 1), done.stderr
    return done.stdout


def test_a_memory_hog_shows_in_the_evidence_and_fails_the_worse_than_before_gate(
    untuned: Fleet, hog_on_numa3: None, browser: Browser
) -> None:
    process, report_dir = untuned.start_rollout(
        {
            "rollout_serial": [1, "100%"],
            "rollout_evidence_window_seconds": 5,
            "rollout_settle_seconds": 5,
            "rollout_health_pressure_some_avg10_max": 100.0,
            "rollout_health_pressure_full_avg10_max": 100.0,
            "rollout_health_max_worsening": WORSENING,
            "rollout_report_audit_page": "memtune-audit.html",
        }
    )
    # The second batch (numa2, numa3) has sampled its window before the change when its tune starts.
    seen = wait_for_line(process, TUNE_TASK, 2)
    untuned.ssh("numa3", f"{HOG} && {READER}")
    result = Fleet.finish(process, report_dir, 0.0, seen)
    (untuned.workdir / "evidence.log").write_text(result.output)
    assert result.returncode != 0
    assert result.status() == {"small": "changed", "numa2": "changed", "numa3": "rolled_back"}
    assert "psi_some_stall_us_per_s worse than before" in result.host("numa3")["reason"]

    after = {host: result.host(host)["evidence"]["after"]["metrics"] for host in ("small", "numa2", "numa3")}
    before = result.host("numa3")["evidence"]["before"]["metrics"]
    print("\nafter the change:", json.dumps(after, indent=1), "\nnuma3 before:", json.dumps(before))
    others = ("small", "numa2")
    for metric in ("psi_some_stall_us_per_s", "psi_some_avg10"):
        assert after["numa3"][metric] > max(after[host][metric] for host in others), metric
        assert after["numa3"][metric] > before[metric], metric
    assert after["numa3"]["workingset_refault"] > max(after[h]["workingset_refault"] for h in others)
    assert after["numa3"]["workingset_refault"] > before["workingset_refault"]
    fleet = result.report["evidence"]["psi_some_stall_us_per_s"]
    assert fleet["most_risen"]["host"] == "numa3" and fleet["hosts"] == 3

    page, audit = audit_page(untuned, report_dir)
    rollout_page = report_dir / "rollout.html"
    opened = open_page(browser, rollout_page, links=(page,))
    assert opened.page.get_attribute("tr[data-host=numa3] [data-status]", "data-status") == "rolled_back"
    assert "psi_some_stall_us_per_s on numa3" in opened.page.inner_text("#summary")
    opened.page.click("tr[data-host=numa3] details summary")
    evidence = opened.page.inner_text("tr[data-host=numa3] table.evidence")
    assert (
        "psi_some_stall_us_per_s" in evidence and str(after["numa3"]["psi_some_stall_us_per_s"]) in evidence
    )
    screenshot(opened, "rollout-fleet")
    opened.page.click("tr[data-host=numa3] a.audit-link")
    opened.page.wait_for_selector("#detail-title")
    assert opened.page.inner_text("#detail-title") == "Host numa3"
    assert (
        opened.errors == [] and opened.network(rollout_page.resolve().as_uri(), page.resolve().as_uri()) == []
    )

    fleet_page = open_page(browser, page)
    expected = expected_cells(audit)
    shown = shown_cells(fleet_page)
    assert len(shown) == 3 * len({knob for _, knob in expected})
    assert {key: kind for key, kind in shown.items() if kind != "none"} == expected
    drifted = {host for (host, _), kind in expected.items() if kind != "ok"}
    assert "numa3" in drifted  # rolled back to its values from before
    screenshot(fleet_page, "fleet-qemu")
    assert fleet_page.network(page.resolve().as_uri()) == []
