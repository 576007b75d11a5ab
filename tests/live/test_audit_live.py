"""The audit action and playbook on this machine's real kernel, as root: tune with a test policy, then change
a value by hand and shadow memtune's sysctl file with a real one; the audit reports each, changes nothing, and
the playbook writes a fleet report that real parsers accept. host_guard restores everything afterwards."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import xmlschema
from prometheus_client.parser import text_string_to_metric_families

from tests.support.ansible_run import REPO, ansible_playbook, run_module
from tests.support.apply_guard import HostState, host_guard

from .test_tune_live import policy_dir, tune

pytestmark = pytest.mark.root
__all__ = ["host_guard", "policy_dir"]
SWAPPINESS = Path("/proc/sys/vm/swappiness")


def audit(policy_dir: Path, **args: Any) -> dict[str, Any]:
    return run_module("memtune.fleet.audit", json.dumps({"policies": [str(policy_dir)], **args}))


def findings(result: dict[str, Any], knob: str) -> list[dict[str, Any]]:
    return [f for c in result["drift"]["checks"] if c["knob"] == knob for f in c["findings"]]


@pytest.fixture
def tuned(host_guard: HostState, policy_dir: Path) -> int:
    """The machine tuned with the test policy; -> the planned vm.swappiness."""
    applied, _ = tune(policies=[str(policy_dir)])
    assert applied["_rc"] == 0 and applied["changed"] is True, applied
    return int(applied["plan"]["sysctl"]["vm.swappiness"]["value"])


def test_a_value_changed_by_hand_is_runtime_drift(tuned: int, policy_dir: Path) -> None:
    clean = audit(policy_dir)
    assert clean["_rc"] == 0 and clean["drifted"] is False, clean["msg"]
    assert clean["changed"] is False and clean["remote_calls"] == 1
    assert set(clean["counts"].values()) == {0}
    assert clean["state"]["vm.swappiness"]["runtime"] == tuned

    SWAPPINESS.write_text(str(tuned + 7))
    before = HostState()
    failed = audit(policy_dir)
    assert failed["_rc"] != 0 and failed["drifted"] is True
    assert [f["kind"] for f in findings(failed, "vm.swappiness")] == ["runtime_drift"]
    assert (
        findings(failed, "vm.swappiness")[0]["message"]
        == f"vm.swappiness is {tuned + 7}, the plan says {tuned}"
    )
    assert failed["counts"]["runtime_drift"] == 1 and sum(failed["counts"].values()) == 1
    assert f"vm.swappiness: runtime_drift: vm.swappiness is {tuned + 7}" in failed["msg"]
    assert before.differences(HostState()) == [], "the audit changed the host"

    reported = audit(policy_dir, fail_on_drift=False)
    assert reported["_rc"] == 0 and reported["drifted"] is True and not reported.get("failed")
    checked = run_module("memtune.fleet.audit", json.dumps({"policies": [str(policy_dir)]}), "--check")
    assert checked["drifted"] is True and checked["changed"] is False


def test_a_sysctl_file_that_overrides_ours_is_boot_drift_with_its_path(tuned: int, policy_dir: Path) -> None:
    site = Path("/etc/sysctl.d/99-zz-memtune-test-audit.conf")  # removed by host_guard (*memtune*)
    site.write_text(f"# a site's own setting\nvm.swappiness = {tuned + 1}\n")
    result = audit(policy_dir, fail_on_drift=False)
    (check,) = [c for c in result["drift"]["checks"] if c["knob"] == "vm.swappiness"]
    assert check["runtime"] == tuned and check["boot"] == str(tuned + 1)
    assert check["boot_source"] == f"{site}:2"
    assert check["findings"] == [
        {
            "kind": "boot_drift",
            "message": f"{site}:2 sets vm.swappiness = {tuned + 1} at boot, after memtune's file "
            "(/etc/sysctl.d/90-memtune.conf), so it wins",
            "mendable": False,
        }
    ]
    assert result["counts"]["boot_drift"] == 1 and result["counts"]["runtime_drift"] == 0


def playbook(
    tmp_path: Path, policy_dir: Path, *options: str, **extra: Any
) -> subprocess.CompletedProcess[str]:
    variables = {
        "memtune_policies": [str(policy_dir)],
        "memtune_report_dir": str(tmp_path / "report"),
        **extra,
    }
    return ansible_playbook("playbooks/audit.yml", "-e", json.dumps(variables), *options)


def test_the_playbook_writes_one_fleet_report_and_fails_on_drift(
    host_guard: HostState, policy_dir: Path, tmp_path: Path
) -> None:
    done = playbook(tmp_path, policy_dir, memtune_record_baseline=str(tmp_path / "baseline.json"))
    assert done.returncode == 2, done.stdout + done.stderr  # the policy's values differ from the machine's
    report = tmp_path / "report"
    assert sorted(p.name for p in report.iterdir()) == [
        f"memtune-audit.{suffix}" for suffix in ("html", "json", "md", "prom", "txt", "xml")
    ]
    document = json.loads((report / "memtune-audit.json").read_text())
    schema = json.loads((REPO / "schemas" / "report.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(document)
    (host,) = document["hosts"]
    assert host["host"] == "localhost" and host["drifted"] is True
    assert host["memory"]["mem_total_kb"] > 0 and host["groups"] == ["ungrouped"]
    assert '"localhost"' in (report / "memtune-audit.html").read_text()
    assert {c["knob"] for c in host["checks"]} >= {"vm.swappiness", "thp.enabled", "hugepages.2048kB"}
    xmlschema.XMLSchema(REPO / "schemas" / "junit.xsd").validate(str(report / "memtune-audit.xml"))
    families = {
        f.name: f for f in text_string_to_metric_families((report / "memtune-audit.prom").read_text())
    }
    drifted = {(s.labels["knob"], s.labels["kind"]) for s in families["memtune_drift"].samples}
    assert ("vm.swappiness", "runtime_drift") in drifted
    assert host_guard.differences(HostState()) == [], "the audit changed the host"

    checked = playbook(tmp_path / "check", policy_dir, "--check", memtune_fail_on_drift=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert not (tmp_path / "check" / "report").exists(), "check mode wrote the report"

    again = playbook(
        tmp_path, policy_dir, memtune_fail_on_drift=False, memtune_baseline=str(tmp_path / "baseline.json")
    )
    assert again.returncode == 0, again.stdout + again.stderr
    document = json.loads((report / "memtune-audit.json").read_text())
    assert document["moved"] == [] and document["baseline"] == str(tmp_path / "baseline.json")
