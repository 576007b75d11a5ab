"""Workload versions from files (issue 18, host side), read through each instance's root: PG_VERSION, jar
names, the dpkg status file, the RPM database (a real one, written by Debian's rpm), Oracle's comps.xml,
an image's REDIS_VERSION; corrupt files give null and say what they held. Never a binary run."""

from __future__ import annotations

import contextlib
import random
import shutil
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._probe.versions import (
    PACKAGES,
    RPM_PACKAGES,
    DpkgAnswers,
    dpkg_version,
    rpm_header,
    rpm_version,
)
from tests.support import rpm_db
from tests.support.modules import run_on_tree
from tests.support.trees import HOSTS, collect_with
from tests.support.workload_trees import DOCKER_ID, REDIS_DPKG, proc, workloads


def test_corrupt_pg_version_gives_null_and_says_what_it_held() -> None:
    found = workloads(
        "numa2",
        proc(812, "postgres", ["postgres", "-D", "/pg"], "0::/system.slice/pg.service\n"),
        extra={"/pg/PG_VERSION": "fifteen and a half\n"},
    )
    [postgres] = found["postgresql"]["instances"]
    assert postgres["version"] is None
    assert postgres["evidence"]["version"].startswith("/pg/PG_VERSION holds 'fifteen and a half'")


@pytest.mark.parametrize(
    ("status", "why"),
    [
        (
            "Package: redis-server\nStatus: install ok installed\nVersion: \x00\x01garbage\n",
            "/var/lib/dpkg/status: package redis-server has no valid Version ('\\x00\\x01garbage')",
        ),
        (
            "Package: redis-server\nStatus: install ok installed\n\n",
            "/var/lib/dpkg/status: package redis-server has no valid Version ('')",
        ),
        (
            "Package: redis-server\nStatus: deinstall ok config-files\nVersion: 5:7.0.15-1\n",
            "/var/lib/dpkg/status: none of redis-server installed",
        ),
        ("\xff\xfe not a status file at all", "/var/lib/dpkg/status: none of redis-server installed"),
    ],
)
def test_corrupt_dpkg_status_gives_null(status: str, why: str) -> None:
    found = workloads(
        "numa2",
        proc(720, "redis-server", ["redis-server"], "0::/system.slice/redis.service\n"),
        extra={"/var/lib/dpkg/status": status},
    )
    [redis] = found["redis"]["instances"]
    assert (redis["version"], redis["evidence"]["version"]) == (
        None,
        why + "; no REDIS_VERSION in the environment",
    )


@pytest.mark.parametrize(
    ("environ", "version", "said"),
    [
        (
            "PATH=/usr/local/bin\0REDIS_VERSION=7.2.4\0REDIS_DOWNLOAD_SHA=f0e5\0",
            "7.2.4",
            "REDIS_VERSION=7.2.4",
        ),
        ("REDIS_VERSION=$(reboot)\0", None, "REDIS_VERSION=$(reboot)"),
    ],
)
def test_redis_of_the_official_image_from_its_environment(
    environ: str, version: str | None, said: str
) -> None:
    files, links = proc(750, "redis-server", ["redis-server *:6379"], f"0::/docker/{DOCKER_ID}\n", root=None)
    files["/proc/750/environ"] = environ
    files["/proc/750/root/var/lib/dpkg/status"] = (
        "Package: libc6\nStatus: install ok installed\nVersion: 2.36\n"
    )
    [redis] = collect_with("numa2", files, links)["workloads"][0]["instances"]
    assert redis["version"] == version
    assert redis["evidence"]["version"] == (
        f"/var/lib/dpkg/status: none of redis-server installed; environment {said}"
    )


ES_LIB = "/usr/share/elasticsearch/lib"
ORACLE_HOME = "/u01/app/oracle/product/19.0.0/dbhome_1"


