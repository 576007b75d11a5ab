"""Shared test plumbing: where things are, and how to import the collection's remote code."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURE_HOSTS = REPO / "tests" / "fixtures" / "hosts"

# The remote code imports itself as ansible_collections.memtune.fleet...; `make collection` links it.
_link = REPO / "ansible_collections" / "memtune" / "fleet"
if not _link.exists():
    _link.parent.mkdir(parents=True, exist_ok=True)
    _link.symlink_to(Path("..") / "..")
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(REPO))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``fleet`` boot QEMU guests (minutes, root): they run only with MEMTUNE_FLEET_TESTS=1,
    which `make test-fleet` and `make test-lab-faults` set."""
    if os.environ.get("MEMTUNE_FLEET_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="boots QEMU guests: set MEMTUNE_FLEET_TESTS=1 (make test-fleet)")
    for item in items:
        if "fleet" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def fixture_hosts() -> Path:
    """Captured /proc, /sys and /etc trees of real hosts, one directory each."""
    return FIXTURE_HOSTS


@pytest.fixture(autouse=True)
def facts_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test starts with an empty facts cache of its own (the tune action's MEMTUNE_FACTS_CACHE), so
    what an earlier test left does not decide how many calls a later one makes."""
    directory = tmp_path_factory.mktemp("facts-cache")
    monkeypatch.setenv("MEMTUNE_FACTS_CACHE", str(directory))
    return directory
