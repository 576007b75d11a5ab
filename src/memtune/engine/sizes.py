"""Sizes as policies write them: ``2GiB``, ``512MiB``, ``64k``, or plain integers (bytes)."""

from __future__ import annotations

import re

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
    "tib": 1024**4,
}
# The largest size any knob or kernel interface takes: an unsigned 64-bit count of bytes.
MAX_BYTES = 2**64 - 1
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")
_PERCENT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*%\s*$")


def is_size(text: str) -> bool:
    """Whether ``text`` is a size with a unit that parse_size takes (within 64 bits, whole bytes)."""
    match = _SIZE.match(text)
    if not (match and match.group(2).lower() in _UNITS and match.group(2)):
        return False
    try:
        parse_size(text)
    except ValueError:
        return False
    return True


def parse_size(value: int | str) -> int:
    """Bytes for ``value``. Units are binary (``k``, ``KiB`` and ``kB`` all mean 1024), as the kernel's
    own ``kB`` in /proc/meminfo does."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size cannot be negative: {value}")
        if value > MAX_BYTES:
            raise ValueError(f"size {value} is beyond 64 bits")
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a size, got {value!r}")
    match = _SIZE.match(value)
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {value!r} (write e.g. 2GiB, 512MiB, 4096)")
    number = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if number > MAX_BYTES:
        raise ValueError(f"size {value.strip()[:40]!r} is beyond 64 bits")
    if number != int(number):
        raise ValueError(f"size {value!r} is not a whole number of bytes")
    return int(number)


def parse_percent(text: str) -> float | None:
    """``"25%"`` -> 25.0; anything else -> None."""
    match = _PERCENT.match(text)
    return float(match.group(1)) if match else None


def format_size(n_bytes: int) -> str:
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n_bytes >= factor and n_bytes % factor == 0:
            return f"{n_bytes // factor}{unit}"
    return str(n_bytes)
