"""Saved facts files (a module result, a bare facts dict or an Ansible fact-cache entry), read within
bounds."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from memtune.facts.model import FactsError, HostFacts, parse_facts

# ansible-core 2.19's fact cache names each host's entry s<schema>_<host> and wraps it in
# {"__payload__": "<the facts as JSON text>"}.
_CACHE_KEY = re.compile(r"s\d+_(?P<host>.+)")
_CACHE_PAYLOAD = "__payload__"


def _host_name(file: Path) -> str:
    if file.suffix == ".json":
        return file.stem
    cached = _CACHE_KEY.fullmatch(file.name)
    return cached["host"] if cached else file.name


# A host's facts are tens of kilobytes; a file far bigger than any probe writes is refused unread.
MAX_FACTS_BYTES = 16 * 1024 * 1024
# Where a host's facts come from: its file, or why none can be used (a collision, a dangling link ...).
FactsSource = Path | FactsError


def facts_files(path: Path) -> dict[str, FactsSource]:
    """Host name -> facts file: ``NAME.json`` files, or the files of an Ansible jsonfile fact cache (named
    after the host, dots and all; ansible-core 2.19 and later put ``s<N>_`` before the name). Hidden files
    are ignored. An entry that cannot be a host's facts (not a regular file, a dangling link, a second file
    for the same host) maps that host to its error, so the other hosts are still planned."""
    if path.is_file():
        return {_host_name(path): path}
    if not path.is_dir():
        if not os.path.lexists(path):
            raise FactsError(f"{path}: no such file or directory")
        return {_host_name(path): _unusable(path)}
    found: dict[str, FactsSource] = {}
    seen: dict[str, Path] = {}
    for file in sorted(path.iterdir(), key=lambda item: item.name):
        if file.name.startswith(".") or file.is_dir():
            continue
        host = _host_name(file)
        if host in seen:
            found[host] = FactsError(f"{seen[host]} and {file}: two facts files for host {host!r}")
            continue
        seen[host] = file
        found[host] = file if file.is_file() else _unusable(file)
    if not found:
        raise FactsError(f"{path}: no facts files (*.json or a jsonfile fact cache)")
    return found


def _unusable(file: Path) -> FactsError:
    """Why ``file``, which exists as a name but is not a regular file or directory, holds no facts."""
    try:
        mode = file.stat().st_mode
    except FileNotFoundError:
        if not os.path.islink(file):  # gone since it was listed
            return FactsError(f"{file}: no such file or directory")
        return FactsError(f"{file}: a symbolic link to {os.readlink(file)!r}, which does not exist")
    except OSError as exc:
        return FactsError(f"{file}: cannot read: {exc.strerror}")
    return FactsError(f"{file}: not a regular file ({_KINDS.get(stat.S_IFMT(mode), 'special file')})")


_KINDS = {
    stat.S_IFIFO: "a named pipe",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def read_facts_bytes(file: Path) -> bytes:
    """The bytes of a facts file, which must be a regular file of at most MAX_FACTS_BYTES. Opened without
    blocking, so a named pipe or a device given as facts is refused, never waited on."""
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ENOENT and os.path.islink(file):
            raise _unusable(file) from None
        raise FactsError(f"{file}: cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "special file")
            raise FactsError(f"{file}: not a regular file ({kind})")
        if info.st_size > MAX_FACTS_BYTES:
            raise FactsError(f"{file}: {info.st_size} bytes, more than facts can be ({MAX_FACTS_BYTES})")
        try:
            raw = handle.read(MAX_FACTS_BYTES + 1)
        except OSError as exc:
            raise FactsError(f"{file}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_FACTS_BYTES:
        raise FactsError(f"{file}: more than {MAX_FACTS_BYTES} bytes, more than facts can be")
    return raw


def _json(raw: bytes | str, where: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise FactsError(f"{where}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from None
    except UnicodeDecodeError:
        raise FactsError(f"{where}: not UTF-8 JSON") from None
    except RecursionError:
        raise FactsError(f"{where}: JSON nested too deeply to be facts") from None


def load_host_facts(file: FactsSource) -> HostFacts:
    """One host's facts from a saved file, within bounds: a bare facts dict, a module result or an Ansible
    fact-cache entry (the jsonfile plugin's, also ansible-core 2.19's ``__payload__`` wrapping). The one
    loader of facts files; ``parse_facts`` validates a dict already in memory."""
    if isinstance(file, FactsError):
        raise file
    raw = read_facts_bytes(file)
    try:  # the common case, bare facts, in one pass; anything else gets parse_facts' checks and messages
        return HostFacts.model_validate_json(raw)
    except ValidationError:
        pass
    data = _json(raw, str(file))
    if isinstance(data, dict) and isinstance(data.get(_CACHE_PAYLOAD), str):
        data = _json(data[_CACHE_PAYLOAD], f"{file}: {_CACHE_PAYLOAD}")
    return parse_facts(data, str(file))
