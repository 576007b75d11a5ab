"""memory_apply on this machine's real kernel, as root, through Ansible. Every value and file it may touch is
saved first and put back afterwards, pass or fail (apply_guard.host_guard)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.support.ansible_run import REPO, run_module
from tests.support.apply_guard import NODES, THP, HostState, host_guard, scratch_cgroup, thp_choice

pytestmark = pytest.mark.root
__all__ = ["host_guard", "scratch_cgroup"]  # fixtures used below by name
POOL_2M = NODES / "node0" / "hugepages" / "hugepages-2048kB" / "nr_hugepages"


def apply(*extra: str, **args: Any) -> dict[str, Any]:
    return run_module("memtune.fleet.memory_apply", json.dumps(args), *extra)


def apply_bare(**args: Any) -> dict[str, Any]:
    """Run the module file itself (no Ansible), whose result still has its warnings, which the ad-hoc
    command's saved result lacks; ``warnings`` becomes a list of their texts."""
    with tempfile.TemporaryDirectory() as temp:
        (Path(temp) / "args.json").write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
        done = subprocess.run(
            [sys.executable, str(REPO / "plugins/modules/memory_apply.py"), str(Path(temp) / "args.json")],
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            capture_output=True,
            text=True,
            timeout=300,
        )
    result: dict[str, Any] = json.loads(done.stdout)
    result["warnings"] = [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]
    return result


def sysctl(key: str) -> str:
    """The value as procps' sysctl(8) reads it: a second opinion besides reading /proc ourselves."""
    return subprocess.run(["sysctl", "-n", key], capture_output=True, text=True, check=True).stdout.strip()


def meminfo(field: str) -> int:
    line = next(li for li in Path("/proc/meminfo").read_text().splitlines() if li.startswith(field + ":"))
    return int(line.split()[1])


def other_choice(name: str) -> str:
    """A THP choice other than the current one."""
    text = (THP / name).read_text()
    return next(w for w in ("never", "always", "madvise") if w in text.split() and w != thp_choice(text))


def desired_for(before: HostState) -> dict[str, Any]:
    swappiness = int(before.vm["swappiness"])
    background = int(before.vm["dirty_background_bytes"])
    return {
        "schema_version": 1,
        "sysctl": {
            "vm.swappiness": {"value": 33 if swappiness != 33 else 34, "provenance": {}},
            # Writing it zeroes vm.dirty_background_ratio, which the rollback must bring back.
            "vm.dirty_background_bytes": {"value": (64 << 20) + (background == 64 << 20), "provenance": {}},
        },
        "thp": {
            "enabled": {"value": other_choice("enabled"), "provenance": {}},
            "defrag": {"value": other_choice("defrag"), "provenance": {}},
        },
        "hugepages": [
            {
                "size_kb": 2048,
                "per_node": {"0": int(POOL_2M.read_text()) + 64},
                "boot": False,
                "required": True,
                "provenance": {},
            }
        ],
    }


