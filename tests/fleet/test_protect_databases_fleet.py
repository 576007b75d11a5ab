"""The opt-in database protection policy (policies/memtune_protect_databases.yml) on a QEMU guest running
Debian's PostgreSQL 15 under systemd (issue 18's fleet check): a rollout without the opt-in group sets no
cgroup limit; with the host in the group the unit's memory.low (and its slices', and user.slice's
memory.high) is the planned value at runtime and in memtune's drop-ins, the audit finds no drift, a reboot
keeps it, and rolling back to the previous generation puts memory.low back to 0 and removes the drop-ins."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from .fleetlab import Fleet

pytestmark = pytest.mark.fleet

GUEST = "numa2"  # 6 GiB: above the policy's 3 GiB floor (small, 2 GiB, gets a warning and no limit)
GROUP = "memtune_protect_databases"
UNIT = "postgresql@15-main.service"
SLICE = "system-postgresql.slice"
CGROUP = f"/sys/fs/cgroup/system.slice/{SLICE}/{UNIT}"
# The cgroup files this test reads, by the knob memtune plans for them.
FILES = {
    f"cgroup.{UNIT}.MemoryLow": f"{CGROUP}/memory.low",
    f"cgroup.{SLICE}.MemoryLow": f"/sys/fs/cgroup/system.slice/{SLICE}/memory.low",
    "cgroup.system.slice.MemoryLow": "/sys/fs/cgroup/system.slice/memory.low",
    "cgroup.user.slice.MemoryHigh": "/sys/fs/cgroup/user.slice/memory.high",
}
DROPINS = {
    unit: f"/etc/systemd/system/{unit}.d/50-memtune.conf"
    for unit in (UNIT, SLICE, "system.slice", "user.slice")
}


def kernel(fleet: Fleet) -> dict[str, str]:
    """{knob: the value in its cgroup file} on the guest."""
    out = fleet.ssh(GUEST, " && ".join(f"cat {path}" for path in FILES.values()))
    return dict(zip(FILES, out.split(), strict=True))


def dropins(fleet: Fleet) -> dict[str, str]:
    """{unit: memtune's drop-in for it} for the drop-ins that exist."""
    out = fleet.ssh(
        GUEST,
        "; ".join(f"test -e {path} && echo '=={unit}' && cat {path}" for unit, path in DROPINS.items())
        + "; true",
    )
    return {
        block.split("\n", 1)[0]: block.split("\n", 1)[1] for block in out.split("==")[1:] if "\n" in block
    }


def planned(audit: dict[str, Any]) -> dict[str, int]:
    """The cgroup limits the audit's plan holds, {knob: bytes}."""
    return {
        check["knob"]: check["desired"]
        for check in audit["drift"]["checks"]
        if check["knob"].startswith("cgroup.")
    }


def wait_active(fleet: Fleet, unit: str, timeout: float = 180) -> None:
    started = time.monotonic()
    while fleet.ssh(GUEST, f"systemctl is-active {unit}", check=False).strip() != "active":
        assert time.monotonic() - started < timeout, f"{unit} not active after {timeout:.0f} s"
        time.sleep(2)


@pytest.fixture
def postgresql(untuned: Fleet) -> Iterator[Fleet]:
    """PostgreSQL 15's main cluster running on the guest and enabled for the next boot (the image installs
    it disabled); memtune rolled back, then PostgreSQL stopped and disabled again."""
    untuned.ssh(GUEST, f"systemctl enable postgresql && systemctl start {UNIT}")
    try:
        wait_active(untuned, UNIT)
        yield untuned
    finally:
        untuned.roll_back(GUEST)
        untuned.ssh(GUEST, f"systemctl disable postgresql; systemctl stop {UNIT} postgresql", check=False)


def test_the_opt_in_protection_applies_survives_a_reboot_and_rolls_back(postgresql: Fleet) -> None:
    fleet = postgresql
    started = time.monotonic()
    opted_in = fleet.groups_inventory({GROUP: [GUEST]})
    before = kernel(fleet)
    assert before == dict.fromkeys(FILES, "0") | {"cgroup.user.slice.MemoryHigh": "max"}

    # Detection alone: PostgreSQL's workload policy applies, the protection does not.
    plain = fleet.rollout(limit=GUEST)
    assert plain.returncode == 0, plain.output
    assert plain.status() == {GUEST: "changed"}
    assert kernel(fleet) == before and dropins(fleet) == {}
    assert not planned(fleet.audit(GUEST)[GUEST])

    # In the opt-in group: the limits reach the cgroups now and memtune's drop-ins for the next boot.
    tuned = fleet.rollout(limit=GUEST, inventory=opted_in)
    assert tuned.returncode == 0, tuned.output
    assert tuned.status() == {GUEST: "changed"}
    audit = fleet.audit(GUEST, opted_in)[GUEST]
    assert audit["drifted"] is False, audit["findings"]
    plan = planned(audit)
    assert set(plan) == set(FILES), plan
    mem_total_kb = int(fleet.ssh(GUEST, "awk '/^MemTotal:/ {print $2}' /proc/meminfo"))
    half = mem_total_kb * 1024 // 2 >> 20 << 20  # half of RAM in whole MiB, all for the one instance
    assert plan[f"cgroup.{UNIT}.MemoryLow"] == plan["cgroup.system.slice.MemoryLow"] == half
    assert plan["cgroup.user.slice.MemoryHigh"] == mem_total_kb * 1024 // 4 >> 20 << 20
    applied = kernel(fleet)
    assert applied == {knob: str(value) for knob, value in plan.items()}
    files = dropins(fleet)
    assert f"MemoryLow={half}\n" in files[UNIT] and f"MemoryLow={half}\n" in files["system.slice"]
    assert f"MemoryHigh={plan['cgroup.user.slice.MemoryHigh']}\n" in files["user.slice"]

    # A reboot: systemd sets the limits from the drop-ins when PostgreSQL starts again.
    boot_id = fleet.ssh(GUEST, "cat /proc/sys/kernel/random/boot_id")
    reboot_started = time.monotonic()
    rebooted = fleet.module(GUEST, "ansible.builtin.reboot", "reboot_timeout=600")[GUEST]
    assert not rebooted.get("failed"), rebooted
    wait_active(fleet, UNIT)
    reboot_seconds = time.monotonic() - reboot_started
    assert fleet.ssh(GUEST, "cat /proc/sys/kernel/random/boot_id") != boot_id
    after_reboot = kernel(fleet)
    assert after_reboot == applied
    audit = fleet.audit(GUEST, opted_in)[GUEST]
    assert audit["drifted"] is False, audit["findings"]

    # Roll back to the generation before the opt-in: PostgreSQL's sysctls stay, the cgroup limits go.
    rolled = fleet.module(GUEST, "memtune.fleet.tune", "rollback=previous")[GUEST]
    assert rolled["changed"] is True and not rolled.get("failed"), rolled
    assert kernel(fleet) == before
    assert dropins(fleet) == {}
    audit = fleet.audit(GUEST)[GUEST]
    assert audit["drifted"] is False, audit["findings"]
    low = f"cgroup.{UNIT}.MemoryLow"
    print(
        f"\n{UNIT} memory.low: before {before[low]}, applied {applied[low]}, after the reboot "
        f"{after_reboot[low]}, rolled back {kernel(fleet)[low]}; user.slice memory.high applied "
        f"{applied['cgroup.user.slice.MemoryHigh']}; rollouts {plain.seconds:.0f} s, {tuned.seconds:.0f} s; "
        f"reboot {reboot_seconds:.0f} s, test {time.monotonic() - started:.0f} s"
    )