@pytest.mark.parametrize(
    ("comm", "argv", "extra", "name", "version", "why"),
    [
        (
            "java",
            [
                "/usr/share/elasticsearch/jdk/bin/java",
                "-Des.path.home=/usr/share/elasticsearch",
                "-cp",
                f"{ES_LIB}/*",
                "-m",
                "org.elasticsearch.server/org.elasticsearch.bootstrap.Elasticsearch",
            ],
            {f"{ES_LIB}/elasticsearch-core-8.16.1.jar": "", f"{ES_LIB}/elasticsearch-8.16.1.jar": ""},
            "elasticsearch",
            "8.16.1",
            f"jar {ES_LIB}/elasticsearch-8.16.1.jar",
        ),
        (
            "java",
            ["java", "-Dopensearch.path.home=/opt/os", "org.opensearch.bootstrap.OpenSearch"],
            {"/opt/os/lib/opensearch-2.11.0.jar": ""},
            "elasticsearch",
            "2.11.0",
            "jar /opt/os/lib/opensearch-2.11.0.jar",
        ),
        (
            "java",
            ["java", "-cp", "/opt/kafka/libs/kafka_2.13-3.7.0.jar", "kafka.Kafka"],
            {},
            "kafka",
            "3.7.0",
            "jar kafka_2.13-3.7.0.jar",
        ),
        (
            "mongod",
            ["/usr/bin/mongod", "--config", "/etc/mongod.conf"],
            {
                "/var/lib/dpkg/status": (
                    "Package: mongodb-org-server\nStatus: install ok installed\nVersion: 8.0.4\n"
                )
            },
            "mongodb",
            "8.0.4",
            "/var/lib/dpkg/status: mongodb-org-server 8.0.4",
        ),
        (
            "mariadbd",
            ["/usr/sbin/mariadbd"],
            {
                "/var/lib/dpkg/status": (
                    "Package: mariadb-server\nStatus: install ok installed\nVersion: 1:10.11.6-0+deb12u1\n\n"
                    "Package: mariadb-server-core\nStatus: install ok installed\n"
                    "Version: 1:10.11.6-0+deb12u1\n"
                )
            },
            "mysql",
            "10.11.6",
            "/var/lib/dpkg/status: mariadb-server-core 1:10.11.6-0+deb12u1",
        ),
        (
            "ora_pmon_ORCL",
            ["ora_pmon_ORCL"],
            {
                f"{ORACLE_HOME}/inventory/ContentsXML/comps.xml": (
                    '<PRD_LIST><TL_LIST><COMP NAME="oracle.server" VER="19.0.0.0.0" BUILD_NUMBER="0"/>'
                    "</TL_LIST></PRD_LIST>"
                )
            },
            "oracle",
            "19.0.0.0.0",
            f"{ORACLE_HOME}/inventory/ContentsXML/comps.xml: oracle.server 19.0.0.0.0",
        ),
        ("kubelet", ["/usr/bin/kubelet"], {}, "kubernetes", None, "no file names a kubernetes version"),
    ],
)
def test_versions_from_files(
    *, comm: str, argv: list[str], extra: dict[str, str], name: str, version: str | None, why: str
) -> None:
    exe = f"{ORACLE_HOME}/bin/oracle" if name == "oracle" else None
    found = workloads("numa2", proc(800, comm, argv, "0::/system.slice/x.service\n", exe=exe), extra=extra)
    [instance] = found[name]["instances"]
    assert (instance["version"], instance["evidence"]["version"]) == (version, why)


@pytest.mark.parametrize(
    ("status", "workload", "expected"),
    [
        ("Package: redis-server-extra\nStatus: install ok installed\nVersion: 9.9\n", "redis", None),
        ("Package: redis-server\nStatus: hold ok installed\nVersion: 5:6.2.6-1\n", "redis", "6.2.6"),
        (
            "Package: mariadb-server\nStatus: install ok installed\nVersion: 1:10.5.1-1\n\n"
            "Package: mariadb-server-core-10.5\nStatus: install ok installed\nVersion: 1:10.5.2-1\n",
            "mysql",
            "10.5.2",
        ),
        (
            "Package: mysql-server-core-8.0\nStatus: install ok installed\nVersion: 8.0.39-0ubuntu1\n",
            "mysql",
            "8.0.39",
        ),
        ("Package: opensearch\nStatus: install ok installed\nVersion: 2.11.0\n", "elasticsearch", "2.11.0"),
        ("Package: mongodb-org-server\nStatus: install ok half-installed\nVersion: 8.0.4\n", "mongodb", None),
    ],
)
def test_dpkg_versions(status: str, workload: str, expected: str | None) -> None:
    assert dpkg_version(status, PACKAGES[workload])[0] == expected


