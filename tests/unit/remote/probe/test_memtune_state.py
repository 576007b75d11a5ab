"""The probe's view of what memtune left on a host: boot restore writes, drop-ins, managed cgroups."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import collect
from ansible_collections.memtune.fleet.plugins.module_utils._probe.memtune_state import (
    parse_boot_conf,
    parse_dropin,
    unit_cgroup,
)
from memtune.facts.model import parse_facts
from tests.support.trees import collect_with
from tests.support.workload_trees import proc

NODE0_2M = "/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"


def test_parse_boot_conf() -> None:
    text = "# Managed by memtune\nw /sys/kernel/mm/transparent_hugepage/enabled - - - - never\n"
    text += f"w {NODE0_2M} - - - - 512\nd /run/other 0755 - - -\n"
    assert parse_boot_conf(text) == {"/sys/kernel/mm/transparent_hugepage/enabled": "never", NODE0_2M: "512"}


def test_parse_dropin() -> None:
    text = "# Managed by memtune\n[Service]\nMemoryHigh=8589934592\nMemoryMax=infinity\nCPUQuota=50%\n"
    assert parse_dropin(text) == {"MemoryHigh": 8589934592, "MemoryMax": "infinity"}


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("postgresql.service", "/sys/fs/cgroup/system.slice/postgresql.service"),
        ("machine.slice", "/sys/fs/cgroup/machine.slice"),
        ("batch-jobs.slice", "/sys/fs/cgroup/batch.slice/batch-jobs.slice"),
        # Template instances live in their template's slice (found on the QEMU fleet with PostgreSQL 15:
        # the audit said postgresql@15-main.service "has no cgroup" while it ran, issue 18).
        (
            "postgresql@15-main.service",
            "/sys/fs/cgroup/system.slice/system-postgresql.slice/postgresql@15-main.service",
        ),
        ("foo-bar@x.service", "/sys/fs/cgroup/system.slice/system-foo\\x2dbar.slice/foo-bar@x.service"),
    ],
)
def test_unit_cgroup(unit: str, expected: str) -> None:
    assert unit_cgroup(unit, "/sys/fs/cgroup") == expected


def test_a_host_memtune_tuned() -> None:
    owned = "hugepagesz=1G hugepages=2"
    snapshot = {
        "version": 1,
        "runtime": {"cgroups": {"/sys/fs/cgroup/batch": {}, "redis-server.service": {}}},
        "owned": {"kernel_cmdline": ["hugepagesz=1G", "hugepages=2"], "dropins": []},
    }
    redis_cgroup = "/sys/fs/cgroup/system.slice/redis-server.service"
    files = {
        "/etc/sysctl.d/90-memtune.conf": "vm.swappiness = 10\n",
        "/etc/memtune/boot-tmpfiles.conf": f"w {NODE0_2M} - - - - 64\n",
        "/etc/systemd/system/memtune-boot.service": "[Unit]\n",
        "/etc/systemd/system/sysinit.target.wants/memtune-boot.service": "[Unit]\n",
        "/etc/systemd/system/redis-server.service.d/50-memtune.conf": "[Service]\nMemoryMax=1073741824\n",
        f"{redis_cgroup}/memory.max": "1073741824\n",
        f"{redis_cgroup}/memory.high": "max\n",
        "/sys/fs/cgroup/batch/memory.max": "536870912\n",
        "/etc/default/grub": f'GRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_CMDLINE_LINUX="{owned}"\n',
        "/var/lib/memtune/snapshot.json": json.dumps(snapshot),
    }
    facts = collect_with("small", files=files)
    state = facts["memtune"]
    assert state["sysctl_file"] is True
    assert state["boot_unit"] == {"installed": True, "enabled": True}
    assert state["boot_writes"] == {NODE0_2M: "64"}
    assert state["owned_cmdline"] == ["hugepagesz=1G", "hugepages=2"]
    assert state["bootloader"] == [{"path": "/etc/default/grub", "args": ["hugepagesz=1G", "hugepages=2"]}]
    redis, batch = state["cgroups"]
    assert redis["unit"] == "redis-server.service"
    assert redis["boot"] == {"MemoryMax": 1073741824}
    assert redis["runtime"]["MemoryMax"] == 1073741824
    assert redis["runtime"]["MemoryHigh"] == "infinity"
    assert batch == {
        "unit": None,
        "path": "/sys/fs/cgroup/batch",
        "boot": None,
        "runtime": {"MemoryMax": 536870912},
    }
    assert facts["warnings"] == []
    parse_facts(facts)


def test_an_untouched_host(fixture_hosts: Path) -> None:
    state = collect(Tree(str(fixture_hosts / "numa2")))["memtune"]
    assert state == {
        "sysctl_file": False,
        "boot_unit": {"installed": False, "enabled": False},
        "boot_writes": {},
        "snapshot": False,
        "ledger": None,
        "owned_cmdline": [],
        "bootloader": [],
        "cgroups": [],
    }


def test_a_damaged_snapshot_is_a_warning() -> None:
    facts = collect_with("small", files={"/var/lib/memtune/snapshot.json": "{not json"})
    assert facts["memtune"]["snapshot"] is False
    assert facts["memtune"]["ledger"]["path"] == "/var/lib/memtune/snapshot.json"
    assert facts["memtune"]["ledger"]["error"].startswith("not valid JSON")
    assert any("snapshot.json: not valid JSON" in warning for warning in facts["warnings"])


def test_a_units_limits_are_read_where_its_workload_runs() -> None:
    """A unit moved by Slice= (here postgresql.service in database.slice) is not where systemd puts units by
    default: its limits in force are read from the cgroup its workload instance runs in (issue 18)."""
    cgroup = "/database.slice/postgresql.service"
    files, links = proc(
        700, "postgres", ["/usr/lib/postgresql/15/bin/postgres", "-D", "/srv/pg"], f"0::{cgroup}\n"
    )
    files.update(
        {
            "/etc/systemd/system/postgresql.service.d/50-memtune.conf": "[Service]\nMemoryLow=1073741824\n",
            f"/sys/fs/cgroup{cgroup}/memory.low": "1073741824\n",
            f"/sys/fs/cgroup{cgroup}/memory.max": "max\n",
        }
    )
    facts = collect_with("small", files=files, links=links)
    [entry] = facts["memtune"]["cgroups"]
    assert entry["unit"] == "postgresql.service"
    assert entry["runtime"]["MemoryLow"] == 1073741824
    # without the instance, the default place (system.slice) is read: nothing there
    del files["/proc/700/comm"]
    [entry] = collect_with("small", files=files, links=links)["memtune"]["cgroups"]
    assert entry["runtime"] is None
    parse_facts(facts)
