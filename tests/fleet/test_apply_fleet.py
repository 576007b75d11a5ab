"""memory_apply's systemd unit limits on a QEMU lab guest, where systemd is the running init (it is not on
the machine that runs the tests): the limit reaches the unit's cgroup now, its drop-in keeps it for the next
boot, a second apply changes nothing, a limit below what the unit uses is refused, and rolling back removes
both."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from .fleetlab import Fleet

pytestmark = pytest.mark.fleet

GUEST = "small"
UNIT = "memtune-test.service"
DROPIN = f"/etc/systemd/system/{UNIT}.d/50-memtune.conf"


def show(fleet: Fleet) -> dict[str, str]:
    out = fleet.ssh(GUEST, f"systemctl show -p MemoryMax,MemoryHigh,ControlGroup {UNIT}")
    return dict(line.split("=", 1) for line in out.splitlines())


def apply(fleet: Fleet, limits: dict[str, int]) -> dict[str, object]:
    desired = {"schema_version": 1, "cgroups": [{"unit": UNIT, "limits": limits, "force": False}]}
    return fleet.module(GUEST, "memtune.fleet.memory_apply", json.dumps({"desired": desired}))[GUEST]


@pytest.fixture
def guest_unit(untuned: Fleet) -> Iterator[Fleet]:
    """A running `sleep infinity` service on the small guest; removed after memtune is rolled back."""
    untuned.ssh(
        GUEST,
        f"printf '[Service]\\nExecStart=/bin/sleep infinity\\n' > /etc/systemd/system/{UNIT}"
        f" && systemctl daemon-reload && systemctl start {UNIT}",
    )
    try:
        yield untuned
    finally:
        untuned.roll_back(GUEST)
        untuned.ssh(
            GUEST,
            f"systemctl stop {UNIT}; rm -rf /etc/systemd/system/{UNIT} /etc/systemd/system/{UNIT}.d;"
            " systemctl daemon-reload",
            check=False,
        )


def test_a_unit_limit_applies_now_and_for_the_next_boot_and_rolls_back(guest_unit: Fleet) -> None:
    fleet = guest_unit
    assert show(fleet)["MemoryMax"] == "infinity"

    applied = apply(fleet, {"MemoryMax": 64 << 20, "MemoryHigh": 48 << 20})
    assert applied["changed"] is True and not applied.get("failed"), applied
    now = show(fleet)
    assert now["MemoryMax"] == str(64 << 20) and now["MemoryHigh"] == str(48 << 20)
    kernel = fleet.ssh(GUEST, f"cat /sys/fs/cgroup{now['ControlGroup']}/memory.max")
    assert kernel.strip() == str(64 << 20)
    assert f"[Service]\nMemoryHigh={48 << 20}\nMemoryMax={64 << 20}\n" in fleet.ssh(GUEST, f"cat {DROPIN}")

    again = apply(fleet, {"MemoryMax": 64 << 20, "MemoryHigh": 48 << 20})
    assert again["changed"] is False and not again.get("failed"), again

    refused = apply(fleet, {"MemoryMax": 4096})
    assert refused.get("failed") and f"{UNIT} uses" in str(refused["msg"]), refused
    assert show(fleet)["MemoryMax"] == str(64 << 20)

    rolled = fleet.module(GUEST, "memtune.fleet.memory_apply", "state=absent")[GUEST]
    assert rolled["changed"] is True and not rolled.get("failed"), rolled
    assert show(fleet)["MemoryMax"] == "infinity"
    assert fleet.ssh(GUEST, f"test -e {DROPIN} && echo present || echo absent").strip() == "absent"
