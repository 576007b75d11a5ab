"""Workload detection from process names and command lines, as /proc shows them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._probe.workloads import classify, detect_workloads

ES_ARGV = (
    "/usr/share/elasticsearch/jdk/bin/java -Xms1g -Xmx1g -Des.path.home=/usr/share/elasticsearch "
    "-cp /usr/share/elasticsearch/lib/* org.elasticsearch.bootstrap.Elasticsearch"
)
KAFKA_ARGV = (
    "java -Xmx1G -cp /opt/kafka/libs/kafka_2.13-3.7.0.jar:/opt/kafka/libs/zstd-jni-1.5.5-6.jar "
    "kafka.Kafka /opt/kafka/config/server.properties"
)


@pytest.mark.parametrize(
    ("comm", "argv", "expected"),
    [
        ("postgres", "", ("postgresql", "postgres")),
        ("mariadbd", "", ("mysql", "mariadbd")),
        ("redis-server", "", ("redis", "redis-server")),
        ("mongod", "", ("mongodb", "mongod")),
        ("kubelet", "", ("kubernetes", "kubelet")),
        ("qemu-system-x86", "", ("kvm_host", "qemu-system-x86")),
        ("ora_pmon_ORCL", "", ("oracle", "ora_pmon_ORCL")),
        ("hdbindexserver", "", ("sap_hana", "hdbindexserver")),
        ("slurmd", "", ("hpc_compute", "slurmd")),
        ("pbs_mom", "", ("hpc_compute", "pbs_mom")),
        ("slurmctld", "", None),  # the controller is not a compute node
        ("pbs_server", "", None),
        ("java", ES_ARGV, ("elasticsearch", "org.elasticsearch.bootstrap.Elasticsearch")),
        ("java", KAFKA_ARGV, ("kafka", "kafka.Kafka")),
        ("java", "java -jar jenkins.war", None),
        ("bash", "", None),
        ("postgres-exporter", "", None),
    ],
)
def test_classify(comm: str, argv: str, expected: tuple[str, str] | None) -> None:
    assert classify(comm, lambda: argv) == expected


def test_cmdline_is_read_only_for_generic_runtimes() -> None:
    def never() -> str:
        raise AssertionError("cmdline read for a process named by comm alone")

    assert classify("redis-server", never) == ("redis", "redis-server")
    assert classify("sshd", never) is None


def fake_process(root: Path, pid: int, comm: str, argv: list[str], exe: str | None = None) -> None:
    proc = root / "proc" / str(pid)
    proc.mkdir(parents=True)
    (proc / "comm").write_text(comm + "\n")
    (proc / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    if exe:
        os.symlink(exe, proc / "exe")


def test_detect_in_a_tree_with_versions(tmp_path: Path) -> None:
    data = tmp_path / "var/lib/postgresql/15/main"
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("15\n")
    fake_process(
        tmp_path,
        812,
        "postgres",
        ["/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/postgresql/15/main"],
    )
    fake_process(tmp_path, 813, "postgres", ["postgres: checkpointer"])
    fake_process(tmp_path, 900, "java", KAFKA_ARGV.split())
    fake_process(tmp_path, 1, "systemd", ["/sbin/init"])
    found = detect_workloads(Tree(str(tmp_path)))
    assert [w["name"] for w in found] == ["kafka", "postgresql"]
    postgres = found[1]
    assert postgres["pids"] == [812, 813]
    assert postgres["version"] == "15"
    assert postgres["evidence"][0] == {"pid": 812, "comm": "postgres", "match": "postgres"}
    assert found[0]["version"] == "3.7.0"


def test_postgres_version_from_the_binary_path(tmp_path: Path) -> None:
    fake_process(tmp_path, 77, "postgres", ["postgres: logger"], exe="/usr/lib/postgresql/16/bin/postgres")
    assert detect_workloads(Tree(str(tmp_path)))[0]["version"] == "16"


def test_this_machine_scan_runs_and_returns_known_names() -> None:
    found = detect_workloads(Tree("/"))
    assert all(w["pids"] and w["evidence"] for w in found)
