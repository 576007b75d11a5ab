"""The fleet report in every format, on drift computed from captured hosts: JUnit XML against
schemas/junit.xsd with an XSD-validating parser, Prometheus text through prometheus_client's parser,
JSON against schemas/report.schema.json; each format's findings are
compared with the drift itself."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import xmlschema
from prometheus_client.parser import text_string_to_metric_families

from memtune import load_policy_set, parse_facts, plan
from memtune.audit.baseline import Movement
from memtune.audit.drift import Kind, drift
from memtune.policy.model import bundled_policy_dir
from memtune.report import (
    FleetReport,
    Format,
    HostError,
    baseline_json_schema,
    fleet_report,
    host_result,
    render,
    report_json_schema,
)
from memtune.report.markdown import MARKDOWN_HOSTS
from tests.support.trees import captured

REPO = Path(__file__).resolve().parents[3]
# A host name with every character the formats must escape.
ODD_HOST = 'odd"host\\with <xml> & | pipes'


def _report(baseline: str | None = "baseline.json") -> FleetReport:
    policies = load_policy_set([bundled_policy_dir()])
    results = []
    for name in ("firecracker", "small", "numa2", "numa3"):
        facts = parse_facts(captured(name), name)
        host = ODD_HOST if name == "small" else name
        results.append(host_result(drift(plan(facts, policies, host=host), facts, host)))
    errors = [HostError(host="gone", message="gone.json:1:2: not JSON: Expecting value")]
    moved = [
        Movement(host="numa2", knob="vm.swappiness", field="runtime", before=10, after=60, message="moved")
    ]
    return fleet_report(results, errors, moved if baseline else [], baseline)


@pytest.fixture(scope="module")
def report() -> FleetReport:
    return _report()


def findings(report: FleetReport) -> set[tuple[str, str, str, str]]:
    return {
        (host.host, check.knob, "" if check.node is None else str(check.node), finding.kind.value)
        for host in report.hosts
        for check in host.checks
        for finding in check.findings
    }


def test_the_fixture_report_has_drift_errors_and_movement(report: FleetReport) -> None:
    assert findings(report) and report.errors and report.moved
    assert report.summary.hosts == 5 and report.summary.errors == 1
    assert report.exit_code == 2


def test_junit_is_valid_and_has_one_testcase_per_host_and_check(report: FleetReport) -> None:
    text = render(report, Format.junit)
    xmlschema.XMLSchema(REPO / "schemas" / "junit.xsd").validate(text)
    root = ET.fromstring(text)
    cases = root.findall("testsuite/testcase")
    assert len(cases) == report.summary.checks + 1 + 1 == int(root.get("tests", "-1"))
    suites = {suite.get("name"): suite for suite in root.findall("testsuite")}
    for host in report.hosts:
        suite = suites[host.host]
        assert [case.get("name") for case in suite.findall("testcase")] == [c.name for c in host.checks]
        failed = [c for c in host.checks if not c.ok]
        assert int(suite.get("failures", "-1")) == len(failed) == len(suite.findall("testcase/failure"))
        for case, check in zip(suite.findall("testcase"), host.checks, strict=True):
            failure = case.find("failure")
            assert (failure is None) == check.ok
            if failure is not None:
                assert failure.get("type", "").split(",") == list(
                    dict.fromkeys(f.kind for f in check.findings)
                )
    error = suites["gone"].find("testcase/error")
    assert error is not None and "not JSON" in error.get("message", "")
    moved = suites["baseline baseline.json"].find("testcase/failure")
    assert moved is not None and moved.get("type") == "moved"
    assert int(root.get("failures", "-1")) == report.summary.failed_checks + 1


def test_junit_schema_rejects_what_ci_would_not_read() -> None:
    schema = xmlschema.XMLSchema(REPO / "schemas" / "junit.xsd")
    assert not schema.is_valid(
        '<testsuites><testsuite tests="1"><testcase name="x"/></testsuite></testsuites>'
    )
    assert not schema.is_valid(
        '<testsuites><testsuite name="s" tests="1"><testcase name="x"><failure/><error/></testcase>'
        "</testsuite></testsuites>"
    )
    assert schema.is_valid('<testsuites><testsuite name="s" tests="0"/></testsuites>')


def test_prometheus_parses_and_carries_every_finding(report: FleetReport) -> None:
    families = {f.name: f for f in text_string_to_metric_families(render(report, Format.prometheus))}
    drift_samples = families["memtune_drift"].samples
    assert {
        (s.labels["host"], s.labels["knob"], s.labels["node"], s.labels["kind"]) for s in drift_samples
    } == (findings(report))
    assert all(s.value == 1 for s in drift_samples)
    checks = {s.labels["host"]: s.value for s in families["memtune_checks"].samples}
    assert checks == {host.host: len(host.checks) for host in report.hosts}
    assert ODD_HOST in checks
    drifted = {s.labels["host"]: s.value for s in families["memtune_host_drifted"].samples}
    assert drifted == {host.host: float(host.drifted) for host in report.hosts}
    assert [(s.labels, s.value) for s in families["memtune_host_error"].samples] == [({"host": "gone"}, 1.0)]
    moved = families["memtune_moved"].samples
    assert [s.labels for s in moved] == [{"host": "numa2", "knob": "vm.swappiness", "field": "runtime"}]
    assert all(family.type == "gauge" for family in families.values())


def test_prometheus_without_a_baseline_has_no_moved_family() -> None:
    names = [f.name for f in text_string_to_metric_families(render(_report(None), Format.prometheus))]
    assert "memtune_moved" not in names and "memtune_drift" in names


def test_json_is_valid_against_the_published_schema_and_equals_the_model(report: FleetReport) -> None:
    document = json.loads(render(report, Format.json))
    schema = json.loads((REPO / "schemas" / "report.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(document)
    assert document == report.model_dump(mode="json")
    assert FleetReport.model_validate(document) == report
    broken = {**document, "hosts": [{**document["hosts"][0], "drifted": "yes"}]}
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(broken))


@pytest.mark.parametrize(
    ("file", "schema"),
    [("report.schema.json", report_json_schema), ("baseline.schema.json", baseline_json_schema)],
)
def test_published_schemas_are_current(file: str, schema: object) -> None:
    assert callable(schema)
    assert json.loads((REPO / "schemas" / file).read_text()) == schema(), (
        f"regenerate: memtune schema --{file.split('.', maxsplit=1)[0]} > schemas/{file}"
    )


def test_markdown_names_the_verdict_counts_and_drifted_hosts(report: FleetReport) -> None:
    text = render(report, Format.markdown)
    assert text.startswith("## memtune audit: hosts could not be audited\n")
    for kind in Kind:
        assert f"| `{kind.value}` | {report.summary.findings[kind]} |" in text
    drifted = [host for host in report.hosts if host.drifted]
    assert text.count("<details>") == min(len(drifted), MARKDOWN_HOSTS)
    assert "<code>odd&quot;host\\with &lt;xml&gt; &amp; | pipes</code>" in text
    assert "| `gone` | gone.json:1:2: not JSON: Expecting value |" in text
    assert "### Moved since the baseline `baseline.json`" in text


def test_table_lists_each_finding_and_the_summary(report: FleetReport) -> None:
    text = render(report, Format.table)
    lines = text.splitlines()
    assert lines[-1].startswith("5 hosts: ") and "1 not audited" in lines[-1]
    rows = [line for line in lines if line.startswith("│ ") and "│ not JSON" not in line]
    assert sum(1 for line in rows if "_drift" in line or "unsupported" in line or "shortfall" in line) == len(
        findings(report)
    )


def test_a_clean_fleet_exits_0_and_drift_1() -> None:
    clean = fleet_report([])
    assert clean.exit_code == 0 and render(clean, Format.markdown).startswith("## memtune audit: no drift")
    assert _report(None).model_copy(update={"errors": []}).summary.drifted_hosts > 0
    drifted = fleet_report(_report(None).hosts)
    assert drifted.exit_code == 1


@pytest.mark.parametrize("form", list(Format))
def test_every_format_reports_a_leftover(form: Format) -> None:
    """Issue 13: the leftover kind (a value memtune set that the plan dropped) reaches every renderer."""
    data = captured("numa2")
    generation = {"id": 4, "time": None, "action": "apply", "plan_hash": None, "items": ["vm.oom_dump_tasks"]}
    data["memtune"]["ledger"] = {
        "path": "/var/lib/memtune/ledger.json",
        "error": None,
        "originals": [],
        "generations": [generation],
    }
    facts = parse_facts(data, "numa2")
    result = host_result(
        drift(plan(facts, load_policy_set([bundled_policy_dir()]), host="numa2"), facts, "numa2")
    )
    text = render(fleet_report([result], [], [], None), form)
    assert "leftover" in text and "vm.oom_dump_tasks" in text