def test_apply_converge_and_roll_back(host_guard: HostState) -> None:
    before = host_guard
    desired = desired_for(before)
    total_before = meminfo("HugePages_Total")

    checked = apply("--check", "--diff", desired=desired)
    assert checked["_rc"] == 0 and checked["changed"] is True, checked
    assert before.differences(HostState()) == [], "check mode changed the host"

    result = apply(desired=desired)
    assert result["_rc"] == 0 and result["changed"] is True, result
    assert sysctl("vm.swappiness") == str(desired["sysctl"]["vm.swappiness"]["value"])
    assert sysctl("vm.dirty_background_bytes") == str(desired["sysctl"]["vm.dirty_background_bytes"]["value"])
    assert sysctl("vm.dirty_background_ratio") == "0"
    assert thp_choice((THP / "enabled").read_text()) == desired["thp"]["enabled"]["value"]
    assert thp_choice((THP / "defrag").read_text()) == desired["thp"]["defrag"]["value"]
    assert int(POOL_2M.read_text()) == desired["hugepages"][0]["per_node"]["0"]
    assert meminfo("HugePages_Total") == total_before + 64
    assert result["hugepages"] == [
        {
            "size_kb": 2048,
            "node": 0,
            "before": total_before,
            "requested": total_before + 64,
            "allocated": total_before + 64,
            "shortfall": 0,
            "compactions": 0,
            "boot": False,
            "required": True,
        }
    ]
    sysctl_file = Path("/etc/sysctl.d/90-memtune.conf").read_text()
    assert f"vm.swappiness = {desired['sysctl']['vm.swappiness']['value']}\n" in sysctl_file
    assert oct(Path("/etc/sysctl.d/90-memtune.conf").stat().st_mode & 0o777) == "0o644"
    boot = Path("/etc/memtune/boot-tmpfiles.conf").read_text()
    assert f"w {POOL_2M} - - - - {total_before + 64}\n" in boot
    assert Path("/etc/systemd/system/sysinit.target.wants/memtune-boot.service").is_symlink()
    saved = json.loads(Path("/var/lib/memtune/ledger.json").read_text())
    assert saved["runtime"]["sysctl"]["vm.swappiness"] == int(before.vm["swappiness"])
    assert saved["runtime"]["thp"] == before.thp

    again = apply(desired=desired)
    assert again["_rc"] == 0 and again["changed"] is False, again
    assert all(not knob["changed"] for knob in again["knobs"])

    rolled = apply(state="absent")
    assert rolled["_rc"] == 0 and rolled["changed"] is True, rolled
    assert before.differences(HostState()) == []
    # The ledger stays with the originals and the rollback recorded; memtune's other files are gone.
    assert [p.name for p in Path("/var/lib/memtune").iterdir()] == ["ledger.json"]
    assert not Path("/etc/memtune").exists()
    assert sysctl("vm.swappiness") == before.vm["swappiness"].strip()
    assert sysctl("vm.dirty_background_ratio") == before.vm["dirty_background_ratio"].strip()
    assert apply(state="absent")["changed"] is False


def test_second_run_is_not_blocked_by_a_stale_lock_file(host_guard: HostState) -> None:
    Path("/run/lock").mkdir(exist_ok=True)
    Path("/run/lock/memtune.lock").write_text("999999\n")  # a crashed run's file: flock is what counts
    result = apply("--check", desired={"schema_version": 1})
    assert result["_rc"] == 0 and result["changed"] is False, result


@pytest.mark.skipif(
    os.environ.get("MEMTUNE_EXHAUST_MEMORY_TEST") != "1",
    reason="asks the kernel for more hugepages than the node has: it takes every free page of "
    "node 0 for a moment; set MEMTUNE_EXHAUST_MEMORY_TEST=1 on a machine running nothing else",
)
def test_more_than_fits_reports_the_shortfall(host_guard: HostState) -> None:
    node_kb = int(
        next(li for li in (NODES / "node0" / "meminfo").read_text().splitlines() if "MemTotal" in li).split()[
            3
        ]
    )
    requested = node_kb // 2048 + 512
    pool = {"size_kb": 2048, "per_node": {"0": requested}, "boot": False, "required": False, "provenance": {}}
    result = apply_bare(desired={"schema_version": 1, "hugepages": [pool]}, compact_retries=1)
    assert not result.get("failed"), result
    [report] = result["hugepages"]
    assert report["requested"] == requested and 0 <= report["allocated"] < requested
    assert report["shortfall"] == requested - report["allocated"] and report["compactions"] == 1
    assert any(f"requested {requested}, allocated" in w for w in result["warnings"])
    host_guard.restore()
    required = apply(
        desired={"schema_version": 1, "hugepages": [dict(pool, required=True)]}, compact_retries=0
    )
    assert required["_rc"] != 0 and "(the pool is required)" in required["msg"]


