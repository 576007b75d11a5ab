"""Run the collection's modules and playbooks for real, through Ansible (the live, CLI and fleet tests)."""

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


def ansible_playbook(
    *args: str | Path,
    cwd: Path = REPO,
    home: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: int = 300,
) -> subprocess.CompletedProcess[str]:
    """`ansible-playbook` with ``args`` (playbooks/... names resolve from the default ``cwd``, the checkout)
    under ansible_env() and ``env``, with HOME at ``home`` if given, its output captured; it may fail: the
    caller checks its returncode."""
    return subprocess.run(
        [str(BIN / "ansible-playbook"), *map(str, args)],
        cwd=cwd,
        env={**ansible_env(), **({"HOME": str(home)} if home else {}), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def adhoc(
    hosts: str, module: str, args: str = "", *extra: str, timeout: int = 300
) -> tuple[dict[str, dict[str, Any]], subprocess.CompletedProcess[str]]:
    """Run ``module`` on ``hosts`` with the ad-hoc `ansible` command: {host: its result, with ``failed`` and
    ``unreachable``} (saved by tests/callbacks/results_dir.py), and the finished command."""
    with tempfile.TemporaryDirectory() as saved:
        command = [str(BIN / "ansible"), hosts, "-m", module, *extra]
        if args:
            command += ["-a", args]
        env = ansible_env()
        env.update(
            ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
            ANSIBLE_CALLBACK_PLUGINS=str(REPO / "tests" / "callbacks"),
            ANSIBLE_CALLBACKS_ENABLED="results_dir",
            MEMTUNE_TEST_RESULTS=saved,
        )
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        results = {path.stem: json.loads(path.read_text()) for path in Path(saved).glob("*.json")}
    if not results:
        pytest.fail(f"ansible saved no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return results, done


def run_module(module: str, args: str = "", *extra: str) -> dict[str, Any]:
    """Run ``module`` on localhost with the ad-hoc `ansible` command; return the host's result with the
    command's exit status as ``_rc``."""
    results, done = adhoc("localhost", module, args, *extra)
    return {**results["localhost"], "_rc": done.returncode}
