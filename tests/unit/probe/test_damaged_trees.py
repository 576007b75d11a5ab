"""Bad input for the probe: trees with missing, garbled or absent parts give partial facts and warnings."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._collect import ProbeError, collect
from ansible_collections.memtune.fleet.plugins.module_utils._tree import Tree
from memtune.facts import parse_facts


@pytest.fixture
def tree(tmp_path: Path, fixture_hosts: Path) -> Path:
    root = tmp_path / "host"
    shutil.copytree(fixture_hosts / "firecracker", root, symlinks=True)
    return root


def probe(root: Path) -> dict[str, Any]:
    facts = collect(Tree(str(root)))
    parse_facts(facts, str(root))  # partial facts are still valid facts
    return facts


def test_no_numa_in_the_kernel_gives_one_node_with_the_whole_host(tree: Path) -> None:
    shutil.rmtree(tree / "sys/devices/system/node")
    facts = probe(tree)
    assert facts["numa"]["available"] is False
    [node] = facts["numa"]["nodes"]
    assert node["id"] == 0
    assert node["mem_total_kb"] == facts["memory"]["mem_total_kb"]
    assert node["cpus"] == [0, 1]
    assert facts["warnings"] == []


def test_no_hugepages_no_thp_no_psi(tree: Path) -> None:
    shutil.rmtree(tree / "sys/kernel/mm")
    (tree / "proc/pressure/memory").unlink()
    for pools in (tree / "sys/devices/system/node").glob("node*/hugepages"):
        shutil.rmtree(pools)
    facts = probe(tree)
    assert facts["hugepages"]["pools"] == {}
    assert facts["hugepages"]["sizes_kb"] == []
    assert facts["thp"] is None
    assert facts["pressure"] is None
    assert facts["warnings"] == []


def test_kernel_without_numa_balancing_reports_it_absent(tree: Path) -> None:
    (tree / "proc/sys/kernel/numa_balancing").unlink()
    facts = probe(tree)
    assert facts["sysctl"]["kernel.numa_balancing"] is None
    assert facts["sysctl"]["vm.swappiness"] == 60


@pytest.mark.parametrize(
    ("path", "content", "warning"),
    [
        ("sys/devices/system/node/node0/distance", "10 20 30", "node0/distance: 3 values for 1 online nodes"),
        ("sys/devices/system/node/node0/cpulist", "zero", "node0/cpulist: not a cpu list"),
        ("sys/devices/system/node/online", "0-x", "node/online: not a node list"),
        ("sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "many", "expected an integer"),
        ("sys/devices/system/node/node0/meminfo", "\x00\x01", "node0/meminfo: MemTotal missing"),
        ("proc/sys/kernel/osrelease", "linux", "has no version number"),
    ],
)
def test_garbled_file_gives_a_warning_not_a_traceback(
    tree: Path, path: str, content: str, warning: str
) -> None:
    (tree / path).write_text(content)
    facts = probe(tree)
    assert any(warning in message for message in facts["warnings"]), facts["warnings"]


def test_garbled_meminfo_lines_are_skipped(tree: Path) -> None:
    meminfo = tree / "proc/meminfo"
    meminfo.write_text(meminfo.read_text().replace("MemAvailable:", "MemAvailable: ??", 1))
    facts = probe(tree)
    assert facts["memory"]["mem_available_kb"] is None
    assert facts["memory"]["mem_total_kb"] == 24684084


@pytest.mark.parametrize("damage", ["missing", "empty", "binary"])
def test_no_meminfo_is_not_a_host(tree: Path, damage: str) -> None:
    meminfo = tree / "proc/meminfo"
    if damage == "missing":
        meminfo.unlink()
    else:
        meminfo.write_bytes(b"" if damage == "empty" else b"\x7fELF\x02\x01")
    with pytest.raises(ProbeError, match="no readable MemTotal"):
        collect(Tree(str(tree)))


def test_an_empty_directory_is_not_a_host(tmp_path: Path) -> None:
    with pytest.raises(ProbeError, match="not the root of a Linux host"):
        collect(Tree(str(tmp_path)))


def test_reading_writes_nothing(tree: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in tree.rglob("*") if not p.is_symlink()}
    probe(tree)
    after = {p: p.stat().st_mtime_ns for p in tree.rglob("*") if not p.is_symlink()}
    assert before == after
