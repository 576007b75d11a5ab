#!/usr/bin/env python3
"""Capture the /proc, /sys and /etc files that memtune's probe reads, as a tar stream on stdout.

Runs on the host being captured (standard library only, Python >= 3.8), e.g.
    ssh guest python3 - < lab/capture_tree.py | tar -x -C tests/fixtures/hosts/numa2
    python3 lab/capture_tree.py | tar -x -C tests/fixtures/hosts/this-machine
Files are copied by content (procfs files report size 0, so they are read, not stat'ed); unreadable
files are skipped. Per-process files are not captured: they describe one moment and one machine.
"""
import glob
import io
import os
import sys
import tarfile

PATTERNS = [
    "/proc/meminfo", "/proc/swaps", "/proc/vmstat", "/proc/cpuinfo", "/proc/cmdline",
    "/proc/version", "/proc/cgroups", "/proc/pressure/memory", "/proc/self/mountinfo",
    "/proc/1/comm",
    "/proc/sys/kernel/osrelease", "/proc/sys/kernel/numa_balancing",
    "/proc/sys/vm/*",
    "/sys/devices/system/node/online", "/sys/devices/system/node/possible",
    "/sys/devices/system/node/has_*",
    "/sys/devices/system/node/node*/meminfo", "/sys/devices/system/node/node*/cpulist",
    "/sys/devices/system/node/node*/distance", "/sys/devices/system/node/node*/numastat",
    "/sys/devices/system/node/node*/hugepages/hugepages-*/*",
    "/sys/kernel/mm/hugepages/hugepages-*/*",
    "/sys/kernel/mm/transparent_hugepage/enabled", "/sys/kernel/mm/transparent_hugepage/defrag",
    "/sys/kernel/mm/transparent_hugepage/hpage_pmd_size",
    "/sys/class/dmi/id/sys_vendor", "/sys/class/dmi/id/product_name",
    "/sys/fs/cgroup/cgroup.controllers", "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    "/etc/sysctl.conf", "/etc/sysctl.d/*", "/run/sysctl.d/*", "/usr/local/lib/sysctl.d/*",
    "/usr/lib/sysctl.d/*", "/lib/sysctl.d/*",
    "/etc/os-release",
]

SKIP = {"/proc/sys/vm/compact_memory", "/proc/sys/vm/drop_caches"}  # write-only triggers


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def main():
    archive = tarfile.open(fileobj=sys.stdout.buffer, mode="w|")
    seen = set()
    for pattern in PATTERNS:
        for path in sorted(glob.glob(pattern)):
            if path in seen or path in SKIP or os.path.isdir(path):
                continue
            seen.add(path)
            try:
                data = read(path)
            except OSError:
                continue
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    archive.close()


if __name__ == "__main__":
    main()
