"""The rollout role (playbooks/rollout.yml) on this machine: the happy path twice, a failing health gate
rolled back, and bad input rejected before any host is touched. The fleet faults are in tests/fleet."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Browser

from tests.support.ansible_run import REPO, ansible_playbook
from tests.support.apply_guard import HostState, host_guard
from tests.support.browser import browser, open_page, screenshot

__all__ = ["browser", "host_guard"]
ROLE = REPO / "roles" / "rollout"
ROLLOUT_PLAY = "PLAY [Roll memory tuning out in batches]"


def rollout(tmp_path: Path, *extra: str, **variables: Any) -> tuple[subprocess.CompletedProcess[str], Path]:
    report = tmp_path / "report"
    variables = {
        "rollout_report_dir": str(report),
        "rollout_settle_seconds": 1,
        "rollout_evidence_window_seconds": 1,
        **variables,
    }
    done = ansible_playbook("playbooks/rollout.yml", "-e", json.dumps(variables), *extra, timeout=600)
    return done, report


def statuses(report: Path) -> dict[str, str]:
    return {
        entry["host"]: entry["status"] for entry in json.loads((report / "rollout.json").read_text())["hosts"]
    }


@pytest.mark.root
def test_rollout_tunes_this_machine_and_a_second_rollout_changes_nothing(
    host_guard: HostState, browser: Browser, tmp_path: Path
) -> None:
    first, report = rollout(tmp_path, rollout_report_audit_page="memtune-audit.html")
    assert first.returncode == 0, first.stdout
    assert statuses(report) == {"localhost": "changed"}
    assert HostState().differences(host_guard)  # something on this machine changed
    document = json.loads((report / "rollout.json").read_text())
    [entry] = document["hosts"]
    assert entry["batch"] == ["localhost"]
    for window in ("before", "after"):  # one-second windows (rollout() sets them), this kernel has PSI
        assert 0.9 < entry["evidence"][window]["seconds"] < 10
        metrics = entry["evidence"][window]["metrics"]
        assert metrics["psi_some_avg10"] is not None and metrics["pgscan_kswapd"] is not None
    assert document["evidence"]["psi_some_avg10"]["hosts"] == 1
    assert "evidence (before -> after the change" in (report / "rollout.txt").read_text()
    opened = open_page(browser, report / "rollout.html")
    assert opened.page.inner_text("#summary").startswith("1 host: 1 changed.")
    assert opened.page.get_attribute("tr[data-host=localhost] [data-status]", "data-status") == "changed"
    assert opened.page.get_attribute("a.audit-link", "href") == "memtune-audit.html#host=localhost"
    assert opened.page.locator("table.fleet-evidence tbody tr").count() >= 10
    assert opened.errors == [] and opened.network((report / "rollout.html").resolve().as_uri()) == []
    screenshot(opened, "rollout-local")
    second, report = rollout(tmp_path)
    assert second.returncode == 0, second.stdout
    assert statuses(report) == {"localhost": "unchanged"}
    assert re.search(r"^localhost +unchanged +- ", (report / "rollout.txt").read_text(), re.M)


@pytest.mark.root
def test_a_host_failing_its_health_gate_is_rolled_back(host_guard: HostState, tmp_path: Path) -> None:
    done, report = rollout(
        tmp_path,
        rollout_health_units=["memtune-no-such-unit"],
        rollout_health_tcp_checks=[{"port": 9, "timeout": 1}],
        rollout_precheck_enabled=False,
        # "must improve by more than 100 points": worse than before whatever the machine does.
        rollout_health_max_worsening={"psi_some_avg10": -100},
    )
    assert done.returncode != 0
    [entry] = json.loads((report / "rollout.json").read_text())["hosts"]
    assert entry["status"] == "rolled_back", done.stdout
    assert "unit not active: memtune-no-such-unit.service" in entry["reason"]
    assert "TCP port not open: 9" in entry["reason"]
    assert "psi_some_avg10 worse than before: " in entry["reason"]
    assert not HostState().differences(host_guard)  # back to the values from before


def test_a_host_failing_its_pre_check_is_not_touched(tmp_path: Path) -> None:
    done, report = rollout(tmp_path, "--check", rollout_health_units=["memtune-no-such-unit"])
    assert done.returncode != 0
    [entry] = json.loads((report / "rollout.json").read_text())["hosts"]
    assert entry["status"] == "failed"
    assert entry["reason"].startswith("health gate before the change: unit not active")
    assert "Probe, plan and apply only what differs" not in done.stdout


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"rollout_serial": []}, "rollout_serial must be a non-empty list"),
        ({"rollout_serial": [0, "100%"]}, "wrong: [0]"),
        ({"rollout_serial": [1, "0%"]}, "wrong: ['0%']"),
        ({"rollout_serial": ["150%"]}, "wrong: ['150%']"),
        ({"rollout_serial": [1, "half"]}, "wrong: ['half']"),
        ({"rollout_serial": "1"}, "rollout_serial"),
        ({"rollout_max_fail_percentage": 150}, "rollout_max_fail_percentage must be 0..100"),
        ({"rollout_max_fail_percentage": "some"}, "rollout_max_fail_percentage"),
        ({"rollout_health_pressure_some_avg10_max": "high"}, "rollout_health_pressure_some_avg10_max"),
        ({"rollout_health_max_new_oom_kills": [1]}, "rollout_health_max_new_oom_kills"),
        ({"rollout_health_tcp_checks": [{"host": "db1"}]}, "port"),
        ({"rollout_on_unsupported": "ignore"}, "rollout_on_unsupported"),
        ({"rollout_evidence_window_seconds": 0}, "rollout_evidence_window_seconds must be at least 1"),
        (
            {"rollout_health_max_worsening": {"psi": 1}},
            "memory_worsening: unknown metrics psi; known: psi_some_avg10",
        ),
        (
            {"rollout_health_max_worsening": {"pgscan_direct": "lots"}},
            "the limits of pgscan_direct are not numbers",
        ),
    ],
)
def test_bad_input_is_rejected_before_any_host_is_touched(
    tmp_path: Path, variables: dict[str, Any], message: str
) -> None:
    done, report = rollout(tmp_path, **variables)
    assert done.returncode != 0
    assert message in done.stdout + done.stderr
    assert ROLLOUT_PLAY not in done.stdout
    assert not report.exists()


def test_an_empty_inventory_is_rejected(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yml"
    empty.write_text("all:\n  hosts: {}\n")
    done, _ = rollout(tmp_path, "-i", str(empty))
    assert done.returncode != 0
    assert "the inventory has no hosts" in done.stdout
    assert ROLLOUT_PLAY not in done.stdout


@pytest.fixture
def two_local_hosts(tmp_path: Path) -> Path:
    """An inventory that lists localhost and a second name for this machine."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": local, "peer": local}}}))
    return inventory


