"""CPU of the probe's workload detection (`detect_workloads`), on this machine's /proc and on a database
host laid out in a copy of a captured tree (issue 18: the probe stays under 50 ms of CPU).

The database host: the captured numa2 tree plus two PostgreSQL clusters under their systemd units
(a postmaster and BACKENDS backends each, with PG_VERSION), a Redis in a Docker container with its own
root and a dpkg status file of PACKAGES packages, a PostgreSQL in a Kubernetes pod with its own root, and
PACKAGES packages in the host's dpkg status too. The Kubernetes node: PODS Redis pods of one image, each
its own root, the image's dpkg status shared (as overlayfs shows one lower file), the version only in
REDIS_VERSION. Each figure is the median of RUNS calls, measured with time.process_time() in this
process after one warm-up call.

Usage: .venv/bin/python bench/workloads_bench.py [RUNS] [--repo DIR]   (DIR: another checkout, to measure
its detect_workloads on the same trees, e.g. a `git archive` of main for the before figure)
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
BACKENDS = 100
PODS = 50
PACKAGES = 1500
DOCKER = "4f3c2b1a" * 8
POD = "8d0e7a52_3c1b_4e8f_9a6d_2b5c7e1f0a93"


def dpkg_status(extra: str) -> str:
    filler = "".join(
        f"Package: lib-filler-{n}\nStatus: install ok installed\nPriority: optional\nSection: libs\n"
        f"Installed-Size: {n}\nMaintainer: Debian <debian@example.org>\nArchitecture: amd64\n"
        f"Version: 1.{n}-1\nDescription: filler package {n}\n a long description line of the package\n\n"
        for n in range(PACKAGES)
    )
    return filler + extra


def process(
    root: Path, pid: int, comm: str, argv: list[str], *, cgroup: str, ppid: int, own_root: bool
) -> None:
    proc = root / "proc" / str(pid)
    proc.mkdir(parents=True)
    (proc / "comm").write_text(comm + "\n")
    (proc / "cmdline").write_text("\0".join(argv) + "\0")
    (proc / "cgroup").write_text(cgroup + "\n")
    (proc / "stat").write_text(f"{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 1 0 0 0\n")
    if own_root:
        (proc / "root").mkdir()
    else:
        (proc / "root").symlink_to("/")


def database_host(scratch: Path) -> Path:
    root = scratch / "dbhost"
    shutil.copytree(HERE / "tests/fixtures/hosts/numa2", root, symlinks=True)
    for base, version, cluster in ((10000, "15", "main"), (20000, "16", "other")):
        unit = f"0::/system.slice/postgresql@{version}-{cluster}.service"
        data = f"/var/lib/postgresql/{version}/{cluster}"
        binary = f"/usr/lib/postgresql/{version}/bin/postgres"
        process(root, base, "postgres", [binary, "-D", data], cgroup=unit, ppid=1, own_root=False)
        for n in range(1, BACKENDS + 1):
            backend = [f"postgres: {version}/{cluster}: client backend"]
            process(root, base + n, "postgres", backend, cgroup=unit, ppid=base, own_root=False)
        (root / data.lstrip("/")).mkdir(parents=True)
        (root / data.lstrip("/") / "PG_VERSION").write_text(version + "\n")
    docker = f"0::/system.slice/docker-{DOCKER}.scope"
    process(root, 30000, "redis-server", ["redis-server *:6379"], cgroup=docker, ppid=1, own_root=True)
    redis = "Package: redis-server\nStatus: install ok installed\nVersion: 5:7.0.15-1~deb12u1\n\n"
    status = root / "proc/30000/root/var/lib/dpkg/status"
    status.parent.mkdir(parents=True)
    status.write_text(dpkg_status(redis))
    pod = (
        f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD}.slice/"
        f"cri-containerd-{DOCKER}.scope"
    )
    process(
        root,
        40000,
        "postgres",
        ["postgres", "-D", "/var/lib/postgresql/data"],
        cgroup=pod,
        ppid=1,
        own_root=True,
    )
    (root / "proc/40000/root/var/lib/postgresql/data").mkdir(parents=True)
    (root / "proc/40000/root/var/lib/postgresql/data/PG_VERSION").write_text("17\n")
    (root / "var/lib/dpkg").mkdir(parents=True, exist_ok=True)
    (root / "var/lib/dpkg/status").write_text(dpkg_status(""))
    return root


def kubernetes_node(scratch: Path, shared: bool) -> Path:
    """PODS Redis pods of one image: each its own root, the image layer's dpkg status file shared
    (hard links, as overlayfs shows one lower file), Redis named only by REDIS_VERSION in the environment.
    Not ``shared``: PODS images, each its own copy of the status file."""
    root = scratch / f"k8snode-{shared}"
    shutil.copytree(HERE / "tests/fixtures/hosts/numa2", root, symlinks=True)
    layer = scratch / "layer-status"
    layer.write_text(dpkg_status(""))
    for n in range(PODS):
        pid = 50000 + n
        uid = f"{n:08x}_3c1b_4e8f_9a6d_2b5c7e1f0a93"
        pod = (
            "0::/kubepods.slice/kubepods-burstable.slice/"
            + f"kubepods-burstable-pod{uid}.slice/crio-{n:064x}.scope"
        )
        process(root, pid, "redis-server", ["redis-server *:6379"], cgroup=pod, ppid=1, own_root=True)
        (root / f"proc/{pid}/environ").write_text("PATH=/usr/local/bin\0REDIS_VERSION=7.2.4\0")
        status = root / f"proc/{pid}/root/var/lib/dpkg/status"
        status.parent.mkdir(parents=True)
        if shared:
            os.link(layer, status)
        else:
            shutil.copyfile(layer, status)
    return root


def median_ms(call, runs: int) -> float:
    call()
    times = []
    for _ in range(runs):
        start = time.process_time()
        call()
        times.append(time.process_time() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="?", type=int, default=30)
    parser.add_argument("--repo", type=Path, default=HERE)
    args = parser.parse_args()
    link = args.repo / "ansible_collections/memtune/fleet"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("..") / "..")
    sys.path.insert(0, str(args.repo))
    from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
    from ansible_collections.memtune.fleet.plugins.module_utils._probe.workloads import detect_workloads

    with tempfile.TemporaryDirectory() as scratch:
        db = database_host(Path(scratch))
        found = detect_workloads(Tree(str(db)))
        instances = sum(len(w.get("instances", [])) for w in found)
        live = detect_workloads(Tree("/"))
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        print(f"# detect_workloads CPU, {when}, {args.runs} runs, medians")
        print(
            f"code: {args.repo}; machine: {os.cpu_count()} cores, {platform.release()}, Python "
            f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
        )
        print(
            f"live /proc ({len(os.listdir('/proc'))} entries, {len(live)} workloads): "
            f"{median_ms(lambda: detect_workloads(Tree('/')), args.runs):6.2f} ms"
        )
        print(
            f"database host ({2 * BACKENDS + 4} workload processes, {instances} instances): "
            f"{median_ms(lambda: detect_workloads(Tree(str(db))), args.runs):6.2f} ms"
        )
        for shared in (True, False):
            node = kubernetes_node(Path(scratch), shared)
            pods = detect_workloads(Tree(str(node)))
            found = {i["version"] for w in pods for i in w.get("instances", [])} or {
                w["version"] for w in pods
            }
            print(
                f"kubernetes node ({PODS} Redis pods of {'one image' if shared else f'{PODS} images'}, "
                f"versions {sorted(map(str, found))}): "
                f"{median_ms(lambda node=node: detect_workloads(Tree(str(node))), args.runs):6.2f} ms"
            )


if __name__ == "__main__":
    main()
