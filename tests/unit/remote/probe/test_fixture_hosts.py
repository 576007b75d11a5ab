"""The whole probe on captured trees of real hosts, against values read off those hosts by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import collect
from memtune.facts.model import HostFacts, parse_facts

# host directory -> {dotted path into the facts: expected value}, each checked against the host's
# own files (`head /proc/meminfo`, `numactl -H`, `cat .../distance`) when it was captured.
EXPECTED: dict[str, dict[str, Any]] = {
    "firecracker": {
        "memory.mem_total_kb": 24684084,
        "memory.swap_total_kb": 0,
        "numa.available": True,
        "numa.online": [0],
        "numa.nodes.0.mem_total_kb": 6645964,  # lazily onlined memory: less than MemTotal
        "numa.nodes.0.cpus": [0, 1],
        "numa.nodes.0.distances": {"0": 10},
        "hugepages.default_size_kb": 2048,
        "hugepages.sizes_kb": [2048, 1048576],
        "thp.enabled": "madvise",
        "thp.defrag": "madvise",
        "kernel.version": [6, 18, 44],
        "sysctl.vm.swappiness": 60,
        "sysctl.vm.min_free_kbytes": 67584,
        "platform.cgroup.version": "hybrid",
        "platform.cgroup.mount": "/sys/fs/cgroup/memory",
        "platform.container": "docker",
        "platform.systemd": False,
        "platform.proc_sys_vm_writable": False,  # a captured tree is never writable
        "pressure.some.avg10": 0.0,
        "warnings": [],
    },
    "small": {  # QEMU guest: 2 GiB, 1 node, Debian 12 kernel 6.1
        "memory.mem_total_kb": 2012380,
        "numa.online": [0],
        "numa.nodes.0.mem_total_kb": 2012380,
        "numa.nodes.0.cpus": [0],
        "kernel.version": [6, 1, 0],
        "thp.enabled": "always",
        "sysctl.vm.min_free_kbytes": 45056,
        "sysctl.kernel.numa_balancing": 0,
        "platform.virtualization": "qemu",
        "platform.systemd": True,
        "platform.cgroup": {"version": "v2", "memory_controller": True, "mount": "/sys/fs/cgroup"},
        "warnings": [],
    },
    "numa2": {  # QEMU guest: 2 nodes with one CPU each, kernel 6.1
        "memory.mem_total_kb": 6077484,
        "numa.online": [0, 1],
        "numa.nodes.0.mem_total_kb": 2984176,
        "numa.nodes.1.mem_total_kb": 3093308,
        "numa.nodes.1.cpus": [1],
        "numa.nodes.0.distances": {"0": 10, "1": 20},
        "numa.nodes.1.distances": {"0": 20, "1": 10},
        "sysctl.vm.min_free_kbytes": 67584,
        "sysctl.kernel.numa_balancing": 1,
        "warnings": [],
    },
    "numa3": {  # QEMU guest: 3 nodes, node 2 without CPUs, backports kernel 6.12
        "memory.mem_total_kb": 5052136,
        "numa.online": [0, 1, 2],
        "numa.nodes.0.cpus": [0],
        "numa.nodes.1.cpus": [1],
        "numa.nodes.2.cpus": [],
        "numa.nodes.2.mem_total_kb": 1029172,
        "numa.nodes.2.distances": {"0": 20, "1": 20, "2": 10},
        "kernel.release": "6.12.95+deb12-amd64",
        "kernel.version": [6, 12, 95],
        "sysctl.vm.min_free_kbytes": 112640,
        "warnings": [],
    },
}


def lookup(facts: dict[str, Any], dotted: str) -> Any:
    """Walk ``dotted``; sysctl keys contain dots themselves, so they are taken whole."""
    head, _, rest = dotted.partition(".")
    value = facts[head]
    if head == "sysctl":
        return value[rest]
    for part in rest.split(".") if rest else []:
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def host(request: pytest.FixtureRequest, fixture_hosts: Path) -> tuple[str, dict[str, Any]]:
    name = request.param
    root = fixture_hosts / name
    if not root.is_dir():
        pytest.fail(f"fixture tree {root} is missing: capture it with lab/capture-fixtures.sh")
    return name, collect(Tree(str(root)))


def test_expected_values(host: tuple[str, dict[str, Any]]) -> None:
    name, facts = host
    mismatches = {
        path: (lookup(facts, path), expected)
        for path, expected in EXPECTED[name].items()
        if lookup(facts, path) != expected
    }
    assert mismatches == {}, f"{name}: (probed, expected) differ"


def test_model_accepts_probe_output(host: tuple[str, dict[str, Any]]) -> None:
    facts = parse_facts(host[1], host[0])
    assert isinstance(facts, HostFacts)
    assert len(facts.numa.nodes) == len(facts.numa.online)


def test_node_distances_are_a_full_row(host: tuple[str, dict[str, Any]]) -> None:
    _, facts = host
    online = [str(node) for node in facts["numa"]["online"]]
    for node in facts["numa"]["nodes"]:
        assert sorted(node["distances"], key=int) == online
        assert node["distances"][str(node["id"])] == 10


def test_per_node_pools_are_the_host_sizes(host: tuple[str, dict[str, Any]]) -> None:
    _, facts = host
    sizes = {str(size) for size in facts["hugepages"]["sizes_kb"]}
    for node in facts["numa"]["nodes"]:
        assert set(node["hugepages"]) == sizes
