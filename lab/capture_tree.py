#!/usr/bin/env python3
"""Capture the /proc, /sys and /etc files that memtune's probe reads, as a tar stream on stdout.

Runs on the host being captured (standard library only, Python >= 3.8), e.g.
    ssh guest python3 - < lab/capture_tree.py | tar -x -C tests/fixtures/hosts/numa2
    ssh guest python3 - --processes < lab/capture_tree.py | tar -x -C tests/fixtures/hosts/numa2-databases
    python3 lab/capture_tree.py | tar -x -C tests/fixtures/hosts/this-machine
Files are copied by content (procfs files report size 0, so they are read, not stat'ed); unreadable
files are skipped. Without --processes no per-process file is captured: they describe one moment.

--processes (run as root) also keeps what the probe reads of each workload process (the processes the
probe's classify() in plugins/module_utils/_probe/workloads.py names, decided here from comm and cmdline
with a copy of its tables; tests/unit/lab/test_capture_tree.py checks the copies agree):
  /proc/<pid>/{comm,cmdline,stat,cgroup}; environ reduced to REDIS_VERSION (it can hold secrets);
  the exe link as it reads; the root link: "/" when the process's root is this host's (same device and
  inode), else a directory holding only the version files the probe reads through that root;
  and the version files themselves: PG_VERSION in the -D data directory, /var/lib/dpkg/status, the
  Elasticsearch/OpenSearch jar names (empty files) and Oracle's comps.xml. Links on the way to a version
  file are kept as links and followed inside the process's root, as the probe's confined Tree does.
"""
import contextlib
import glob
import io
import os
import stat
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


# The probe's classify() tables (plugins/module_utils/_probe/workloads.py), copied: this file runs alone on
# the captured host. tests/unit/lab/test_capture_tree.py says the two copies agree.
_BY_COMM = {
    "postgres": "postgresql", "postmaster": "postgresql",
    "mysqld": "mysql", "mariadbd": "mysql",
    "redis-server": "redis",
    "mongod": "mongodb",
    "kubelet": "kubernetes",
    "libvirtd": "kvm_host", "virtqemud": "kvm_host", "qemu-kvm": "kvm_host",
    "hdbindexserver": "sap_hana",
    "slurmd": "hpc_compute", "pbs_mom": "hpc_compute",
}
_BY_COMM_PREFIX = (("qemu-system-", "kvm_host"), ("ora_pmon_", "oracle"))
_BY_JAVA_CLASS = (
    ("org.elasticsearch.bootstrap.Elasticsearch", "elasticsearch"),
    ("org.opensearch.bootstrap.OpenSearch", "elasticsearch"),
    ("kafka.Kafka", "kafka"),
)
# What the probe's versions.py reads (PACKAGES, _JAVA_HOMES, IMAGE_VARIABLES), for the files to keep.
DPKG_STATUS = "/var/lib/dpkg/status"
DPKG_WORKLOADS = ("mongodb", "redis", "mysql", "elasticsearch")
JAVA_HOMES = ("-Des.path.home=", "-Dopensearch.path.home=")
KEPT_ENVIRON = (b"REDIS_VERSION",)  # nothing else of an environment is kept: it can hold secrets
PROCESS_FILES = ("comm", "cmdline", "stat", "cgroup")
MAX_PROCESSES = 4096  # workload processes captured: a capture of a busy host stays bounded
MAX_HOPS = 40  # links followed to one version file, as the probe's Tree
ROOT_MAX_READ = 16 << 20  # bytes of one version file, as the probe's workloads.ROOT_MAX_READ


def classify(comm, read_cmdline):
    """-> (workload, matched) or None, as the probe's classify() decides it."""
    if comm in _BY_COMM:
        return _BY_COMM[comm], comm
    for prefix, workload in _BY_COMM_PREFIX:
        if comm.startswith(prefix):
            return workload, comm
    if comm == "java":
        argv = read_cmdline()
        for java_class, workload in _BY_JAVA_CLASS:
            if java_class in argv:
                return workload, java_class
    return None


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


def main(argv):
    if argv not in ([], ["--processes"]):
        sys.exit("usage: capture_tree.py [--processes]")
    with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as archive:
        seen = capture(archive)
        if argv:
            capture_processes(archive, seen)


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
    return seen


def add_file(archive, name, data, mode=0o644):
    info = tarfile.TarInfo(name.lstrip("/"))
    info.size, info.mode = len(data), mode
    archive.addfile(info, io.BytesIO(data))


def add_symlink(archive, name, target):
    info = tarfile.TarInfo(name.lstrip("/"))
    info.type, info.linkname = tarfile.SYMTYPE, target
    archive.addfile(info)


def argv_of(pid):
    try:
        text = read("/proc/%s/cmdline" % pid).decode("utf-8", "replace")
    except OSError:
        return []
    return [word for word in text.split("\0") if word]


def data_dir(argv):
    """PostgreSQL's data directory from ``-D dir`` or ``-Ddir``, as the probe's versions.data_dir."""
    found = None
    for index, word in enumerate(argv):
        if word == "-D" and index + 1 < len(argv):
            found = argv[index + 1]
        elif word.startswith("-D") and len(word) > 2:
            found = word[2:]
    return found


