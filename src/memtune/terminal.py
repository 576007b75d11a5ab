"""Text from hosts and files shown on a terminal: control characters (escape sequences, carriage returns,
backspaces) written out as ``\\x1b``-style escapes, so a host name cannot move the cursor, recolour the
screen or hide a row."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with every C0 and C1 control character and DEL replaced by its ``\\xNN`` escape."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match[0]):02x}", text)
