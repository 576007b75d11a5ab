"""What a /proc/<pid>/cgroup path says about where a process runs (issue 18): the shapes systemd, the
container runtimes and the kubelet (systemd and cgroupfs drivers) give their cgroups."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._probe.placement import (
    parse_proc_cgroup,
    placement,
    systemd_path,
)

ID = "0123456789abcdef" * 4
UID = "8d0e7a52-3c1b-4e8f-9a6d-2b5c7e1f0a93"
SLICE_UID = UID.replace("-", "_")
STATIC_UID = "5c1c0d2d8b6f4e7a9d3e2f1a0b9c8d7e"  # a static pod's UID: the hash of its manifest

CASES: list[tuple[str, str | None, str | None, dict[str, Any] | None, dict[str, str] | None]] = [
    # path, unit, manager, container, pod
    ("/system.slice/postgresql@15-main.service", "postgresql@15-main.service", "system", None, None),
    ("/system.slice/docker.service/payload", "docker.service", "system", None, None),
    (
        f"/system.slice/docker-{ID}.scope",
        f"docker-{ID}.scope",
        "system",
        {"runtime": "docker", "id": ID},
        None,
    ),
    (f"/docker/{ID}", None, None, {"runtime": "docker", "id": ID}, None),
    (
        f"/machine.slice/libpod-{ID}.scope/container",
        f"libpod-{ID}.scope",
        "system",
        {"runtime": "podman", "id": ID},
        None,
    ),
    (f"/libpod_parent/libpod-{ID}", None, None, {"runtime": "podman", "id": ID}, None),
    (f"/machine.slice/libpod-conmon-{ID}.scope", f"libpod-conmon-{ID}.scope", "system", None, None),
    ("/lxc.payload.web1", None, None, {"runtime": "lxc", "id": "web1"}, None),
    ("/lxc.payload/web1", None, None, {"runtime": "lxc", "id": "web1"}, None),
    ("/lxc/web1", None, None, {"runtime": "lxc", "id": "web1"}, None),
    ("/lxc.monitor.web1", None, None, None, None),
    (
        "/user.slice/user-1000.slice/user@1000.service/app.slice/redis.service",
        "redis.service",
        "user@1000.service",
        None,
        None,
    ),
    (
        "/user.slice/user-1000.slice/user@1000.service/init.scope",
        "init.scope",
        "user@1000.service",
        None,
        None,
    ),
    ("/user.slice/user-1000.slice/session-3.scope", "session-3.scope", "system", None, None),
    (
        f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{SLICE_UID}.slice/cri-containerd-{ID}.scope",
        f"cri-containerd-{ID}.scope",
        "system",
        {"runtime": "containerd", "id": ID},
        {"uid": UID, "qos": "Burstable"},
    ),
    (
        f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{SLICE_UID}.slice/crio-{ID}.scope",
        f"crio-{ID}.scope",
        "system",
        {"runtime": "cri-o", "id": ID},
        {"uid": UID, "qos": "BestEffort"},
    ),
    (
        f"/kubepods.slice/kubepods-pod{SLICE_UID}.slice/docker-{ID}.scope",
        f"docker-{ID}.scope",
        "system",
        {"runtime": "docker", "id": ID},
        {"uid": UID, "qos": "Guaranteed"},
    ),
    (
        f"/kubepods.slice/kubepods-pod{SLICE_UID}.slice/crio-conmon-{ID}.scope",
        f"crio-conmon-{ID}.scope",
        "system",
        None,
        {"uid": UID, "qos": "Guaranteed"},
    ),
    (
        f"/kubepods/burstable/pod{UID}/{ID}",
        None,
        None,
        {"runtime": None, "id": ID},
        {"uid": UID, "qos": "Burstable"},
    ),
    (
        f"/kubepods/pod{STATIC_UID}/{ID}",
        None,
        None,
        {"runtime": None, "id": ID},
        {"uid": STATIC_UID, "qos": "Guaranteed"},
    ),
    (
        f"/kubepods/besteffort/pod{UID}/crio-{ID}",
        None,
        None,
        {"runtime": "cri-o", "id": ID},
        {"uid": UID, "qos": "BestEffort"},
    ),
    (f"/kubepods/besteffort/pod{UID}", None, None, None, {"uid": UID, "qos": "BestEffort"}),
    # shapes that name nothing: a pod directory outside kubepods, a short id, a made-up tree
    (f"/elsewhere/pod{UID}/{ID}", None, None, None, None),
    ("/docker/abc", None, None, None, None),
    ("/process_api/7b50d4f98040efa3e1ca5b7e8d3611e2", None, None, None, None),
    ("/", None, None, None, None),
]


@pytest.mark.parametrize(
    ("path", "unit", "manager", "container", "pod"), CASES, ids=[c[0][-48:] for c in CASES]
)
def test_placement(
    path: str,
    unit: str | None,
    manager: str | None,
    container: dict[str, Any] | None,
    pod: dict[str, str] | None,
) -> None:
    found = placement(path)
    assert (found["unit"], found["manager"], found["container"], found["pod"]) == (
        unit,
        manager,
        container,
        pod,
    )
    assert path in found["evidence"]["unit"]
    assert ("pod" in found["evidence"]) == (pod is not None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0::/system.slice/redis.service\n", (2, "/system.slice/redis.service")),
        # hybrid: systemd tracks on v2, the memory controller is v1's
        (
            "12:memory:/system.slice/redis.service\n1:name=systemd:/system.slice/redis.service\n0::/system.slice/"
            "redis.service\n",
            (1, "/system.slice/redis.service"),
        ),
        ("4:cpu,cpuacct:/a\n3:memory,hugetlb:/b\n", (1, "/b")),
        ("1:name=systemd:/only/the/tracker\n", (None, None)),
        ("0::relative\n", (None, None)),
        ("", (None, None)),
        ("\x00\xff::/\n", (None, None)),
    ],
)
def test_parse_proc_cgroup(text: str, expected: tuple[int | None, str | None]) -> None:
    assert parse_proc_cgroup(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9:name=systemd:/system.slice/a.service\n4:memory:/\n0::/\n", "/system.slice/a.service"),
        ("0::/system.slice/b.service\n", "/system.slice/b.service"),
        ("4:memory:/docker/x\n", None),
        ("9:name=systemd:relative\n", None),
    ],
)
def test_systemd_path(text: str, expected: str | None) -> None:
    assert systemd_path(text) == expected
