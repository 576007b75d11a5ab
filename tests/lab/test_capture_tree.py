"""lab/capture_tree.py --processes: the workload processes' files it keeps are what the probe reads. The
script runs alone on the captured host, so it carries copies of the probe's tables; these tests say the
copies agree, and run it on this machine."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import capture_tree
import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._host import tree as probe_tree
from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._probe import versions, workloads
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import collect
from tests.support.processes import started_as

SCRIPT = Path(capture_tree.__file__)


def test_the_workload_tables_are_the_probes() -> None:
    assert capture_tree._BY_COMM == workloads._BY_COMM
    assert capture_tree._BY_COMM_PREFIX == workloads._BY_COMM_PREFIX
    assert capture_tree._BY_JAVA_CLASS == workloads._BY_JAVA_CLASS
    assert set(capture_tree.DPKG_WORKLOADS) == set(versions.PACKAGES)
    assert capture_tree.DPKG_STATUS == versions.DPKG_STATUS
    assert tuple(flag for flag, _product in versions._JAVA_HOMES) == capture_tree.JAVA_HOMES
    assert tuple(name.encode() for name in versions.IMAGE_VARIABLES.values()) == capture_tree.KEPT_ENVIRON
    assert capture_tree.ROOT_MAX_READ == workloads.ROOT_MAX_READ
    assert capture_tree.MAX_HOPS == probe_tree.MAX_HOPS


@pytest.mark.parametrize(
    ("comm", "cmdline"),
    [
        ("postgres", ""),
        ("mariadbd", ""),
        ("qemu-system-x86", ""),
        ("ora_pmon_orcl", ""),
        ("java", "java -cp x org.opensearch.bootstrap.OpenSearch"),
        ("java", "java -jar other.jar"),
        ("bash", ""),
        ("postgres-exporter", ""),
    ],
)
def test_classify_decides_as_the_probe(comm: str, cmdline: str) -> None:
    assert capture_tree.classify(comm, lambda: cmdline) == workloads.classify(comm, lambda: cmdline)


@pytest.mark.parametrize(
    "argv",
    [["postgres", "-D", "/srv/pg"], ["postgres", "-D/srv/pg"], ["postgres", "-D"], ["postgres: walwriter "]],
)
def test_data_dir_is_the_probes(argv: list[str]) -> None:
    assert capture_tree.data_dir(argv) == versions.data_dir(argv)


@pytest.mark.parametrize(
    ("environ", "kept"),
    [
        (b"PATH=/bin\0REDIS_VERSION=7.4.1\0REDIS_PASSWORD=s3cret\0", b"REDIS_VERSION=7.4.1\0"),
        (b"HOME=/root\0PGPASSWORD=s3cret\0", b""),
        (b"\0" * 40, b"\0" * 40),  # a redis-server's title over its environment: nothing secret in it
        (b"", b""),
    ],
)
def test_the_environment_keeps_redis_version_alone(environ: bytes, kept: bytes) -> None:
    assert capture_tree.reduced_environ(environ) == kept


def extract(data: bytes, into: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(into, filter="tar")


def copied(root: Path, path: str, kind: str = "file") -> Path:
    """The tree copy_confined makes of ``path`` as seen from ``root``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        capture_tree.copy_confined(archive, set(), str(root), "/proc/9/root", path, kind=kind)
    out = root.parent / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    extract(buffer.getvalue(), out)
    return out / "proc/9/root"


def test_links_on_the_way_to_a_version_file_are_kept_and_followed_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "container"
    (root / "etc/dpkg").mkdir(parents=True)
    (root / "etc/dpkg/status").write_text("Package: redis-server\n")
    (root / "var/lib").mkdir(parents=True)
    (root / "var/lib/dpkg").symlink_to("/etc/dpkg")  # absolute: inside the container, not this machine's
    out = copied(root, "/var/lib/dpkg/status")
    assert os.readlink(out / "var/lib/dpkg") == "/etc/dpkg"
    assert (out / "etc/dpkg/status").read_text() == "Package: redis-server\n"
    # the probe reads the copy as it read the original
    assert Tree(str(out), confined=True).read("/var/lib/dpkg/status") == "Package: redis-server"


def test_a_link_loop_or_a_missing_file_copies_nothing(tmp_path: Path) -> None:
    root = tmp_path / "container"
    (root / "var/lib").mkdir(parents=True)
    (root / "var/lib/dpkg").symlink_to("dpkg")
    assert not (copied(root, "/var/lib/dpkg/status") / "var/lib/dpkg/status").exists()
    assert not (copied(root, "/srv/pg/PG_VERSION") / "srv").exists()


def test_a_jar_directory_is_copied_as_names(tmp_path: Path) -> None:
    root = tmp_path / "container"
    (root / "usr/share/es/lib").mkdir(parents=True)
    (root / "usr/share/es/lib/elasticsearch-8.13.4.jar").write_bytes(b"PK" * 1000)
    out = copied(root, "/usr/share/es/lib", kind="names")
    assert (out / "usr/share/es/lib/elasticsearch-8.13.4.jar").read_bytes() == b""


@pytest.fixture
def fake_redis(tmp_path: Path) -> Iterator[int]:
    """A process the probe takes for redis-server (a copy of sleep under that name), with a secret and
    REDIS_VERSION in its environment; killed by its pid afterwards."""
    binary = tmp_path / "redis-server"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", binary)
    env = {"PATH": os.environ["PATH"], "REDIS_VERSION": "7.2.5", "REDIS_PASSWORD": "hunter2"}
    process = subprocess.Popen([str(binary), "120"], env=env)
    try:
        yield started_as(process, "redis-server")
    finally:
        process.kill()
        process.wait()


def test_a_capture_of_this_machine_keeps_what_the_probe_reads_of_a_workload(
    tmp_path: Path, fake_redis: int
) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--processes"], capture_output=True, timeout=120, check=True
    )
    root = tmp_path / "tree"
    root.mkdir()
    extract(done.stdout, root)
    base = root / f"proc/{fake_redis}"
    assert (base / "comm").read_text() == "redis-server\n"
    assert (base / "environ").read_bytes() == b"REDIS_VERSION=7.2.5\0"  # nothing else of it
    assert os.readlink(base / "root") == "/"  # this machine's own root
    assert os.readlink(base / "exe") == str(tmp_path / "redis-server")
    [redis] = [w for w in collect(Tree(str(root)))["workloads"] if w["name"] == "redis"]
    [instance] = [i for i in redis["instances"] if i["leader"] == fake_redis]
    status = Path(versions.DPKG_STATUS)
    if not (status.exists() and "\nPackage: redis-server\n" in "\n" + status.read_text()):
        assert instance["version"] == "7.2.5"  # from the kept REDIS_VERSION: no package says another
    assert instance["evidence"]["root"] == f"/proc/{fake_redis}/root -> /"


def test_without_processes_no_process_file_is_captured(fake_redis: int) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, timeout=120, check=True)
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as archive:
        names = archive.getnames()
    assert "proc/meminfo" in names
    assert not [name for name in names if name.startswith(f"proc/{fake_redis}")]


def test_an_unknown_argument_is_refused() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--process"], capture_output=True, timeout=60)
    assert done.returncode != 0 and b"usage" in done.stderr
