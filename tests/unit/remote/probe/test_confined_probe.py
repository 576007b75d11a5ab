"""A probe with ``root=`` reads nothing outside that root (issue 14, class 6): links that point out of it,
link loops, FIFOs, devices and huge files in a captured tree. Each tree is a copy of a captured host
(tests/fixtures/hosts/) with one hostile change, probed by the real collector or the real module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import MAX_HOPS, MAX_READ, Tree
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import collect
from memtune.facts.model import parse_facts
from tests.support.modules import run_on_tree

REPO = Path(__file__).resolve().parents[4]
HOSTS = sorted(path.name for path in (REPO / "tests" / "fixtures" / "hosts").iterdir())

# Run in a fresh interpreter: collect() below root, with an audit hook recording every path that is
# opened or listed while it runs (imports are done before the hook is installed).
AUDITED_PROBE = """
import json, os, sys
sys.path.insert(0, {repo!r})
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import collect
from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
seen = []
def hook(event, args):
    if event in ("open", "os.listdir", "os.scandir") and args and isinstance(args[0], (str, bytes)):
        seen.append(os.fsdecode(args[0]))
tree = Tree({root!r})
sys.addaudithook(hook)
try:
    facts = collect(tree)
except Exception as exc:
    facts = {{"error": repr(exc)}}
sys.stdout.write(json.dumps({{"seen": seen, "facts": facts}}))
"""


def audited_probe(root: Path) -> tuple[list[str], dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-c", AUDITED_PROBE.format(repo=str(REPO), root=str(root))],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout)
    return result["seen"], result["facts"]


def outside(root: Path, paths: list[str]) -> list[str]:
    """The paths that are not the root or below it, symbolic links in them resolved on this machine."""
    real_root = os.path.realpath(root)
    return [p for p in paths if os.path.commonpath([real_root, os.path.realpath(p)]) != real_root]


@pytest.fixture
def tree(tmp_path: Path, fixture_hosts: Path) -> Path:
    root = tmp_path / "host"
    subprocess.run(["cp", "-a", str(fixture_hosts / "numa2"), str(root)], check=True)
    return root


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file outside the root that a confined probe must never read."""
    path = tmp_path / "outside" / "secret"
    path.parent.mkdir()
    path.write_text("4242\n")
    return path


def probe(root: Path) -> dict[str, Any]:
    facts = collect(Tree(str(root)))
    parse_facts(facts, str(root))  # what the probe returns is what the controller accepts
    return facts


def relink(path: Path, target: str) -> None:
    if path.is_dir() and not path.is_symlink():
        subprocess.run(["rm", "-r", str(path)], check=True)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def run_module(root: Path, **args: Any) -> dict[str, Any]:
    """The real memory_facts module in its own process, as Ansible runs it; a hang is a failure."""
    result, stderr = run_on_tree("memory_facts", root, args, timeout=120)
    assert "Traceback" not in stderr
    return result


@pytest.mark.parametrize("host", HOSTS)
def test_the_probe_of_a_captured_tree_reads_nothing_outside_it(fixture_hosts: Path, host: str) -> None:
    seen, facts = audited_probe(fixture_hosts / host)
    assert "error" not in facts, facts
    assert any(path.endswith("/proc/meminfo") for path in seen)  # the hook saw the reads
    assert outside(fixture_hosts / host, seen) == []


def test_an_absolute_link_is_followed_inside_the_root(tree: Path, secret: Path) -> None:
    relink(tree / "proc/sys/vm/swappiness", str(secret))
    inside = tree / str(secret).lstrip("/")
    inside.parent.mkdir(parents=True)
    inside.write_text("7\n")
    facts = probe(tree)
    assert facts["sysctl"]["vm.swappiness"] == 7  # the root's copy of that path, not the machine's 4242


def test_an_absolute_link_to_a_path_only_this_machine_has_reads_as_missing(tree: Path, secret: Path) -> None:
    relink(tree / "proc/sys/vm/swappiness", str(secret))
    relink(tree / "proc/cmdline", "/etc/passwd")
    relink(tree / "etc/sysctl.d/99-sysctl.conf", "/etc/passwd")
    facts = probe(tree)
    assert facts["sysctl"]["vm.swappiness"] is None
    assert facts["kernel"]["cmdline"] is None
    assert "root:" not in json.dumps(facts)


