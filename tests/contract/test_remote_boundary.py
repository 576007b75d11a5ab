"""Remote code (plugins/modules, plugins/module_utils) runs on target hosts with Python >= 3.8 and the
standard library only: it may import nothing else but Ansible's module_utils and our own."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REMOTE = sorted((REPO / "plugins" / "modules").glob("*.py")) + sorted(
    (REPO / "plugins" / "module_utils").glob("*.py")
)
ALLOWED_PREFIXES = ("ansible.module_utils", "ansible_collections.memtune.fleet.plugins.module_utils")


def imported_modules(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_there_is_remote_code() -> None:
    assert any(path.name == "memory_facts.py" for path in REMOTE)


@pytest.mark.parametrize("path", REMOTE, ids=lambda path: path.name)
def test_stdlib_and_module_utils_only(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path), feature_version=(3, 8))
    foreign = [
        name
        for name in imported_modules(tree)
        if name.split(".")[0] not in sys.stdlib_module_names and not name.startswith(ALLOWED_PREFIXES)
    ]
    assert foreign == [], f"{path.relative_to(REPO)} imports {foreign}"