def version_paths(workload, argv, exe):
    """[(path in the process's root, "file" or "names")] that the probe reads for the version."""
    paths = []
    directory = data_dir(argv) if workload == "postgresql" else None
    if directory and directory.startswith("/"):
        paths.append((os.path.join(directory, "PG_VERSION"), "file"))
    if workload in DPKG_WORKLOADS:
        paths.append((DPKG_STATUS, "file"))
    if workload == "elasticsearch":
        for flag in JAVA_HOMES:
            homes = [word[len(flag) :] for word in argv if word.startswith(flag)]
            if homes and homes[0].startswith("/"):
                paths.append((os.path.join(homes[0], "lib"), "names"))
    if workload == "oracle" and exe and exe.endswith("/bin/oracle"):
        home = os.path.dirname(os.path.dirname(exe))
        paths.append((os.path.join(home, "inventory/ContentsXML/comps.xml"), "file"))
    return paths


def copy_confined(archive, seen, root, prefix, path, *, kind):
    """Copy ``path`` as a process whose root is ``root`` sees it (a chroot: an absolute link starts
    again at ``root``, ``..`` stops there) into the archive below ``prefix``: each link on the way as a
    link, then the regular file (for kind "names", a directory's entries as empty files)."""
    pending = [part for part in reversed(path.split("/")) if part not in ("", ".")]
    done = []
    hops = 0
    while pending:
        part = pending.pop()
        if part == "..":
            if done:
                done.pop()
            continue
        on_host = os.path.join(root, *done, part)
        try:
            is_link = stat.S_ISLNK(os.lstat(on_host).st_mode)
        except OSError:
            return  # not there: the probe finds nothing either
        if not is_link:
            done.append(part)
            continue
        hops += 1
        if hops > MAX_HOPS:
            return
        target = os.readlink(on_host)
        name = "%s/%s" % (prefix, "/".join([*done, part]))
        if name not in seen:
            seen.add(name)
            add_symlink(archive, name, target)
        if target.startswith("/"):
            done = []
        pending.extend(reversed([item for item in target.split("/") if item not in ("", ".")]))
    on_host = os.path.join(root, *done)
    name = "%s/%s" % (prefix, "/".join(done))
    if kind == "names":
        try:
            entries = sorted(os.listdir(on_host))
        except OSError:
            return
        for entry in entries:
            if "%s/%s" % (name, entry) not in seen:
                seen.add("%s/%s" % (name, entry))
                add_file(archive, "%s/%s" % (name, entry), b"")
        return
    try:
        info = os.stat(on_host)
        if name in seen or not stat.S_ISREG(info.st_mode) or info.st_size > ROOT_MAX_READ:
            return
        data = read(on_host)
    except OSError:
        return
    seen.add(name)
    add_file(archive, name, data)


def same_file(first, second):
    try:
        one, two = os.stat(first), os.stat(second)
    except OSError:
        return False
    return (one.st_dev, one.st_ino) == (two.st_dev, two.st_ino)


def reduced_environ(data):
    """The KEPT_ENVIRON variables of an environment; NUL bytes alone are kept as they are (nothing secret
    in them: a process such as redis-server wrote its title over its environment) for the probe to see."""
    if not data.strip(b"\0"):
        return data
    kept = [item for item in data.split(b"\0") if item.partition(b"=")[0] in KEPT_ENVIRON]
    return b"".join(item + b"\0" for item in kept)


def capture_process(archive, seen, pid, workload):
    base = "/proc/%s" % pid
    for name in PROCESS_FILES:
        with contextlib.suppress(OSError):  # exited meanwhile, or not readable: the probe finds none
            add_file(archive, "%s/%s" % (base, name), read("%s/%s" % (base, name)))
    with contextlib.suppress(OSError):
        add_file(archive, base + "/environ", reduced_environ(read(base + "/environ")), mode=0o600)
    try:
        exe = os.readlink(base + "/exe")
        add_symlink(archive, base + "/exe", exe)
    except OSError:
        exe = None
    # readlink says "/" for a container in its own mount namespace too: its device and inode tell.
    if same_file(base + "/root", "/"):
        add_symlink(archive, base + "/root", "/")  # the probe reads the capture's root as this host's /
        root, prefix = "/", ""
    elif os.path.isdir(base + "/root"):
        root = prefix = base + "/root"  # a container's root: a directory with only its version files
        info = tarfile.TarInfo(prefix.lstrip("/"))
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        archive.addfile(info)
    else:
        return  # exited, or a root that cannot be opened: the capture has none, as the probe sees it
    for path, kind in version_paths(workload, argv_of(pid), exe):
        copy_confined(archive, seen, root, prefix, path, kind=kind)


def capture_processes(archive, seen):
    """The /proc entries and version files of every workload process (see the module's docstring)."""
    count = 0
    for pid in sorted((name for name in os.listdir("/proc") if name.isdigit()), key=int):
        try:
            comm = read("/proc/%s/comm" % pid).decode("utf-8", "replace").strip()
        except OSError:
            continue
        hit = classify(comm, lambda pid=pid: " ".join(argv_of(pid)))
        if hit is None:
            continue
        count += 1
        if count > MAX_PROCESSES:
            sys.stderr.write("capture_tree: over %d workload processes: the rest left out\n" % MAX_PROCESSES)
            return
        capture_process(archive, seen, pid, hit[0])


if __name__ == "__main__":
    main(sys.argv[1:])
