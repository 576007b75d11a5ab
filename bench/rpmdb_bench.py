"""CPU of one RPM database lookup (issue 18: `versions.rpm_version`, a root without a dpkg status file),
on an rpmdb.sqlite Debian's rpm writes: PACKAGES header-only filler packages plus the test packages of
tests/support/rpm_db.py (redis, mongodb-org-server, mariadb-server), built with rpmbuild and installed
with `rpm --justdb`. Each figure is the median of RUNS calls (time.process_time() around 20 lookups),
after one warm-up call: redis (found, the first of two names), mysql (mariadb-server, the first of six
names) and elasticsearch (neither of its two names installed: two index lookups, nothing found).
The filler headers are small (no file lists): a real host's headers are larger, and only the one header
found is fetched and parsed.

Usage: .venv/bin/python bench/rpmdb_bench.py [RUNS] [PACKAGES]   (needs Debian's rpm: `make apt`)
"""

from __future__ import annotations

import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))

from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree  # noqa: E402
from ansible_collections.memtune.fleet.plugins.module_utils._probe import versions  # noqa: E402
from tests.support import rpm_db  # noqa: E402

BATCH = 20


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    with tempfile.TemporaryDirectory(prefix="memtune-rpmdb-") as scratch:
        work = Path(scratch)
        filler = tuple((f"lib-filler-{n}", None, f"1.{n}", "1.el9") for n in range(count))
        database = rpm_db.install(
            work / "root/var/lib/rpm", rpm_db.build_rpms(work, filler + rpm_db.PACKAGES)
        )
        tree = Tree(str(work / "root"))
        print(
            f"python {platform.python_version()}, {count + len(rpm_db.PACKAGES)} packages, "
            f"rpmdb.sqlite {database.stat().st_size} bytes, median of {runs}"
        )
        for workload in ("redis", "mysql", "elasticsearch"):
            names = versions.RPM_PACKAGES[workload]
            answer = versions.rpm_version(tree, names)[0]
            samples = []
            for _ in range(runs):
                start = time.process_time()
                for _ in range(BATCH):
                    versions.rpm_version(tree, names)
                samples.append((time.process_time() - start) / BATCH)
            print(f"{workload}: {statistics.median(samples) * 1e3:.3f} ms ({answer[0]!r})")


if __name__ == "__main__":
    main()
