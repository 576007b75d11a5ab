"""Run the collection's modules for real, through Ansible, against this machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def ansible_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(REPO),
        ANSIBLE_DEPRECATION_WARNINGS="0",
        LC_ALL="C.UTF-8",
    )
    return env


def run_module(module: str, args: str = "", *extra: str) -> dict[str, Any]:
    """Run ``module`` on localhost with the ad-hoc `ansible` command; return the host's result
    (as the builtin tree callback saved it) with the command's exit status as ``_rc``."""
    with tempfile.TemporaryDirectory() as results:
        command = [str(BIN / "ansible"), "localhost", "-m", module, "--tree", results, *extra]
        if args:
            command += ["-a", args]
        done = subprocess.run(
            command, cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=300
        )
        saved = Path(results) / "localhost"
        if not saved.exists():
            pytest.fail(f"ansible saved no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
        result: dict[str, Any] = json.loads(saved.read_text())
    result["_rc"] = done.returncode
    return result