@pytest.mark.parametrize(
    "target", ["../../../../../../../../../../outside/secret", "/../../../outside/secret"]
)
def test_a_link_that_climbs_above_the_root_stops_at_the_root(tree: Path, secret: Path, target: str) -> None:
    relink(tree / "proc/sys/vm/swappiness", target)
    (tree / "outside").mkdir()
    (tree / "outside" / "secret").write_text("8\n")
    assert probe(tree)["sysctl"]["vm.swappiness"] == 8


def test_a_directory_link_that_climbs_to_etc_lists_the_roots_etc(tree: Path) -> None:
    relink(tree / "usr/lib/sysctl.d", "../../../../../../../../etc")
    (tree / "etc" / "40-site.conf").write_text("vm.swappiness = 33\n")
    seen, facts = audited_probe(tree)
    assert outside(tree, seen) == []
    winner = facts["sysctl_sources"]["vm.swappiness"]["winner"]
    assert winner == {"path": "/usr/lib/sysctl.d/40-site.conf", "line": 1, "value": "33"}
    paths = {entry["path"] for source in facts["sysctl_sources"].values() for entry in source["entries"]}
    assert {os.path.basename(path) for path in paths} <= {"40-site.conf", "sysctl.conf", "99-sysctl.conf"}


def test_hostile_links_everywhere_open_nothing_outside_the_root(tree: Path, secret: Path) -> None:
    relink(tree / "proc/cmdline", "/etc/passwd")
    relink(tree / "proc/sys/vm/swappiness", str(secret))
    relink(
        tree / "sys/kernel/mm/transparent_hugepage",
        "../../../../../../../../sys/kernel/mm/transparent_hugepage",
    )
    relink(tree / "sys/devices/system/node/node1", "/sys/devices/system/node/node0")
    relink(tree / "etc/sysctl.d", "/etc/sysctl.d")
    relink(tree / "usr/lib/sysctl.d", "../../../../../../../..//etc")
    relink(tree / "proc/1", "/proc/self")
    relink(tree / "proc/self/mountinfo", "/proc/1/mountinfo")
    seen, facts = audited_probe(tree)
    assert "error" not in facts, facts
    assert outside(tree, seen) == []
    parse_facts(facts, str(tree))


def test_a_link_chain_longer_than_the_kernels_limit_is_a_loop(tree: Path) -> None:
    meminfo = tree / "proc/meminfo"
    meminfo.rename(tree / "proc/meminfo.real")
    chain = tree / "chain"
    chain.mkdir()
    for hop in range(1000):  # chain/0 -> chain/1 -> ... -> chain/999 -> the real file
        (chain / str(hop)).symlink_to(f"{hop + 1}" if hop < 999 else "../proc/meminfo.real")

    def links_to_meminfo(count: int) -> dict[str, Any]:
        """/proc/meminfo reached through ``count`` links: itself, then chain/N .. chain/999."""
        meminfo.unlink(missing_ok=True)
        meminfo.symlink_to(f"../chain/{1001 - count}")
        return probe(tree)

    loop = "cannot read /proc/meminfo: Too many levels of symbolic links"
    facts = links_to_meminfo(1000)
    assert loop in facts["warnings"]
    assert any(w.startswith("no /proc/meminfo") or "summed over the 2 NUMA" in w for w in facts["warnings"])
    assert loop in links_to_meminfo(MAX_HOPS + 1)["warnings"]
    facts = links_to_meminfo(MAX_HOPS)  # as many as the kernel follows: read
    assert facts["memory"]["mem_total_kb"] == 6077484
    assert facts["warnings"] == []


def test_a_link_past_the_hop_limit_never_falls_through_to_this_machine(tree: Path, secret: Path) -> None:
    """The bug this pins: the resolver stopped following links after 40 hops and handed the rest of the
    path to the OS, which followed the 41st link to this machine's file."""
    chain = tree / "chain"
    chain.mkdir()
    for hop in range(MAX_HOPS):
        (chain / str(hop)).symlink_to(str(hop + 1))
    (chain / str(MAX_HOPS)).symlink_to(str(secret))
    relink(tree / "proc/sys/vm/swappiness", "../../../chain/0")
    facts = probe(tree)
    assert facts["sysctl"]["vm.swappiness"] is None
    assert "cannot read /proc/sys/vm/swappiness: Too many levels of symbolic links" in facts["warnings"]


