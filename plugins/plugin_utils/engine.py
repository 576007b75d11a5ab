# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the controller-side plugins find the memtune engine: the copy of ``src/memtune`` this collection
ships (the same release as the plugins, by construction), else a ``memtune`` package installed in the Python
that runs ansible-playbook. The engine's own requirements (pydantic, jinja2, PyYAML, rich) are the
collection's ``requirements.txt`` (docs/architecture.md, "Where the controller engine lives")."""

from __future__ import annotations

import sys
from pathlib import Path

COLLECTION_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_ENGINE = COLLECTION_ROOT / "src"
REQUIREMENTS = COLLECTION_ROOT / "requirements.txt"


def use_shipped_engine() -> None:
    """Put the collection's copy of the engine first on the import path (once)."""
    if (SHIPPED_ENGINE / "memtune" / "__init__.py").is_file() and str(SHIPPED_ENGINE) not in sys.path:
        sys.path.insert(0, str(SHIPPED_ENGINE))


def missing_engine(action: str, error: ImportError) -> str:
    """What to do when the engine cannot be imported: install the collection's declared requirements."""
    return (
        f"the {action} action runs the memtune engine on the controller, which needs the Python packages "
        f"in {REQUIREMENTS} ({error}): install them in the Python that runs ansible-playbook "
        f"({sys.executable} -m pip install -r {REQUIREMENTS}), or use the memtune.fleet execution environment"
    )
