"""The QEMU command line a guest's NUMA layout turns into."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


def qemu_numa_args(lab_dir: Path, *nodes: str) -> list[str]:
    script = f'set -euo pipefail; source "{lab_dir}/common.sh"; qemu_numa_args "$@"'
    result = subprocess.run(
        ["bash", "-c", script, "bash", *nodes], capture_output=True, text=True, check=True
    )
    return result.stdout.splitlines()


def test_one_node(lab_dir: Path) -> None:
    assert qemu_numa_args(lab_dir, "2048@0") == [
        "-smp", "1", "-m", "2048M",
        "-object", "memory-backend-ram,id=m0,size=2048M", "-numa", "node,nodeid=0,cpus=0,memdev=m0",
    ]  # fmt: skip


def test_a_node_without_cpus_and_a_cpu_range(lab_dir: Path) -> None:
    assert qemu_numa_args(lab_dir, "2048@0-1", "1024@") == [
        "-smp", "2", "-m", "3072M",
        "-object", "memory-backend-ram,id=m0,size=2048M", "-numa", "node,nodeid=0,cpus=0-1,memdev=m0",
        "-object", "memory-backend-ram,id=m1,size=1024M", "-numa", "node,nodeid=1,memdev=m1",
    ]  # fmt: skip


@pytest.mark.parametrize("node", ["2048", "big@0", "2048@x"])
def test_a_malformed_node_is_refused(lab_dir: Path, node: str) -> None:
    script = f'set -euo pipefail; source "{lab_dir}/common.sh"; qemu_numa_args "$@"'
    result = subprocess.run(["bash", "-c", script, "bash", node], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert f"NUMA node {node!r} is not MiB@cpus" in result.stderr
