"""The probe's workloads on trees captured from real QEMU guests running them (issue 18, "How it is
checked"): tests/fixtures/hosts/numa2-databases and small-containers, made by lab/capture-workloads.sh
(lab/capture_tree.py --processes). The expected names, ids and versions come from what that script sets
up (its constants are read from it here) and from the image's Debian packages, not from the probe.
Damaged copies of those trees give nulls with evidence, never a failed probe."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import collect
from memtune import plan
from memtune.engine.merge import ConflictError
from memtune.engine.planned import UnitCgroup
from memtune.facts.model import parse_facts
from memtune.policy.load import load_policy_file
from memtune.policy.model import PolicySet
from tests.support.modules import run_on_tree
from tests.support.trees import HOSTS

SCRIPT = (Path(__file__).resolve().parents[4] / "lab" / "capture-workloads.sh").read_text()
# Debian 12's packages in the lab image (lab/build-image.sh WORKLOAD_PACKAGES), as `dpkg -l` on the guest
# lists them: PostgreSQL 15, redis-server 5:7.0.15-1~deb12u7, mariadb-server-core 1:10.11.18-0+deb12u1.
HOST_REDIS = ("7.0.15", "redis-server 5:7.0.15-1~deb12u7")
HOST_MARIADB = ("10.11.18", "mariadb-server-core 1:10.11.18-0+deb12u1")
MiB = 1 << 20
PG_CHILDREN = (
    "checkpointer",
    "background writer",
    "walwriter",
    "autovacuum launcher",
    "logical replication launcher",
)  # PostgreSQL 15's auxiliary processes, forked at start


def script_value(name: str) -> str:
    match = re.search(rf"^{name}=(\S+)", SCRIPT, re.MULTILINE)
    assert match, f"{name} is not set in lab/capture-workloads.sh"
    return match.group(1)


def script_id(name: str) -> str:
    """A container id of the script: the sha256 of its label."""
    match = re.search(rf"^{name}=\"\$\(printf '([^']+)' \| sha256sum", SCRIPT, re.MULTILINE)
    assert match, f"{name} is not set in lab/capture-workloads.sh"
    return hashlib.sha256(match.group(1).encode()).hexdigest()


POD_UID = script_value("POD_UID")
POD_REDIS_ID = script_id("POD_REDIS_ID")
DOCKER_REDIS_ID = script_id("DOCKER_REDIS_ID")
DOCKER_PG_ID = script_id("DOCKER_PG_ID")
POD_SLICE_UID = POD_UID.replace("-", "_")  # kubelet's systemd driver writes the UID's "-" as "_"
POD_SLICE = f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_SLICE_UID}.slice"


def probe(root: Path, host: str) -> dict[str, dict[str, Any]]:
    """{workload name: entry} of the probe's facts of ``root``; the facts pass the controller's model."""
    facts = collect(Tree(str(root)))
    parse_facts(facts, host)
    return {entry["name"]: entry for entry in facts["workloads"]}


def tree_copy(tmp_path: Path, host: str) -> Path:
    """A copy of ``host``'s tree in tmp_path, to damage or to write beside."""
    root = tmp_path / host
    shutil.copytree(HOSTS / host, root, symlinks=True)
    return root


def argv(root: Path, pid: int) -> list[str]:
    return [word for word in (root / f"proc/{pid}/cmdline").read_text().split("\0") if word]


def postmaster(root: Path, data_dir: str) -> int:
    """The pid of the captured postmaster of ``data_dir`` (the process started with -D data_dir)."""
    [pid] = [
        int(entry.name)
        for entry in (root / "proc").iterdir()
        if entry.name.isdigit()
        and (entry / "cmdline").exists()
        and data_dir in argv(root, int(entry.name))
        and "-D" in argv(root, int(entry.name))
    ]
    return pid


