"""Bad input for the probe: trees with missing, garbled or absent parts give partial facts and warnings."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import ProbeError, collect
from memtune.facts.model import parse_facts

NODES = "sys/devices/system/node"
POOL_2M = "sys/kernel/mm/hugepages/hugepages-2048kB"


@pytest.fixture
def tree(tmp_path: Path, fixture_hosts: Path) -> Path:
    root = tmp_path / "host"
    shutil.copytree(fixture_hosts / "firecracker", root, symlinks=True)
    return root


def probe(root: Path) -> dict[str, Any]:
    facts = collect(Tree(str(root)))
    parse_facts(facts, str(root))  # partial facts are still valid facts
    return facts


def probe_with(root: Path, path: str, content: str) -> dict[str, Any]:
    """The probe of ``root`` with ``content`` written to ``path`` in it."""
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(content)
    return probe(root)


def test_no_numa_in_the_kernel_gives_one_node_with_the_whole_host(tree: Path) -> None:
    shutil.rmtree(tree / NODES)
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
    for pools in (tree / NODES).glob("node*/hugepages"):
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
        (f"{NODES}/node0/distance", "10 20 30", "node0/distance: 3 values for 1 online nodes"),
        (f"{NODES}/node0/cpulist", "zero", "node0/cpulist: not a cpu list"),
        (f"{NODES}/online", "0-x", "node/online: not a node list"),
        (f"{POOL_2M}/nr_hugepages", "many", "expected an integer"),
        (f"{NODES}/node0/meminfo", "\x00\x01", "node0/meminfo: MemTotal missing"),
        ("proc/sys/kernel/osrelease", "linux", "has no version number"),
    ],
)
def test_garbled_file_gives_a_warning_not_a_traceback(
    tree: Path, path: str, content: str, warning: str
) -> None:
    facts = probe_with(tree, path, content)
    assert any(warning in message for message in facts["warnings"]), facts["warnings"]


def test_garbled_meminfo_lines_are_skipped(tree: Path) -> None:
    meminfo = tree / "proc/meminfo"
    meminfo.write_text(meminfo.read_text().replace("MemAvailable:", "MemAvailable: ??", 1))
    facts = probe(tree)
    assert facts["memory"]["mem_available_kb"] is None
    assert facts["memory"]["mem_total_kb"] == 24684084


@pytest.mark.parametrize("damage", ["missing", "empty", "binary", "zero"])
def test_without_a_usable_meminfo_memtotal_is_the_nodes_sum_with_a_warning(tree: Path, damage: str) -> None:
    """Before issue 14 a tree without /proc/meminfo was refused; now it gives the facts it can."""
    meminfo = tree / "proc/meminfo"
    if damage == "missing":
        meminfo.unlink()
    else:
        meminfo.write_bytes({"empty": b"", "binary": b"\x7fELF\x02\x01", "zero": b"MemTotal: 0 kB\n"}[damage])
    facts = probe(tree)
    assert facts["memory"]["mem_total_kb"] == 6645964  # node0's MemTotal, the only node
    assert facts["memory"]["mem_free_kb"] == 3911584
    assert facts["memory"]["mem_available_kb"] is None
    [warning] = [w for w in facts["warnings"] if "summed over the 1 NUMA nodes" in w]
    why = {"missing": "no /proc/meminfo", "zero": "/proc/meminfo says MemTotal is 0"}
    assert warning.startswith(why.get(damage, "/proc/meminfo has no readable MemTotal line")), warning


def test_without_meminfo_anywhere_it_is_not_a_host(tree: Path) -> None:
    (tree / "proc/meminfo").unlink()
    (tree / NODES / "node0/meminfo").unlink()
    with pytest.raises(ProbeError, match="no /proc/meminfo, and no NUMA node meminfo to sum"):
        collect(Tree(str(tree)))


def test_an_empty_directory_is_not_a_host(tmp_path: Path) -> None:
    with pytest.raises(ProbeError, match="not the root of a Linux host"):
        collect(Tree(str(tmp_path)))


def test_reading_writes_nothing(tree: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in tree.rglob("*") if not p.is_symlink()}
    probe(tree)
    after = {p: p.stat().st_mtime_ns for p in tree.rglob("*") if not p.is_symlink()}
    assert before == after


def test_a_tree_of_sys_alone_gives_what_sys_knows(tmp_path: Path, fixture_hosts: Path) -> None:
    """A capture of /sys only (as sysfs-only collectors make them): no /proc at all."""
    root = tmp_path / "host"
    shutil.copytree(fixture_hosts / "numa2" / "sys", root / "sys", symlinks=True)
    facts = probe(root)
    assert facts["memory"]["mem_total_kb"] == 6077484  # the two nodes' sum: /proc/meminfo said the same
    assert facts["numa"]["online"] == [0, 1]
    assert facts["hugepages"]["sizes_kb"] == [2048, 1048576]
    assert facts["thp"]["enabled"] == "always"
    assert set(facts["sysctl"].values()) == {None}
    warnings = "\n".join(facts["warnings"])
    assert "no /proc/meminfo: memory.mem_total_kb and mem_free_kb summed over the 2 NUMA nodes" in warnings
    assert f"no /proc/sys in {root}: every sysctl value is unknown, reported as null" in warnings
    assert "cannot read /proc/sys/kernel/osrelease" in warnings


@pytest.mark.parametrize(
    ("path", "content", "warning"),
    [
        (
            f"{NODES}/online",
            "0-4294967295",
            "node/online: not a node list (id 4294967295 is beyond",
        ),
        (f"{NODES}/online", "0-99999999999999999999999", "node/online: not a node list"),
        (
            f"{NODES}/online",
            "0-1023," * 20000,
            "node/online: not a node list (more than 1024 ids",
        ),
        (f"{NODES}/online", "3-0", "node/online: not a node list (range 3-0 runs backwards"),
        (f"{NODES}/online", "\u0660", "node/online: not a node list"),
        (f"{NODES}/possible", "0-4294967295", "node/possible: not a node list"),
        (f"{NODES}/has_memory", "0-4294967295", "node/has_memory: not a node list"),
        (
            f"{NODES}/node0/cpulist",
            "0-4294967295",
            "node0/cpulist: not a cpu list (id 4294967295",
        ),
        (
            f"{NODES}/node0/cpulist",
            "0-65535," * 50000,
            "node0/cpulist: not a cpu list (more than",
        ),
    ],
)
def test_absurd_ranges_are_warnings_in_bounded_time(
    tree: Path, path: str, content: str, warning: str
) -> None:
    facts = probe_with(tree, path, content)
    assert any(warning in message for message in facts["warnings"]), facts["warnings"]
    assert facts["numa"]["online"] == [0]  # the node directories say so when the list cannot
    assert facts["numa"]["possible"] == [0]
    assert facts["numa"]["nodes"][0]["has_memory"] is True


def test_online_nodes_without_a_directory_are_left_out(tree: Path) -> None:
    (tree / NODES / "online").write_text("0-7\n")
    facts = probe(tree)
    assert facts["numa"]["online"] == [0]
    assert [node["id"] for node in facts["numa"]["nodes"]] == [0]
    assert (
        "/sys/devices/system/node/online lists node(s) 1-7 that have no directory: left out"
        in facts["warnings"]
    )


@pytest.mark.parametrize("with_online", [True, False])
def test_node_directories_not_named_node_and_ascii_digits_are_ignored(tree: Path, with_online: bool) -> None:
    node_dir = tree / NODES
    strange = ["node\u0663", "node01", "node-1", "node1x", "node", "node99999"]
    for name in strange:
        shutil.copytree(node_dir / "node0", node_dir / name)
    if not with_online:
        (node_dir / "online").unlink()
    facts = probe(tree)
    assert [node["id"] for node in facts["numa"]["nodes"]] == [0]
    [warning] = [w for w in facts["warnings"] if "not node<id> directories" in w]
    assert all(repr(name) in warning for name in sorted(strange)[:5]) and "and 1 more" in warning


def test_conflicting_memtotal_lines_fail_the_probe(tree: Path) -> None:
    meminfo = tree / "proc/meminfo"
    meminfo.write_text(meminfo.read_text() + "MemTotal:       1024 kB\n")
    with pytest.raises(
        ProbeError, match=r"MemTotal is given 2 times with different values \(24684084, 1024\)"
    ):
        collect(Tree(str(tree)))


def test_repeated_meminfo_lines_are_warnings(tree: Path) -> None:
    meminfo = tree / "proc/meminfo"
    text = meminfo.read_text()
    meminfo.write_text(text + "MemTotal:       24684084 kB\nMemFree: 1 kB\n")
    node = tree / NODES / "node0/meminfo"
    node.write_text(node.read_text() + "Node 0 MemTotal: 5 kB\n")
    facts = probe(tree)
    assert facts["memory"]["mem_total_kb"] == 24684084
    assert facts["memory"]["mem_free_kb"] is None
    assert facts["numa"]["nodes"][0]["mem_total_kb"] is None
    assert "/proc/meminfo: MemTotal is given 2 times" in facts["warnings"]
    assert any(
        w.startswith("/proc/meminfo: MemFree is given 2 times with different values")
        for w in facts["warnings"]
    )
    assert any(
        "node0/meminfo: MemTotal is given 2 times with different values (6645964, 5)" in w
        for w in facts["warnings"]
    )


@pytest.mark.parametrize(
    "value", ["abc", "1_0", "+5", "\u0663", "99999999999999999999999", "\x1b[31m60", "60 60", ""]
)
def test_a_garbage_value_of_a_managed_sysctl_is_null_with_a_warning(tree: Path, value: str) -> None:
    (tree / "proc/sys/vm/swappiness").write_text(value + "\n")
    facts = probe(tree)
    assert facts["sysctl"]["vm.swappiness"] is None
    assert any(
        w.startswith("vm.swappiness: /proc/sys/vm/swappiness holds") and "not an integer" in w
        for w in facts["warnings"]
    ), facts["warnings"]


def test_a_text_sysctl_is_kept_unless_unprintable_or_too_long(tree: Path) -> None:
    (tree / "proc/sys/kernel/core_pattern").write_text("|/usr/lib/systemd/systemd-coredump %P %u\n")
    (tree / "proc/sys/kernel/hostname").write_text("\x1b]0;owned\x07\n")
    (tree / "proc/sys/kernel/domainname").write_text("x" * 5000)
    facts = collect(Tree(str(tree)), ["kernel.core_pattern", "kernel.hostname", "kernel.domainname"])
    assert facts["sysctl"] == {
        "kernel.core_pattern": "|/usr/lib/systemd/systemd-coredump %P %u",
        "kernel.hostname": None,
        "kernel.domainname": None,
    }
    assert any("kernel.hostname" in w and "unprintable characters" in w for w in facts["warnings"])
    assert any("kernel.domainname" in w and "longer than 4096 characters" in w for w in facts["warnings"])


@pytest.mark.parametrize(
    ("path", "content", "check"),
    [  # each of these raised ValueError or gave int("\u0663") == 3 before issue 14
        (f"{NODES}/node0/distance", "\u00b2", "numa.nodes.0.distances"),
        ("proc/vmstat", "pgmajfault \u00b2\noom_kill \u0663\n", "vmstat"),
        ("proc/swaps", "Filename Type Size Used Priority\n/swap file \u0663 0 -2\n", "memory.swap_devices"),
        ("proc/pressure/memory", "some avg10=nan avg60=inf avg300=1e999 total=1\n", "pressure"),
        (f"{POOL_2M}/nr_hugepages", "-5", "hugepages.pools.2048.nr"),
        ("proc/sys/kernel/osrelease", "\x1b[2J6.1.0", "kernel.release"),
        ("var/lib/memtune/snapshot.json", "[" * 100000, "memtune.snapshot"),
        (
            "var/lib/memtune/snapshot.json",
            '{"runtime": [], "owned": {"kernel_cmdline": 5}}',
            "memtune.cgroups",
        ),
    ],
)
def test_numbers_no_kernel_writes_are_not_numbers(tree: Path, path: str, content: str, check: str) -> None:
    facts: Any = probe_with(tree, path, content)
    for part in check.split("."):
        facts = facts[part] if isinstance(facts, dict) else facts[int(part)]
    assert facts in ({}, [], None, "", False), facts


def test_non_ascii_pids_and_pool_sizes_are_not_read_as_numbers(tree: Path) -> None:
    (tree / "proc/\u0663").mkdir()
    (tree / "proc/\u0663/comm").write_text("postgres\n")
    pools = tree / "sys/kernel/mm/hugepages"
    shutil.copytree(pools / "hugepages-2048kB", pools / "hugepages-\u0663kB")
    facts = probe(tree)
    assert facts["workloads"] == []
    assert sorted(facts["hugepages"]["pools"]) == ["1048576", "2048"]
    assert any("hugepages-\u0663kB: not a hugepages-<size>kB directory" in w for w in facts["warnings"])


def test_a_cgroup_limit_of_thousands_of_digits_is_text_not_a_crash(tree: Path) -> None:
    """int() of more than 4300 digits raises ValueError (Python >= 3.11) and takes seconds on 3.8."""
    (tree / "var/lib/memtune").mkdir(parents=True)
    (tree / "var/lib/memtune/snapshot.json").write_text(
        '{"version": 1, "runtime": {"cgroups": {"/sys/fs/cgroup/batch": {}}}}'  # a version-1 snapshot
    )
    (tree / "sys/fs/cgroup/batch").mkdir(parents=True)
    (tree / "sys/fs/cgroup/batch/memory.max").write_text("9" * 5000)
    (tree / "sys/fs/cgroup/batch/memory.high").write_text("\u00b2")
    [cgroup] = probe(tree)["memtune"]["cgroups"]
    assert cgroup["path"] == "/sys/fs/cgroup/batch"
    assert cgroup["runtime"]["MemoryMax"] == "9" * 5000
    assert cgroup["runtime"]["MemoryHigh"] == "\u00b2"


def test_a_sysctl_d_file_of_pathological_globs_is_read_in_bounded_time(tree: Path) -> None:
    """fnmatch compiles a pattern of thousands of '[' and '*?' into a regex that takes ~0.3 s a line."""
    lines = ["%s = 1" % ("[" * 2000 + "*?" * 2000) for _ in range(100)]
    (tree / "etc/sysctl.d/70-globs.conf").write_text("\n".join([*lines, "vm.swap*ss = 7"]) + "\n")
    facts = probe(tree)
    assert facts["sysctl_sources"]["vm.swappiness"]["winner"]["value"] == "7"
    ignored = [w for w in facts["warnings"] if "a key of 6000 characters names no sysctl: ignored" in w]
    assert len(ignored) == 100 and ignored[0].startswith("/etc/sysctl.d/70-globs.conf:1:")