def test_raw_cgroup_limit(host_guard: HostState, scratch_cgroup: Path) -> None:
    path = str(scratch_cgroup)
    v2 = (scratch_cgroup / "memory.max").exists()
    limit_file = scratch_cgroup / ("memory.max" if v2 else "memory.limit_in_bytes")
    unlimited = limit_file.read_text().strip()
    desired = {
        "schema_version": 1,
        "cgroups": [{"path": path, "limits": {"MemoryMax": 256 << 20}, "force": False}],
    }
    result = apply(desired=desired)
    assert result["_rc"] == 0 and result["changed"] is True, result
    assert limit_file.read_text().strip() == str(256 << 20)
    assert apply(desired=desired)["changed"] is False
    assert apply(state="absent")["changed"] is True
    assert limit_file.read_text().strip() == unlimited


def test_limit_below_usage_is_refused(host_guard: HostState, scratch_cgroup: Path) -> None:
    """A process in the cgroup holds 32 MiB; an 8 MiB MemoryMax would reclaim or kill it, so it is refused."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; sys.stdin.readline(); b = bytearray(32 << 20); print('ok', flush=True);"
            " sys.stdin.readline()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    (scratch_cgroup / "cgroup.procs").write_text(str(holder.pid))
    holder.stdin.write("go\n")
    holder.stdin.flush()
    assert holder.stdout.readline() == "ok\n"
    usage_file = "memory.current" if (scratch_cgroup / "memory.current").exists() else "memory.usage_in_bytes"
    assert int((scratch_cgroup / usage_file).read_text()) > 16 << 20
    desired = {
        "schema_version": 1,
        "cgroups": [{"path": str(scratch_cgroup), "limits": {"MemoryMax": 8 << 20}, "force": False}],
    }
    # What memtune keeps in /var/lib/memtune before (a ledger stays after a rollback, as molecule's destroy
    # leaves it on this machine): the refused apply must not change it, nor create it.
    state_dir = Path("/var/lib/memtune")
    kept = {path.name: path.read_bytes() for path in state_dir.iterdir()} if state_dir.is_dir() else None
    result = apply(desired=desired)
    assert result["_rc"] != 0
    assert f"{scratch_cgroup} uses" in result["msg"] and "set force: true" in result["msg"]
    after = {path.name: path.read_bytes() for path in state_dir.iterdir()} if state_dir.is_dir() else None
    assert after == kept, "a refused apply wrote memtune's state"
    holder.kill()
    holder.wait()


def test_a_1gib_boot_pool_without_a_bootloader(host_guard: HostState) -> None:
    """One gigantic page at runtime (the kernel may or may not find 1 GiB of contiguous memory) and its
    command-line arguments, which this machine cannot persist: it has no grub, grubby or BLS entries."""
    pool = {"size_kb": 1 << 20, "per_node": {"0": 1}, "boot": True, "required": True, "provenance": {}}
    cmdline = [{"arg": "hugepagesz=1G", "provenance": {}}, {"arg": "hugepages=0:1", "provenance": {}}]
    result = apply_bare(desired={"schema_version": 1, "hugepages": [pool], "kernel_cmdline": cmdline})
    assert not result.get("failed"), result  # required, but a boot pool's runtime shortfall is only a warning
    [report] = result["hugepages"]
    assert report["allocated"] in (0, 1) and report["shortfall"] == 1 - report["allocated"]
    gigantic = NODES / "node0" / "hugepages" / "hugepages-1048576kB" / "nr_hugepages"
    assert int(gigantic.read_text()) == report["allocated"]
    warnings = result["warnings"]
    assert any("no bootloader found" in w and "hugepagesz=1G hugepages=0:1" in w for w in warnings), warnings
    if report["shortfall"]:
        assert any("allocates the pool at the next boot" in w for w in warnings), warnings
    assert result["reboot_required"] is False  # nothing would take effect at the next boot here
    assert apply(state="absent")["_rc"] == 0
    assert int(gigantic.read_text()) == 0
