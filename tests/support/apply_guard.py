"""Save every kernel value and file that memory_apply (or the tune action) may touch on this machine, and put
each one back after the test, pass or fail. Used by tests/live/test_apply_live.py and test_tune_live.py."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from glob import glob
from pathlib import Path

import pytest

TEST_LOCK = Path("/run/lock/memtune-tests.lock")
VM = Path("/proc/sys/vm")
REPO = Path(__file__).resolve().parents[2]
THP = Path("/sys/kernel/mm/transparent_hugepage")
NODES = Path("/sys/devices/system/node")
ZSWAP = Path("/sys/module/zswap/parameters")
ZSWAP_SETTINGS = ("enabled", "max_pool_percent", "accept_threshold_percent", "shrinker_enabled")  # memtune's
# Write-only triggers, and the host-wide pool counts that follow from the per-node ones restored below.
VM_SKIP = {"compact_memory", "drop_caches", "stat_refresh", "nr_hugepages", "nr_hugepages_mempolicy"}
# Knobs the kernel raises by itself when memory is added (memory hot-plug, or memory onlined lazily as on
# this VM: init_per_zone_wmark_min and khugepaged recompute vm.min_free_kbytes). Issue 13: a "nothing
# changed" check compares what the code under test may write, not what the kernel moves on its own.
KERNEL_RAISED_ON_HOTPLUG = {"min_free_kbytes"}
LEDGER_DIR = "/var/lib/memtune"
FILE_GLOBS = (
    "/etc/sysctl.d/*memtune*",
    "/etc/memtune",
    "/var/lib/memtune",
    "/etc/systemd/system/*memtune*",
    "/etc/systemd/system/*/*memtune*",
)


def _read_writable(directory: Path, skip: set[str] = frozenset()) -> dict[str, str]:  # type: ignore[assignment]
    values = {}
    for path in sorted(directory.iterdir()):
        if path.name in skip or not path.is_file() or not path.stat().st_mode & 0o200:
            continue
        try:
            values[path.name] = path.read_text()
        except OSError:
            continue
    return values


def mem_total_kb() -> int:
    with open("/proc/meminfo") as meminfo:
        return int(meminfo.readline().split()[1])  # the first line is MemTotal


def _without_ledger(files: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    return {path: entry for path, entry in files.items() if not path.startswith(LEDGER_DIR)}


def pool_files() -> list[Path]:
    return sorted(Path(p) for p in glob(str(NODES / "node*/hugepages/hugepages-*kB/nr_hugepages")))


def thp_choice(text: str) -> str:
    return next((w[1:-1] for w in text.split() if w.startswith("[")), text.strip())


class HostState:
    """What the machine looked like: /proc/sys/vm, THP, zswap, hugepage pools, memtune's files."""

    def __init__(self) -> None:
        self.vm = _read_writable(VM, VM_SKIP)
        self.mem_total_kb = mem_total_kb()
        self.thp = {name: thp_choice((THP / name).read_text()) for name in ("enabled", "defrag")}
        self.zswap = {name: (ZSWAP / name).read_text() for name in ZSWAP_SETTINGS if (ZSWAP / name).exists()}
        self.pools = {path: path.read_text().strip() for path in pool_files()}
        self.files = self._files()

    @staticmethod
    def _files() -> dict[str, tuple[str, str]]:
        """{path: (kind, content)} for memtune's files, links and directories (and what is inside them)."""
        paths = []
        for pattern in FILE_GLOBS:
            for top in glob(pattern):
                paths.append(top)
                if os.path.isdir(top) and not os.path.islink(top):
                    for root, dirs, files in os.walk(top):
                        paths += [os.path.join(root, name) for name in dirs + files]
        found = {}
        for path in paths:
            if os.path.islink(path):
                found[path] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                found[path] = ("dir", "")
            else:
                found[path] = ("file", Path(path).read_text())
        return found

    def differences(self, other: HostState) -> list[str]:
        """What changed, the host ledger aside: a rollback to the original values keeps the ledger (its
        originals and history), which tests/unit/remote/apply/test_lifecycle_on_tree.py checks byte for byte;
        restore() puts it back as it was all the same."""
        problems = [
            f"vm.{k}: {self.vm[k]!r} now {other.vm.get(k)!r}"
            for k in self.vm
            if other.vm.get(k) != self.vm[k] and not self._kernel_raised(other, k)
        ]
        problems += [f"thp {k}: {v} now {other.thp[k]}" for k, v in self.thp.items() if other.thp[k] != v]
        problems += [
            f"zswap {k}: {v!r} now {other.zswap.get(k)!r}"
            for k, v in self.zswap.items()
            if other.zswap.get(k) != v
        ]
        problems += [
            f"{p}: {v} now {other.pools.get(p)}" for p, v in self.pools.items() if other.pools.get(p) != v
        ]
        mine, theirs = _without_ledger(self.files), _without_ledger(other.files)
        if mine != theirs:
            problems.append(f"memtune files: {sorted(mine)} now {sorted(theirs)}")
        return problems

    def _kernel_raised(self, other: HostState, knob: str) -> bool:
        """``knob`` rose between the two states while memory was added: the kernel's doing, not the test's."""
        if knob not in KERNEL_RAISED_ON_HOTPLUG or other.mem_total_kb <= self.mem_total_kb:
            return False
        return int(other.vm.get(knob) or 0) > int(self.vm[knob])

    def restore(self) -> None:
        """Put back whatever differs. A *_bytes knob the kernel zeroed when its *_ratio twin was written back
        refuses 0 (EINVAL); writing the twin is what restores it."""
        for path in pool_files():
            if path.read_text().strip() != self.pools.get(path, "0"):
                path.write_text(self.pools.get(path, "0"))
        for name in ("enabled", "defrag"):
            if thp_choice((THP / name).read_text()) != self.thp[name]:
                (THP / name).write_text(self.thp[name])
        for name, text in self.zswap.items():
            if (ZSWAP / name).read_text() != text:
                (ZSWAP / name).write_text(text)
        now = _read_writable(VM, VM_SKIP)
        for name, value in self.vm.items():
            if now.get(name) != value:
                try:
                    (VM / name).write_text(value)
                except OSError as exc:
                    if exc.errno != errno.EINVAL or value.strip() != "0":
                        raise
        current = self._files()
        for path in sorted(set(current) - set(self.files), key=len, reverse=True):
            if current[path][0] == "dir":
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.lexists(path):
                os.unlink(path)
        for path, (kind, content) in sorted(self.files.items()):
            if current.get(path) == (kind, content):
                continue
            if kind == "dir":
                os.makedirs(path, exist_ok=True)
            elif kind == "link":
                if os.path.lexists(path):
                    os.unlink(path)
                os.symlink(content, path)
            else:
                Path(path).write_text(content)


