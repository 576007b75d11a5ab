"""Run one of the collection's modules the way Ansible runs it, on a tree below ``root`` (the modules'
``root`` hook): a fresh interpreter, its arguments in a JSON file, its result read from standard output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def run_on_tree(
    module: str, root: Path, args: dict[str, Any], timeout: int = 60
) -> tuple[dict[str, Any], str]:
    """plugins/modules/``module``.py with ``args`` and ``root``, its arguments file beside the tree: its JSON
    result and its standard error. A module that prints nothing fails the test with its standard error; one
    that outlives ``timeout`` seconds raises TimeoutExpired (a hang is a failure)."""
    args_file = root.parent / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, root=str(root))}))
    done = subprocess.run(
        [sys.executable, str(REPO / "plugins" / "modules" / f"{module}.py"), str(args_file)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=timeout,
    )
    assert done.stdout, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result, done.stderr
