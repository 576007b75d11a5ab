# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a process runs, from its /proc/<pid>/cgroup: the cgroup (v2 or v1), the systemd unit, the
container (runtime and id) and the Kubernetes pod (UID and QoS class) that the path's shape names.

Path shapes, as the managers lay them out (the systemd driver on the left, cgroupfs on the right):

  systemd unit           /system.slice/postgresql@15-main.service
  Docker                 /system.slice/docker-<id>.scope            /docker/<id>
  Podman                 /machine.slice/libpod-<id>.scope[/container]  /libpod_parent/libpod-<id>
  LXC                    /lxc.payload.<name> (LXC 4+)  /lxc.payload/<name> (3.x)  /lxc/<name> (older)
  Kubernetes pod         /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid, - as _>.slice
                         /kubepods/burstable/pod<uid>             (no QoS level: Guaranteed)
  container in a pod     .../cri-containerd-<id>.scope  .../crio-<id>.scope  .../docker-<id>.scope
                         .../pod<uid>/<id> (cgroupfs: the runtime is not in the path)  .../pod<uid>/crio-<id>

Pure functions: text in, dict out. A path of another shape gives nulls and says so in the evidence.
"""

from __future__ import annotations

import re

_ID = r"([0-9a-f]{12,64})"
# (runtime, pattern of one path component); the conmon monitors are not the container's payload
_SCOPES = (
    ("containerd", re.compile(r"cri-containerd-%s\.scope" % _ID)),
    ("cri-o", re.compile(r"crio-%s(?:\.scope)?" % _ID)),
    ("docker", re.compile(r"docker-%s\.scope" % _ID)),
    ("podman", re.compile(r"libpod-%s(?:\.scope)?" % _ID)),
    ("lxc", re.compile(r"lxc\.payload\.([A-Za-z0-9_.-]{1,253})")),
)
_PARENTS = (
    ("docker", "docker", re.compile(_ID)),
    ("lxc", "lxc", re.compile(r"([A-Za-z0-9_.-]{1,253})")),
    ("lxc", "lxc.payload", re.compile(r"([A-Za-z0-9_.-]{1,253})")),
)
_MONITOR = re.compile(r"(?:crio-conmon-|libpod-conmon-)[0-9a-f]{12,64}(?:\.scope)?|lxc\.monitor(?:\..*)?")
_UID = r"([0-9a-f_-]{32,36})"  # a UUID, or the 32 hex digits of a static pod's hash
_POD_SLICE = re.compile(r"kubepods(?:-(besteffort|burstable))?-pod%s\.slice" % _UID)
_POD_DIR = re.compile(r"pod%s" % _UID)
_QOS = {None: "Guaranteed", "besteffort": "BestEffort", "burstable": "Burstable"}
_UNIT_SUFFIXES = (".service", ".scope")
_USER_MANAGER = re.compile(r"user@[0-9]{1,10}\.service")


def parse_proc_cgroup(text):
    """/proc/<pid>/cgroup -> (version, path) of the hierarchy that holds the memory limits: v1's memory
    controller when it is mounted (v1 or hybrid), else the v2 (``0::``) path; (None, None) otherwise."""
    unified = memory = None
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or not parts[2].startswith("/"):
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            unified = path
        elif "memory" in controllers.split(","):
            memory = path
    if memory is not None:
        return 1, memory
    if unified is not None:
        return 2, unified
    return None, None


def systemd_path(text):
    """The path systemd tracks the process's unit in: v1's ``name=systemd`` hierarchy, else v2's; None.
    On v1 it can differ from the memory controller's (a unit without MemoryAccounting is not in it)."""
    unified = None
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[2].startswith("/"):
            if parts[1] == "name=systemd":
                return parts[2]
            if parts[0] == "0" and parts[1] == "":
                unified = parts[2]
    return unified


def systemd_unit(path):
    """The systemd unit a cgroup path lies in (the deepest .service or .scope) and the manager that
    runs it ("system", or "user@<uid>.service" for a user's manager); (None, None) without one."""
    parts = [part for part in path.split("/") if part]
    units = [index for index, part in enumerate(parts) if part.endswith(_UNIT_SUFFIXES)]
    if not units:
        return None, None
    managers = [part for part in parts[: units[-1]] if _USER_MANAGER.fullmatch(part)]
    return parts[units[-1]], managers[-1] if managers else "system"


def _container(parts):
    for index, part in enumerate(parts):
        if _MONITOR.fullmatch(part):
            return {"runtime": None, "id": None, "monitor": part}
        for runtime, pattern in _SCOPES:
            match = pattern.fullmatch(part)
            if match:
                return {"runtime": runtime, "id": match.group(1)}
        if index:
            for runtime, parent, pattern in _PARENTS:
                match = pattern.fullmatch(part)
                if parts[index - 1] == parent and match:
                    return {"runtime": runtime, "id": match.group(1)}
    return None


def _pod(parts):
    for index, part in enumerate(parts):
        match = _POD_SLICE.fullmatch(part)
        if match and "kubepods.slice" in parts[:index]:
            return {"uid": match.group(2).replace("_", "-"), "qos": _QOS[match.group(1)]}, index
        match = _POD_DIR.fullmatch(part)
        if (
            match
            and index
            and (
                parts[index - 1] == "kubepods"
                or (
                    parts[index - 1] in ("besteffort", "burstable")
                    and index > 1
                    and parts[index - 2] == "kubepods"
                )
            )
        ):
            level = parts[index - 1] if parts[index - 1] != "kubepods" else None
            return {"uid": match.group(1), "qos": _QOS[level]}, index
    return None, None


def contained(where):
    """Whether a placement (or a workload instance, which has the same keys) is in a container or a
    Kubernetes pod. The controller's copy: ``WorkloadInstance.contained``."""
    return where.get("container") is not None or where.get("pod") is not None


def placement(path, tracking=None):
    """What a cgroup path says: {unit, manager, container, pod, evidence: {field: why}}; the unit from
    ``tracking`` (systemd's own hierarchy, see systemd_path) when given."""
    parts = [part for part in path.split("/") if part]
    tracking = tracking or path
    unit, manager = systemd_unit(tracking)
    pod, at = _pod(parts)
    container = _container(parts)
    evidence = {}
    if unit:
        evidence["unit"] = "%s in cgroup %s" % (unit, tracking)
    else:
        evidence["unit"] = "no .service or .scope in cgroup %s" % tracking
    if pod is not None and container is None:
        below = parts[at + 1 : at + 2]
        bare = below and re.fullmatch(_ID, below[0])
        if bare:  # cgroupfs driver: containerd and Docker both name the container by its bare id
            container = {"runtime": None, "id": below[0]}
    if container is not None and container.get("monitor"):
        evidence["container"] = "%s is a container runtime's monitor, not a container" % container.pop(
            "monitor"
        )
        container = None
    elif container is not None:
        evidence["container"] = "%s %s from cgroup %s%s" % (
            container["runtime"] or "a runtime the path does not name:",
            container["id"],
            path,
            "" if container["runtime"] else " (cgroupfs driver)",
        )
    else:
        evidence["container"] = "no container runtime's shape in cgroup %s" % path
    if pod is not None:
        evidence["pod"] = "pod %s, QoS %s, from cgroup %s" % (pod["uid"], pod["qos"], path)
    return {"unit": unit, "manager": manager, "container": container, "pod": pod, "evidence": evidence}
