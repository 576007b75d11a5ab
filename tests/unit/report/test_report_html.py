"""The HTML page's data, without a browser (tests/unit/report/test_html_pages.py opens it in one): every
host, check and finding of the report survives the interning, a host name that looks like HTML or like a
template marker cannot break out of the page, the memory picture comes from the facts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import collect
from memtune import load_policy_set, parse_facts, plan
from memtune.audit.drift import drift
from memtune.policy.model import bundled_policy_dir
from memtune.report import FleetReport, Format, HostError, fleet_report, host_result, render
from memtune.report.picture import memory_picture

HOSTS = Path(__file__).resolve().parents[2] / "fixtures" / "hosts"
NAMES = {"firecracker": "</script><b>x</b>", "small": "@DATA@", "numa2": "numa2", "numa3": "numa3"}
DATA = re.compile(r'<script type="application/json" id="memtune-data">(.*?)</script>', re.S)


@pytest.fixture(scope="module")
def report() -> FleetReport:
    policies = load_policy_set([bundled_policy_dir()])
    results = []
    for directory, host in NAMES.items():
        facts = parse_facts(collect(Tree(str(HOSTS / directory))), host)
        groups = ["db", "numa"] if facts.numa.available else []
        results.append(
            host_result(drift(plan(facts, policies, host=host), facts, host), groups, memory_picture(facts))
        )
    return fleet_report(results, [HostError(host="gone", message="gone.json:1:2: not JSON")])


def page_data(text: str) -> dict[str, Any]:
    (blob,) = DATA.findall(text)
    data: dict[str, Any] = json.loads(blob)
    return data


def test_the_page_carries_every_check_and_finding(report: FleetReport) -> None:
    data = page_data(render(report, Format.html))
    strings, provenances = data["strings"], data["provenances"]
    assert len(set(strings)) == len(strings)
    assert [host[0] for host in data["hosts"]] == list(NAMES.values())
    assert data["errors"] == [{"host": "gone", "message": "gone.json:1:2: not JSON"}]
    for result, (name, groups, rows, memory) in zip(report.hosts, data["hosts"], strict=True):
        assert name == result.host and [strings[g] for g in groups] == result.groups
        assert memory == (result.memory.model_dump(mode="json") if result.memory else None)
        for check, row in zip(result.checks, rows, strict=True):
            knob, node, desired, runtime, boot, source, origin, found = row
            assert (strings[knob], node, desired, runtime, boot) == (
                check.knob, check.node, check.desired, check.runtime, check.boot,
            )  # fmt: skip
            assert (None if source is None else strings[source]) == check.boot_source
            assert check.provenance is not None and origin is not None
            file, line, rule, layer, _ = provenances[origin]
            assert (strings[file], line, strings[rule], strings[layer]) == (
                check.provenance.file, check.provenance.line, check.provenance.rule, check.provenance.layer,
            )  # fmt: skip
            assert [(strings[k], strings[m], mendable) for k, m, mendable in found] == [
                (f.kind.value, f.message, f.mendable) for f in check.findings
            ]


def test_a_host_name_cannot_end_the_data_or_fill_a_marker(report: FleetReport) -> None:
    text = render(report, Format.html)
    assert text.count("</script>") == 2 and text.count("<b>") == 0
    assert "@DATA@" in page_data(text)["hosts"][1][0] and "@SCRIPT@" not in text


def test_the_memory_picture_has_every_numa_node_and_pool(report: FleetReport) -> None:
    numa3 = next(host for host in report.hosts if host.host == "numa3")
    assert numa3.memory is not None
    facts = parse_facts(collect(Tree(str(HOSTS / "numa3"))), "numa3")
    assert [node.node for node in numa3.memory.nodes] == [node.id for node in facts.numa.nodes]
    assert [pool.size_kb for pool in numa3.memory.pools] == sorted(facts.hugepages.pools)
    assert numa3.memory.mem_total_kb == facts.memory.mem_total_kb
