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


def test_no_module_is_shadowed_by_a_name_in_its_package() -> None:
    """Issue 12: ``import memtune.plan`` gave the function ``plan``, not the module, because memtune's
    ``__init__`` exported a function named like its submodule; every module is its package's attribute."""
    import importlib
    import pkgutil

    import memtune

    for info in pkgutil.walk_packages(memtune.__path__, "memtune."):
        module = importlib.import_module(info.name)
        parent, _, leaf = info.name.rpartition(".")
        assert getattr(importlib.import_module(parent), leaf) is module, info.name