def test_two_debian_clusters_redis_and_mariadb_under_systemd() -> None:
    root = HOSTS / "numa2-databases"
    found = probe(root, "numa2-databases")
    assert sorted(found) == ["mysql", "postgresql", "redis"]
    clusters = found["postgresql"]["instances"]
    assert [i["unit"] for i in clusters] == ["postgresql@15-main.service", "postgresql@15-second.service"]
    for instance, cluster in zip(clusters, ("main", "second"), strict=True):
        data_dir = f"/var/lib/postgresql/15/{cluster}"
        leader = postmaster(root, data_dir)
        assert instance["leader"] == leader
        assert instance["cgroup"] == f"/system.slice/system-postgresql.slice/postgresql@15-{cluster}.service"
        assert (instance["cgroup_version"], instance["unit_manager"]) == (2, "system")
        assert (instance["container"], instance["pod"]) == (None, None)
        assert (instance["root"], instance["data_dir"], instance["version"]) == (
            f"/proc/{leader}/root",
            data_dir,
            "15",
        )
        assert instance["evidence"]["root"] == f"/proc/{leader}/root -> /"
        assert instance["evidence"]["version"] == f"{data_dir}/PG_VERSION says 15"
        children = sorted(pid for pid in instance["pids"] if pid != leader)
        assert sorted(" ".join(argv(root, pid)).split(": ")[-1].strip() for pid in children) == sorted(
            PG_CHILDREN
        )
    assert found["postgresql"]["version"] == "15"
    [redis] = found["redis"]["instances"]
    [mariadb] = found["mysql"]["instances"]
    for instance, unit, (version, package) in (
        (redis, "redis-server.service", HOST_REDIS),
        (mariadb, "mariadb.service", HOST_MARIADB),
    ):
        assert (instance["unit"], instance["cgroup"], instance["container"], instance["pod"]) == (
            unit,
            f"/system.slice/{unit}",
            None,
            None,
        )
        assert instance["version"] == version
        assert instance["evidence"]["version"] == f"/var/lib/dpkg/status: {package}"
    assert (found["redis"]["version"], found["mysql"]["version"]) == (HOST_REDIS[0], HOST_MARIADB[0])


def test_redis_on_the_host_in_a_kubelet_pod_and_in_docker() -> None:
    found = probe(HOSTS / "small-containers", "small-containers")
    host, pod, docker = found["redis"]["instances"]  # the host's instances first
    assert (host["unit"], host["container"], host["pod"], host["version"]) == (
        "redis-server.service",
        None,
        None,
        HOST_REDIS[0],
    )
    assert found["redis"]["version"] == HOST_REDIS[0]
    assert pod["cgroup"] == f"{POD_SLICE}/cri-containerd-{POD_REDIS_ID}.scope"
    assert pod["unit"] == f"cri-containerd-{POD_REDIS_ID}.scope"
    assert pod["container"] == {"runtime": "containerd", "id": POD_REDIS_ID}
    assert pod["pod"] == {"uid": POD_UID, "qos": "Burstable"}
    # The pod's image says another redis-server than the host: read through the container's root.
    version = script_value("POD_REDIS_VERSION")
    assert pod["version"] == version.split(":", 1)[1].rsplit("-", 1)[0]
    assert pod["evidence"]["version"] == f"/var/lib/dpkg/status: redis-server {version}"
    assert pod["evidence"]["root"] == f"/proc/{pod['leader']}/root (a directory of the captured tree)"
    assert docker["cgroup"] == f"/system.slice/docker-{DOCKER_REDIS_ID}.scope"
    assert (docker["container"], docker["pod"]) == ({"runtime": "docker", "id": DOCKER_REDIS_ID}, None)


TITLE_OVER_ENVIRON = (
    "no REDIS_VERSION in the environment: it reads as NUL bytes only "
    "(redis-server writes its process title over it unless set-proc-title is no)"
)


def test_redis_version_from_the_environment_is_not_seen_on_a_running_server() -> None:
    """Pins what the real host showed: the script starts the "official image" Redis with REDIS_VERSION in
    its environment, but redis-server writes its process title over its argv and environment at start
    (set-proc-title, on by default), so /proc/<pid>/environ reads as NUL bytes and the version is null;
    the evidence says why."""
    root = HOSTS / "small-containers"
    instances = probe(root, "small-containers")["redis"]["instances"]
    docker = next(i for i in instances if i["container"] and i["pod"] is None)
    assert script_value("DOCKER_REDIS_VERSION") in SCRIPT
    assert docker["version"] is None
    assert docker["evidence"]["version"] == (
        f"/var/lib/dpkg/status: none of redis-server installed; {TITLE_OVER_ENVIRON}"
    )
    environ = (root / f"proc/{docker['leader']}/environ").read_bytes()
    assert environ and not environ.strip(b"\0")


