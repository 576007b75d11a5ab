"""CPU cost of the probe's last resort for a version, one ``<binary> --version`` (run_version.VersionRuns),
on Debian's own server binaries, unpacked (not installed) from their packages.

Usage: .venv/bin/python bench/version_run_bench.py [RUNS]
Downloads mariadb-server-core, postgresql-15, redis-tools and the two libraries redis needs with
`apt-get download` into ~/.cache/memtune/bench/debs (once), unpacks them with `dpkg-deb -x`, and times
VersionRuns().version() on each: the median over RUNS calls of this process's CPU plus its children's.
redis-server is redis-check-rdb under another name (as Debian's package links it); it needs the unpacked
libraries, so this process runs with LD_LIBRARY_PATH set for it.
"""

from __future__ import annotations

import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
CACHE = Path.home() / ".cache/memtune/bench/debs"
PACKAGES = ("mariadb-server-core", "postgresql-15", "redis-tools", "libjemalloc2", "liblzf1")
LIBS = CACHE / "root/usr/lib/x86_64-linux-gnu"
BINARIES = (
    ("mysql", "usr/sbin/mariadbd"),
    ("postgresql", "usr/lib/postgresql/15/bin/postgres"),
    ("redis", "usr/bin/redis-server"),
)


def unpack() -> Path:
    root = CACHE / "root"
    if (root / BINARIES[0][1]).exists():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=CACHE, check=True, capture_output=True)
    for deb in CACHE.glob("*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    shutil.copy(root / "usr/bin/redis-check-rdb", root / "usr/bin/redis-server")
    return root


def cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    if os.environ.get("LD_LIBRARY_PATH") != str(LIBS):
        unpack()
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "LD_LIBRARY_PATH": str(LIBS)})
    sys.path.insert(0, str(REPO))
    from ansible_collections.memtune.fleet.plugins.module_utils._probe import run_version

    run_version._ENV["LD_LIBRARY_PATH"] = str(LIBS)  # the bench's unpacked libraries, not a host's
    print(f"# one --version per binary, {time.strftime('%Y-%m-%d')}, {RUNS} runs each, medians")
    print(f"machine: {os.cpu_count()} cores, {platform.release()}, Python {platform.python_version()}")
    for workload, relative in BINARIES:
        exe = str(CACHE / "root" / relative)
        costs, found = [], None
        for _ in range(RUNS):
            start = cpu()
            found, evidence = run_version.VersionRuns().version(workload, exe)
            costs.append(cpu() - start)
        cost = statistics.median(costs) * 1000
        print(f"{workload:<11} {cost:6.1f} ms CPU  version {found}  ({evidence[-70:]})")


if __name__ == "__main__":
    main()