def memory_cgroup_root() -> Path | None:
    """The mount point of the memory controller's hierarchy (cgroup v1 memory, or v2 with memory enabled)."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fs_type, _, options = right.split()[:3]
        mount = Path(left.split()[4])
        if fs_type == "cgroup" and "memory" in options.split(","):
            return mount
        enabled = fs_type == "cgroup2" and "memory" in (mount / "cgroup.controllers").read_text().split()
        if enabled and "memory" in (mount / "cgroup.subtree_control").read_text().split():
            return mount
    return None


@pytest.fixture
def host_guard() -> Iterator[HostState]:
    """The machine's state before the test; restored afterwards, and the test errors if it could not be.
    Tests that change this machine's kernel take TEST_LOCK for their whole length, so two such test runs
    (pytest processes, or anything else that honours the lock) do not undo each other's changes."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the test writes this machine's kernel settings")
    TEST_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with TEST_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        original = HostState()
        try:
            if original.files:
                roll_back_memtune()
            yield HostState()
        finally:
            original.restore()
            problems = original.differences(HostState())
            assert not problems, "could not restore: " + "; ".join(problems)


def roll_back_memtune() -> None:
    """A host memtune already tuned (someone ran `make run APPLY=1`): start the test from the untuned host;
    host_guard puts the tuned state back afterwards."""
    args = Path(tempfile.mkdtemp()) / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"state": "absent"}}))
    module = REPO / "plugins" / "modules" / "memory_apply.py"
    done = subprocess.run(
        [sys.executable, str(module), str(args)],
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        check=False,
    )
    shutil.rmtree(args.parent)
    assert '"failed"' not in done.stdout and done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def scratch_cgroup() -> Iterator[Path]:
    """An empty memory cgroup for the test; its processes are killed and it is removed afterwards."""
    root = memory_cgroup_root()
    if root is None:
        pytest.skip("no memory cgroup hierarchy on this machine")
    group = root / f"memtune-test-{os.getpid()}"
    group.mkdir()
    try:
        yield group
    finally:
        for pid in (group / "cgroup.procs").read_text().split():
            os.kill(int(pid), signal.SIGKILL)
        for _ in range(100):
            try:
                group.rmdir()
                break
            except OSError:
                os.sched_yield()