@pytest.mark.parametrize("where", ["proc/meminfo", "sys/devices/system/node", "etc/sysctl.d/99-sysctl.conf"])
def test_a_link_loop_is_a_warning_not_a_hang(tree: Path, where: str) -> None:
    relink(tree / where, "loop-b")
    relink(tree / where.rsplit("/", 1)[0] / "loop-b", os.path.basename(where))
    result = run_module(tree)
    warnings = result.get("ansible_facts", {}).get("memtune", {}).get("warnings", [result.get("msg")])
    assert any("Too many levels of symbolic links" in str(w) for w in warnings), result


def test_a_fifo_is_never_opened(tree: Path) -> None:
    for path in ("proc/sys/vm/swappiness", "proc/meminfo", "etc/sysctl.d/50-fifo.conf"):
        (tree / path).unlink(missing_ok=True)
        os.mkfifo(tree / path)
    result = run_module(tree)  # a blocking open would wait for a writer forever (the run's timeout)
    facts = result["ansible_facts"]["memtune"]
    assert "/proc/sys/vm/swappiness is a FIFO: not read" in facts["warnings"]
    assert "/etc/sysctl.d/50-fifo.conf is a FIFO: not read" in facts["warnings"]
    assert facts["sysctl"]["vm.swappiness"] is None
    assert facts["memory"]["mem_total_kb"] == 6077484  # summed over the nodes: /proc/meminfo is a FIFO
    parse_facts(facts, str(tree))


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_a_device_node_is_never_opened(tree: Path) -> None:
    (tree / "proc/cmdline").unlink()
    os.mknod(tree / "proc/cmdline", 0o600 | 0o020000, os.makedev(1, 5))  # a character device: /dev/zero
    relink(tree / "sys/class/dmi/id/product_name", "/dev/zero")
    facts = probe(tree)
    assert "/proc/cmdline is a character device: not read" in facts["warnings"]
    assert facts["kernel"]["cmdline"] is None


def test_a_huge_file_is_not_read_into_memory(tree: Path) -> None:
    huge = tree / "etc/sysctl.d/60-huge.conf"
    with huge.open("wb") as handle:
        handle.truncate(1 << 30)  # sparse: 1 GiB of zeros that take no disk
    (tree / "proc/cmdline").write_text("x" * (MAX_READ + 1))
    facts = probe(tree)
    assert f"/etc/sysctl.d/60-huge.conf is larger than {MAX_READ} bytes: not read" in facts["warnings"]
    assert f"/proc/cmdline is larger than {MAX_READ} bytes: not read" in facts["warnings"]
    assert facts["kernel"]["cmdline"] is None
    (tree / "proc/cmdline").write_text("x" * MAX_READ)  # at the cap: read
    assert probe(tree)["kernel"]["cmdline"] == "x" * MAX_READ


def test_a_nul_byte_in_a_path_from_the_tree_is_a_miss(tree: Path) -> None:
    tree_view = Tree(str(tree))
    assert tree_view.read("/proc/\0meminfo", optional=True) is None
    assert tree_view.exists("/proc/\0meminfo") is False
    assert tree_view.listdir("/proc/\0") == []


def test_the_live_root_is_read_as_it_is() -> None:
    live = Tree("/")
    assert live.live
    assert live.path("/proc/meminfo") == "/proc/meminfo"
    assert live.realpath("/proc/self") == os.path.realpath("/proc/self")
    assert live.read("/proc/meminfo", optional=True)


PY38 = sorted(Path.home().glob(".pyenv/versions/3.8.*/bin/python"))


@pytest.mark.skipif(not PY38, reason="no Python 3.8 under ~/.pyenv (the oldest target-side Python)")
def test_probe_under_python38(rpmdb: bytes, tmp_path: Path) -> None:
    """The collector on every captured tree and on hostile copies (workload instances in a pod included,
    and a real RPM database), under Python 3.8 (no pytest there)."""
    script = Path(__file__).with_name("py38_hostile_trees.py")
    database = tmp_path / "rpmdb.sqlite"
    database.write_bytes(rpmdb)
    done = subprocess.run(
        [str(PY38[-1]), str(script), str(database)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    probed = len(HOSTS) + 16  # every captured tree, then the hostile copies of numa2 (5 with an rpmdb)
    assert "python 3.8." in done.stdout and f" {probed} trees probed" in done.stdout, done.stdout
