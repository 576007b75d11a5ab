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
    "/etc/os-release", "/.dockerenv", "/run/.containerenv", "/run/systemd/container",
]
# Directories whose mere existence is a fact (sd_booted(3)); captured empty.
MARKER_DIRS = ["/run/systemd/system"]

SKIP = {"/proc/sys/vm/compact_memory", "/proc/sys/vm/drop_caches"}  # write-only triggers


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def linked_prefix(path):
    """The first component of ``path`` that is a symbolic link (merged-usr /lib, say), or None.
    Links in /proc and /sys (/proc/self, /sys/class/...) are the kernel's: their files are copied."""
    if path.startswith(("/proc/", "/sys/")):
        return None
    prefix = ""
    for part in path.strip("/").split("/")[:-1]:
        prefix += "/" + part
        if os.path.islink(prefix):
            return prefix
    return None


def add_link(archive, path):
    info = tarfile.TarInfo(path.lstrip("/"))
    info.type = tarfile.SYMTYPE
    info.linkname = os.readlink(path)
    archive.addfile(info)


def main():
    with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as archive:
        capture(archive)


def capture(archive):
    seen = set()
    for path in MARKER_DIRS:
        if os.path.isdir(path):
            info = tarfile.TarInfo(path.lstrip("/"))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(info)
    for pattern in PATTERNS:
        for path in sorted(glob.glob(pattern)):
            # Links are kept as links: Debian's /etc/sysctl.d/99-sysctl.conf -> ../sysctl.conf decides
            # whether /etc/sysctl.conf is applied once or twice.
            link = linked_prefix(path)
            if link is None and os.path.islink(path) and not path.startswith(("/proc/", "/sys/")):
                link = path
            if link:
                if link not in seen:
                    seen.add(link)
                    add_link(archive, link)
                continue
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


if __name__ == "__main__":
    main()
