"""Guests are stopped by their pidfiles, and only a process started with that pidfile is signalled."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def lab_shell(lab_dir: Path, run: Path, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f'set -euo pipefail; source "{lab_dir}/common.sh"; {script}'],
        env={"PATH": "/usr/bin:/bin", "HOME": str(run), "MEMTUNE_LAB_RUN": str(run)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}/cmdline").exists() and Path(f"/proc/{pid}/cmdline").read_bytes() != b""


@pytest.fixture
def processes() -> Iterator[list[int]]:
    started: list[int] = []
    yield started
    for pid in started:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def fake_guest(run: Path, name: str, processes: list[int], *, claims_pidfile: bool) -> int:
    """A daemonized sleep standing in for QEMU; its command line names the pidfile if claims_pidfile."""
    pidfile = run / name / "qemu.pid"
    pidfile.parent.mkdir(parents=True)
    argv0 = f"qemu-system-x86_64 -pidfile {pidfile}" if claims_pidfile else "sleep"
    launcher = f'(exec -a "{argv0}" sleep 300) >/dev/null 2>&1 & echo $!'
    pid = int(
        subprocess.run(["setsid", "bash", "-c", launcher], capture_output=True, text=True, check=True).stdout
    )
    processes.append(pid)
    pidfile.write_text(f"{pid}\n")
    return pid


def wait_gone(pid: int) -> bool:
    for _ in range(50):
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_stop_all_guests_stops_each_by_its_pidfile(
    lab_dir: Path, tmp_path: Path, processes: list[int]
) -> None:
    fake_guest(tmp_path, "a", processes, claims_pidfile=True)
    fake_guest(tmp_path, "b", processes, claims_pidfile=True)
    result = lab_shell(lab_dir, tmp_path, "stop_all_guests")
    assert result.returncode == 0, result.stderr
    assert all(wait_gone(pid) for pid in processes)
    assert "sending SIGKILL" not in result.stderr
    assert not list(tmp_path.glob("*/qemu.pid"))


def test_a_stale_pidfile_never_signals_another_process(
    lab_dir: Path, tmp_path: Path, processes: list
) -> None:
    fake_guest(tmp_path, "stale", processes, claims_pidfile=False)
    result = lab_shell(lab_dir, tmp_path, "stop_all_guests")
    assert result.returncode == 0, result.stderr
    assert alive(processes[0])
    assert not (tmp_path / "stale" / "qemu.pid").exists()


def test_no_script_stops_processes_by_name(lab_dir: Path) -> None:
    for path in lab_dir.glob("*.sh"):
        text = path.read_text()
        for command in ("pkill", "killall", "pidof"):
            assert command not in text, f"{path.name} uses {command}"
