"""Class 7 of issue 14: ``--jobs`` is capped at the CPUs this process may use, with a note; control
characters in host names (escape sequences, carriage returns) are written out in table output, and
rich markup in them is shown as text."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from memtune.hosts.jobs import processes_for, usable_cpus
from memtune.terminal import printable


def test_jobs_beyond_the_usable_cpus_are_capped_with_a_note(cli: Callable[..., Any], facts_dir: Path) -> None:
    cpus = len(os.sched_getaffinity(0))
    result = cli("audit", "--facts", facts_dir, "--jobs", "100000", "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    assert f"note: --jobs 100000 capped at {cpus}, the CPUs this process can use" in result.stderr
    assert usable_cpus() == cpus
    assert processes_for(10, 100000) == cpus


def test_jobs_within_the_cpus_say_nothing(cli: Callable[..., Any], facts_dir: Path) -> None:
    result = cli("plan", "--facts", facts_dir, "--jobs", "1", "--format", "json")
    assert result.exit_code == 0
    assert "note:" not in result.stderr


HOSTILE = "evil\x1b[2J\x1b]0;owned\x07\r\x08[blink]host\x9b"


@pytest.mark.parametrize("command", [("plan",), ("audit",)])
def test_host_names_cannot_drive_the_terminal(
    cli: Callable[..., Any], tmp_path: Path, captured: dict[str, Any], command: tuple[str, ...]
) -> None:
    (tmp_path / f"{HOSTILE}.json").write_text(json.dumps(captured["numa2"]))
    result = cli(*command, "--facts", tmp_path)
    assert result.exit_code in (0, 1), result.stderr
    shown = result.stdout
    assert not any((ord(char) < 0x20 and char != "\n") or 0x7F <= ord(char) <= 0x9F for char in shown)
    assert "evil\\x1b[2J" in shown  # the escape written out, the rest of the name kept
    assert "[blink]host" in shown  # markup in a name is text, not style


def test_host_names_in_a_policy_diff_cannot_drive_the_terminal(
    cli: Callable[..., Any], tmp_path: Path, captured: dict[str, Any]
) -> None:
    (tmp_path / "facts").mkdir()
    (tmp_path / "facts" / f"{HOSTILE}.json").write_text(json.dumps(captured["numa2"]))
    new = tmp_path / "new.yml"
    new.write_text("layer: baseline\nname: b\nrules: [{name: r, sysctl: {vm.swappiness: 33}}]\n")
    result = cli("diff", "--facts", tmp_path / "facts", "--policy-new", new)
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout and "evil\\x1b[2J" in result.stdout


def test_host_names_in_errors_cannot_drive_the_terminal(cli: Callable[..., Any], tmp_path: Path) -> None:
    (tmp_path / f"{HOSTILE}.json").write_text("not json")
    result = cli("audit", "--facts", tmp_path)
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr + result.stdout and "\\x1b[2J" in result.stderr


def test_printable_keeps_text_and_escapes_controls() -> None:
    assert printable("db01.example.com") == "db01.example.com"
    assert printable("ünïcode-host") == "ünïcode-host"
    assert printable("a\x1bb\x7fc\x9bd\te") == "a\\x1bb\\x7fc\\x9bd\\x09e"
