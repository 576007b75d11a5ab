"""Driving the QEMU lab fleet from tests: rollouts (playbooks/rollout.yml) and their reports, ad-hoc
modules and audits, shell commands on the guests, and killing and starting a guest's QEMU by its pidfile."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.ansible_run import adhoc, ansible_env

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LAB_CACHE = Path(os.environ.get("MEMTUNE_LAB_CACHE", Path.home() / ".cache/memtune/lab"))
LAB_RUN = Path(os.environ.get("MEMTUNE_LAB_RUN", LAB_CACHE / "run"))
# What memtune may change on a guest, and its files.
VALUE_PATHS = (
    "/proc/sys/vm",
    "/sys/kernel/mm/transparent_hugepage/enabled",
    "/sys/kernel/mm/transparent_hugepage/defrag",
    "/sys/devices/system/node/node*/hugepages/*/nr_hugepages",
)
FILES = (
    "/etc/sysctl.d/*memtune*",
    "/etc/memtune",
    "/var/lib/memtune/snapshot.json",
    "/etc/systemd/system/memtune-boot.service",
)
INVENTORY = Path(os.environ.get("MEMTUNE_LAB_INVENTORY", REPO / "inventories/lab/hosts.yml"))


@dataclass
class Rollout:
    returncode: int
    output: str
    report: dict[str, Any]
    table: str
    seconds: float

    def status(self) -> dict[str, str]:
        return {entry["host"]: entry["status"] for entry in self.report["hosts"]}

    def host(self, name: str) -> dict[str, Any]:
        return next(entry for entry in self.report["hosts"] if entry["host"] == name)


class Fleet:
    """The running lab fleet: rollouts, audits and shell commands on its guests."""

    def __init__(self, inventory: Path, workdir: Path) -> None:
        self.inventory = inventory
        self.workdir = workdir
        self.ssh_config = LAB_RUN / "ssh_config"
        self.running: list[subprocess.Popen[str]] = []

    def groups_inventory(self, groups: dict[str, list[str]]) -> Path:
        """An inventory that puts lab hosts into more groups ({group: [host]}), to pass beside the lab's."""
        path = Path(tempfile.mkdtemp(dir=self.workdir)) / "groups.yml"
        children = {group: {"hosts": dict.fromkeys(hosts)} for group, hosts in groups.items()}
        path.write_text(yaml.safe_dump({"all": {"children": children}}))
        return path

    def rollout_command(
        self,
        report_dir: Path,
        variables: dict[str, Any],
        limit: str | None,
        host_vars: dict[str, Any] | None,
        inventory: Path | None = None,
    ) -> list[str]:
        command = [str(BIN / "ansible-playbook"), "-i", str(self.inventory)]
        if inventory:
            command += ["-i", str(inventory)]
        if host_vars:
            extra = Path(tempfile.mkdtemp(dir=self.workdir)) / "host_vars.yml"
            extra.write_text(yaml.safe_dump({"all": {"hosts": host_vars}}))
            command += ["-i", str(extra)]
        variables = {
            "rollout_report_dir": str(report_dir),
            "rollout_settle_seconds": 3,
            "rollout_evidence_window_seconds": 1,
            **variables,
        }
        command += [str(REPO / "playbooks/rollout.yml"), "-e", json.dumps(variables)]
        if limit:
            command += ["--limit", limit]
        return command

    def start_rollout(
        self,
        variables: dict[str, Any] | None = None,
        limit: str | None = None,
        host_vars: dict[str, Any] | None = None,
        inventory: Path | None = None,
    ) -> tuple[subprocess.Popen[str], Path]:
        report_dir = Path(tempfile.mkdtemp(dir=self.workdir, prefix="report-"))
        process = subprocess.Popen(  # stopped by stop_rollouts() if a test fails
            self.rollout_command(report_dir, variables or {}, limit, host_vars, inventory),
            cwd=REPO,
            env=ansible_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.running.append(process)
        return process, report_dir

    def stop_rollouts(self) -> None:
        """Kill the rollouts a failed test left running (by the pid of the process it started)."""
        for process in self.running:
            if process.poll() is None:
                process.kill()
                process.wait()
        self.running.clear()

    @staticmethod
    def finish(process: subprocess.Popen[str], report_dir: Path, started: float, seen: str = "") -> Rollout:
        output, _ = process.communicate(timeout=1200)
        output = seen + output
        report = report_dir / "rollout.json"
        assert report.exists(), f"no report (exit {process.returncode}):\n{output}"
        return Rollout(
            process.returncode,
            output,
            json.loads(report.read_text()),
            (report_dir / "rollout.txt").read_text(),
            time.monotonic() - started,
        )

    def rollout(
        self,
        variables: dict[str, Any] | None = None,
        limit: str | None = None,
        host_vars: dict[str, Any] | None = None,
        inventory: Path | None = None,
    ) -> Rollout:
        """A rollout; ``inventory`` is passed beside the lab's (e.g. groups_inventory())."""
        started = time.monotonic()
        process, report_dir = self.start_rollout(variables, limit, host_vars, inventory)
        return self.finish(process, report_dir, started)

    def module(
        self, hosts: str, module: str, args: str = "", inventory: Path | None = None
    ) -> dict[str, dict[str, Any]]:
        """Run ``module`` ad hoc on ``hosts``; {host: result, with ``failed`` and ``unreachable``}."""
        more = ["-i", str(inventory)] if inventory else []
        results, _ = adhoc(hosts, module, args, "-i", str(self.inventory), *more, timeout=600)
        return results

    def audit(self, hosts: str, inventory: Path | None = None) -> dict[str, dict[str, Any]]:
        return self.module(hosts, "memtune.fleet.audit", "fail_on_drift=false", inventory)

    def ssh_command(self, guest: str, shared: bool = True) -> list[str]:
        """ssh to ``guest`` as root; ``shared=False`` opens a connection of its own instead of sharing the
        ssh master connection with Ansible."""
        alone = [] if shared else ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
        return ["ssh", "-F", str(self.ssh_config), *alone, guest]

    def ssh(
        self, guest: str, command: str, check: bool = True, timeout: int = 120, shared: bool = True
    ) -> str:
        """Run ``command`` on ``guest`` as root; ``shared=False`` opens a connection of its own instead of
        sharing the ssh master connection (and its sessions) with Ansible."""
        done = subprocess.run(
            [*self.ssh_command(guest, shared), command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check:
            assert done.returncode == 0, f"{guest}: {command}: exit {done.returncode}\n{done.stderr}"
        return done.stdout

    def values(self, guest: str) -> dict[str, str]:
        """What memtune may change on a guest: /proc/sys/vm, THP, per-node pools, and its files."""
        listing = self.ssh(
            guest,
            f"grep -r . {' '.join(VALUE_PATHS)} 2>/dev/null; "
            f"ls -d {' '.join(FILES)} 2>/dev/null | sed 's/$/:present/'",
            check=False,
        )
        return dict(line.rsplit(":", 1) for line in listing.splitlines() if ":" in line)

    def memtune_files(self, guest: str) -> list[str]:
        return sorted(path for path, value in self.values(guest).items() if value == "present")

    def roll_back(self, hosts: str = "lab") -> None:
        results = self.module(hosts, "memtune.fleet.memory_apply", "state=absent")
        failed = {host: result.get("msg") for host, result in results.items() if result.get("failed")}
        assert not failed, f"could not roll back: {failed}"

    # Guests: a QEMU process is only ever found and signalled through its pidfile.
    @staticmethod
    def qemu_pid(guest: str) -> int:
        pidfile = LAB_RUN / guest / "qemu.pid"
        pid = int(pidfile.read_text())
        assert str(pidfile).encode() in Path(f"/proc/{pid}/cmdline").read_bytes(), (
            f"{pid} is not {guest}'s QEMU"
        )
        return pid

    def qemu_argv(self, guest: str) -> list[str]:
        return Path(f"/proc/{self.qemu_pid(guest)}/cmdline").read_bytes().decode().split("\0")[:-1]

    def kill(self, guest: str) -> None:
        """SIGKILL the guest's QEMU: the guest loses power, nothing in it gets to finish."""
        pid = self.qemu_pid(guest)
        os.kill(pid, 9)
        for _ in range(100):
            if not Path(f"/proc/{pid}/cmdline").read_bytes():
                break
            time.sleep(0.1)

    def start(self, argv: list[str], guest: str, timeout: int = 420) -> float:
        """Start a guest again from a QEMU command line (its overlay kept); seconds until ssh answers."""
        started = time.monotonic()
        subprocess.run(argv, check=True, timeout=60)
        while time.monotonic() - started < timeout:
            if (
                subprocess.run(
                    ["ssh", "-F", str(self.ssh_config), "-o", "ConnectTimeout=5", guest, "true"],
                    capture_output=True,
                    timeout=60,
                    check=False,
                ).returncode
                == 0
            ):
                return time.monotonic() - started
            time.sleep(3)
        pytest.fail(f"{guest} did not answer ssh within {timeout} s: {shlex.join(argv)}")

    def shutdown(self, guest: str) -> None:
        """Power a guest off from inside (its disk is flushed) and wait for its QEMU to exit."""
        pid = self.qemu_pid(guest)
        self.ssh(guest, "systemctl --no-block poweroff", check=False)
        for _ in range(600):
            if not Path(f"/proc/{pid}/cmdline").exists() or not Path(f"/proc/{pid}/cmdline").read_bytes():
                return
            time.sleep(0.2)
        pytest.fail(f"{guest} did not power off within 120 s")