def test_dpkg_status_files_read_in_one_probe_are_bounded() -> None:
    files: dict[str, str] = {}
    links: dict[str, str] = {}
    count = DpkgAnswers.MAX_FILES + 2
    for n in range(count):  # each container its own image: distinct status files, none shared
        process_files, process_links = proc(
            6000 + n, "redis-server", ["redis-server"], f"0::/docker/{n:064x}\n", root=None
        )
        files.update(process_files)
        links.update(process_links)
        files[f"/proc/{6000 + n}/root/var/lib/dpkg/status"] = REDIS_DPKG + f"Package: filler{n}\n"
    [redis] = collect_with("numa2", files, links)["workloads"]
    versions = [instance["version"] for instance in redis["instances"]]
    assert versions == ["7.0.15"] * DpkgAnswers.MAX_FILES + [None, None]
    assert redis["instances"][-1]["evidence"]["version"] == (
        f"/var/lib/dpkg/status not read: {DpkgAnswers.MAX_FILES} status files already read in this probe; "
        "no REDIS_VERSION in the environment"
    )


# --- The RPM database (rpm >= 4.16's rpmdb.sqlite), where a root has no dpkg status file -----------------

RPMDB = "/var/lib/rpm/rpmdb.sqlite"
NO_DPKG = "/var/lib/dpkg/status not readable in the instance's root"


@pytest.mark.parametrize(
    ("comm", "argv", "name", "version", "said"),
    [
        ("redis-server", ["redis-server *:6379"], "redis", "7.2.4", "redis 7.2.4-1.el9"),
        ("mongod", ["/usr/bin/mongod"], "mongodb", "8.0.4", "mongodb-org-server 1:8.0.4-1.el9"),
        ("mariadbd", ["/usr/sbin/mariadbd"], "mysql", "10.11.6", "mariadb-server 3:10.11.6-1.fc40"),
    ],
)
def test_versions_from_the_rpm_database_of_the_instances_root(
    rpmdb: bytes, *, comm: str, argv: list[str], name: str, version: str, said: str
) -> None:
    host = workloads("numa2", proc(800, comm, argv, "0::/system.slice/x.service\n"), extra={RPMDB: rpmdb})
    files, links = proc(801, comm, argv, f"0::/docker/{DOCKER_ID}\n", root=None)
    files[f"/proc/801/root{RPMDB}"] = rpmdb  # type: ignore[assignment]  # bytes: collect_with writes them
    container = collect_with("numa2", files, links)["workloads"]
    for instance in (host[name]["instances"][0], container[0]["instances"][0]):
        # the epoch is said in the evidence, not in the version
        assert (instance["version"], instance["evidence"]["version"]) == (
            version,
            f"{NO_DPKG}; {RPMDB}: {said}",
        )


def test_a_package_the_rpm_database_does_not_hold(rpmdb: bytes) -> None:
    found = workloads(
        "numa2",
        proc(800, "java", ["java", "org.opensearch.bootstrap.OpenSearch"], None),
        extra={RPMDB: rpmdb},
    )
    [instance] = found["elasticsearch"]["instances"]
    assert (instance["version"], instance["evidence"]["version"]) == (
        None,
        f"no <product>-<version>.jar in the home's lib/; {NO_DPKG}; "
        f"{RPMDB}: none of elasticsearch, opensearch installed",
    )


def test_a_dpkg_status_file_wins_over_the_rpm_database(rpmdb: bytes) -> None:
    found = workloads(
        "numa2",
        proc(800, "redis-server", ["redis-server"], None),
        extra={RPMDB: rpmdb, "/var/lib/dpkg/status": REDIS_DPKG},
    )
    [instance] = found["redis"]["instances"]
    assert (instance["version"], instance["evidence"]["version"]) == (
        "7.0.15",
        "/var/lib/dpkg/status: redis-server 5:7.0.15-1~deb12u1",
    )


