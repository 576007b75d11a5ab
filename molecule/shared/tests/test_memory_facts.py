"""Black-box checks shared by the molecule scenarios: the probe's facts match what each host itself reports.

The probe runs on the host through testinfra's ansible runner; its answer is compared with the host's own
/proc/meminfo, `numactl -H` and `uname -r`, and, on the QEMU fleet, with what the guest was started with
(the `lab_*` inventory variables that lab/up.sh writes).
"""

import re
from typing import Any

import pytest

MEMINFO_LINE = re.compile(r"^(\w+):\s+(\d+)", re.MULTILINE)


@pytest.fixture(scope="module")
def facts(host: Any) -> dict[str, Any]:
    result = host.ansible("memtune.fleet.memory_facts", check=False)
    assert "ansible_facts" in result, result
    return result["ansible_facts"]["memtune"]


@pytest.fixture(scope="module")
def meminfo(host: Any) -> dict[str, int]:
    return {key: int(value) for key, value in MEMINFO_LINE.findall(host.file("/proc/meminfo").content_string)}


@pytest.fixture(scope="module")
def host_vars(host: Any) -> dict[str, Any]:
    return host.ansible.get_variables()


def parse_numactl(text: str) -> dict[int, dict[str, Any]]:
    """Per node: cpus (list), size_mb (int), distances ({node: int}) from `numactl -H`."""
    nodes: dict[int, dict[str, Any]] = {}
    lines = text.splitlines()
    for line in lines:
        if match := re.match(r"node (\d+) cpus:(.*)", line):
            nodes.setdefault(int(match[1]), {})["cpus"] = [int(cpu) for cpu in match[2].split()]
        elif match := re.match(r"node (\d+) size: (\d+) MB", line):
            nodes.setdefault(int(match[1]), {})["size_mb"] = int(match[2])
    header = lines.index("node distances:")
    columns = [int(node) for node in lines[header + 1].split()[1:]]
    for row in lines[header + 2 : header + 2 + len(columns)]:
        node, *values = row.replace(":", "").split()
        nodes[int(node)]["distances"] = dict(zip(columns, map(int, values), strict=True))
    return nodes


@pytest.fixture(scope="module")
def numactl(host: Any) -> dict[int, dict[str, Any]]:
    return parse_numactl(host.check_output("LC_ALL=C numactl -H"))


def test_facts_are_versioned(facts: dict[str, Any]) -> None:
    assert isinstance(facts["schema_version"], int)
    assert facts["schema_version"] >= 1


def test_mem_total_matches_proc_meminfo(facts: dict[str, Any], meminfo: dict[str, int]) -> None:
    assert facts["memory"]["mem_total_kb"] == meminfo["MemTotal"]


def test_mem_available_is_close_to_proc_meminfo(facts: dict[str, Any], meminfo: dict[str, int]) -> None:
    # Read moments apart: allow 5 % of RAM for what ran in between.
    tolerance = meminfo["MemTotal"] // 20
    assert abs(facts["memory"]["mem_available_kb"] - meminfo["MemAvailable"]) <= tolerance


def test_numa_nodes_match_numactl(facts: dict[str, Any], numactl: dict[int, dict[str, Any]]) -> None:
    nodes = {node["id"]: node for node in facts["numa"]["nodes"]}
    assert sorted(nodes) == sorted(numactl)
    for node_id, seen in numactl.items():
        node = nodes[node_id]
        assert node["cpus"] == seen["cpus"], f"node {node_id}"
        assert node["mem_total_kb"] // 1024 == seen["size_mb"], f"node {node_id}"
        assert {int(k): v for k, v in node["distances"].items()} == seen["distances"], f"node {node_id}"


def test_node_count_matches_the_host(host: Any, facts: dict[str, Any], host_vars: dict[str, Any]) -> None:
    expected = host_vars.get("lab_numa_nodes")
    if expected is None:  # not a lab guest: count the kernel's node directories
        expected = len(host.check_output("ls -d /sys/devices/system/node/node[0-9]*").split())
    assert len(facts["numa"]["nodes"]) == expected


def test_kernel_release_matches_uname(host: Any, facts: dict[str, Any], host_vars: dict[str, Any]) -> None:
    release = host.check_output("uname -r")
    assert facts["kernel"]["release"] == release
    assert facts["kernel"]["release"] == host_vars.get("lab_kernel_release", release)


def test_lab_guest_memory_matches_its_qemu_nodes(facts: dict[str, Any], host_vars: dict[str, Any]) -> None:
    if "lab_node_mem_mib" not in host_vars:
        pytest.skip("not a lab guest")
    for node, mib in zip(facts["numa"]["nodes"], host_vars["lab_node_mem_mib"], strict=True):
        # The kernel keeps some of each node for itself, never more than a fifth of a small node.
        assert 0.8 * mib * 1024 <= node["mem_total_kb"] <= mib * 1024, f"node {node['id']}"
    # Not true of every host (this sandbox's /proc/meminfo counts more than its one node), but of a guest.
    assert sum(node["mem_total_kb"] for node in facts["numa"]["nodes"]) == facts["memory"]["mem_total_kb"]
    cpus = sorted(cpu for node in facts["numa"]["nodes"] for cpu in node["cpus"])
    assert cpus == list(range(host_vars["lab_vcpus"]))


def test_lab_guest_booted_with_its_kernel_args(facts: dict[str, Any], host_vars: dict[str, Any]) -> None:
    if "lab_kernel_args" not in host_vars:
        pytest.skip("not a lab guest")
    cmdline = facts["kernel"]["cmdline"].split()
    assert f"systemd.hostname={host_vars['inventory_hostname']}" in cmdline
    assert set(host_vars["lab_kernel_args"].split()) <= set(cmdline)
