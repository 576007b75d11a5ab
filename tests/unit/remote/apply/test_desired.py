"""memory_apply's guard on its DesiredState argument: what it accepts, and the message for what it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._apply.desired import validate
from ansible_collections.memtune.fleet.plugins.module_utils._kinds.check import DesiredError

PROVENANCE = {"file": "policies/baseline.yml", "line": 3, "rule": "r", "layer": "baseline"}


def test_a_full_desired_state_is_reduced_to_what_the_host_needs() -> None:
    desired = {
        "schema_version": 1,
        "sysctl": {
            "vm.swappiness": {"value": 10, "provenance": PROVENANCE},
            "vm.lowmem_reserve_ratio": {"value": "256  256\t32 0", "provenance": PROVENANCE},
        },
        "thp": {"enabled": {"value": "madvise", "provenance": PROVENANCE}},
        "hugepages": [
            {
                "size_kb": 2048,
                "per_node": {"0": 512, "1": 512},
                "boot": False,
                "required": True,
                "provenance": PROVENANCE,
            }
        ],
        "kernel_cmdline": [
            {"arg": "hugepagesz=1G", "provenance": PROVENANCE},
            {"arg": "hugepages=0:2,1:2", "provenance": PROVENANCE},
        ],
        "cgroups": [
            {
                "unit": "postgresql.service",
                "limits": {"MemoryMax": 1 << 30, "MemoryHigh": "infinity"},
                "force": False,
                "provenance": PROVENANCE,
            },
            {
                "path": "/sys/fs/cgroup/batch.slice/job1",
                "limits": {"MemoryMax": 1 << 20},
                "force": True,
                "provenance": PROVENANCE,
            },
        ],
        "skipped": [],
        "warnings": [],
    }
    assert validate(desired) == {
        "sysctl": {"vm.swappiness": 10, "vm.lowmem_reserve_ratio": "256 256 32 0"},
        "thp": {"enabled": "madvise"},
        "zswap": {},
        "hugepages": [{"size_kb": 2048, "per_node": {0: 512, 1: 512}, "boot": False, "required": True}],
        "kernel_cmdline": ["hugepagesz=1G", "hugepages=0:2,1:2"],
        "cgroups": [
            {
                "unit": "postgresql.service",
                "path": None,
                "limits": {"MemoryMax": 1 << 30, "MemoryHigh": "infinity"},
                "force": False,
            },
            {
                "unit": None,
                "path": "/sys/fs/cgroup/batch.slice/job1",
                "limits": {"MemoryMax": 1 << 20},
                "force": True,
            },
        ],
    }


def test_empty_sections_mean_nothing_is_managed() -> None:
    assert validate({"schema_version": 1}) == {
        "sysctl": {},
        "thp": {},
        "zswap": {},
        "hugepages": [],
        "kernel_cmdline": [],
        "cgroups": [],
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema_version": 2}, "schema_version is 2"),
        (
            {"sysctl": {"net.ipv4.ip_forward": {"value": 1}}},
            "'net.ipv4.ip_forward' is not a vm.* or kernel.* key",
        ),
        ({"sysctl": {"vm/../../etc": {"value": 1}}}, "is not a vm.* or kernel.* key"),
        ({"sysctl": {"vm.swappiness": 10}}, "sysctl.vm.swappiness: expected {value: ...}"),
        ({"sysctl": {"vm.swappiness": {"value": "10\nvm.x=1"}}}, "not a single-line value"),
        ({"sysctl": {"vm.swappiness": {"value": True}}}, "expected an integer"),
        ({"thp": {"scan_sleep_millisecs": {"value": 10}}}, "unknown knob 'scan_sleep_millisecs'"),
        (
            {"thp": {"khugepaged_max_ptes_none": {"value": "0"}}},
            "thp.khugepaged_max_ptes_none: expected an integer",
        ),
        ({"thp": {"enabled": {"value": "always; rm"}}}, "thp.enabled: expected {value: <word>}"),
        ({"hugepages": [{"size_kb": 2048, "per_node": {"zero": 1}}]}, "'zero' is not a NUMA node id"),
        (
            {"hugepages": [{"size_kb": 2048, "per_node": {"0": -1}}]},
            "hugepages[0].per_node.0: expected an integer",
        ),
        (
            {"hugepages": [{"size_kb": 2048, "per_node": {"0": 1}}, {"size_kb": 2048, "per_node": {"0": 1}}]},
            "hugepages[1]: a second pool of 2048 kB pages",
        ),
        ({"kernel_cmdline": [{"arg": "mitigations=off"}]}, "memtune does not manage 'mitigations'"),
        ({"kernel_cmdline": [{"arg": "hugepages=1 quiet"}]}, "is not a single name[=value] argument"),
        (
            {"cgroups": [{"unit": "a.service", "path": "/sys/fs/cgroup/a", "limits": {"MemoryMax": 1}}]},
            "set exactly one of unit and path",
        ),
        ({"cgroups": [{"unit": "a.timer", "limits": {"MemoryMax": 1}}]}, "not a .service, .slice or .scope"),
        (
            {"cgroups": [{"path": "/sys/fs/cgroup/a/../../../etc", "limits": {"MemoryMax": 1}}]},
            "is not a normalized path below /sys/fs/cgroup/",
        ),
        ({"cgroups": [{"path": "/etc/x", "limits": {"MemoryMax": 1}}]}, "is not a normalized path"),
        ({"cgroups": [{"unit": "a.service", "limits": {"CPUQuota": 1}}]}, "unknown limit 'CPUQuota'"),
        (
            {"cgroups": [{"unit": "a.service", "limits": {"MemoryMax": "1G"}}]},
            "MemoryMax: expected an integer",
        ),
        (
            {
                "cgroups": [
                    {"unit": "a.service", "limits": {"MemoryMax": 1}},
                    {"unit": "a.service", "limits": {"MemoryMax": 2}},
                ]
            },
            "a.service is listed twice",
        ),
    ],
)
def test_refused_with_a_precise_message(change: dict[str, Any], message: str) -> None:
    desired: dict[str, Any] = {"schema_version": 1, **change}
    with pytest.raises(DesiredError) as raised:
        validate(desired)
    assert message in str(raised.value)
