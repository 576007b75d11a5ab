"""`memtune plan`, `explain` and `audit` on a Kubernetes node that also runs PostgreSQL (issue 17): the
kubelet's own vm.overcommit_memory = 1 against PostgreSQL's 2 is a conflict until a host layer settles it.
Facts from a copy of a captured tree with the two processes written into its /proc."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run, write_vars
from tests.support.trees import collect_with

PROCESSES = {
    "/proc/4242/comm": "kubelet\n",
    "/proc/4242/cmdline": "/usr/bin/kubelet\0--config=/var/lib/kubelet/config.yaml\0",
    "/proc/4343/comm": "postgres\n",
    "/proc/4343/cmdline": "/usr/lib/postgresql/16/bin/postgres\0-D\0/var/lib/postgresql/16/main\0",
}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    facts = collect_with("numa2", files=PROCESSES)
    assert [w["name"] for w in facts["workloads"]] == ["kubernetes", "postgresql"]
    directory = tmp_path_factory.mktemp("facts")
    (directory / "k8s-pg.json").write_text(json.dumps({"ansible_facts": {"memtune": facts}}))
    return directory / "k8s-pg.json"


def host_rule(tmp_path: Path, **rule: Any) -> Path:
    """Inventory variables giving the node a host policy of one ``rule``."""
    return write_vars(tmp_path / "vars.yml", {"k8s-pg": {"memtune_host_policy": {"rules": [rule]}}})


def test_plan_fails_with_the_kubelet_conflict(node: Path) -> None:
    result = run("plan", "--facts", node)
    assert result.exit_code == 2, result.output
    assert "conflict on vm.overcommit_memory" in result.output
    assert "kubernetes.yml:" in result.output and "postgresql.yml:" in result.output
    assert "the kubelet's own setting" in result.output
    assert "memtune_workloads" in result.output


def test_audit_reports_the_conflict_as_the_hosts_error(node: Path) -> None:
    result = run("audit", "--facts", node)
    assert result.exit_code == 2, result.output
    assert "conflict on vm.overcommit_memory" in result.output


def test_a_host_layer_settles_it_and_explain_shows_both_sources(node: Path, tmp_path: Path) -> None:
    decision = "the team's decision for this node (ticket 1234)"
    host_vars = host_rule(
        tmp_path, name="overcommit-for-postgres", source=decision, sysctl={"vm.overcommit_memory": 1}
    )
    planned = run("plan", "--facts", node, "--vars", host_vars, "--format", "json")
    assert planned.exit_code == 0, planned.output
    sysctl = json.loads(planned.output)["k8s-pg"]["sysctl"]
    assert sysctl["vm.overcommit_memory"]["value"] == 1
    assert sysctl["vm.swappiness"]["value"] == 3  # the rest of postgresql's policy still applies
    explained = run("explain", "vm.overcommit_memory", "--facts", node, "--vars", host_vars)
    assert explained.exit_code == 0, explained.output
    text = explained.output
    assert "rule `overcommit-for-postgres`" in text and "layer: host" in text
    assert "settles the conflict between kubernetes" in text and "postgresql (2, " in text
    assert "postgresql.yml:" in text and "kubernetes.yml:" in text
    # the host keeps the kubelet's value, so it does not override the kubelet
    assert "overrides on purpose" not in text


def test_a_host_layer_may_override_the_kubelet_on_purpose(node: Path, tmp_path: Path) -> None:
    host_vars = host_rule(tmp_path, name="strict-overcommit", sysctl={"vm.overcommit_memory": 2})
    planned = run("plan", "--facts", node, "--vars", host_vars)
    assert planned.exit_code == 0, planned.output
    warning = "vm.overcommit_memory is set by the kubelet itself; the host layer overrides it on purpose"
    assert warning in " ".join(planned.output.split())  # the console wraps long warnings
    explained = run("explain", "vm.overcommit_memory", "--facts", node, "--vars", host_vars)
    assert "overrides on purpose a value the kubelet sets itself" in explained.output
