"""The rollout role (playbooks/rollout.yml) on the QEMU fleet, with faults injected for real: a memory hog,
a read-only /proc/sys, a held lock and two rollouts at once, a hugepage pool a node cannot give, and a guest
whose QEMU is killed in the middle of the rollout. The fleet's inventory order is small, numa2, numa3."""

from __future__ import annotations

import json
import re
import select
import subprocess
import time
from typing import Any

import pytest

from .fleetlab import Fleet

pytestmark = pytest.mark.fleet

HOG_UNIT = "memtune-test-hog"
# Touches 256 MiB again and again inside a cgroup held to 64 MiB without swap: the kernel throttles it on
# every pass (memory.high), which /proc/pressure/memory counts as stalled time. Nothing is OOM-killed.
HOG = (
    f"systemd-run --unit={HOG_UNIT} -p MemoryHigh=64M -p MemorySwapMax=0 python3 -c '"
    "block = bytearray(256 << 20)\n"
    "while True:\n"
    "    for i in range(0, len(block), 4096):\n"
    "        block[i] = (block[i] + 1) & 255\n'"
)
RO_PYTHON = "/usr/local/bin/python3-ro-procsys"
# The guest's Python for Ansible, in a mount namespace of its own where /proc/sys is mounted read-only.
RO_WRAPPER = """#!/bin/sh
exec unshare --mount --propagation private sh -c \
  'mount --bind -o ro /proc/sys /proc/sys && exec /usr/bin/python3 "$@"' python3 "$@"
"""


def pressure(fleet: Fleet, guest: str) -> float:
    return float(re.search(r"some avg10=([0-9.]+)", fleet.ssh(guest, "cat /proc/pressure/memory"))[1])


def test_rollout_tunes_every_host_and_a_second_rollout_changes_nothing(untuned: Fleet) -> None:
    first = untuned.rollout({"rollout_serial": [1, "50%", "100%"]})
    assert first.returncode == 0, first.output
    assert first.status() == {"small": "changed", "numa2": "changed", "numa3": "changed"}
    assert all(untuned.memtune_files(guest) for guest in ("small", "numa2", "numa3"))
    audits = untuned.audit("lab")
    assert {host: audit["drifted"] for host, audit in audits.items()} == dict.fromkeys(audits, False)
    assert re.search(r"^small +changed +- ", first.table, re.M)

    second = untuned.rollout({"rollout_serial": [1, "50%", "100%"]})
    assert second.returncode == 0, second.output
    assert second.status() == {"small": "unchanged", "numa2": "unchanged", "numa3": "unchanged"}
    assert "unchanged: 3" in second.table
    print(f"\nrollout of 3 hosts: {first.seconds:.0f} s; converged again: {second.seconds:.0f} s")


@pytest.fixture
def hog(untuned: Fleet) -> Any:
    untuned.ssh("small", HOG)
    try:
        yield
    finally:
        untuned.ssh("small", f"systemctl stop {HOG_UNIT}; systemctl reset-failed {HOG_UNIT}", check=False)


def test_a_host_failing_the_health_gate_is_rolled_back_and_the_rollout_stops(
    untuned: Fleet, hog: Any
) -> None:
    before = untuned.values("small")
    # The canary is small; the pre-check is off so that the hog already running does not stop the rollout
    # before the change, and the settle time lets the 10 s average climb.
    result = untuned.rollout(
        {"rollout_serial": [1, "100%"], "rollout_precheck_enabled": False, "rollout_settle_seconds": 15}
    )
    assert pressure(untuned, "small") > 10.0  # the hog really was pressing on memory
    assert result.returncode != 0
    assert result.status() == {"small": "rolled_back", "numa2": "not_reached", "numa3": "not_reached"}
    assert "health gate after the change: memory pressure some avg10" in result.host("small")["reason"]
    assert untuned.values("small") == before
    assert untuned.memtune_files("numa2") == untuned.memtune_files("numa3") == []
    audit = untuned.audit("small")["small"]
    assert audit["drifted"] and audit["counts"]["runtime_drift"] > 0  # back at its values from before


