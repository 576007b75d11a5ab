"""The pure renderers and parsers behind memory_apply, its atomic writer, lock and snapshot file, and the
hugepage allocation loop (driven here by a kernel that gives fewer pages than asked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._apply.runtime import allocate_pool
from ansible_collections.memtune.fleet.plugins.module_utils._host import persist as _persist
from ansible_collections.memtune.fleet.plugins.module_utils._host.cgroup import (
    below_usage,
    kernel_value,
    parse_systemctl_show,
    raw_write,
    read_raw,
    render_dropin,
)
from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree

REPO = Path(__file__).resolve().parents[4]


def test_render_sysctl_sorts_keys_and_has_the_header() -> None:
    text = _persist.render_sysctl({"vm.swappiness": 10, "kernel.numa_balancing": 0})
    assert text is not None and text.startswith("# Managed by memtune")
    assert text.splitlines()[-2:] == ["kernel.numa_balancing = 0", "vm.swappiness = 10"]
    assert _persist.render_sysctl({}) is None


def test_boot_unit_runs_tmpfiles_before_sysinit() -> None:
    conf = _persist.render_boot_conf([("/sys/kernel/mm/transparent_hugepage/enabled", "madvise")])
    assert conf is not None and conf.endswith(
        "w /sys/kernel/mm/transparent_hugepage/enabled - - - - madvise\n"
    )
    unit = _persist.render_boot_unit("/usr/bin/systemd-tmpfiles")
    assert "ExecStart=/usr/bin/systemd-tmpfiles --create /etc/memtune/boot-tmpfiles.conf\n" in unit
    assert "Before=sysinit.target shutdown.target\n" in unit and "DefaultDependencies=no\n" in unit
    assert "WantedBy=sysinit.target\n" in unit


def test_atomic_write_creates_dirs_sets_mode_and_leaves_no_temp(tmp_path: Path) -> None:
    created: list[str] = []
    target = tmp_path / "etc" / "sysctl.d" / "90-memtune.conf"
    _persist.atomic_write(str(target), "vm.swappiness = 10\n", created_dirs=created)
    assert target.read_text() == "vm.swappiness = 10\n"
    assert target.stat().st_mode & 0o777 == 0o644
    assert created == [str(tmp_path / "etc"), str(tmp_path / "etc" / "sysctl.d")]
    _persist.atomic_write(str(target), "vm.swappiness = 20\n", mode=0o600)
    assert target.read_text() == "vm.swappiness = 20\n" and target.stat().st_mode & 0o777 == 0o600
    assert os.listdir(target.parent) == ["90-memtune.conf"]
    _persist.remove_empty_dirs(created)
    assert (tmp_path / "etc").exists()  # not empty
    target.unlink()
    _persist.remove_empty_dirs(created)
    assert not (tmp_path / "etc").exists()


def test_snapshot_keeps_the_first_value_and_refuses_a_damaged_file(tmp_path: Path) -> None:
    snapshot = _persist.new_snapshot()
    _persist.remember(snapshot["runtime"], "sysctl", "vm.swappiness", 60)
    _persist.remember(snapshot["runtime"], "sysctl", "vm.swappiness", 10)
    path = tmp_path / "snapshot.json"
    _persist.save_snapshot(str(path), snapshot)
    loaded = _persist.load_snapshot(str(path))
    assert loaded is not None and loaded["runtime"]["sysctl"] == {"vm.swappiness": 60}
    assert path.stat().st_mode & 0o777 == 0o600
    assert _persist.load_snapshot(str(tmp_path / "absent.json")) is None
    path.write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        _persist.load_snapshot(str(path))
    path.write_text(json.dumps({"version": 7}))
    with pytest.raises(ValueError, match="not a memtune snapshot of version 1"):
        _persist.load_snapshot(str(path))


def test_a_second_run_waits_for_the_lock_then_gives_up(tmp_path: Path) -> None:
    lock = tmp_path / "run" / "memtune.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import sys, time; sys.path.insert(0, {str(REPO)!r})\n"
            "from ansible_collections.memtune.fleet.plugins.module_utils._host.persist import HostLock\n"
            f"with HostLock({str(lock)!r}, 5):\n    print('held', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with (
            pytest.raises(_persist.LockTimeout, match=rf"another memtune run \(pid {holder.pid}\)"),
            _persist.HostLock(str(lock), 0.3),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()
    with _persist.HostLock(str(lock), 1):
        assert lock.read_text() == f"{os.getpid()}\n"


class StingyKernel:
    """A pool that gets ``grant`` more pages per compaction, up to ``limit``."""

    def __init__(self, limit: int, grant: int) -> None:
        self.limit, self.grant, self.free, self.nr, self.compactions = limit, grant, grant, 0, 0

    def write(self, count: int) -> None:
        self.nr = min(count, self.free)

    def compact(self) -> None:
        self.compactions += 1
        self.free = min(self.limit, self.free + self.grant)


@pytest.mark.parametrize(
    ("requested", "limit", "grant", "retries", "expected"),
    [
        (100, 1000, 1000, 3, (100, 0)),  # fits at once: no compaction
        (100, 1000, 40, 3, (100, 2)),  # 40, then 80, then 100 after the second compaction
        (100, 50, 20, 3, (50, 3)),  # never fits: gives up after the retries
        (100, 50, 20, 0, (20, 0)),
    ],
)
def test_allocate_pool_compacts_a_bounded_number_of_times(
    requested: int, limit: int, grant: int, retries: int, expected: tuple[int, int]
) -> None:
    """-> (allocated, compactions)."""
    kernel = StingyKernel(limit, grant)
    assert allocate_pool(kernel.write, lambda: kernel.nr, kernel.compact, requested, retries) == expected
    assert kernel.compactions == expected[1]


def test_parse_systemctl_show() -> None:
    text = (
        "LoadState=loaded\nMemoryCurrent=73400320\nMemoryMax=infinity\nMemoryLow=0\nMemorySwapMax=[not set]\n"
    )
    assert parse_systemctl_show(text) == {
        "LoadState": "loaded",
        "MemoryCurrent": 73400320,
        "MemoryMax": "infinity",
        "MemoryLow": 0,
        "MemorySwapMax": "[not set]",
    }


def test_dropin_section_follows_the_unit_type() -> None:
    assert render_dropin("db.service", {"MemoryMax": 5, "MemoryHigh": 4}, "# h\n") == (
        "# h\n[Service]\nMemoryHigh=4\nMemoryMax=5\n"
    )
    assert render_dropin("batch.slice", {"MemoryMax": "infinity"}, "").startswith("[Slice]\n")


def test_limits_are_whole_pages_and_usage_guards_capping_limits() -> None:
    page = os.sysconf("SC_PAGE_SIZE")
    assert kernel_value(10 * page + 1) == 10 * page
    assert kernel_value("infinity") == "infinity"
    assert below_usage({"MemoryMax": 100, "MemoryLow": 10, "MemoryHigh": "infinity"}, 200) == ["MemoryMax"]
    assert below_usage({"MemoryMax": 100}, None) == []


@pytest.mark.parametrize(
    ("files", "flavor", "limits", "usage"),
    [
        (
            {"memory.max": "max", "memory.high": "1048576", "memory.current": "4096"},
            "v2",
            {"MemoryMax": "infinity", "MemoryHigh": 1048576},
            4096,
        ),
        (
            {"memory.limit_in_bytes": "9223372036854771712", "memory.usage_in_bytes": "8192"},
            "v1",
            {"MemoryMax": "infinity"},
            8192,
        ),
    ],
)
def test_read_raw_cgroup(
    tmp_path: Path, files: dict[str, str], flavor: str, limits: dict[str, object], usage: int
) -> None:
    group = tmp_path / "sys/fs/cgroup/job"
    group.mkdir(parents=True)
    for name, text in files.items():
        (group / name).write_text(text + "\n")
    info = read_raw(Tree(str(tmp_path)), "/sys/fs/cgroup/job", ["MemoryHigh", "MemoryMax"])
    assert info["flavor"] == flavor
    assert info["usage"] == usage
    assert {k: v for k, v in info["limits"].items()} == limits
    assert info["unsupported"] == ([] if flavor == "v2" else ["MemoryHigh"])
    assert raw_write("/sys/fs/cgroup/job", flavor, "MemoryMax", "infinity")[1] == (
        "max" if flavor == "v2" else "-1"
    )