def _altered(rpmdb: bytes, tmp_path: Path, *sql: str) -> bytes:
    """A copy of ``rpmdb`` changed by ``sql``: what a hostile image could ship."""
    path = tmp_path / "rpmdb.sqlite"
    path.write_bytes(rpmdb)
    with contextlib.closing(sqlite3.connect(path)) as connection:
        for statement in sql:
            connection.execute(statement)
        connection.commit()
    return path.read_bytes()


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda db, tmp: db[:8192], "database disk image is malformed"),
        (lambda db, tmp: random.Random(18).randbytes(len(db)), "file is not a database"),
        (lambda db, tmp: b"", "no such table: Name"),
        (
            lambda db, tmp: _altered(db, tmp, "UPDATE Packages SET blob = substr(blob, 1, 100)"),
            "a header of 100 bytes that says it holds",
        ),
        (
            lambda db, tmp: _altered(db, tmp, "UPDATE Packages SET blob = x'00010000000000ff'"),
            "a header with 65536 index entries",
        ),
        (
            lambda db, tmp: _altered(db, tmp, "UPDATE Packages SET blob = 'a text, not a blob'"),
            "a header shorter than 8 bytes",
        ),
        (
            lambda db, tmp: _altered(
                db,
                tmp,
                "UPDATE Name SET hnum = (SELECT hnum FROM Name WHERE key = 'mariadb-server')"
                " WHERE key = 'redis'",
            ),
            "the Name index's redis leads to a header of 'mariadb-server'",
        ),
        (
            lambda db, tmp: _altered(
                db,
                tmp,
                "DROP INDEX Name_key_idx",
                "ALTER TABLE Name RENAME TO Names",
                # a query that never ends: the progress handler stops it
                "CREATE VIEW Name AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)"
                " SELECT 'redis' AS key, x AS hnum, 0 AS idx FROM c WHERE x < 0",
            ),
            "interrupted",
        ),
    ],
    ids=["truncated", "random", "empty", "header-truncated", "header-index", "text", "index-lies", "endless"],
)
def test_a_corrupt_or_hostile_rpm_database_gives_null_and_says_why(
    rpmdb: bytes, tmp_path: Path, change: Callable[[bytes, Path], bytes], why: str
) -> None:
    found = workloads(
        "numa2", proc(800, "redis-server", ["redis-server"], None), extra={RPMDB: change(rpmdb, tmp_path)}
    )
    [instance] = found["redis"]["instances"]
    assert instance["version"] is None
    assert instance["evidence"]["version"].startswith(f"{NO_DPKG}; {RPMDB} not read: ")
    assert why in instance["evidence"]["version"]


@pytest.mark.parametrize(
    ("name", "what"),
    [("Packages", "a Berkeley DB database (rpm < 4.16: RHEL 7/8)"), ("Packages.db", "an ndb database")],
)
def test_rpm_databases_of_other_backends_are_named_not_read(name: str, what: str) -> None:
    # Berkeley DB's hash magic 0x00061561 at offset 12, as an RHEL 8 Packages file begins
    packages = b"\0" * 12 + bytes.fromhex("61150600") + b"\0" * 4080
    found = workloads(
        "numa2", proc(800, "redis-server", ["redis-server"], None), extra={f"/var/lib/rpm/{name}": packages}
    )
    [instance] = found["redis"]["instances"]
    assert (instance["version"], instance["evidence"]["version"]) == (
        None,
        f"{NO_DPKG}; /var/lib/rpm/{name} is {what}: not read; no REDIS_VERSION in the environment",
    )


def test_fedoras_sysimage_database_is_read(rpmdb: bytes) -> None:
    found = workloads(
        "numa2",
        proc(800, "mongod", ["mongod"], None),
        extra={"/usr/lib/sysimage/rpm/rpmdb.sqlite": rpmdb},
    )
    [instance] = found["mongodb"]["instances"]
    assert (instance["version"], instance["evidence"]["version"]) == (
        "8.0.4",
        f"{NO_DPKG}; /usr/lib/sysimage/rpm/rpmdb.sqlite: mongodb-org-server 1:8.0.4-1.el9",
    )