def test_a_read_only_proc_sys_is_skipped_with_the_reason_and_nothing_written(untuned: Fleet) -> None:
    untuned.ssh("numa3", f"cat > {RO_PYTHON} <<'EOF'\n{RO_WRAPPER}EOF\nchmod 755 {RO_PYTHON}")
    try:
        before = untuned.values("numa3")
        result = untuned.rollout(
            limit="numa3", host_vars={"numa3": {"ansible_python_interpreter": RO_PYTHON}}
        )
    finally:
        untuned.ssh("numa3", f"rm -f {RO_PYTHON}")
    assert result.returncode == 0, result.output
    assert result.status() == {"numa3": "skipped"}
    assert "/proc/sys/vm is not writable" in result.host("numa3")["reason"]
    assert untuned.values("numa3") == before
    assert untuned.memtune_files("numa3") == []


def test_a_rollout_fails_on_the_lock_held_by_another_run_and_writes_nothing(untuned: Fleet) -> None:
    untuned.ssh("small", "systemd-run --unit=memtune-test-lock flock /run/lock/memtune.lock sleep 60")
    try:
        result = untuned.rollout({"rollout_lock_timeout": 3}, limit="small")
    finally:
        untuned.ssh("small", "systemctl stop memtune-test-lock", check=False)
    assert result.returncode != 0
    assert result.status() == {"small": "failed"}  # not rolled back: this rollout changed nothing
    assert "holds /run/lock/memtune.lock; waited 3s" in result.host("small")["reason"]
    assert untuned.memtune_files("small") == []


LOCK_USERS = "find /proc/[0-9]*/fd -lname /run/lock/memtune.lock 2>/dev/null | cut -d/ -f3 | sort -u"
AFTER_TUNE = "Stop at a host that stopped answering during the tune"


def lock_users(fleet: Fleet, guest: str, timeout: int = 120) -> int:
    """How many processes on the guest have memtune's lock file open (the holder and those waiting)."""
    out = fleet.ssh(guest, LOCK_USERS, check=False, timeout=timeout, shared=False)
    return len(out.split())


def test_two_rollouts_at_once_take_turns_on_the_lock(untuned: Fleet) -> None:
    before = untuned.values("small")
    # A third party holds the lock until both rollouts wait for it, so that their applies surely meet.
    untuned.ssh("small", "systemd-run --unit=memtune-test-lock flock /run/lock/memtune.lock sleep 300")
    started = time.monotonic()
    runs = [untuned.start_rollout(limit="small") for _ in range(2)]
    try:
        while lock_users(untuned, "small") < 3:
            assert time.monotonic() - started < 300, "the two rollouts never both waited for the lock"
            time.sleep(1)
    finally:
        untuned.ssh("small", "systemctl stop memtune-test-lock", check=False)
    results = [untuned.finish(process, report_dir, started) for process, report_dir in runs]
    assert [r.returncode for r in results] == [0, 0], [r.output for r in results]
    # Both found the host untuned and went to apply (the lock had three users: both memory_apply calls were
    # waiting): one call each with facts from the last contact, two after a probe. The second apply waited
    # for the first and then found nothing left to change.
    assert [r.host("small")["remote_calls"] for r in results] in ([1, 1], [2, 2])
    assert sorted(r.status()["small"] for r in results) == ["changed", "unchanged"]
    assert untuned.audit("small")["small"]["drifted"] is False
    # The snapshot is the host from before both runs (the second did not snapshot the first's values).
    untuned.roll_back("small")
    assert untuned.values("small") == before


