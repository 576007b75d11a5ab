"""The probe's pure parsers, on text taken from real hosts' /proc and /sys files."""

from __future__ import annotations

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._host import procfs

MEMINFO = """MemTotal:       24684084 kB
MemFree:        24086416 kB
MemAvailable:   24269568 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
DirectMap1G:    17825792 kB
"""
NODE_MEMINFO = """Node 1 MemTotal:        2064328 kB
Node 1 MemFree:         1914712 kB
Node 1 HugePages_Free:      0
"""
SWAPS = """Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority
/dev/vda3                               partition\t2097148\t\t1024\t\t-2
/var/lib/swap\\040file                   file\t\t1048572\t\t0\t\t-3
"""
PRESSURE = """some avg10=1.25 avg60=0.40 avg300=0.08 total=123456
full avg10=0.00 avg60=0.00 avg300=0.00 total=42
"""
MOUNTINFO = "\n".join(
    [
        "25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw",
        "33 25 0:28 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot",
        "40 33 0:35 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
    ]
)


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        (MEMINFO, "MemTotal", 24684084),
        (MEMINFO, "HugePages_Total", 0),
        (MEMINFO, "Hugepagesize", 2048),
        (MEMINFO, "DirectMap1G", 17825792),
        (NODE_MEMINFO, "MemTotal", 2064328),
        (NODE_MEMINFO, "HugePages_Free", 0),
    ],
)
def test_meminfo_fields(text: str, field: str, expected: int) -> None:
    assert procfs.parse_meminfo(text)[field] == expected


def test_meminfo_skips_garbled_lines() -> None:
    parsed = procfs.parse_meminfo("MemTotal: lots kB\nMemFree:  12 kB\n\x00\x01garbage\n")
    assert parsed == {"MemFree": 12}


def test_swaps() -> None:
    assert procfs.parse_swaps(SWAPS) == [
        {"path": "/dev/vda3", "type": "partition", "size_kb": 2097148, "used_kb": 1024, "priority": -2},
        {"path": "/var/lib/swap file", "type": "file", "size_kb": 1048572, "used_kb": 0, "priority": -3},
    ]


def test_swaps_header_only() -> None:
    assert procfs.parse_swaps(SWAPS.splitlines()[0]) == []


def test_pressure() -> None:
    parsed = procfs.parse_pressure(PRESSURE)
    assert parsed["some"] == {"avg10": 1.25, "avg60": 0.40, "avg300": 0.08, "total": 123456}
    assert parsed["full"]["total"] == 42


def test_pressure_drops_a_truncated_line() -> None:
    assert procfs.parse_pressure("some avg10=1.0 avg60=\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1") == {
        "full": {"avg10": 0.0, "avg60": 0.0, "avg300": 0.0, "total": 1}
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", [0]),
        ("0-3", [0, 1, 2, 3]),
        ("0-1,4,6-7\n", [0, 1, 4, 6, 7]),
        ("", []),
        ("\n", []),
    ],
)
def test_cpulist(text: str, expected: list[int]) -> None:
    assert procfs.parse_cpulist(text) == expected


@pytest.mark.parametrize("text", ["0-x", "a", "1-2-3"])
def test_cpulist_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        procfs.parse_cpulist(text)


@pytest.mark.parametrize(
    ("text", "chosen", "choices"),
    [
        ("always [madvise] never", "madvise", ["always", "madvise", "never"]),
        (
            "[always] defer defer+madvise madvise never",
            "always",
            ["always", "defer", "defer+madvise", "madvise", "never"],
        ),
        ("always madvise never", None, ["always", "madvise", "never"]),
    ],
)
def test_bracketed(text: str, chosen: str | None, choices: list[str]) -> None:
    assert procfs.parse_bracketed(text) == (chosen, choices)


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        ("6.1.0-26-amd64", [6, 1, 0]),
        ("6.12.12+bpo-amd64", [6, 12, 12]),
        ("6.18.44-fc-v669", [6, 18, 44]),
        ("5.14.0-362.8.1.el9_3.x86_64", [5, 14, 0]),
        ("4.19", [4, 19, 0]),
        ("unknown", None),
    ],
)
def test_kernel_version(release: str, expected: list[int] | None) -> None:
    assert procfs.parse_kernel_version(release) == expected


def test_mountinfo() -> None:
    mounts = procfs.parse_mountinfo(MOUNTINFO)
    assert [(m["mount_point"], m["fs_type"]) for m in mounts] == [
        ("/sys", "sysfs"),
        ("/sys/fs/cgroup", "cgroup2"),
        ("/sys/fs/cgroup/memory", "cgroup"),
    ]
    assert "memory" in mounts[2]["super_options"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("60\n", 60), ("-1", -1), ("256\t256\t32\t0\t0\n", "256 256 32 0 0"), ("Node", "Node")],
)
def test_sysctl_value(text: str, expected: int | str) -> None:
    assert procfs.sysctl_value(text) == expected


def test_key_values_skips_non_numeric() -> None:
    assert procfs.parse_key_values("nr_free_pages 123\nbroken\nnuma_hit x\npgmajfault 7\n") == {
        "nr_free_pages": 123,
        "pgmajfault": 7,
    }
