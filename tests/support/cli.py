"""The `memtune` command black-box through typer's CliRunner, on facts of the captured hosts (the offline CLI
tests and the HTML report's browser tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import collect
from memtune.cli.main import app

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "policies"
CAPTURED = ("firecracker", "small", "numa2", "numa3")
REPORT_SCHEMA = jsonschema.Draft202012Validator(
    json.loads((REPO / "schemas" / "report.schema.json").read_text())
)


def run(*args: str | Path) -> Any:
    return CliRunner().invoke(app, [str(arg) for arg in args])


def write_vars(path: Path, variables: dict[str, dict[str, Any]]) -> Path:
    """An inventory variables file at ``path``: {host: {variable: value}}, as `--vars` reads it."""
    path.write_text(yaml.safe_dump(variables, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def facts_dir(tmp_path_factory: pytest.TempPathFactory, fixture_hosts: Path) -> Path:
    """One facts JSON per captured host, as `memory_facts` returns them (wrapped in ansible_facts)."""
    directory = tmp_path_factory.mktemp("facts")
    for name in CAPTURED:
        facts = collect(Tree(str(fixture_hosts / name)))
        (directory / f"{name}.json").write_text(json.dumps({"ansible_facts": {"memtune": facts}}))
    return directory
