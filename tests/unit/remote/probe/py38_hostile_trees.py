"""The probe under the target-side Python (3.8, the oldest memory_facts supports), standard library only:
every captured tree, then copies of one with the hostile changes of issue 14 class 6. Run by
test_probe_under_python38 in test_confined_probe.py (pytest is not installed for 3.8), with the path of a
real rpmdb.sqlite (Debian's rpm wrote it: tests/support/rpm_db.py) for the RPM cases; by hand:
    ~/.pyenv/versions/3.8.18/bin/python tests/unit/remote/probe/py38_hostile_trees.py [rpmdb.sqlite]
Prints one line per tree and exits non-zero on the first expectation that fails."""

import json
import os
import shutil
import sys
import tempfile

REPO = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
)
sys.path.insert(0, REPO)

from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree  # noqa: E402
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import ProbeError, collect  # noqa: E402

HOSTS = os.path.join(REPO, "tests", "fixtures", "hosts")


def write(root, path, text):
    full = os.path.join(root, path)
    if os.path.lexists(full) and not os.path.isdir(full):
        os.unlink(full)
    with open(full, "w") as handle:
        handle.write(text)


def link(root, path, target):
    full = os.path.join(root, path)
    if os.path.isdir(full) and not os.path.islink(full):
        shutil.rmtree(full)
    elif os.path.lexists(full):
        os.unlink(full)
    os.symlink(target, full)


def process(root, pid, argv, cgroup, entries):
    """A process's /proc entries (issue 18): comm, cmdline, cgroup and a root/ directory, plus ``entries``
    ({path below /proc/<pid>: text, or ("link", target)})."""
    base = os.path.join(root, "proc", str(pid))
    os.makedirs(os.path.join(base, "root"))
    own = {"comm": os.path.basename(argv[0]) + "\n", "cmdline": "\0".join(argv) + "\0", "cgroup": cgroup}
    for path, text in dict(own, **entries).items():
        os.makedirs(os.path.dirname(os.path.join(base, path)), exist_ok=True)
        if isinstance(text, tuple):
            link(base, path, text[1])
        else:
            write(base, path, text)


POD = "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/crio-{}.scope\n".format(
    "8d0e7a52_3c1b_4e8f_9a6d_2b5c7e1f0a93", "ab" * 32
)
REDIS_STATUS = "Package: redis-server\nStatus: install ok installed\nVersion: 5:7.0.15-1\n"


def instance(facts, name):
    return next(w for w in facts["workloads"] if w["name"] == name)["instances"][0]


def redis_linked_out(root, outside):
    """A container whose dpkg status is an absolute link to a host file that says redis 7.0.15."""
    write(os.path.dirname(outside), "dpkg-status", REDIS_STATUS)
    target = ("link", os.path.join(os.path.dirname(outside), "dpkg-status"))
    process(root, 3100, ["redis-server"], POD, {"root/var/lib/dpkg/status": target})


def mongod_with_rpmdb(root, change):
    """A mongod in a pod whose root has no dpkg status; ``change(path)`` puts its rpmdb.sqlite there."""
    process(root, 3200, ["mongod"], POD, {})
    path = os.path.join(root, "proc/3200/root/var/lib/rpm/rpmdb.sqlite")
    os.makedirs(os.path.dirname(path))
    change(path)


def rpm_cases(rpmdb, outside):
    """The RPM database cases (issue 18), with ``rpmdb`` a real database that holds mongodb-org-server
    1:8.0.4; none when no database was given."""
    if rpmdb is None:
        return []
    with open(rpmdb, "rb") as handle:
        data = handle.read()

    def put(payload):
        return lambda path: open(path, "wb").write(payload)

    def version(facts):
        return instance(facts, "mongodb")["version"], instance(facts, "mongodb")["evidence"]["version"]

    return [
        (
            "a container's rpmdb.sqlite",
            lambda r: mongod_with_rpmdb(r, put(data)),
            lambda f: version(f)[0] == "8.0.4",
        ),
        (
            "a truncated rpmdb.sqlite",
            lambda r: mongod_with_rpmdb(r, put(data[:8192])),
            lambda f: version(f)[0] is None and "rpmdb.sqlite not read: " in version(f)[1],
        ),
        (
            "an rpmdb.sqlite that is a FIFO",  # SQLite would wait on it for ever
            lambda r: mongod_with_rpmdb(r, os.mkfifo),
            lambda f: version(f)[0] is None and "rpmdb.sqlite is not a regular file" in version(f)[1],
        ),
        (
            "a huge rpmdb.sqlite",
            lambda r: mongod_with_rpmdb(r, lambda path: (put(data)(path), os.truncate(path, 1 << 30))),
            lambda f: version(f)[0] is None and "rpmdb.sqlite is larger than" in version(f)[1],
        ),
        (
            "a container's rpmdb.sqlite linked outside its root",
            lambda r: (
                put(data)(outside + ".sqlite"),
                mongod_with_rpmdb(r, lambda path: os.symlink(outside + ".sqlite", path)),
            ),
            lambda f: version(f)[0] is None,
        ),
    ]


