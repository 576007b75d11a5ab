"""The lab's fault handling, on real guests and a real (small) disk. Marked fleet: minutes, root, QEMU."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.fleet


def run_lab(lab_dir: Path, script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(lab_dir / script)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


def processes_mentioning(text: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def test_a_guest_without_ssh_fails_with_its_console_and_stops_every_guest(
    lab_dir: Path, tmp_path: Path
) -> None:
    fleet = tmp_path / "fleet.conf"
    fleet.write_text("healthy 6.1 1024@0\nmute 6.1 1024@0 systemd.mask=ssh.service\n")
    env = {
        "MEMTUNE_LAB_FLEET": str(fleet),
        "MEMTUNE_LAB_RUN": str(tmp_path / "run"),
        "MEMTUNE_LAB_INVENTORY": str(tmp_path / "hosts.yml"),
        "MEMTUNE_LAB_PORT_BASE": "2350",
        "MEMTUNE_LAB_BOOT_TIMEOUT": "120",
    }
    result = run_lab(lab_dir, "up.sh", env)
    assert result.returncode != 0
    assert "healthy: ssh up after" in result.stderr
    assert "mute: no ssh after 120 s; last console lines" in result.stderr
    assert "mute login:" in result.stderr  # the guest's serial console, booted but without sshd
    assert "guests never answered ssh: mute" in result.stderr
    assert processes_mentioning(str(tmp_path / "run")) == []
    assert not (tmp_path / "hosts.yml").exists()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200M", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_disk_too_small_is_refused_before_the_build(lab_dir: Path, small_disk: Path) -> None:
    result = run_lab(lab_dir, "build-image.sh", {"MEMTUNE_LAB_CACHE": str(small_disk)})
    assert result.returncode != 0
    assert "disk full: " in result.stderr
    assert "the image build needs 5120 MiB" in result.stderr
    assert list((small_disk / "images").iterdir()) == []


def test_a_disk_filling_up_during_the_build_leaves_no_half_image(lab_dir: Path, small_disk: Path) -> None:
    result = run_lab(
        lab_dir, "build-image.sh", {"MEMTUNE_LAB_CACHE": str(small_disk), "MEMTUNE_LAB_MIN_FREE_MB": "0"}
    )
    assert result.returncode != 0
    assert "the image build failed with the disk full" in result.stderr
    assert "no image was left in the cache" in result.stderr
    assert list((small_disk / "images").iterdir()) == []


def test_a_host_package_that_cannot_be_installed_is_named(lab_dir: Path) -> None:
    wanted = "ssh:openssh-client memtune-no-such-cmd:memtune-no-such-pkg"
    script = f'source "{lab_dir}/common.sh"; require_commands {wanted}'
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode != 0
    assert "installing missing host packages: memtune-no-such-pkg\n" in result.stderr
    assert "could not install host packages: memtune-no-such-pkg\n" in result.stderr
