"""memory_apply's systemd unit limits on a QEMU lab guest, where systemd is the running init (it is not on
the machine that runs the tests). Needs the fleet up (lab/up.sh writes inventories/lab/hosts.yml) and
MEMTUNE_FLEET_TESTS=1."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import BIN, REPO, ansible_env

INVENTORY = REPO / "inventories" / "lab" / "hosts.yml"
UNIT = "memtune-test.service"
pytestmark = [
    pytest.mark.fleet,
    pytest.mark.skipif(
        os.environ.get("MEMTUNE_FLEET_TESTS") != "1" or not INVENTORY.exists(),
        reason="needs the QEMU fleet (lab/up.sh) and MEMTUNE_FLEET_TESTS=1",
    ),
]


def on_guest(host: str, module: str, args: dict[str, Any] | str) -> dict[str, Any]:
    """Run one module on a lab guest; the host's result with the exit status as ``_rc``."""
    with tempfile.TemporaryDirectory() as results:
        text = args if isinstance(args, str) else json.dumps(args)
        done = subprocess.run(
            [str(BIN / "ansible"), host, "-i", str(INVENTORY), "-m", module, "-a", text, "--tree", results],
            cwd=REPO,
            env=ansible_env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        saved = Path(results) / host
        assert saved.exists(), done.stdout + done.stderr
        result: dict[str, Any] = json.loads(saved.read_text())
    result["_rc"] = done.returncode
    return result


def show(host: str) -> dict[str, str]:
    out = on_guest(
        host, "ansible.builtin.command", f"systemctl show -p MemoryMax,MemoryHigh,ControlGroup {UNIT}"
    )
    return dict(line.split("=", 1) for line in out["stdout"].splitlines())


@pytest.fixture
def guest_unit() -> Iterator[str]:
    """A running `sleep infinity` service on the first guest; removed with memtune's changes afterwards."""
    host = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(INVENTORY), "--list"],
        env=ansible_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    hosts = sorted(json.loads(host.stdout)["_meta"]["hostvars"])
    name = hosts[0]
    unit_text = "[Service]\nExecStart=/bin/sleep infinity\n"
    created = on_guest(
        name, "ansible.builtin.copy", {"dest": f"/etc/systemd/system/{UNIT}", "content": unit_text}
    )
    assert created["_rc"] == 0, created
    started = on_guest(
        name, "ansible.builtin.systemd_service", {"name": UNIT, "state": "started", "daemon_reload": True}
    )
    assert started["_rc"] == 0, started
    try:
        yield name
    finally:
        on_guest(name, "memtune.fleet.memory_apply", {"state": "absent"})
        on_guest(name, "ansible.builtin.systemd_service", {"name": UNIT, "state": "stopped"})
        on_guest(name, "ansible.builtin.file", {"path": f"/etc/systemd/system/{UNIT}", "state": "absent"})
        on_guest(name, "ansible.builtin.systemd_service", {"daemon_reload": True})


def test_unit_limit_now_and_after_reboot_then_rolled_back(guest_unit: str) -> None:
    host = guest_unit
    assert show(host)["MemoryMax"] == "infinity"
    limits = {"MemoryMax": 64 << 20, "MemoryHigh": 48 << 20}
    desired = {"schema_version": 1, "cgroups": [{"unit": UNIT, "limits": limits, "force": False}]}

    applied = on_guest(host, "memtune.fleet.memory_apply", {"desired": desired})
    assert applied["_rc"] == 0 and applied["changed"] is True, applied
    now = show(host)
    assert now["MemoryMax"] == str(64 << 20) and now["MemoryHigh"] == str(48 << 20)
    kernel = on_guest(
        host, "ansible.builtin.slurp", {"src": f"/sys/fs/cgroup{now['ControlGroup']}/memory.max"}
    )
    assert base64.b64decode(kernel["content"]).decode().strip() == str(64 << 20)
    dropin = on_guest(host, "ansible.builtin.slurp", {"src": f"/etc/systemd/system/{UNIT}.d/50-memtune.conf"})
    text = base64.b64decode(dropin["content"]).decode()
    assert f"[Service]\nMemoryHigh={48 << 20}\nMemoryMax={64 << 20}\n" in text

    again = on_guest(host, "memtune.fleet.memory_apply", {"desired": desired})
    assert again["_rc"] == 0 and again["changed"] is False, again

    tiny = {"schema_version": 1, "cgroups": [{"unit": UNIT, "limits": {"MemoryMax": 4096}, "force": False}]}
    refused = on_guest(host, "memtune.fleet.memory_apply", {"desired": tiny})
    assert refused["_rc"] != 0 and f"{UNIT} uses" in refused["msg"]

    rolled = on_guest(host, "memtune.fleet.memory_apply", {"state": "absent"})
    assert rolled["_rc"] == 0 and rolled["changed"] is True, rolled
    assert show(host)["MemoryMax"] == "infinity"
    gone = on_guest(host, "ansible.builtin.stat", {"path": f"/etc/systemd/system/{UNIT}.d/50-memtune.conf"})
    assert gone["stat"]["exists"] is False
