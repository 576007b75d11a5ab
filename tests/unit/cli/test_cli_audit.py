"""`memtune audit`, `memtune baseline record` and `memtune diff`, black-box through typer's CliRunner, on
facts of captured real hosts: exit codes 0/1/2, every format, bad input beside good hosts,
baselines, diffs."""

from __future__ import annotations

import json
import shlex
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import xmlschema
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.ansible_run import ansible_playbook
from tests.support.cli import CAPTURED, POLICIES, REPO, REPORT_SCHEMA, facts_dir, run

__all__ = ["facts_dir"]
OURS = "/etc/sysctl.d/90-memtune.conf"


def facts_of(facts_dir: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((facts_dir / f"{name}.json").read_text())["ansible_facts"]["memtune"]
    return data


@pytest.fixture
def fleet(facts_dir: Path, tmp_path: Path) -> Path:
    """A copy of the captured fleet that a test may change."""
    return Path(shutil.copytree(facts_dir, tmp_path / "fleet"))


@pytest.fixture
def swappiness_policy(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "baseline.yml").write_text(
        "layer: baseline\nname: test\nrules:\n"
        "  - name: swap\n    source: test\n    sysctl: {vm.swappiness: 60}\n"
    )
    return directory


def converged(facts: dict[str, Any]) -> dict[str, Any]:
    """``facts`` with vm.swappiness = 60 set by memtune's sysctl file too (what tune leaves behind)."""
    entry = {"path": OURS, "line": 2, "value": "60"}
    facts["sysctl"]["vm.swappiness"] = 60
    facts["sysctl_sources"]["vm.swappiness"] = {"entries": [entry], "winner": entry, "after_memtune": []}
    return facts


def test_drift_on_the_captured_fleet_exits_1_with_a_valid_report(facts_dir: Path) -> None:
    result = run("audit", "--facts", facts_dir, "--policy", POLICIES, "--format", "json")
    assert result.exit_code == 1, result.stderr
    document = json.loads(result.stdout)
    REPORT_SCHEMA.validate(document)
    assert [host["host"] for host in document["hosts"]] == sorted(CAPTURED)
    assert document["errors"] == [] and document["moved"] == [] and document["baseline"] is None
    kinds = {f["kind"] for h in document["hosts"] for c in h["checks"] for f in c["findings"]}
    assert {"runtime_drift", "boot_drift"} <= kinds
    small = next(h for h in document["hosts"] if h["host"] == "small")
    swappiness = next(c for c in small["checks"] if c["knob"] == "vm.swappiness")
    assert (swappiness["desired"], swappiness["runtime"], swappiness["boot"]) == (10, 60, None)
    assert swappiness["provenance"]["file"].endswith("policies/baseline.yml")


def test_a_converged_host_exits_0(fleet: Path, swappiness_policy: Path) -> None:
    facts = converged(facts_of(fleet, "small"))
    (fleet / "small.json").write_text(json.dumps(facts))
    result = run("audit", "--facts", fleet / "small.json", "--policy", swappiness_policy)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "1 hosts: 0 drifted, 0 not audited; 0 of 1 checks failed"
    facts["sysctl_sources"]["vm.swappiness"]["winner"] = None  # the file is gone: lost at reboot
    (fleet / "small.json").write_text(json.dumps(facts))
    lost = run("audit", "--facts", fleet / "small.json", "--policy", swappiness_policy)
    assert lost.exit_code == 1 and "boot_drift" in lost.stdout


def test_a_sysctl_file_that_shadows_ours_is_boot_drift_naming_it(
    fleet: Path, swappiness_policy: Path
) -> None:
    facts = converged(facts_of(fleet, "small"))
    site = {"path": "/etc/sysctl.d/99-site.conf", "line": 1, "value": "30"}
    facts["sysctl_sources"]["vm.swappiness"]["entries"].append(site)
    facts["sysctl_sources"]["vm.swappiness"]["winner"] = site
    facts["sysctl_sources"]["vm.swappiness"]["after_memtune"].append(site)  # 99-site.conf sorts after ours
    (fleet / "small.json").write_text(json.dumps(facts))
    result = run("audit", "--facts", fleet / "small.json", "--policy", swappiness_policy, "--format", "json")
    assert result.exit_code == 1
    (check,) = json.loads(result.stdout)["hosts"][0]["checks"]
    assert check["boot_source"] == "/etc/sysctl.d/99-site.conf:1"
    assert [(f["kind"], f["mendable"]) for f in check["findings"]] == [("boot_drift", False)]
    assert "/etc/sysctl.d/99-site.conf:1 sets vm.swappiness = 30 at boot" in check["findings"][0]["message"]


BAD = {
    "corrupt": ("{not json", "corrupt.json:1:2: not JSON: Expecting property name"),
    "future": (
        '{"schema_version": 7}',
        "facts schema_version 7; this memtune reads version 4: the probe is newer than the controller",
    ),
    "partial": ('{"schema_version": 4, "root": "/"}', "invalid facts: kernel: Field required"),
}


def test_bad_facts_exit_2_and_the_other_hosts_are_still_reported(fleet: Path, tmp_path: Path) -> None:
    for name, (text, _) in BAD.items():
        (fleet / f"{name}.json").write_text(text)
    saved = {fmt: tmp_path / f"report.{fmt}" for fmt in ("junit", "prometheus", "markdown")}
    saves = [arg for fmt, path in saved.items() for arg in ("--save", f"{fmt}={path}")]
    result = run("audit", "--facts", fleet, "--policy", POLICIES, "--format", "json", *saves)
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    REPORT_SCHEMA.validate(document)
    assert sorted(host["host"] for host in document["hosts"]) == sorted(CAPTURED)
    errors = {error["host"]: error["message"] for error in document["errors"]}
    assert sorted(errors) == sorted(BAD)
    for name, (_, words) in BAD.items():
        assert errors[name].startswith(f"{fleet}/{name}.json") and words in errors[name]
        assert f"error: host {name}: {errors[name]}\n" in result.stderr
    assert "Traceback" not in result.stderr

    xmlschema.XMLSchema(REPO / "schemas" / "junit.xsd").validate(saved["junit"].read_text())
    errored = ET.parse(saved["junit"]).getroot().findall("testsuite/testcase/error")
    assert sorted(e.get("message", "") for e in errored) == sorted(errors.values())
    families = {f.name: f for f in text_string_to_metric_families(saved["prometheus"].read_text())}
    assert {s.labels["host"] for s in families["memtune_host_error"].samples} == set(BAD)
    assert "### Not audited" in saved["markdown"].read_text()


def test_an_invalid_policy_exits_2_before_any_host(facts_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text(
        "layer: baseline\nname: b\nrules:\n  - name: r\n    sysctl: {vm.swappiness: 1000}\n"
    )
    result = run("audit", "--facts", facts_dir, "--policy", tmp_path / "bad.yml")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"error: {tmp_path}/bad.yml:5:") and "vm.swappiness" in result.stderr
    assert result.stderr.count("\n") == 1


def test_missing_facts_and_bad_arguments_exit_2(tmp_path: Path) -> None:
    missing = run("audit", "--facts", tmp_path / "nothing")
    assert (
        missing.exit_code == 2 and missing.stderr == f"error: {tmp_path}/nothing: no such file or directory\n"
    )
    bad_save = run("audit", "--facts", tmp_path, "--save", "yaml=x")
    assert bad_save.exit_code == 2 and "expected FORMAT=FILE" in bad_save.stderr


def test_baseline_record_then_audit_reports_what_moved(fleet: Path, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    recorded = run("baseline", "record", "--facts", fleet, "-o", baseline)
    assert recorded.exit_code == 0 and recorded.stdout == f"recorded {len(CAPTURED)} hosts in {baseline}\n"
    schema = json.loads((REPO / "schemas" / "baseline.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(baseline.read_text()))

    same = run("audit", "--facts", fleet, "--baseline", baseline, "--format", "json")
    assert json.loads(same.stdout)["moved"] == [] and json.loads(same.stdout)["baseline"] == str(baseline)

    facts = facts_of(fleet, "numa2")
    facts["sysctl"]["vm.swappiness"] = 77
    (fleet / "numa2.json").write_text(json.dumps(facts))
    (fleet / "small.json").unlink()
    result = run("audit", "--facts", fleet, "--baseline", baseline, "--format", "json")
    assert result.exit_code == 1
    moved = {
        (m["host"], m["knob"], m["field"]): (m["before"], m["after"])
        for m in json.loads(result.stdout)["moved"]
    }
    assert moved == {
        ("numa2", "vm.swappiness", "runtime"): (60, 77),
        ("small", "host", "host"): ("present", "absent"),
    }
    prometheus = run("audit", "--facts", fleet, "--baseline", baseline, "--format", "prometheus").stdout
    samples = next(f for f in text_string_to_metric_families(prometheus) if f.name == "memtune_moved").samples
    assert {s.labels["knob"] for s in samples} == {"vm.swappiness", "host"}


def test_baseline_record_leaves_out_unreadable_facts_and_exits_2(fleet: Path, tmp_path: Path) -> None:
    (fleet / "corrupt.json").write_text("{")
    result = run("baseline", "record", "--facts", fleet, "-o", tmp_path / "b.json")
    assert result.exit_code == 2 and "error: host corrupt: " in result.stderr
    assert sorted(json.loads((tmp_path / "b.json").read_text())["hosts"]) == sorted(CAPTURED)


def test_worker_processes_give_the_same_report(facts_dir: Path) -> None:
    one = run("audit", "--facts", facts_dir, "--format", "junit", "--jobs", "1")
    two = run("audit", "--facts", facts_dir, "--format", "junit", "--jobs", "2")
    assert one.exit_code == two.exit_code == 1 and one.stdout == two.stdout


def test_diff_shows_what_a_policy_change_moves(facts_dir: Path, tmp_path: Path) -> None:
    new = tmp_path / "new"
    shutil.copytree(POLICIES, new)
    text = (new / "baseline.yml").read_text()
    assert "vm.swappiness: 10" in text
    (new / "baseline.yml").write_text(text.replace("vm.swappiness: 10", "vm.swappiness: 20"))
    result = run("diff", "--facts", facts_dir, "--policy", POLICIES, "--policy-new", new, "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    changes = {(c["host"], c["knob"]): c for c in document["changes"]}
    assert set(changes) == {(host, "vm.swappiness") for host in CAPTURED}
    small = changes["small", "vm.swappiness"]
    assert (small["old"], small["new"]) == (10, 20)
    assert small["old_from"].startswith(f"{POLICIES}/baseline.yml:") and small["new_from"].startswith(
        f"{new}/baseline.yml:"
    )
    markdown = run("diff", "--facts", facts_dir, "--policy-new", new, "--format", "markdown", "--exit-code")
    assert markdown.exit_code == 1
    assert (
        f"{len(CAPTURED)} planned values change on {len(CAPTURED)} of {len(CAPTURED)} hosts"
        in markdown.stdout
    )
    unchanged = run("diff", "--facts", facts_dir, "--policy-new", POLICIES, "--exit-code")
    assert (
        unchanged.exit_code == 0
        and f"0 planned values change on 0 of {len(CAPTURED)} hosts" in unchanged.stdout
    )


def example_commands(file: Path) -> list[str]:
    """The `memtune ...` command lines of a CI example (shell continuation lines joined, pipes cut off)."""
    data = yaml.safe_load(file.read_text())
    scripts: list[str] = []
    for job in data.get("jobs", data).values():
        if isinstance(job, dict):
            scripts += [step["run"] for step in job.get("steps", []) if "run" in step]
            scripts += job.get("script", [])
    lines = "\n".join(scripts).replace("\\\n", " ").splitlines()
    return [line.split("|")[0].strip() for line in lines if line.strip().startswith("memtune ")]


@pytest.mark.parametrize("example", ["github-actions.yml", "gitlab-ci.yml"])
def test_the_ci_examples_run_against_a_saved_fleet(example: str, facts_dir: Path, tmp_path: Path) -> None:
    commands = example_commands(REPO / "examples" / example)
    assert [command.split()[1] for command in commands] == ["validate", "diff", "audit"]
    replace = {
        "fleet-facts/": str(facts_dir),
        '"$RUNNER_TEMP/base/policies"': str(POLICIES),
        "/tmp/base/policies": str(POLICIES),
        "policies/": str(POLICIES),
        "=memtune-audit": f"={tmp_path}/memtune-audit",
    }
    for command in commands:
        for old, new in replace.items():
            command = command.replace(old, new)
        result = run(*shlex.split(command)[1:])
        assert result.exit_code == (1 if " audit " in f" {command} " else 0), command + result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"memtune-audit.{s}" for s in ("json", "md", "xml")]


def test_audit_of_a_real_ansible_jsonfile_fact_cache(tmp_path: Path) -> None:
    """The snapshot docs/audit.md tells CI users to save: probe.yml with Ansible's jsonfile fact cache."""
    cache = tmp_path / "fleet-facts"
    env = {"ANSIBLE_CACHE_PLUGIN": "jsonfile", "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(cache)}
    done = ansible_playbook("playbooks/probe.yml", env=env, home=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    result = run("audit", "--facts", cache, "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    (host,) = json.loads(result.stdout)["hosts"]
    assert host["host"] == "localhost" and host["checks"]


def test_diff_reports_hosts_it_cannot_plan_and_exits_2(fleet: Path, tmp_path: Path) -> None:
    (fleet / "corrupt.json").write_text("[]")
    result = run("diff", "--facts", fleet, "--policy-new", POLICIES, "--format", "json")
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["hosts"] == len(CAPTURED) + 1 and document["changes"] == []
    (error,) = document["errors"]
    assert error["host"] == "corrupt" and "expected a JSON object with memtune facts" in error["message"]
