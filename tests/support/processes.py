"""Processes a test starts on this machine under a workload's name (a copy of sleep named redis-server)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def started_as(process: subprocess.Popen[bytes], comm: str, timeout: float = 5.0) -> int:
    """The pid of ``process`` once its /proc/<pid>/comm reads ``comm``. Popen can return before the new
    program's name is set: the kernel wakes a vfork parent when the child's memory is replaced, before it
    renames the task (begin_new_exec), so a probe right after Popen may still see the old name."""
    path = Path(f"/proc/{process.pid}/comm")
    deadline = time.monotonic() + timeout
    while path.read_text().strip() != comm:
        if time.monotonic() > deadline or process.poll() is not None:
            raise AssertionError(f"pid {process.pid} is not {comm} after {timeout} s")
        time.sleep(0.005)
    return process.pid
