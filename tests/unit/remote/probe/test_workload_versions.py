"""Workload versions from files (issue 18, host side), read through each instance's root: PG_VERSION, jar
names, the dpkg status file, Oracle's comps.xml, an image's REDIS_VERSION; corrupt files give null and say
what they held. Never a binary run."""

from __future__ import annotations

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._probe.versions import (
    PACKAGES,
    DpkgAnswers,
    dpkg_version,
)
from tests.support.trees import collect_with
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
