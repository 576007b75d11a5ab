"""The wheel ships every package of src/memtune: setuptools' package list in pyproject.toml is explicit
(policies/ and schemas/ are mapped in as package data), so a new subpackage missing from it would build a
wheel that fails on import, caught only by the slow packaging tests."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_package_under_src_is_in_the_wheels_list() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    src = REPO / "src"
    found = {".".join(init.parent.relative_to(src).parts) for init in src.rglob("__init__.py")}
    assert found - listed == set()
    assert {"memtune.policies", "memtune.schemas"} <= listed
