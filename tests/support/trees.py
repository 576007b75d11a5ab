"""Facts of a captured host with sysctl files written into a copy of its tree: the probe itself says which
file wins at boot (plugins/module_utils/_boot/sysctl_files.py), so tests never hand-build that answer."""

from __future__ import annotations

import shutil
import tempfile
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import MANAGED_SYSCTLS, collect

HOSTS = Path(__file__).resolve().parents[1] / "fixtures" / "hosts"

Entry = tuple[str, int, str]  # (path, line, value)


def captured(host: str) -> Any:
    """The probe's facts of captured ``host``, read in place."""
    return collect(Tree(str(HOSTS / host)))


def sysctl_files(sources: dict[str, list[Entry]]) -> dict[str, str]:
    """{key: [(path, line, value)]} -> {path: text} with ``key = value`` on each given line."""
    lines: dict[str, dict[int, str]] = defaultdict(dict)
    for key, entries in sources.items():
        for path, line, value in entries:
            lines[path][line] = f"{key} = {value}"
    return {
        path: "".join(f"{by_line.get(n, '# filler')}\n" for n in range(1, max(by_line) + 1))
        for path, by_line in lines.items()
    }


def collect_with(
    host: str,
    files: Mapping[str, str | bytes] | None = None,
    links: dict[str, str] | None = None,
    keys: tuple[str, ...] = (),
) -> Any:
    """The probe's facts of captured ``host`` with ``files`` ({path: text or bytes}) and symbolic ``links``
    ({path: target}) added to a temporary copy of its tree; ``keys`` are probed besides memtune's."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / host
        shutil.copytree(HOSTS / host, root, symlinks=True)
        for path, text in (files or {}).items():
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink():
                target.unlink()
            if isinstance(text, bytes):
                target.write_bytes(text)
            else:
                target.write_text(text)
        for path, link_target in (links or {}).items():
            link = root / path.lstrip("/")
            link.parent.mkdir(parents=True, exist_ok=True)
            link.unlink(missing_ok=True)
            link.symlink_to(link_target)
        return collect(Tree(str(root)), sysctl_keys=(*MANAGED_SYSCTLS, *keys))
