"""playbooks/audit.yml over a fleet where one host cannot be reached: the report still covers every host,
the unreachable one as an error in each format, and the play fails (bad input wins over drift)."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from .conftest import BIN, REPO, ansible_env


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
    done = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(inventory),
            "playbooks/audit.yml",
            "-e",
            json.dumps({"memtune_report_dir": str(report)}),
        ],
        cwd=REPO,
        env={**ansible_env(), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
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