def test_postgres_in_docker_reads_the_pg_version_of_its_own_root() -> None:
    root = HOSTS / "small-containers"
    [instance] = probe(root, "small-containers")["postgresql"]["instances"]
    leader = postmaster(root, "/var/lib/postgresql/data")
    assert instance["leader"] == leader
    assert instance["container"] == {"runtime": "docker", "id": DOCKER_PG_ID}
    assert instance["unit"] == f"docker-{DOCKER_PG_ID}.scope"
    assert (instance["data_dir"], instance["version"]) == ("/var/lib/postgresql/data", "15")
    assert instance["evidence"]["version"] == "/var/lib/postgresql/data/PG_VERSION says 15"
    assert (root / f"proc/{leader}/root/var/lib/postgresql/data/PG_VERSION").is_file()
    assert not (root / "var/lib/postgresql/data").exists()  # the host has no such cluster
    assert len(instance["pids"]) == 1 + len(PG_CHILDREN)


@pytest.mark.parametrize("host", ["numa2-databases", "small-containers", "v1-databases"])
def test_the_capture_keeps_no_secret_of_an_environment(host: str) -> None:
    """The script gives the Docker Redis REDIS_PASSWORD=lab-secret; the capture keeps only REDIS_VERSION."""
    assert "REDIS_PASSWORD=lab-secret" in SCRIPT
    for directory, _dirs, files in os.walk(HOSTS / host):
        for name in files:
            path = Path(directory) / name
            if not path.is_symlink():
                assert b"lab-secret" not in path.read_bytes(), path
                if name == "environ":
                    items = [i for i in path.read_bytes().split(b"\0") if i]
                    assert all(i.startswith(b"REDIS_VERSION=") for i in items), path


def test_a_postmaster_whose_files_vanished_gives_null_and_says_why(tmp_path: Path) -> None:
    root = tree_copy(tmp_path, "numa2-databases")
    leader = postmaster(root, "/var/lib/postgresql/15/second")
    for name in ("cmdline", "cgroup", "stat", "exe", "root"):
        (root / f"proc/{leader}/{name}").unlink()
    first, second = probe(root, "numa2-databases")["postgresql"]["instances"]
    assert first["version"] == "15"
    assert second["leader"] == leader
    assert len(second["pids"]) == 1 + len(PG_CHILDREN)  # its children still name it as their parent
    assert (second["cgroup"], second["unit"], second["data_dir"], second["version"]) == (
        None,
        None,
        None,
        None,
    )
    assert second["evidence"]["cgroup"] == f"/proc/{leader}/cgroup is not readable"
    assert second["evidence"]["version"] == "binary unknown and unit None name no version"


def test_an_unreadable_cgroup_file_of_a_pod_process_gives_no_placement(tmp_path: Path) -> None:
    root = tree_copy(tmp_path, "small-containers")
    pod = next(i for i in probe(root, "small-containers")["redis"]["instances"] if i["pod"])
    cgroup = root / f"proc/{pod['leader']}/cgroup"
    cgroup.unlink()
    os.mkfifo(cgroup)  # a FIFO is never opened below a captured root
    found = probe(root, "small-containers")["redis"]["instances"]
    [instance] = [i for i in found if i["leader"] == pod["leader"]]
    assert (instance["cgroup"], instance["unit"], instance["container"], instance["pod"]) == (None,) * 4
    assert instance["evidence"]["cgroup"] == f"/proc/{pod['leader']}/cgroup is not readable"
    assert instance["version"] == pod["version"]  # still read through its own root


def test_a_corrupt_dpkg_status_in_a_container_gives_null(tmp_path: Path) -> None:
    root = tree_copy(tmp_path, "small-containers")
    pod = next(i for i in probe(root, "small-containers")["redis"]["instances"] if i["pod"])
    status = root / f"proc/{pod['leader']}/root/var/lib/dpkg/status"
    status.write_text(
        re.sub(r"(Package: redis-server\n(?:.+\n)*?)Version: .*", r"\1Version: ~~~", status.read_text())
    )
    found = probe(root, "small-containers")["redis"]
    [instance] = [i for i in found["instances"] if i["leader"] == pod["leader"]]
    assert instance["version"] is None
    assert instance["evidence"]["version"] == (
        f"/var/lib/dpkg/status: package redis-server has no valid Version ('~~~'); {TITLE_OVER_ENVIRON}"
    )
    assert found["version"] == HOST_REDIS[0]  # the host's own status file is untouched