def test_a_required_pool_a_node_cannot_give_fails_the_host_and_rolls_it_back(untuned: Fleet) -> None:
    # numa3's node 2 has memory and no CPUs; its MemTotal in 2 MiB pages is the largest pool the plan
    # accepts with no free memory guard, and more than the node can give (part of it is in use).
    node_total = int(
        re.search(r"MemTotal: +(\d+) kB", untuned.ssh("numa3", "cat /sys/devices/system/node/node2/meminfo"))[
            1
        ]
    )
    pages = node_total // 2048
    policy = {
        "guards": {"hugepages_min_node_free_percent": 0},
        "rules": [
            {
                "name": "pool-larger-than-node2-can-give",
                "source": "tests/fleet",
                "hugepages": [
                    {"size": "2MiB", "count": pages, "placement": "per_node", "nodes": [2], "required": True}
                ],
            }
        ],
    }
    before = untuned.values("numa3")
    result = untuned.rollout(limit="numa3", host_vars={"numa3": {"memtune_host_policy": policy}})
    assert result.returncode != 0
    entry = result.host("numa3")
    assert entry["status"] == "rolled_back", result.output
    [shortfall] = entry["shortfalls"]
    assert (shortfall["node"], shortfall["requested"]) == (2, pages)
    assert 0 < shortfall["allocated"] < pages and shortfall["shortfall"] == pages - shortfall["allocated"]
    assert untuned.values("numa3") == before  # the pool is back to 0 and memtune's files are gone


def wait_for_line(process: Any, pattern: str, count: int) -> str:
    seen = ""
    while seen.count(pattern) < count:
        line = process.stdout.readline()
        assert line, f"the rollout ended before {count}x {pattern!r}:\n{seen}"
        seen += line
    return seen


def test_a_guest_killed_mid_rollout_is_unreachable_and_boots_with_old_or_new_files(untuned: Fleet) -> None:
    # The lab's overlays use cache=unsafe (QEMU ignores the guest's flushes), which no file system survives
    # a power loss on. The victim is powered off cleanly and started again with cache=writeback, so that
    # the kill below is an honest power loss: what the guest flushed is on the disk.
    argv = [arg.replace("cache=unsafe", "cache=writeback") for arg in untuned.qemu_argv("numa2")]
    untuned.shutdown("numa2")
    boot = untuned.start(argv, "numa2")
    started = time.monotonic()
    process, report_dir = untuned.start_rollout(
        {"rollout_serial": [1, 1, "100%"], "rollout_max_fail_percentage": 0}
    )
    # The second batch is numa2 alone: kill it while memory_apply holds memtune's lock there (it writes
    # the snapshot, the runtime values and its files under it), or when the tune is over without it.
    seen = wait_for_line(process, "TASK [memtune.fleet.rollout : Probe, plan and apply only what differs]", 2)
    # A watcher on the guest says the moment a process opens the lock (faster than polling over ssh).
    watcher = subprocess.Popen(
        [*untuned.ssh_command("numa2"), f"until {LOCK_USERS} | grep -q .; do :; done; echo locked"],
        stdout=subprocess.PIPE,
        text=True,
    )
    moment = "after 600 s without either"
    try:
        while process.poll() is None and time.monotonic() - started < 600:
            ready = select.select([watcher.stdout, process.stdout], [], [], 5)[0]
            if watcher.stdout in ready and watcher.stdout.readline() == "locked\n":
                moment = "while memory_apply held the lock"
                break
            if process.stdout in ready:
                seen += process.stdout.readline()
            if seen.count(f"TASK [memtune.fleet.rollout : {AFTER_TUNE}]") == 2:
                moment = "after the tune"
                break
    finally:
        watcher.kill()
        watcher.wait()
    untuned.kill("numa2")
    killed_at = time.monotonic() - started
    result = Fleet.finish(process, report_dir, started, seen)
    (untuned.workdir / "killed.log").write_text(result.output)
    assert result.returncode != 0
    assert result.status() == {"small": "changed", "numa2": "unreachable", "numa3": "not_reached"}
    assert "unreachable" in result.host("numa2")["reason"]
    assert untuned.memtune_files("numa3") == []  # max_fail_percentage 0: the rollout stopped before it

    reboot = untuned.start(argv, "numa2")
    files = untuned.memtune_files("numa2")
    # A kill between a temporary file's write and its rename leaves that file (`.memtune-XXXXXXXX`, no
    # `.conf` suffix, so systemd-sysctl and tmpfiles never read it); the file it was to replace is intact.
    leftovers = untuned.ssh(
        "numa2",
        "find /etc/sysctl.d /etc/memtune /var/lib/memtune /etc/systemd/system -name '.memtune-*' 2>/dev/null",
        check=False,  # find exits 1 for the directories that do not exist
    ).split()
    assert not [path for path in leftovers if path.endswith(".conf")]
    audit = untuned.audit("numa2")["numa2"]
    sysctl_file = untuned.ssh("numa2", "cat /etc/sysctl.d/90-memtune.conf 2>/dev/null || true")
    if audit["drifted"]:
        # The old version: the kill came before memtune wrote its file (a snapshot alone may be there).
        assert "/etc/sysctl.d/90-memtune.conf" not in files, (files, audit["findings"], sysctl_file)
        version = "old"
    else:
        version = "new"  # the whole new file, applied at boot: the audit finds no drift
    if "it had been changed" in result.host("numa2")["reason"]:
        assert version == "new"  # the tune returned: its writes were synced, they survive the power loss
    print(
        f"\nnuma2 killed {killed_at:.0f} s into the rollout, {moment}; it came back {version} "
        f"(restart {boot:.0f} s, after the kill {reboot:.0f} s); files {files}; temporary files {leftovers}; "
        f"report: {result.host('numa2')['reason']}"
    )


