"""Engine test plumbing: facts of real hosts (captured trees, probed in-process) and policy helpers."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import collect
from memtune.facts.model import HostFacts, parse_facts
from memtune.policy.load import load_policy_file, load_policy_set
from memtune.policy.model import Policy, PolicySet

REPO = Path(__file__).resolve().parents[2]
HOSTS = ("firecracker", "small", "numa2", "numa3")


@pytest.fixture(scope="session")
def hosts(fixture_hosts: Path) -> dict[str, HostFacts]:
    """Facts of each captured host, as the probe reads them from its tree."""
    found = {}
    for name in HOSTS:
        root = fixture_hosts / name
        if not root.is_dir():
            pytest.fail(f"fixture tree {root} is missing")
        found[name] = parse_facts(collect(Tree(str(root))), name)
    return found


@pytest.fixture(scope="session")
def bundled() -> PolicySet:
    return load_policy_set([REPO / "policies"])


@pytest.fixture
def write_policy(tmp_path: Path) -> Callable[..., Policy]:
    """Write a policy file (dedented) and load it; ``name`` picks the file name."""

    def write(text: str, name: str = "policy.yml") -> Policy:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return load_policy_file(path)

    return write
