"""Workload instances (issue 18, host side): each instance's processes, cgroup, unit, container or pod and
root, on copies of captured host trees with the processes' /proc entries added
(tests/support/workload_trees.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._probe.workloads import (
    MAX_INSTANCES,
    detect_workloads,
)
from tests.support.trees import HOSTS, collect_with
from tests.support.workload_trees import CONTAINERD_ID, DOCKER_ID, POD_UID, REDIS_DPKG, proc, workloads


def postgres_clusters(with_stat: bool) -> list[tuple[dict[str, str], dict[str, str]]]:
    def parent(pid: int) -> int | None:
        return pid if with_stat else None

    return [
        proc(
            812,
            "postgres",
            [
                "/usr/lib/postgresql/15/bin/postgres",
                "-D",
                "/var/lib/postgresql/15/main",
                "-c",
                "config_file=/etc/postgresql/15/main/postgresql.conf",
            ],
            "0::/system.slice/postgresql@15-main.service\n",
            ppid=1 if with_stat else None,
        ),
        proc(
            813,
            "postgres",
            ["postgres: 15/main: checkpointer "],
            "0::/system.slice/postgresql@15-main.service\n",
            ppid=parent(812),
        ),
        proc(
            815,
            "postgres",
            ["postgres: 15/main: walwriter "],
            "0::/system.slice/postgresql@15-main.service\n",
            ppid=parent(812),
        ),
        proc(
            912,
            "postgres",
            ["/usr/lib/postgresql/16/bin/postgres", "-D/srv/pg/16/other"],
            "0::/system.slice/postgresql@16-other.service\n",
            ppid=1 if with_stat else None,
        ),
        proc(
            930,
            "postgres",
            ["postgres: 16/other: checkpointer "],
            "0::/system.slice/postgresql@16-other.service\n",
            ppid=parent(912),
        ),
    ]


@pytest.mark.parametrize("with_stat", [True, False], ids=["parents", "cgroups only"])
def test_two_postgres_clusters_are_two_instances(with_stat: bool) -> None:
    found = workloads(
        "numa2",
        *postgres_clusters(with_stat),
        extra={"/var/lib/postgresql/15/main/PG_VERSION": "15\n", "/srv/pg/16/other/PG_VERSION": "16\n"},
    )
    postgres = found["postgresql"]
    assert postgres["pids"] == [812, 813, 815, 912, 930]
    assert postgres["version"] == "15"
    first, second = postgres["instances"]
    assert (first["pids"], first["leader"], first["unit"], first["version"]) == (
        [812, 813, 815],
        812,
        "postgresql@15-main.service",
        "15",
    )
    assert (second["pids"], second["leader"], second["unit"], second["version"]) == (
        [912, 930],
        912,
        "postgresql@16-other.service",
        "16",
    )
    assert first["cgroup"] == "/system.slice/postgresql@15-main.service"
    assert first["cgroup_version"] == 2
    assert first["unit_manager"] == "system"
    assert (first["container"], first["pod"]) == (None, None)
    assert (first["root"], first["data_dir"], second["data_dir"]) == (
        "/proc/812/root",
        "/var/lib/postgresql/15/main",
        "/srv/pg/16/other",
    )
    assert first["evidence"]["version"] == "/var/lib/postgresql/15/main/PG_VERSION says 15"
    assert first["evidence"]["root"] == "/proc/812/root -> /"


def test_two_clusters_in_one_cgroup_stay_apart_by_their_parents() -> None:
    shared = "0::/user.slice/user-1000.slice/session-2.scope\n"
    found = workloads(
        "numa2",
        proc(500, "postgres", ["postgres", "-D", "/home/a/pg1"], shared, ppid=1),
        proc(501, "postgres", ["postgres: logger "], shared, ppid=500),
        proc(600, "postgres", ["postgres", "-D", "/home/a/pg2"], shared, ppid=1),
        proc(601, "postgres", ["postgres: logger "], shared, ppid=600),
        extra={"/home/a/pg1/PG_VERSION": "14\n", "/home/a/pg2/PG_VERSION": "17\n"},
    )
    instances = found["postgresql"]["instances"]
    assert [(i["pids"], i["version"], i["unit"]) for i in instances] == [
        ([500, 501], "14", "session-2.scope"),
        ([600, 601], "17", "session-2.scope"),
    ]


def test_redis_in_a_docker_container_reads_the_containers_dpkg_status() -> None:
    found = workloads(
        "numa2",
        proc(
            2000,
            "redis-server",
            ["redis-server *:6379"],
            f"0::/system.slice/docker-{DOCKER_ID}.scope\n",
            ppid=1990,
            root=None,
        ),
        extra={
            "/proc/2000/root/var/lib/dpkg/status": REDIS_DPKG,
            "/var/lib/dpkg/status": "Package: libc6\nStatus: install ok installed\nVersion: 2.36\n",
        },
    )
    [redis] = found["redis"]["instances"]
    assert redis["container"] == {"runtime": "docker", "id": DOCKER_ID}
    assert (redis["pod"], redis["unit"], redis["root"]) == (
        None,
        f"docker-{DOCKER_ID}.scope",
        "/proc/2000/root",
    )
    assert redis["version"] == found["redis"]["version"] == "7.0.15"
    assert redis["evidence"]["version"] == "/var/lib/dpkg/status: redis-server 5:7.0.15-1~deb12u1"
    assert redis["evidence"]["root"] == "/proc/2000/root (a directory of the captured tree)"


def test_docker_cgroupfs_on_cgroup_v1() -> None:
    v1 = f"12:pids:/docker/{DOCKER_ID}\n7:memory:/docker/{DOCKER_ID}\n1:name=systemd:/docker/{DOCKER_ID}\n"
    found = workloads(
        "small",
        proc(2100, "redis-server", ["redis-server"], v1, root=None),
        extra={"/proc/2100/root/var/lib/dpkg/status": REDIS_DPKG},
    )
    [redis] = found["redis"]["instances"]
    assert (redis["cgroup_version"], redis["cgroup"]) == (1, f"/docker/{DOCKER_ID}")
    assert redis["container"] == {"runtime": "docker", "id": DOCKER_ID}
    assert redis["unit"] is None
    assert redis["version"] == "7.0.15"


def test_cgroup_v1_without_memory_accounting_takes_the_unit_from_systemds_hierarchy() -> None:
    v1 = "9:name=systemd:/system.slice/postgresql@13-main.service\n4:memory:/\n0::/\n"
    found = workloads(
        "small", proc(1300, "postgres", ["postgres", "-D", "/pg"], v1), extra={"/pg/PG_VERSION": "13\n"}
    )
    [postgres] = found["postgresql"]["instances"]
    assert (postgres["cgroup_version"], postgres["cgroup"], postgres["unit"]) == (
        1,
        "/",
        "postgresql@13-main.service",
    )
    assert postgres["evidence"]["unit"] == (
        "postgresql@13-main.service in cgroup /system.slice/postgresql@13-main.service"
    )


def test_instances_of_one_workload_are_bounded() -> None:
    many = [
        proc(5000 + n, "redis-server", ["redis-server"], f"0::/system.slice/redis{n}.service\n")
        for n in range(MAX_INSTANCES + 3)
    ]
    facts = collect_with(
        "numa2",
        {k: v for files, _ in many for k, v in files.items()},
        {k: v for _, links in many for k, v in links.items()},
    )
    [redis] = facts["workloads"]
    assert len(redis["pids"]) == MAX_INSTANCES + 3
    assert len(redis["instances"]) == MAX_INSTANCES
    assert f"redis: {MAX_INSTANCES + 3} instances, the first {MAX_INSTANCES} listed" in facts["warnings"]


def test_postgres_in_a_burstable_pod_reads_its_own_pg_version_not_the_hosts() -> None:
    cgroup = (
        "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
        f"{POD_UID.replace('-', '_')}.slice/cri-containerd-{CONTAINERD_ID}.scope\n"
    )
    found = workloads(
        "numa2",
        proc(3000, "postgres", ["postgres", "-D", "/var/lib/postgresql/data"], cgroup, ppid=2990, root=None),
        proc(3001, "postgres", ["postgres: checkpointer "], cgroup, ppid=3000, root=None),
        extra={
            "/proc/3000/root/var/lib/postgresql/data/PG_VERSION": "16\n",
            "/var/lib/postgresql/data/PG_VERSION": "13\n",
        },  # the host's own file must not be read
    )
    [postgres] = found["postgresql"]["instances"]
    assert postgres["pod"] == {"uid": POD_UID, "qos": "Burstable"}
    assert postgres["container"] == {"runtime": "containerd", "id": CONTAINERD_ID}
    assert (postgres["pids"], postgres["version"]) == ([3000, 3001], "16")


@pytest.mark.parametrize("v1", [False, True], ids=["v2", "v1"])
def test_postgres_in_a_besteffort_pod_cgroupfs_driver(v1: bool) -> None:
    path = f"/kubepods/besteffort/pod{POD_UID}/{CONTAINERD_ID}"
    text = f"9:memory:{path}\n1:name=systemd:{path}\n" if v1 else f"0::{path}\n"
    found = workloads(
        "small" if v1 else "numa2",
        proc(3100, "postgres", ["postgres", "-D", "/pgdata"], text, root=None),
        extra={"/proc/3100/root/pgdata/PG_VERSION": "17\n"},
    )
    [postgres] = found["postgresql"]["instances"]
    assert postgres["pod"] == {"uid": POD_UID, "qos": "BestEffort"}
    assert postgres["container"] == {"runtime": None, "id": CONTAINERD_ID}
    assert postgres["cgroup_version"] == (1 if v1 else 2)
    assert postgres["version"] == "17"


def test_host_instances_come_first_and_give_the_workloads_version() -> None:
    found = workloads(
        "numa2",
        proc(
            100, "redis-server", ["redis-server"], f"0::/system.slice/docker-{DOCKER_ID}.scope\n", root=None
        ),
        proc(200, "redis-server", ["redis-server"], "0::/system.slice/redis-server.service\n"),
        extra={
            "/proc/100/root/var/lib/dpkg/status": REDIS_DPKG,
            "/var/lib/dpkg/status": REDIS_DPKG.replace("5:7.0.15-1~deb12u1", "5:6.0.16-1+deb11u2"),
        },
    )
    assert [i["leader"] for i in found["redis"]["instances"]] == [200, 100]
    assert found["redis"]["version"] == "6.0.16"


class VanishingTree(Tree):
    """A tree where a process exits right after its comm is read: its /proc/<pid> directory goes."""

    def __init__(self, root: str, pid: int) -> None:
        super().__init__(root)
        self.pid = pid

    def read(self, path: str, optional: bool = False) -> str | None:
        text = super().read(path, optional)
        if path == f"/proc/{self.pid}/comm":
            shutil.rmtree(Path(self.root) / "proc" / str(self.pid))
        return text


def test_a_pid_that_exits_while_read_is_left_out_of_the_instances(tmp_path: Path) -> None:
    root = tmp_path / "numa2"
    shutil.copytree(HOSTS / "numa2", root, symlinks=True)
    for pid, argv in ((812, ["postgres", "-D", "/pg"]), (840, ["postgres: client backend "])):
        (root / f"proc/{pid}").mkdir()
        (root / f"proc/{pid}/comm").write_text("postgres\n")
        (root / f"proc/{pid}/cmdline").write_text("\0".join(argv) + "\0")
        (root / f"proc/{pid}/cgroup").write_text("0::/system.slice/postgresql.service\n")
        (root / f"proc/{pid}/root").symlink_to("/")
    (root / "pg").mkdir()
    (root / "pg/PG_VERSION").write_text("15\n")
    [postgres] = detect_workloads(VanishingTree(str(root), 840))
    assert postgres["pids"] == [812, 840]  # its comm was read: today's fields keep it
    [instance] = postgres["instances"]
    assert (instance["pids"], instance["version"]) == ([812], "15")


@pytest.mark.parametrize(
    ("cgroup", "unit", "why"),
    [
        ("0::/weird/place/of/its/own\n", None, "no .service or .scope in cgroup /weird/place/of/its/own"),
        ("0::/\n", None, "no .service or .scope in cgroup /"),
        ("garbage without colons\n", None, None),
        ("", None, None),
    ],
)
def test_unknown_cgroup_shapes_give_nulls_and_say_why(cgroup: str, unit: str | None, why: str | None) -> None:
    found = workloads("numa2", proc(700, "mongod", ["mongod"], cgroup))
    [mongo] = found["mongodb"]["instances"]
    assert (mongo["unit"], mongo["container"], mongo["pod"], mongo["version"]) == (unit, None, None, None)
    if why:
        assert mongo["evidence"]["unit"] == why
        assert mongo["evidence"]["container"].startswith("no container runtime's shape")
    else:
        assert mongo["cgroup"] is None
        assert mongo["evidence"]["cgroup"] == "/proc/700/cgroup has no v1 memory or v2 line"


def test_missing_proc_entries_give_nulls() -> None:
    found = workloads("numa2", proc(710, "mongod", [], None, root=None))
    [mongo] = found["mongodb"]["instances"]
    assert (mongo["cgroup"], mongo["root"], mongo["version"]) == (None, None, None)
    assert mongo["evidence"]["cgroup"] == "/proc/710/cgroup is not readable"
    assert mongo["evidence"]["root"].startswith("cannot read /proc/710/root")


def test_an_absolute_link_in_a_containers_root_stays_in_that_root() -> None:
    files, links = proc(
        730, "redis-server", ["redis-server"], f"0::/system.slice/docker-{DOCKER_ID}.scope\n", root=None
    )
    links["/proc/730/root/var/lib/dpkg/status"] = "/etc/host-only-status"  # the host has that file
    facts = collect_with("numa2", {**files, "/etc/host-only-status": REDIS_DPKG}, links)
    [redis] = facts["workloads"][0]["instances"]
    assert redis["version"] is None
    assert redis["evidence"]["version"] == (
        "/var/lib/dpkg/status not readable in the instance's root; no RPM database "
        "(/var/lib/rpm/rpmdb.sqlite, /usr/lib/sysimage/rpm/rpmdb.sqlite); no REDIS_VERSION in the environment"
    )


def test_unreadable_root_of_a_host_process_falls_back_to_the_hosts_files() -> None:
    found = workloads(
        "numa2",
        proc(
            740,
            "postgres",
            ["postgres", "-D", "/pg"],
            "0::/system.slice/pg.service\n",
            root="/does/not/exist",
        ),
        extra={"/pg/PG_VERSION": "15\n"},
    )
    [postgres] = found["postgresql"]["instances"]
    assert (postgres["root"], postgres["version"]) == (None, "15")
    assert postgres["evidence"]["root"].endswith("no container or pod in its cgroup: the host's root read")


def test_processes_of_one_cgroup_are_one_instance_only_when_their_parents_say_so() -> None:
    shared = "0::/system.slice/redis-pair.service\n"
    found = workloads(
        "numa2",
        proc(400, "redis-server", ["redis-server *:6379"], shared, ppid=399),  # two servers a script started
        proc(410, "redis-server", ["redis-server *:6380"], shared, ppid=399),
        proc(420, "redis-server", ["redis-server *:6381"], "0::/system.slice/redis-one.service\n", ppid=1),
        proc(421, "redis-server", ["redis-rdb-bgsave"], "0::/system.slice/redis-one.service\n"),  # no stat
    )
    assert [i["pids"] for i in found["redis"]["instances"]] == [[400], [410], [420, 421]]
