"""A workload's version from its binary's own ``--version``, the last resort (issue 18): real executables
run, each at most once per probe, bounded in time and output, and only binaries root owns and nobody
else may write; on the live host only for processes of the host's own root."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._probe import run_version
from ansible_collections.memtune.fleet.plugins.module_utils._probe.run_version import VersionRuns
from ansible_collections.memtune.fleet.plugins.module_utils._probe.workloads import detect_workloads
from tests.support.processes import started_as

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="binaries must be root's to be run")


def script(tmp_path: Path, name: str, body: str, mode: int = 0o755) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(mode)
    return str(path)


@pytest.mark.parametrize(
    ("workload", "printed", "expected"),
    [
        ("redis", "Redis server v=7.2.4 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=1a2b", "7.2.4"),
        ("mongodb", "db version v7.0.5\nBuild Info: {", "7.0.5"),
        ("mysql", "mariadbd  Ver 10.11.6-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64", "10.11.6"),
        (
            "mysql",
            "/usr/sbin/mysqld  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)",
            "8.0.36",
        ),
        ("postgresql", "postgres (PostgreSQL) 15.8 (Debian 15.8-0+deb12u1)", "15.8"),
    ],
)
def test_versions_printed_by_the_servers(tmp_path: Path, workload: str, printed: str, expected: str) -> None:
    exe = script(tmp_path, "server", f"cat <<'EOF'\n{printed}\nEOF\n")
    found, evidence = VersionRuns().version(workload, exe)
    assert found == expected
    assert evidence == f"{exe} --version: {printed.splitlines()[0]}"


def test_each_binary_runs_once_per_probe(tmp_path: Path) -> None:
    count = tmp_path / "runs"
    exe = script(tmp_path, "redis-server", f'echo x >> {count}\necho "Redis server v=7.0.15 sha=0"\n')
    runs = VersionRuns()
    assert runs.version("redis", exe) == runs.version("redis", exe)
    assert runs.version("redis", exe)[0] == "7.0.15"
    assert count.read_text() == "x\n"
    assert runs.runs == 1


def test_at_most_max_runs_binaries_run_in_one_probe(tmp_path: Path) -> None:
    runs = VersionRuns()
    exes = [script(tmp_path, f"redis-{n}", 'echo "v=7.0.1"\n') for n in range(run_version.MAX_RUNS + 1)]
    answers = [runs.version("redis", exe) for exe in exes]
    assert [found for found, _ in answers] == ["7.0.1"] * run_version.MAX_RUNS + [None]
    assert answers[-1][1] == f"--version not run: {run_version.MAX_RUNS} binaries already run in this probe"
    assert runs.version("redis", exes[0])[0] == "7.0.1"  # one already run still answers


def test_a_binary_that_does_not_answer_is_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_version, "TIMEOUT", 0.5)
    pidfile = tmp_path / "pid"
    exe = script(tmp_path, "mongod", f"echo $$ > {pidfile}\nexec sleep 60\n")
    found, evidence = VersionRuns().version("mongodb", exe)
    assert (found, evidence) == (None, f"{exe} --version gave no answer in 0.5 s")
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped


def test_what_a_binary_started_is_killed_with_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_version, "TIMEOUT", 0.5)
    pidfile = tmp_path / "pid"
    exe = script(tmp_path, "mongod", f"sleep 60 &\necho $! > {pidfile}\nwait\n")
    assert VersionRuns().version("mongodb", exe)[0] is None
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{child}").exists() and Path(f"/proc/{child}/stat").read_text().split()[2] != "Z":
        assert time.monotonic() < deadline, "the binary's own child outlived it"
        time.sleep(0.01)


def test_a_binary_the_kernel_cannot_run_says_so(tmp_path: Path) -> None:
    exe = tmp_path / "redis-server"
    exe.write_bytes(b"\x7fELF not really")
    exe.chmod(0o755)
    assert VersionRuns().version("redis", str(exe)) == (
        None,
        f"{exe} --version printed nothing (exit status 127)",
    )


def test_what_a_binary_prints_is_read_up_to_a_bound(tmp_path: Path) -> None:
    exe = script(tmp_path, "redis-server", "exec yes 'no version here'\n")
    found, evidence = VersionRuns().version("redis", exe)
    assert found is None
    assert evidence == f"{exe} --version printed no redis version: 'no version here'"


def test_a_binary_that_fails_gives_null_with_what_it_said(tmp_path: Path) -> None:
    exe = script(tmp_path, "mariadbd", "echo 'mariadbd: unknown option' >&2\nexit 7\n")
    assert VersionRuns().version("mysql", exe) == (
        None,
        f"{exe} --version printed no mysql version: 'mariadbd: unknown option'",
    )


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda p: p.chmod(0o777), "is not owned by root or is writable by others"),
        (lambda p: p.chmod(0o644), "is not an executable file"),
        (lambda p: os.chown(p, 1000, 1000), "is not owned by root or is writable by others"),
        (lambda p: p.unlink(), "No such file or directory"),
    ],
    ids=["writable-by-others", "not-executable", "not-roots", "missing"],
)
def test_binaries_that_are_not_run(tmp_path: Path, setup: object, reason: str) -> None:
    count = tmp_path / "runs"
    exe = script(tmp_path, "redis-server", f"echo x >> {count}\necho 'v=1.2.3'\n")
    setup(Path(exe))  # type: ignore[operator]
    found, evidence = VersionRuns().version("redis", exe)
    assert found is None
    assert evidence.startswith("--version not run: ") and reason in evidence
    assert not count.exists()


@pytest.mark.parametrize(
    ("exe", "reason"),
    [
        ("/usr/bin/redis-server (deleted)", "was replaced on disk since it started"),
        ("redis-server", "its binary is not known"),
        ("", "its binary is not known"),
    ],
)
def test_a_replaced_or_unknown_binary_is_not_run(exe: str, reason: str) -> None:
    found, evidence = VersionRuns().version("redis", exe)
    assert found is None and reason in evidence


def test_workloads_without_a_pattern_are_not_run(tmp_path: Path) -> None:
    exe = script(tmp_path, "java", "echo 'kafka 3.7.0'\n")
    assert VersionRuns().version("kafka", exe) == (None, "no --version is read for kafka")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[str, list[int]]]:
    """Two processes of one binary named redis-server on this machine (a copy of sleep, which answers
    --version with coreutils' banner, not Redis's)."""
    exe = tmp_path / "redis-server"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", exe)
    exe.chmod(0o755)
    procs = [subprocess.Popen([str(exe), "300"]) for _ in range(2)]
    try:
        yield str(exe), [started_as(proc, "redis-server") for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_the_live_probe_runs_a_host_binary_once_for_its_instances(servers: tuple[str, list[int]]) -> None:
    exe, pids = servers
    [redis] = [w for w in detect_workloads(Tree("/")) if w["name"] == "redis"]
    mine = [i for i in redis["instances"] if i["leader"] in pids]
    assert len(mine) == 2
    for instance in mine:
        assert instance["version"] is None
        assert (
            f"{exe} --version printed no redis version: 'sleep (GNU coreutils)"
            in instance["evidence"]["version"]
        )


def test_a_captured_tree_never_runs_a_binary(tmp_path: Path, servers: tuple[str, list[int]]) -> None:
    """The same processes seen through a root that is not the live "/" (a captured tree) are read, not run."""
    exe, pids = servers
    root = tmp_path / "tree"
    (root / "proc" / str(pids[0])).mkdir(parents=True)
    (root / "proc" / str(pids[0]) / "comm").write_text("redis-server\n")
    (root / "proc" / str(pids[0]) / "exe").symlink_to(exe)
    [redis] = detect_workloads(Tree(str(root)))
    assert "--version" not in redis["instances"][0]["evidence"]["version"]