def test_without_sqlite3_the_version_is_null_with_that_reason(
    rpmdb: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sqlite3", None)  # a Python built without it: import fails
    found = workloads("numa2", proc(800, "mongod", ["mongod"], None), extra={RPMDB: rpmdb})
    [instance] = found["mongodb"]["instances"]
    assert instance["version"] is None
    assert instance["evidence"]["version"].startswith(
        f"{NO_DPKG}; {RPMDB} not read: this Python has no sqlite3"
    )


def test_rpm_databases_read_in_one_probe_are_bounded_and_shared_ones_read_once(rpmdb: bytes) -> None:
    files: dict[str, str | bytes] = {}
    links: dict[str, str] = {}
    count = DpkgAnswers.MAX_FILES + 2
    for n in range(count):  # each container its own image: distinct databases (another mtime each)
        process_files, process_links = proc(
            6000 + n, "redis-server", ["redis-server"], f"0::/docker/{n:064x}\n", root=None
        )
        files.update(process_files)
        links.update(process_links)
        files[f"/proc/{6000 + n}/root{RPMDB}"] = rpmdb + b"\0" * n
    [redis] = collect_with("numa2", files, links)["workloads"]
    versions = [instance["version"] for instance in redis["instances"]]
    assert versions == ["7.2.4"] * DpkgAnswers.MAX_FILES + [None, None]
    assert redis["instances"][-1]["evidence"]["version"] == (
        f"{NO_DPKG}; RPM database not read: {DpkgAnswers.MAX_FILES} already read in this probe; "
        "no REDIS_VERSION in the environment"
    )


def test_rpm_header_reads_rpms_own_header(rpmdb: bytes, tmp_path: Path) -> None:
    path = tmp_path / "rpmdb.sqlite"
    path.write_bytes(rpmdb)
    with contextlib.closing(sqlite3.connect(path)) as connection:
        blobs = [row[0] for row in connection.execute("SELECT blob FROM Packages ORDER BY hnum")]
    assert sorted((rpm_header(blob) for blob in blobs), key=lambda header: str(header[1000])) == [
        {1000: name, 1001: version, 1002: release, **({1003: epoch} if epoch is not None else {})}
        for name, epoch, version, release in sorted(rpm_db.PACKAGES)
    ]


def test_reading_the_rpm_database_writes_nothing_next_to_it(rpmdb: bytes, tmp_path: Path) -> None:
    database = tmp_path / "root/var/lib/rpm/rpmdb.sqlite"
    database.parent.mkdir(parents=True)
    database.write_bytes(rpmdb)
    before = database.stat().st_mtime_ns
    answer, key = rpm_version(Tree(str(tmp_path / "root")), RPM_PACKAGES["mongodb"])
    assert answer == ("8.0.4", f"{RPMDB}: mongodb-org-server 1:8.0.4-1.el9")
    assert key is not None
    assert sorted(path.name for path in database.parent.iterdir()) == ["rpmdb.sqlite"]  # no -shm, -journal
    assert (database.read_bytes(), database.stat().st_mtime_ns) == (rpmdb, before)


def test_the_memory_facts_module_reads_a_containers_rpm_database(rpmdb: bytes, tmp_path: Path) -> None:
    """The real module in its own process, as Ansible runs it (root= a copy of numa2 with a mongod in a
    Docker container whose root holds the database rpm wrote)."""
    root = tmp_path / "numa2"
    shutil.copytree(HOSTS / "numa2", root, symlinks=True)
    files, _links = proc(900, "mongod", ["/usr/bin/mongod"], f"0::/docker/{DOCKER_ID}\n", root=None)
    for path, text in files.items():
        (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / path.lstrip("/")).write_text(text)
    (root / f"proc/900/root{RPMDB}").parent.mkdir(parents=True)
    (root / f"proc/900/root{RPMDB}").write_bytes(rpmdb)
    result, stderr = run_on_tree("memory_facts", root, {}, timeout=120)
    assert "Traceback" not in stderr
    [mongo] = result["ansible_facts"]["memtune"]["workloads"]
    assert (mongo["version"], mongo["instances"][0]["evidence"]["version"]) == (
        "8.0.4",
        f"{NO_DPKG}; {RPMDB}: mongodb-org-server 1:8.0.4-1.el9",
    )
