# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's copy of each host's facts from its last contact, so that a tune plans without probing.

Where the facts come from, first found:
1. ``ansible_facts.memtune`` in the task's variables: Ansible's fact cache when one is configured (any
   ``fact_caching`` plugin), or a probe earlier in the same run;
2. memtune's own cache directory when Ansible's cache is the default ``memory`` one: one JSON file per
   host, written atomically (temporary file, fsync, rename), versioned by ``memtune_facts_cache``.

``facts_cache`` (task argument), ``memtune_facts_cache`` (variable) or ``MEMTUNE_FACTS_CACHE``
(environment) name the directory, ``off`` turns it off; the default is ``$XDG_CACHE_HOME/memtune/facts``
(``~/.cache/memtune/facts``). ``--flush-cache`` ignores the entries and writes them afresh.

A corrupt, foreign-version or unreadable entry is a warning naming the file; the host is probed instead.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

ENTRY_VERSION = 1
OFF = ("off", "false", "no", "none", "")
# Bigger than any host's facts (about 5 kB), small enough that a stray file is never read whole.
MAX_ENTRY_BYTES = 4 << 20


def default_directory() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "memtune" / "facts"


def choose_directory(argument: str | None, variable: Any, ansible_cache_plugin: str) -> Path | None:
    """memtune's own cache directory, or None (turned off, or Ansible's fact cache is the cache)."""
    for given in (argument, variable, os.environ.get("MEMTUNE_FACTS_CACHE")):
        if given is not None:
            return None if str(given).strip().lower() in OFF else Path(str(given)).expanduser()
    return default_directory() if ansible_cache_plugin == "memory" else None


class FactsCache:
    """One host's cached facts: ``load()`` -> the raw facts dict or None; ``store(facts)``."""

    def __init__(
        self,
        host: str,
        directory: Path | None,
        task_facts: Any,
        flush: bool,
        validate: Callable[[dict[str, Any], str], object],
    ) -> None:
        self.host, self.directory, self.flush, self.validate = host, directory, flush, validate
        self.task_facts = task_facts
        self.warnings: list[str] = []

    @property
    def path(self) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / (quote(self.host, safe="") + ".json")

    def load(self) -> tuple[dict[str, Any] | None, str]:
        """-> (raw facts, where they came from: "task variables", the entry's path, or "" for none)."""
        if self.flush:
            return None, ""
        if isinstance(self.task_facts, dict):
            facts = json.loads(json.dumps(self.task_facts))  # plain types, whatever Ansible wrapped them in
            if self._valid(facts, "ansible_facts.memtune of the task variables"):
                return facts, "task variables"
        path = self.path
        if path is None:
            return None, ""
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_ENTRY_BYTES + 1)
        except FileNotFoundError:
            return None, ""
        except OSError as exc:
            return self._ignore(path, f"cannot read it: {exc.strerror}")
        if len(data) > MAX_ENTRY_BYTES:
            return self._ignore(path, f"larger than {MAX_ENTRY_BYTES} bytes")
        try:
            entry = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            return self._ignore(path, f"not JSON ({exc})")
        if not isinstance(entry, dict) or entry.get("memtune_facts_cache") != ENTRY_VERSION:
            version = entry.get("memtune_facts_cache") if isinstance(entry, dict) else None
            reason = f"not a memtune facts cache entry of version {ENTRY_VERSION} ({version!r})"
            return self._ignore(path, reason)
        if entry.get("host") != self.host or not isinstance(entry.get("facts"), dict):
            return self._ignore(path, f"it holds {entry.get('host')!r}, not {self.host!r}")
        facts = entry["facts"]
        return (facts, str(path)) if self._valid(facts, str(path)) else (None, "")

    def _valid(self, facts: dict[str, Any], where: str) -> bool:
        try:
            self.validate(facts, where)
        except ValueError as exc:
            self.warnings.append(f"ignoring cached facts ({exc}); probing {self.host}")
            return False
        return True

    def _ignore(self, path: Path, reason: str) -> tuple[None, str]:
        self.warnings.append(f"ignoring the facts cache entry {path}: {reason}; probing {self.host}")
        return None, ""

    def store(self, facts: dict[str, Any]) -> None:
        """Write the entry atomically; a cache that cannot be written is a warning, never a failure."""
        path = self.path
        if path is None:
            return
        entry = {"memtune_facts_cache": ENTRY_VERSION, "host": self.host, "saved": time.time()}
        entry["facts"] = facts
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            handle, temp = tempfile.mkstemp(prefix=".memtune-", dir=path.parent)
            try:
                with os.fdopen(handle, "w") as stream:
                    json.dump(entry, stream, sort_keys=True)
                    stream.flush()
                    os.fsync(stream.fileno())
                os.replace(temp, path)
            except BaseException:
                if os.path.exists(temp):
                    os.unlink(temp)
                raise
        except OSError as exc:
            self.warnings.append(f"cannot write the facts cache entry {path}: {exc.strerror or exc}")