# A boot-time pool puts hugepages arguments on the kernel command line. The guests boot their kernel
# directly from QEMU, so a BLS entry (which memtune edits without any tool) stands in for a bootloader;
# QEMU's own command line still wins at boot, so the arguments never reach /proc/cmdline (lab/README.md).
BOOT_POOL = {
    "rules": [
        {
            "name": "boot-pool",
            "source": "tests/fleet",
            "hugepages": [{"size": "2MiB", "count": 16, "boot": True}],
        }
    ]
}
BLS_ENTRY = "/boot/loader/entries/lab.conf"


def test_hosts_needing_a_reboot_are_listed_and_rebooted_only_when_allowed(untuned: Fleet) -> None:
    untuned.ssh(
        "numa2",
        f"mkdir -p {BLS_ENTRY.rsplit('/', 1)[0]} && "
        f"printf 'title lab\\nlinux /vmlinuz\\noptions %s\\n' \"$(cat /proc/cmdline)\" > {BLS_ENTRY}",
    )
    try:
        listed = untuned.rollout(limit="numa2", host_vars={"numa2": {"memtune_host_policy": BOOT_POOL}})
        assert listed.returncode == 0, listed.output
        entry = listed.host("numa2")
        assert (entry["status"], entry["reboot_required"], entry["rebooted"]) == ("changed", True, False)
        assert listed.report["reboot_required"] == ["numa2"]
        assert "reboot required (not rebooted; set rollout_reboot_enabled): numa2" in listed.table
        assert "hugepages=" in untuned.ssh("numa2", f"cat {BLS_ENTRY}")

        untuned.roll_back("numa2")
        boot_id = untuned.ssh("numa2", "cat /proc/sys/kernel/random/boot_id")
        rebooted = untuned.rollout(
            {"rollout_reboot_enabled": True},
            limit="numa2",
            host_vars={"numa2": {"memtune_host_policy": BOOT_POOL}},
        )
        assert rebooted.returncode == 0, rebooted.output
        entry = rebooted.host("numa2")
        assert (entry["status"], entry["reboot_required"], entry["rebooted"]) == ("changed", True, True)
        assert rebooted.report["reboot_required"] == []
        assert "health gate after the reboot passed" in rebooted.output
        assert untuned.ssh("numa2", "cat /proc/sys/kernel/random/boot_id") != boot_id
        print(f"\nreboot_required listed: {listed.seconds:.0f} s; with the reboot: {rebooted.seconds:.0f} s")
    finally:
        untuned.roll_back("numa2")
        untuned.ssh("numa2", "rm -rf /boot/loader", check=False)


