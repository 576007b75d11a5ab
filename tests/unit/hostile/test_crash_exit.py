"""Class 1 of issue 14: a crash is never drift. An unexpected exception, an output that cannot be written
and Ctrl-C each end with their own exit code (memtune.cli.errors), one line on stderr, no traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleActionFail

import memtune.cli.main
from ansible_collections.memtune.fleet.plugins.action import audit, fleet_report, tune
from ansible_collections.memtune.fleet.plugins.plugin_utils.action_base import fail_on_bug
from memtune.cli.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OUTPUT, EXIT_PIPE

MEMTUNE = [sys.executable, "-c", "from memtune.cli.main import main; main()"]


def _boom(*_: Any, **__: Any) -> Any:
    raise RuntimeError("a bug planted by the test\nsecond line")


def test_unexpected_exception_exits_70_with_one_line(cli: Callable[..., Any], monkeypatch: Any) -> None:
    monkeypatch.setattr(memtune.cli.main, "policy_json_schema", _boom)
    result = cli("schema")
    assert result.exit_code == EXIT_INTERNAL
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "internal error (a bug in memtune" in lines[0]
    assert "RuntimeError: a bug planted by the test" in lines[0]
    assert "MEMTUNE_DEBUG=1" in lines[0]
    assert "Traceback" not in result.output + result.stderr


def test_debug_variable_adds_the_traceback(cli: Callable[..., Any], monkeypatch: Any) -> None:
    monkeypatch.setattr(memtune.cli.main, "policy_json_schema", _boom)
    monkeypatch.setenv("MEMTUNE_DEBUG", "1")
    result = cli("schema")
    assert result.exit_code == EXIT_INTERNAL
    assert "Traceback" in result.stderr and "_boom" in result.stderr


def test_a_crash_in_a_worker_process_is_a_crash_too(
    cli: Callable[..., Any], facts_dir: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(memtune.hosts.jobs, "drift", _boom)
    result = cli("audit", "--facts", facts_dir, "--jobs", "2")
    assert result.exit_code == EXIT_INTERNAL, result.stderr
    assert "RuntimeError" in result.stderr


def test_full_disk_on_stdout_is_an_output_error() -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run([*MEMTUNE, "schema"], stdout=full, capture_output=False, stderr=subprocess.PIPE)
    assert done.returncode == EXIT_OUTPUT
    assert done.stderr.decode() == "error: cannot write the output: No space left on device\n"


def _fleet(tmp_path: Path, captured: dict[str, Any], hosts: int) -> Path:
    """``hosts`` hosts with numa2's facts (links to one file: the facts are read, not the links)."""
    directory = tmp_path / "fleet"
    directory.mkdir()
    first = directory / "host00000.json"
    first.write_text(json.dumps(captured["numa2"]))
    for index in range(1, hosts):
        (directory / f"host{index:05d}.json").symlink_to(first.name)
    return directory


@pytest.mark.parametrize(
    "command",
    [("plan",), ("plan", "--format", "json"), ("audit",), ("audit", "--format", "json"), ("schema",)],
    ids=" ".join,
)
def test_closed_stdout_ends_quietly(
    tmp_path: Path, captured: dict[str, Any], command: tuple[str, ...]
) -> None:
    """`memtune ... | head -1` once head has gone: exit 141, the status of a process killed by SIGPIPE,
    and nothing on stderr (the reader closes its end before memtune writes, so no pipe buffer hides it)."""
    fleet = _fleet(tmp_path, captured, 3)
    facts = [] if command == ("schema",) else ["--facts", str(fleet)]
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [*MEMTUNE, *command, *facts], stdout=write_end, stderr=subprocess.PIPE, timeout=60
        )
    finally:
        os.close(write_end)
    assert done.returncode == EXIT_PIPE, done.stderr
    assert done.stderr == b""


def _children(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


def test_ctrl_c_exits_130_without_worker_tracebacks(tmp_path: Path, captured: dict[str, Any]) -> None:
    fleet = _fleet(tmp_path, captured, 40000)
    process = subprocess.Popen(
        [*MEMTUNE, "audit", "--facts", str(fleet), "--jobs", "2", "--format", "json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    while len(_children(process.pid)) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # until the worker processes run
    time.sleep(0.3)
    assert process.poll() is None, "the audit ended before it could be interrupted: make the fleet bigger"
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C does: to the whole process group
    code = process.wait(timeout=60)
    stderr = process.stderr.read().decode()
    assert code == EXIT_INTERRUPTED, stderr
    assert stderr.strip() == "interrupted"


def action_raising(error: Exception) -> Any:
    """An action whose run, wrapped as the actions' are (fail_on_bug), raises ``error``."""

    class Action:
        @fail_on_bug
        def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
            raise error

    return Action()


def test_actions_fail_the_task_with_the_message() -> None:
    for module in (tune, audit, fleet_report):
        assert getattr(module.ActionModule.run, "__wrapped__", None) is not None, module.__name__

    with pytest.raises(AnsibleActionFail, match=r"memtune internal error \(a bug.*KeyError: 'facts'.*-vvv"):
        action_raising(KeyError("facts")).run()


def test_actions_pass_their_own_failures_through() -> None:
    with pytest.raises(AnsibleActionFail, match=r"^policy error for db01"):
        action_raising(AnsibleActionFail("policy error for db01: x.yml:3: bad")).run()


@pytest.fixture
def full_directory(tmp_path: Path) -> Any:
    """A directory on a tmpfs of 16 KiB, already full: a real ENOSPC for a --save file (root only)."""
    mount = tmp_path / "full"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        with (mount / "filler").open("wb") as filler, pytest.raises(OSError):
            filler.write(b"\0" * (1 << 20))
            filler.flush()
            os.fsync(filler.fileno())
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_under_save_is_an_output_error_not_bad_input(
    cli: Callable[..., Any], facts_dir: Path, full_directory: Path
) -> None:
    result = cli("audit", "--facts", facts_dir, "--save", f"json={full_directory / 'audit.json'}")
    assert result.exit_code == EXIT_OUTPUT, result.stderr
    assert f"{full_directory / 'audit.json'}: cannot write: No space left on device" in result.stderr
    assert not (full_directory / "audit.json").exists()