@pytest.mark.root
def test_a_limit_that_leaves_out_a_listed_localhost_still_checks_the_variables(
    host_guard: HostState, tmp_path: Path, two_local_hosts: Path
) -> None:
    """Before, the check play ran on localhost only: limited out, it was skipped and the rollout went on
    with unchecked variables (host_guard puts back what such a run would change)."""
    done, report = rollout(tmp_path, "-i", str(two_local_hosts), "--limit", "peer", rollout_serial=[0])
    assert done.returncode != 0
    assert "wrong: [0]" in done.stdout
    assert ROLLOUT_PLAY not in done.stdout
    assert not report.exists()

    checked, report = rollout(
        tmp_path, "-i", str(two_local_hosts), "--limit", "peer", "--check", rollout_serial=[1]
    )
    assert checked.returncode == 0, checked.stdout
    assert list(statuses(report)) == ["peer"]
    assert not HostState().differences(host_guard)


def test_the_readme_documents_every_variable_of_the_argument_specs_with_its_default() -> None:
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    options = specs["main"]["options"]
    assert specs["validate"]["options"] == options
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert defaults == {name: option["default"] for name, option in options.items()}
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \| `(.*?)` \|", (ROLE / "README.md").read_text(), re.M)
    documented = {name: (kind, default) for name, kind, default in rows}
    assert documented == {name: (o["type"], json.dumps(o["default"])) for name, o in options.items()}
