"""memory_facts on this machine's real kernel, run through Ansible, checked against the kernel's own tools."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from memtune.facts.model import HostFacts, parse_facts
from tests.support.ansible_run import REPO, ansible_env, run_module


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return run_module("memtune.fleet.memory_facts")


@pytest.fixture(scope="module")
def facts(result: dict[str, Any]) -> dict[str, Any]:
    assert result["_rc"] == 0, result
    memtune: dict[str, Any] = result["ansible_facts"]["memtune"]
    return memtune


def meminfo() -> dict[str, int]:
    fields = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, value = line.split(":")
        fields[name] = int(value.split()[0])
    return fields


def numactl_hardware() -> dict[str, Any]:
    """`numactl -H`: node sizes in MB, cpus per node and the distance table."""
    text = subprocess.run(
        ["numactl", "-H"], capture_output=True, text=True, check=True, env={"LC_ALL": "C"}
    ).stdout
    nodes: dict[int, dict[str, Any]] = {}
    for match in re.finditer(r"^node (\d+) cpus:(.*)$", text, re.M):
        nodes[int(match[1])] = {"cpus": [int(c) for c in match[2].split()]}
    for match in re.finditer(r"^node (\d+) size: (\d+) MB$", text, re.M):
        nodes[int(match[1])]["size_mb"] = int(match[2])
    table = text.split("node distances:")[1].strip().splitlines()
    header = [int(n) for n in table[0].split()[1:]]
    for row in table[1:]:
        node, *values = row.split()
        distances = zip(header, values, strict=True)
        nodes[int(node.rstrip(":"))]["distances"] = {str(other): int(value) for other, value in distances}
    return nodes


def test_module_reports_no_change_and_no_warnings(result: dict[str, Any]) -> None:
    assert result["changed"] is False
    assert result["ansible_facts"]["memtune"]["warnings"] == []


def test_facts_validate_with_the_controller_model(facts: dict[str, Any]) -> None:
    assert isinstance(parse_facts(facts), HostFacts)


def test_memory_agrees_with_proc_meminfo(facts: dict[str, Any]) -> None:
    kernel = meminfo()
    memory = facts["memory"]
    assert memory["mem_total_kb"] == kernel["MemTotal"]
    assert memory["swap_total_kb"] == kernel["SwapTotal"]
    assert abs(memory["mem_available_kb"] - kernel["MemAvailable"]) < 0.05 * kernel["MemTotal"]
    assert facts["hugepages"]["default_size_kb"] == kernel["Hugepagesize"]


def test_numa_agrees_with_numactl(facts: dict[str, Any]) -> None:
    expected = numactl_hardware()
    nodes = {node["id"]: node for node in facts["numa"]["nodes"]}
    assert sorted(nodes) == sorted(expected)
    for node_id, node in nodes.items():
        assert node["cpus"] == expected[node_id]["cpus"]
        assert node["distances"] == expected[node_id]["distances"]
        # numactl prints MemTotal in whole MB; lazily onlined memory can grow between the two reads.
        assert abs(node["mem_total_kb"] // 1024 - expected[node_id]["size_mb"]) <= 256


def test_sysctls_agree_with_sysctl(facts: dict[str, Any]) -> None:
    for key, value in facts["sysctl"].items():
        done = subprocess.run(["sysctl", "-n", key], capture_output=True, text=True)
        if value is None:
            assert done.returncode != 0, f"{key} reported absent but sysctl reads it"
        else:
            assert str(value) == " ".join(done.stdout.split()), key


def test_thp_agrees_with_sysfs(facts: dict[str, Any]) -> None:
    enabled = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    assert f"[{facts['thp']['enabled']}]" in enabled


def test_hugepage_pools_agree_with_sysfs(facts: dict[str, Any]) -> None:
    for size, pool in facts["hugepages"]["pools"].items():
        base = Path(f"/sys/kernel/mm/hugepages/hugepages-{size}kB")
        assert pool["nr"] == int((base / "nr_hugepages").read_text())
        assert pool["resv"] == int((base / "resv_hugepages").read_text())


def test_check_mode_gives_the_same_facts(facts: dict[str, Any]) -> None:
    checked = run_module("memtune.fleet.memory_facts", "", "--check")
    assert checked["_rc"] == 0
    again = checked["ansible_facts"]["memtune"]
    assert again["numa"]["online"] == facts["numa"]["online"]
    assert again["sysctl"] == facts["sysctl"]


def test_a_root_that_does_not_exist_fails_cleanly() -> None:
    failed = run_module("memtune.fleet.memory_facts", "root=/nonexistent/tree")
    assert failed["_rc"] == 2  # ansible's exit status for a failed host
    assert failed["msg"] == "root /nonexistent/tree is not a directory"
    assert "Traceback" not in failed.get("module_stderr", "")


def test_a_root_that_is_not_a_host_fails_cleanly(tmp_path: Path) -> None:
    failed = run_module("memtune.fleet.memory_facts", f"root={tmp_path}")
    assert failed["_rc"] == 2
    assert "not the root of a Linux host" in failed["msg"]


def test_bad_sysctl_keys_are_refused() -> None:
    failed = run_module("memtune.fleet.memory_facts", "sysctls=vm.swappiness,../../etc/passwd")
    assert failed["_rc"] == 2
    assert "../../etc/passwd" in failed["msg"]


def test_offline_probe_of_a_captured_tree(fixture_hosts: Path) -> None:
    offline = run_module("memtune.fleet.memory_facts", f"root={fixture_hosts / 'firecracker'}")
    facts = offline["ansible_facts"]["memtune"]
    assert facts["memory"]["mem_total_kb"] == 24684084
    assert facts["platform"]["proc_sys_vm_writable"] is False


def test_ansible_doc_renders() -> None:
    done = subprocess.run(
        [str(Path(REPO / ".venv/bin/ansible-doc")), "memtune.fleet.memory_facts"],
        cwd=REPO,
        env=ansible_env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    for word in ("root", "sysctls", "sysctl_sources", "schema_version", "check_mode"):
        assert word in done.stdout
