"""The /proc/<pid> entries of workload processes as a capture holds them, added to copies of captured host
trees (tests/fixtures/hosts), and the workloads the probe finds there (issue 18)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from memtune.facts.model import parse_facts
from tests.support.trees import collect_with

DOCKER_ID = "4f3c2b1a" * 8
POD_UID = "8d0e7a52-3c1b-4e8f-9a6d-2b5c7e1f0a93"
CONTAINERD_ID = "a1b2c3d4" * 8
REDIS_DPKG = (
    "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u4\n\n"
    "Package: redis-server\nStatus: install ok installed\nPriority: optional\nVersion: 5:7.0.15-1~deb12u1\n"
    "Description: Persistent key-value database\n with network interface\n\n"
)


def proc(
    pid: int,
    comm: str,
    argv: list[str],
    cgroup: str | None,
    *,
    ppid: int | None = None,
    root: str | None = "/",
    exe: str | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """The /proc/<pid> files and links of one process as a capture holds them; ``root`` None: a root/
    directory (files added under /proc/<pid>/root/ by the test), else the root link's target."""
    files = {f"/proc/{pid}/comm": comm + "\n", f"/proc/{pid}/cmdline": "\0".join(argv) + "\0"}
    if cgroup is not None:
        files[f"/proc/{pid}/cgroup"] = cgroup
    if ppid is not None:
        files[f"/proc/{pid}/stat"] = f"{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 1 0 0 0\n"
    links = {f"/proc/{pid}/root": root} if root is not None else {}
    if exe:
        links[f"/proc/{pid}/exe"] = exe
    return files, links


def workloads(
    host: str,
    *processes: tuple[dict[str, str], dict[str, str]],
    extra: Mapping[str, str | bytes] | None = None,
) -> Any:
    """{name: workload} the probe finds on a copy of ``host`` with ``processes`` and the ``extra`` files
    added; the facts also pass the controller's model."""
    merged_files: dict[str, str | bytes] = dict(extra or {})
    links: dict[str, str] = {}
    for process_files, process_links in processes:
        merged_files.update(process_files)
        links.update(process_links)
    facts = collect_with(host, merged_files, links)
    parse_facts(facts, host)  # the controller takes the instances while the schema is still 3
    return {entry["name"]: entry for entry in facts["workloads"]}
