"""How every report, ``memtune explain`` and ``memtune diff`` write a value and where it comes from: one
place, so that a knob's value reads the same in a table, a Markdown comment, a JUnit failure and the CLI."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from rich.console import Console
from rich.text import Text

from memtune.engine.desired import Provenance
from memtune.terminal import printable

NONE = "-"


def value_text(value: Any, empty: str = "") -> str:
    """A value as people read it: ``-`` for none, dicts as ``k=v`` pairs (``empty`` for an empty one)."""
    if value is None:
        return NONE
    if isinstance(value, dict):
        return ", ".join(f"{key}={item}" for key, item in value.items()) or empty
    return str(value)


def format_value(value: Any) -> str:
    """A planned value (never none): as ``value_text``, an empty dict as ``{}``."""
    return value_text(value, empty="{}")


def origin(provenance: Provenance) -> str:
    """``policies/baseline.yml:12 rule `watermarks`: clamp(percent_of_ram(1), ...)``"""
    text = f"{provenance.at()} rule `{provenance.rule}`"
    return f"{text}: {provenance.expression}" if provenance.expression else text


def rule_origin(provenance: Provenance | None) -> str | None:
    """``policies/baseline.yml:12 rule watermarks (baseline)``: the file, rule and layer, no expression."""
    if provenance is None:
        return None
    return f"{provenance.at()} rule {provenance.rule} ({provenance.layer})"


def markdown_cell(value: object) -> str:
    """A value in a Markdown table cell: on one line, its ``|`` escaped."""
    return value_text(value).replace("|", "\\|").replace("\n", " ")


def text_cells(cells: Iterable[str]) -> list[Text]:
    """Cells for a rich table, printable (no terminal control characters) and never read as markup."""
    return [Text(printable(cell)) for cell in cells]


def console_text(draw: Callable[[Console], None]) -> str:
    """What ``draw`` prints on a 200-column console without colour, as text."""
    out = io.StringIO()
    draw(Console(file=out, highlight=False, soft_wrap=False, width=200, color_system=None))
    return out.getvalue()
