"""playbooks/audit.yml over a fleet where one host cannot be reached: the report still covers every host,
the unreachable one as an error in each format, and the play fails (bad input wins over drift)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support.ansible_run import REPO, ansible_playbook


def test_an_unreachable_host_is_reported_beside_the_others(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "hosts": {
                        "localhost": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                        },
                        # Nothing listens on port 1: ssh fails at once.
                        "down": {"ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_connection": "ssh"},
                    }
                }
            }
        )
    )
    report = tmp_path / "report"
    variables = json.dumps({"memtune_report_dir": str(report)})
    done = ansible_playbook("-i", inventory, "playbooks/audit.yml", "-e", variables, home=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    document = json.loads((report / "memtune-audit.json").read_text())
    assert [host["host"] for host in document["hosts"]] == ["localhost"]
    (error,) = document["errors"]
    assert error["host"] == "down" and "ssh" in error["message"].lower()
    suites = {s.get("name"): s for s in ET.parse(report / "memtune-audit.xml").getroot().findall("testsuite")}
    assert suites["down"].find("testcase/error") is not None and suites["localhost"].findall("testcase")
    families = {
        f.name: f for f in text_string_to_metric_families((report / "memtune-audit.prom").read_text())
    }
    assert [s.labels["host"] for s in families["memtune_host_error"].samples] == ["down"]


FAIL_ON_DRIFT_OFF = (
    "-e",
    "memtune_fail_on_drift=false",
)  # the report task itself succeeds: its changed counts


def _audit_unreachable_fleet(tmp_path: Path, *extra: str) -> str:
    """playbooks/audit.yml over one host that cannot be reached: a report whose content does not depend on
    this machine's kernel, which other tests change."""
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("down ansible_host=127.0.0.1 ansible_port=1 ansible_connection=ssh\n")
    audit = REPO / "playbooks" / "audit.yml"
    done = ansible_playbook("-i", inventory, audit, *FAIL_ON_DRIFT_OFF, *extra, cwd=tmp_path, home=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    (recap,) = [line for line in done.stdout.splitlines() if line.startswith("down ")]
    return recap


def test_the_report_goes_to_the_working_directory_and_is_changed_only_when_its_content_is(
    tmp_path: Path,
) -> None:
    """Issue 16: reports went into the collection's directory and fleet_report was always changed."""
    assert "changed=1" in _audit_unreachable_fleet(tmp_path)
    written = {path.name: path.stat().st_mtime_ns for path in tmp_path.glob("memtune-audit.*")}
    assert sorted(written) == [
        f"memtune-audit.{suffix}" for suffix in ("html", "json", "md", "prom", "txt", "xml")
    ]
    assert "changed=0" in _audit_unreachable_fleet(tmp_path)
    assert {path.name: path.stat().st_mtime_ns for path in tmp_path.glob("memtune-audit.*")} == written
    (tmp_path / "memtune-audit.json").unlink()
    assert "changed=0" in _audit_unreachable_fleet(tmp_path, "--check")
    assert not (tmp_path / "memtune-audit.json").exists()
    assert "changed=1" in _audit_unreachable_fleet(tmp_path)
    assert (tmp_path / "memtune-audit.json").exists()
