"""Class 5 of issue 14: one host's bad facts are that host's error. Deep or huge JSON, named pipes and
devices (never opened blocking), dangling links and two files for one host are each reported for their
host while the other hosts are planned and audited; the exit code is 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from memtune.hosts.files import MAX_FACTS_BYTES

GOOD = ("numa2", "numa3", "small")
MEMTUNE = [sys.executable, "-c", "from memtune.cli.main import main; main()"]


def _spoil(directory: Path, case: str) -> tuple[str, str]:
    """Put one bad entry named after its case in ``directory``; -> (host, what its error says)."""
    if case == "deep":
        (directory / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
        return "deep", "deep.json: JSON nested too deeply"
    if case == "huge":
        with (directory / "huge.json").open("wb") as file:
            file.truncate(MAX_FACTS_BYTES + 1)  # sparse: costs no disk
        return "huge", f"bytes, more than facts can be ({MAX_FACTS_BYTES})"
    if case == "fifo":
        os.mkfifo(directory / "fifo.json")  # opened blocking, it would wait for a writer forever
        return "fifo", "fifo.json: not a regular file (a named pipe)"
    if case == "device":
        (directory / "device.json").symlink_to("/dev/zero")  # read to the end, it never ends
        return "device", "device.json: not a regular file (a character device)"
    if case == "dangling":
        (directory / "dangling.json").symlink_to("gone.json")
        return "dangling", "dangling.json: a symbolic link to 'gone.json', which does not exist"
    if case == "collision":
        (directory / "s1_small").write_text((directory / "small.json").read_text())  # a fact cache entry
        return "small", "s1_small and "
    if case == "unreadable":  # a file even root cannot read: its first page is not mapped
        (directory / "unreadable.json").symlink_to("/proc/self/mem")
        return "unreadable", "unreadable.json: cannot read: Input/output error"
    if case == "not-json":
        (directory / "broken.json").write_text('{"schema_version": 1,')
        return "broken", "broken.json:1:22: not JSON"
    raise AssertionError(case)


CASES = ["deep", "huge", "fifo", "device", "dangling", "unreadable", "collision", "not-json"]


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """In a process of its own with a timeout: a blocking open of a pipe must fail the test, not hang it."""
    return subprocess.run(
        [*MEMTUNE, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("case", CASES)
def test_audit_reports_the_bad_host_and_audits_the_others(facts_dir: Path, case: str) -> None:
    host, message = _spoil(facts_dir, case)
    done = _run("audit", "--facts", facts_dir, "--format", "json")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    audited = {entry["host"] for entry in report["hosts"]}
    assert set(GOOD) - {host} <= audited
    errors = {entry["host"]: entry["message"] for entry in report["errors"]}
    assert message in errors[host], errors


@pytest.mark.parametrize("case", CASES)
def test_plan_reports_the_bad_host_and_plans_the_others(facts_dir: Path, case: str) -> None:
    host, message = _spoil(facts_dir, case)
    done = _run("plan", "--facts", facts_dir, "--format", "json")
    assert done.returncode == 2, done.stderr
    planned = json.loads(done.stdout)
    assert set(GOOD) - {host} <= set(planned)
    assert host not in planned
    assert any(message in line for line in done.stderr.splitlines()), done.stderr


def test_plan_table_lists_every_host_error(cli: Callable[..., Any], facts_dir: Path) -> None:
    for case in ("deep", "dangling", "not-json"):
        _spoil(facts_dir, case)
    result = cli("plan", "--facts", facts_dir)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 3, result.stderr
    for host in GOOD:
        assert host in result.stdout


def test_baseline_record_and_diff_keep_going(
    cli: Callable[..., Any], facts_dir: Path, tmp_path: Path
) -> None:
    _spoil(facts_dir, "dangling")
    recorded = cli("baseline", "record", "--facts", facts_dir, "--output", tmp_path / "base.json")
    assert recorded.exit_code == 2 and "dangling.json" in recorded.stderr
    assert set(json.loads((tmp_path / "base.json").read_text())["hosts"]) >= set(GOOD)
    policies = Path(__file__).resolve().parents[3] / "policies"
    diff = cli("diff", "--facts", facts_dir, "--policy-new", policies, "--format", "json")
    assert diff.exit_code == 2 and "dangling" in diff.stdout


def test_explain_reads_only_the_host_it_explains(cli: Callable[..., Any], facts_dir: Path) -> None:
    for case in ("deep", "fifo", "dangling", "not-json"):
        _spoil(facts_dir, case)
    result = cli("explain", "--facts", facts_dir, "--host", "numa2", "vm.swappiness")
    assert result.exit_code == 0, result.stderr
    assert "vm.swappiness" in result.stdout


def test_facts_given_as_a_named_pipe_are_refused_not_waited_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "db01.json")
    done = _run("plan", "--facts", tmp_path / "db01.json")
    assert done.returncode == 2
    assert "db01.json: not a regular file (a named pipe)" in done.stderr