def test_a_corrupt_pg_version_falls_back_to_the_binary_and_says_so(tmp_path: Path) -> None:
    root = tree_copy(tmp_path, "numa2-databases")
    (root / "var/lib/postgresql/15/main/PG_VERSION").write_text("fifteen\n")
    first, _second = probe(root, "numa2-databases")["postgresql"]["instances"]
    assert first["version"] == "15"
    assert first["evidence"]["version"] == (
        "/var/lib/postgresql/15/main/PG_VERSION holds 'fifteen'; binary /usr/lib/postgresql/15/bin/postgres"
    )


# -- what the controller plans from these facts (issue 18's workload: cgroup entries) --------------------
def planned(host: str, tmp_path: Path, *entries: dict[str, Any]) -> Any:
    rule = {"name": "protect", "source": "test", "cgroups": list(entries)}
    path = tmp_path / "protect.yml"
    path.write_text(json.dumps({"layer": "group", "name": "protect", "rules": [rule]}))
    facts = parse_facts(collect(Tree(str(HOSTS / host))), host)
    return plan(facts, PolicySet.of([load_policy_file(path)]), groups=["protect"], workloads=[])


def test_each_debian_cluster_gets_its_own_unit_entry(tmp_path: Path) -> None:
    desired = planned(
        "numa2-databases",
        tmp_path,
        {"workload": "postgresql", "MemoryLow": "1GiB"},
        {"workload": "mysql", "MemoryHigh": "2GiB"},
    )
    assert {g.unit: dict(g.limits) for g in desired.cgroups} == {
        "postgresql@15-main.service": {"MemoryLow": 1 << 30},
        "postgresql@15-second.service": {"MemoryLow": 1 << 30},
        "mariadb.service": {"MemoryHigh": 2 << 30},
    }
    assert {type(g) for g in desired.cgroups} == {UnitCgroup}
    assert not [s for s in desired.skipped if s.knob.startswith("cgroup.")]


def test_only_the_host_redis_is_limited_and_the_containers_say_why(tmp_path: Path) -> None:
    desired = planned("small-containers", tmp_path, {"workload": "redis", "MemoryLow": "256MiB"})
    assert [(g.unit, dict(g.limits)) for g in desired.cgroups] == [
        ("redis-server.service", {"MemoryLow": 256 << 20})
    ]
    assert {s.knob for s in desired.skipped} == {
        f"cgroup.workload:redis:pod {POD_UID} (Burstable)",
        f"cgroup.workload:redis:docker container {DOCKER_REDIS_ID[:12]}",
    }
    assert all("belong to its runtime" in s.reason for s in desired.skipped)


def test_a_postgres_only_in_docker_does_not_choose_the_hosts_policy() -> None:
    facts = parse_facts(collect(Tree(str(HOSTS / "small-containers"))), "small-containers")
    assert facts.host_workload_names == {"redis"}
    assert facts.workload_names == {"redis", "postgresql"}


# -- a guest booted on cgroup v1 (hybrid) ----------------------------------------------------------------
V1_REDIS_ID = script_id("V1_REDIS_ID")