def hostile(root, outside):
    """-> [(what was done, check of the facts)]; each change applied to its own copy of ``root``."""
    return [
        (
            "absolute link to a file outside",
            lambda r: link(r, "proc/sys/vm/swappiness", outside),
            lambda f: f["sysctl"]["vm.swappiness"] is None,
        ),
        (
            "relative link climbing out",
            lambda r: link(r, "proc/cmdline", "../" * 12 + outside.lstrip("/")),
            lambda f: f["kernel"]["cmdline"] is None,
        ),
        (
            "two-link loop",
            lambda r: (link(r, "proc/meminfo", "loop"), link(r, "proc/loop", "meminfo")),
            lambda f: "cannot read /proc/meminfo: Too many levels of symbolic links" in f["warnings"],
        ),
        (
            "FIFO",
            lambda r: (
                os.unlink(os.path.join(r, "proc/sys/vm/swappiness")),
                os.mkfifo(os.path.join(r, "proc/sys/vm/swappiness")),
            ),
            lambda f: "/proc/sys/vm/swappiness is a FIFO: not read" in f["warnings"],
        ),
        (
            "huge file",
            lambda r: os.truncate(os.path.join(r, "proc/cmdline"), 1 << 30),
            lambda f: f["kernel"]["cmdline"] is None and any("larger than" in w for w in f["warnings"]),
        ),
        (
            "absurd online range",
            lambda r: write(r, "sys/devices/system/node/online", "0-4294967295"),
            lambda f: f["numa"]["online"] == [0, 1],
        ),
        (
            "bad node names",
            lambda r: [
                shutil.copytree(
                    os.path.join(r, "sys/devices/system/node/node0"),
                    os.path.join(r, "sys/devices/system/node", name),
                )
                for name in ("node\u0663", "node01", "node-1")
            ],
            lambda f: [node["id"] for node in f["numa"]["nodes"]] == [0, 1],
        ),
        (
            "garbage sysctl",
            lambda r: write(r, "proc/sys/vm/swappiness", "\u0663\n"),
            lambda f: f["sysctl"]["vm.swappiness"] is None,
        ),
        (
            "postgres in a pod reads its own root",
            lambda r: process(r, 3000, ["postgres", "-D", "/data"], POD, {"root/data/PG_VERSION": "16\n"}),
            lambda f: (
                instance(f, "postgresql")["version"] == "16"
                and instance(f, "postgresql")["pod"]["qos"] == "BestEffort"
            ),
        ),
        (
            "a container's dpkg status linked outside its root",
            lambda r: redis_linked_out(r, outside),
            lambda f: (
                instance(f, "redis")["version"] is None
                and instance(f, "redis")["container"]["runtime"] == "cri-o"
            ),
        ),
        (
            "/sys only",
            lambda r: shutil.rmtree(os.path.join(r, "proc")),
            lambda f: f["memory"]["mem_total_kb"] == 6077484,
        ),
    ]


def main():
    rpmdb = sys.argv[1] if len(sys.argv) > 1 else None
    count = 0
    for host in sorted(os.listdir(HOSTS)):
        facts = collect(Tree(os.path.join(HOSTS, host)))
        json.dumps(facts, allow_nan=False)
        assert facts["warnings"] == [], (host, facts["warnings"])
        print(f"{host}: MemTotal {facts['memory']['mem_total_kb']} kB, {len(facts['numa']['nodes'])} nodes")
        count += 1
    work = tempfile.mkdtemp(prefix="memtune-py38-")
    try:
        outside = os.path.join(work, "secret")
        write(work, "secret", "4242\n")
        cases = hostile(os.path.join(HOSTS, "numa2"), outside) + rpm_cases(rpmdb, outside)
        for index, (what, damage, check) in enumerate(cases):
            root = os.path.join(work, f"host{index}")
            shutil.copytree(os.path.join(HOSTS, "numa2"), root, symlinks=True)
            damage(root)
            try:
                facts = collect(Tree(root))
            except ProbeError as exc:
                sys.exit(f"{what}: ProbeError {exc}")
            json.dumps(facts, allow_nan=False)
            if not check(facts):
                sys.exit(f"{what}: unexpected facts; warnings {facts['warnings']}")
            print(f"{what}: ok")
            count += 1
    finally:
        shutil.rmtree(work)
    print(f"python {sys.version.split()[0]}: {count} trees probed")


if __name__ == "__main__":
    main()
