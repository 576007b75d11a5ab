# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Detect the workloads running on a host from /proc/<pid>/comm, cmdline and exe, and each workload's
instances: the processes of one PostgreSQL cluster, one Redis server, with their cgroup, systemd unit,
container or pod, the root their files are read through, and the version those files give.
Runs a binary only for its version, and only where no file says it (run_version.py).

An instance is a process tree of the workload: a process whose parent is the same workload belongs to
its parent's instance (PostgreSQL's backends to their postmaster). Processes whose parent is unknown
join the one instance of their cgroup; a cgroup with several data directories keeps them apart.
A process that exits while it is read is left out of the instances (it stays in the workload's pids).
"""

from __future__ import annotations

import os

from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._probe import run_version, versions
from ansible_collections.memtune.fleet.plugins.module_utils._probe.placement import (
    contained,
    parse_proc_cgroup,
    placement,
    systemd_path,
)

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
    # HPC compute nodes: the batch systems' node daemons (Slurm's slurmd, slurmd(8); PBS's MoM, pbs_mom(8B)
    # in OpenPBS and Torque). Their controllers (slurmctld, pbs_server) do not make a compute node.
    "slurmd": "hpc_compute", "pbs_mom": "hpc_compute",
}
_BY_COMM_PREFIX = (("qemu-system-", "kvm_host"), ("ora_pmon_", "oracle"))
_BY_JAVA_CLASS = (
    ("org.elasticsearch.bootstrap.Elasticsearch", "elasticsearch"),
    ("org.opensearch.bootstrap.OpenSearch", "elasticsearch"),
    ("kafka.Kafka", "kafka"),
)
ROOT_MAX_READ = 16 << 20  # bytes of one file in an instance's root: a large dpkg status is ~4 MiB
MAX_HOPS = 64  # parents followed to find a process's instance
MAX_INSTANCES = 256  # instances of one workload listed (the facts stay bounded on a hostile /proc)
WORKLOADS = ("postgresql", "mysql", "redis", "mongodb", "elasticsearch", "kafka", "kvm_host",
             "kubernetes", "oracle", "sap_hana", "hpc_compute")


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
    return [word for word in text.split("\0") if word]


def _ppid(text):
    """The parent pid from /proc/<pid>/stat ("pid (comm) state ppid ..."; comm may hold spaces)."""
    fields = (text or "").rpartition(")")[2].split()
    return fields[1] if len(fields) > 1 and fields[1].isascii() and fields[1].isdigit() else None


def _environ(tree, pid):
    return tree.read("/proc/%s/environ" % pid, optional=True)


class _Process:
    """One process's /proc entries, each read once and only when needed: the cgroup of leaders only."""

    def __init__(self, tree, pid):
        self.tree = tree
        self.pid = pid
        self.ppid = _ppid(tree.read("/proc/%s/stat" % pid, optional=True))
        self.gone = self.ppid is None and not tree.exists("/proc/%s" % pid)
        self._cgroup = self.argv = None

    @property
    def cgroup_text(self):
        if self._cgroup is None:
            self._cgroup = (self.tree.read("/proc/%s/cgroup" % self.pid, optional=True),)
        return self._cgroup[0]

    @property
    def cgroup_version(self):
        return parse_proc_cgroup(self.cgroup_text)[0]

    @property
    def cgroup(self):
        return parse_proc_cgroup(self.cgroup_text)[1]

    def command(self):
        if self.argv is None:
            self.argv = _argv(self.tree, self.pid)
        return self.argv


def _leader(pid, processes):
    seen = {pid}
    while len(seen) <= MAX_HOPS:
        parent = processes[pid].ppid
        if parent not in processes or parent in seen:
            break
        pid = parent
        seen.add(pid)
    return pid


def _groups(workload, processes):
    """[[pid, ...]] per instance, the leader first. A leader whose parent is unknown (no stat: a capture
    without it) joins the one other instance of its cgroup, or the other such leaders of its cgroup,
    unless that is ambiguous (several instances, or several PostgreSQL data directories)."""
    trees = {}
    for pid in processes:
        trees.setdefault(_leader(pid, processes), []).append(pid)
    by_cgroup = {}
    for leader in sorted(trees, key=int):
        by_cgroup.setdefault(processes[leader].cgroup, []).append(leader)
    for cgroup, leaders in by_cgroup.items():
        orphans = [leader for leader in leaders if cgroup is not None and processes[leader].ppid is None]
        rooted = [leader for leader in leaders if leader not in orphans]
        anchored = [leader for leader in orphans if _anchor(workload, processes[leader])]
        if len(rooted) == 1 and not anchored:
            head = rooted[0]
        elif not rooted and len(anchored) <= 1 and orphans:
            head = anchored[0] if anchored else orphans[0]
        else:
            continue
        for leader in orphans:
            if leader != head:
                trees[head].extend(trees.pop(leader))
    return [[leader, *sorted((p for p in pids if p != leader), key=int)] for leader, pids in trees.items()]


def _anchor(workload, process):
    return versions.data_dir(process.command()) if workload == "postgresql" else None


def _instance_root(tree, pid, link):
    """(Tree of /proc/<pid>/root confined below it, or None; evidence). ``link``: where that link points."""
    name = "/proc/%s/root" % pid
    try:
        real = tree.path(name)
        if not os.path.isdir(real) or not os.access(real, os.R_OK | os.X_OK):
            raise OSError("not a readable directory")
    except (OSError, ValueError) as exc:
        return None, "cannot read %s: %s" % (name, getattr(exc, "strerror", None) or exc)
    return Tree(real, max_read=ROOT_MAX_READ, confined=True), "%s%s" % (
        name,
        " -> %s" % link if link else " (a directory of the captured tree)",
    )


def _instance(tree, workload, pids, processes, dpkg, *, runs):
    leader = processes[pids[0]]
    argv = leader.command()
    evidence = {}
    if leader.cgroup is None:
        where = {"unit": None, "manager": None, "container": None, "pod": None, "evidence": {}}
        evidence["cgroup"] = "/proc/%s/cgroup %s" % (
            leader.pid,
            "has no v1 memory or v2 line" if leader.cgroup_text is not None else "is not readable",
        )
    else:
        where = placement(leader.cgroup, systemd_path(leader.cgroup_text))
        evidence["cgroup"] = "/proc/%s/cgroup: cgroup v%d %s" % (
            leader.pid,
            leader.cgroup_version,
            leader.cgroup,
        )
    evidence.update(where["evidence"])
    link = tree.readlink("/proc/%s/root" % leader.pid)
    root, evidence["root"] = _instance_root(tree, leader.pid, link)
    root_name = "/proc/%s/root" % leader.pid if root is not None else None
    if root is None and leader.cgroup is not None and not contained(where):
        root = tree  # the host's own process, whose root we may not open: its files are the host's
        evidence["root"] += "; no container or pod in its cgroup: the host's root read"
    directory = _anchor(workload, leader)
    if directory:
        evidence["data_dir"] = "-D %s on the command line of pid %s" % (directory, leader.pid)
    exe = tree.readlink("/proc/%s/exe" % leader.pid)
    # Its binary may be run for its version only on the live host, for a process of the host's own root.
    own_root = tree.live and link == "/" and not contained(where)
    instance = versions.Instance(
        root, argv, exe, where["unit"], dpkg, environ=lambda: _environ(tree, leader.pid),
        runs=runs if own_root else None,
    )
    found, evidence["version"] = versions.version(workload, instance, directory)
    return {
        "pids": sorted(int(pid) for pid in pids),
        "leader": int(leader.pid),
        "cgroup": leader.cgroup,
        "cgroup_version": leader.cgroup_version,
        "unit": where["unit"],
        "unit_manager": where["manager"],
        "container": where["container"],
        "pod": where["pod"],
        "root": root_name,
        "data_dir": directory,
        "version": found,
        "evidence": evidence,
    }


def _host_first(instance):
    return (contained(instance), instance["leader"])


def _instances(tree, workload, pids, dpkg, runs):
    processes = {}
    for pid in pids:
        process = _Process(tree, pid)
        if not process.gone:
            processes[pid] = process
    found = [
        _instance(tree, workload, group, processes, dpkg, runs=runs)
        for group in _groups(workload, processes)
    ]
    found.sort(key=_host_first)
    if len(found) > MAX_INSTANCES:
        tree.warn("%s: %d instances, the first %d listed" % (workload, len(found), MAX_INSTANCES))
    return found[:MAX_INSTANCES]


def detect_workloads(tree, pids_limit=20):
    """[{name, pids, evidence: [{pid, comm, match}], version, instances: [...]}] sorted by name.
    ``version`` is the first instance's that has one, the host's instances before containers'."""
    found = {}
    pids = {}
    for pid in tree.listdir("/proc"):
        if not (pid.isascii() and pid.isdigit()):
            continue
        comm = tree.read("/proc/%s/comm" % pid, optional=True)
        if not comm:
            continue
        hit = classify(comm, lambda pid=pid: " ".join(_argv(tree, pid)))
        if hit is None:
            continue
        workload, matched = hit
        entry = found.setdefault(workload, {"name": workload, "pids": [], "evidence": [], "version": None})
        entry["pids"].append(int(pid))
        pids.setdefault(workload, []).append(pid)
        if len(entry["evidence"]) < pids_limit:
            entry["evidence"].append({"pid": int(pid), "comm": comm, "match": matched})
    dpkg, runs = versions.DpkgAnswers(), run_version.VersionRuns()
    for workload, entry in found.items():
        entry["pids"].sort()
        entry["instances"] = _instances(tree, workload, pids[workload], dpkg, runs)
        entry["version"] = next((i["version"] for i in entry["instances"] if i["version"]), None)
    return [found[name] for name in sorted(found)]