def test_v1_units_and_a_cgroupfs_docker_container() -> None:
    facts = collect(Tree(str(HOSTS / "v1-databases")))
    parse_facts(facts, "v1-databases")
    assert facts["platform"]["cgroup"] == {
        "version": "hybrid",
        "memory_controller": True,
        "mount": "/sys/fs/cgroup/memory",
    }
    found = {entry["name"]: entry for entry in facts["workloads"]}
    [cluster] = found["postgresql"]["instances"]
    assert (cluster["cgroup_version"], cluster["unit"], cluster["version"]) == (
        1,
        "postgresql@15-main.service",
        "15",
    )
    assert cluster["cgroup"] == "/system.slice/system-postgresql.slice/postgresql@15-main.service"
    host, docker = found["redis"]["instances"]
    assert (host["cgroup_version"], host["cgroup"], host["unit"], host["version"]) == (
        1,
        "/system.slice/redis-server.service",
        "redis-server.service",
        HOST_REDIS[0],
    )
    assert (docker["cgroup_version"], docker["cgroup"], docker["unit"]) == (1, f"/docker/{V1_REDIS_ID}", None)
    assert docker["container"] == {"runtime": "docker", "id": V1_REDIS_ID}
    version = script_value("V1_REDIS_VERSION")
    assert docker["version"] == version.split(":", 1)[1].rsplit("-", 1)[0]
    assert docker["evidence"]["version"] == f"/var/lib/dpkg/status: redis-server {version}"


def test_v1_plans_memory_max_for_the_units_and_skips_the_container(tmp_path: Path) -> None:
    desired = planned(
        "v1-databases",
        tmp_path,
        {"workload": "redis", "MemoryMax": "512MiB"},
        {"workload": "postgresql", "MemoryLow": "1GiB", "MemoryMax": "1GiB"},
    )
    assert {g.unit: dict(g.limits) for g in desired.cgroups} == {
        "redis-server.service": {"MemoryMax": 512 << 20},
        "postgresql@15-main.service": {"MemoryMax": 1 << 30},  # v1 has no memory.low
    }
    reasons = {s.knob: s.reason for s in desired.skipped}
    assert f"cgroup.workload:redis:docker container {V1_REDIS_ID[:12]}" in reasons
    assert reasons["cgroup.postgresql@15-main.service.MemoryLow"].startswith("cgroup v1 memory controller")


# -- the bundled policies on the real databases host -----------------------------------------------------
def test_the_protection_policy_shares_half_of_ram_between_the_real_instances(bundled: PolicySet) -> None:
    """policies/memtune_protect_databases.yml: half of RAM shared by the selected databases' host
    instances (here two clusters and MariaDB), whole MiB; Debian's template slice holds its clusters'
    shares; system.slice all of them; user.slice a quarter of RAM at most."""
    facts = parse_facts(collect(Tree(str(HOSTS / "numa2-databases"))), "numa2-databases")
    desired = plan(facts, bundled, groups=["memtune_protect_databases"], workloads=["postgresql", "mysql"])
    share = facts.memory.mem_total_kb * 1024 // 2 // 3 // MiB * MiB
    assert {getattr(g, "unit", None) or g.path: dict(g.limits) for g in desired.cgroups} == {
        "postgresql@15-main.service": {"MemoryLow": share},
        "postgresql@15-second.service": {"MemoryLow": share},
        "mariadb.service": {"MemoryLow": share},
        "system-postgresql.slice": {"MemoryLow": 2 * share},
        "system.slice": {"MemoryLow": 3 * share},
        "user.slice": {"MemoryHigh": facts.memory.mem_total_kb * 1024 // 4 // MiB * MiB},
    }


def test_postgresql_and_redis_on_one_host_conflict_on_overcommit(bundled: PolicySet) -> None:
    """What a real host running Debian's PostgreSQL and Redis gets from detection alone: their workload
    policies want different vm.overcommit_memory modes, and the plan names both rules (DESIGN.md,
    "Workloads sharing a host"); a group or host policy, or memtune_workloads, settles it."""
    facts = parse_facts(collect(Tree(str(HOSTS / "numa2-databases"))), "numa2-databases")
    with pytest.raises(ConflictError, match=r"vm\.overcommit_memory.*postgresql.*redis"):
        plan(facts, bundled)


@pytest.mark.parametrize("host", ["numa2-databases", "small-containers", "v1-databases"])
def test_the_memory_facts_module_reports_the_same_workloads(tmp_path: Path, host: str) -> None:
    """The real module in its own process, as Ansible runs it (root= a copy of the tree)."""
    root = tree_copy(tmp_path, host)  # the module's arguments file is written beside the tree
    result, stderr = run_on_tree("memory_facts", root, {}, timeout=120)
    assert "Traceback" not in stderr
    facts = result["ansible_facts"]["memtune"]
    parse_facts(facts, host)
    assert facts["workloads"] == collect(Tree(str(HOSTS / host)))["workloads"]
