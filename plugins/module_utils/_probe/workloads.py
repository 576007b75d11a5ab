# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Detect the workloads running on a host from /proc/<pid>/comm, cmdline and exe. Never runs binaries."""

from __future__ import annotations

import os
import re

# comm (the kernel truncates it to 15 characters) -> workload. Java and other generic runtimes are
# told apart by their command line below.
_BY_COMM = {
    "postgres": "postgresql", "postmaster": "postgresql",
    "mysqld": "mysql", "mariadbd": "mysql",
    "redis-server": "redis",
    "mongod": "mongodb",
    "kubelet": "kubernetes",
    "libvirtd": "kvm_host", "virtqemud": "kvm_host", "qemu-kvm": "kvm_host",
    "hdbindexserver": "sap_hana",
}
_BY_COMM_PREFIX = (("qemu-system-", "kvm_host"), ("ora_pmon_", "oracle"))
_BY_JAVA_CLASS = (
    ("org.elasticsearch.bootstrap.Elasticsearch", "elasticsearch"),
    ("org.opensearch.bootstrap.OpenSearch", "elasticsearch"),
    ("kafka.Kafka", "kafka"),
)
_KAFKA_JAR = re.compile(r"kafka_[0-9.]+-([0-9][0-9A-Za-z.\-]*?)\.jar")
_PG_BIN = re.compile(r"/postgresql/([0-9.]{1,16})/bin/")
_PG_VERSION = re.compile(r"[0-9]{1,4}(?:\.[0-9]{1,4})?", re.ASCII)  # what PG_VERSION holds: "15", "9.6"
WORKLOADS = ("postgresql", "mysql", "redis", "mongodb", "elasticsearch", "kafka", "kvm_host",
             "kubernetes", "oracle", "sap_hana")


def classify(comm, read_cmdline):
    """-> (workload, matched) or None. ``read_cmdline`` is called only for generic runtimes."""
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


def _argv(tree, pid):
    text = tree.read("/proc/%s/cmdline" % pid, optional=True) or ""
    return text.replace("\0", " ")


def _postgres_version(tree, pid, argv):
    words = argv.split()
    data_dir = None
    for index, word in enumerate(words):
        if word == "-D" and index + 1 < len(words):
            data_dir = words[index + 1]
        elif word.startswith("-D") and len(word) > 2:
            data_dir = word[2:]
    if data_dir and data_dir.startswith("/"):  # a relative one is relative to a cwd we do not know
        version = tree.read(os.path.join(data_dir, "PG_VERSION"), optional=True)
        if version and _PG_VERSION.fullmatch(version):
            return version
    exe = tree.readlink("/proc/%s/exe" % pid) or (words[0] if words else "")
    match = _PG_BIN.search(exe)
    return match.group(1) if match else None


def _version(tree, workload, pid, matched):
    if workload == "postgresql":
        return _postgres_version(tree, pid, _argv(tree, pid))
    if workload == "kafka":
        match = _KAFKA_JAR.search(_argv(tree, pid))
        return match.group(1) if match else None
    return None


def detect_workloads(tree, pids_limit=20):
    """[{name, pids, evidence: [{pid, comm, match}], version}] sorted by name."""
    found = {}
    for pid in tree.listdir("/proc"):
        if not (pid.isascii() and pid.isdigit()):
            continue
        comm = tree.read("/proc/%s/comm" % pid, optional=True)
        if not comm:
            continue
        hit = classify(comm, lambda pid=pid: _argv(tree, pid))
        if hit is None:
            continue
        workload, matched = hit
        entry = found.setdefault(workload, {"name": workload, "pids": [], "evidence": [], "version": None})
        entry["pids"].append(int(pid))
        if len(entry["evidence"]) < pids_limit:
            entry["evidence"].append({"pid": int(pid), "comm": comm, "match": matched})
        if entry["version"] is None:
            entry["version"] = _version(tree, workload, pid, matched)
    for entry in found.values():
        entry["pids"].sort()
    return [found[name] for name in sorted(found)]
