"""Hostile-input test plumbing: facts of the captured hosts (probed in-process from their trees), saved as
the CLI reads them, and the CLI run in-process with its exit code and both streams."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import collect
from memtune.cli.main import app

CAPTURED = ("firecracker", "small", "numa2", "numa3")


def _cli(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(arg) for arg in args])


@pytest.fixture(scope="session")
def cli() -> Callable[..., Result]:
    """``cli("plan", "--facts", DIR)``: the memtune command in-process (exit code, stdout, stderr)."""
    return _cli


@pytest.fixture(scope="session")
def captured(fixture_hosts: Path) -> dict[str, dict[str, Any]]:
    """Each captured host's facts as the probe returns them (plain JSON data)."""
    return {name: collect(Tree(str(fixture_hosts / name))) for name in CAPTURED}


@pytest.fixture
def facts_dir(tmp_path: Path, captured: dict[str, dict[str, Any]]) -> Path:
    """A directory with one ``HOST.json`` per captured host (a fresh copy per test, to be spoiled)."""
    directory = tmp_path / "facts"
    directory.mkdir()
    for name, facts in captured.items():
        (directory / f"{name}.json").write_text(json.dumps(facts))
    return directory


@pytest.fixture
def policy_file(tmp_path: Path) -> Callable[[str], Path]:
    """Write a policy (dedented) to a file of its own and return the path."""
    count = iter(range(1000))

    def write(text: str) -> Path:
        path = tmp_path / f"policy{next(count)}.yml"
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def knob_policy(policy_file: Callable[[str], Path]) -> Callable[[str], Path]:
    """A one-rule baseline policy file setting vm.swappiness to the given (double-quoted) YAML value; the
    value is on line 6, column 7."""
    return lambda value: policy_file(
        f'layer: baseline\nname: b\nrules:\n  - name: r\n    sysctl:\n      vm.swappiness: "{value}"\n'
    )