def lifecycle_policy(fleet: Fleet, name: str, sysctl: dict[str, int]) -> str:
    directory = fleet.workdir / name
    directory.mkdir(exist_ok=True)
    rules = [
        {"name": key.split(".")[1], "source": "test", "sysctl": {key: value}} for key, value in sysctl.items()
    ]
    policy = {"layer": "baseline", "name": name, "description": "tests/fleet lifecycle", "rules": rules}
    (directory / "baseline.yml").write_text(json.dumps(policy))
    return str(directory)


def memtune_conf(fleet: Fleet, guest: str) -> str:
    return fleet.ssh(guest, "cat /etc/sysctl.d/90-memtune.conf 2>/dev/null", check=False)


def test_a_v2_failing_the_gate_goes_back_to_v1_and_original_survives_a_reboot(untuned: Fleet) -> None:
    """Issue 13, bug 3 (rollback only knew the original): v1 rolls out, v2 fails the health gate on the
    canary, which goes back to v1's values (runtime and files) while the other hosts keep v1 untouched;
    then rollback: original on the canary brings back its pre-memtune values, and a reboot keeps them
    (the lab boots by direct kernel boot, so what a reboot shows is what memtune's files set: nothing)."""
    before = untuned.values("small")
    maps = int(before["/proc/sys/vm/max_map_count"])
    v1 = lifecycle_policy(untuned, "v1", {"vm.swappiness": 10, "vm.max_map_count": maps + 4096})
    v2 = lifecycle_policy(untuned, "v2", {"vm.swappiness": 5})
    started = time.monotonic()
    # Two guests, v1 in one batch, keep the fleet time small: the canary, and one the failed v2 never reaches.
    first = untuned.rollout({"rollout_serial": ["100%"], "rollout_policies": [v1]}, limit="small,numa2")
    assert first.returncode == 0, first.output
    assert first.status() == {"small": "changed", "numa2": "changed"}
    on_v1 = {guest: untuned.values(guest) for guest in ("small", "numa2")}
    conf_v1 = memtune_conf(untuned, "small")
    assert on_v1["small"]["/proc/sys/vm/max_map_count"] == str(maps + 4096)

    untuned.ssh("small", HOG)
    try:
        second = untuned.rollout(
            {
                "rollout_serial": [1, "100%"],
                "rollout_policies": [v2],
                "rollout_precheck_enabled": False,
                "rollout_settle_seconds": 15,
            },
            limit="small,numa2",
        )
    finally:
        untuned.ssh("small", f"systemctl stop {HOG_UNIT}; systemctl reset-failed {HOG_UNIT}", check=False)
    assert second.returncode != 0
    assert second.status() == {"small": "rolled_back", "numa2": "not_reached"}
    assert untuned.values("small") == on_v1["small"]
    assert memtune_conf(untuned, "small") == conf_v1
    assert untuned.values("numa2") == on_v1["numa2"]

    original = untuned.module("small", "memtune.fleet.tune", "rollback=original")["small"]
    assert not original.get("failed") and original["changed"] is True, original
    assert untuned.values("small") == before
    boot_id = untuned.ssh("small", "cat /proc/sys/kernel/random/boot_id")
    rebooted = untuned.module("small", "ansible.builtin.reboot", "reboot_timeout=600")["small"]
    assert not rebooted.get("failed"), rebooted
    assert untuned.ssh("small", "cat /proc/sys/kernel/random/boot_id") != boot_id
    after = untuned.values("small")
    for key in ("/proc/sys/vm/swappiness", "/proc/sys/vm/max_map_count"):
        assert after[key] == before[key], key
    assert untuned.memtune_files("small") == []
    ledger = json.loads(untuned.ssh("small", "cat /var/lib/memtune/ledger.json"))
    assert ledger["generations"][-1]["action"] == "rollback-original"
    assert ledger["runtime"]["sysctl"]["vm.max_map_count"] == maps
    print(f"\nv1, failed v2 back to v1, original and a reboot: {time.monotonic() - started:.0f} s")
