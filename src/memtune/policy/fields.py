"""The field types of policy files that the rule's core and the knob kinds' sections share."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StrictInt, StrictStr, WithJsonSchema

from memtune.engine.sizes import parse_size

SIZE_PATTERN = r"^\s*[0-9]+(\.[0-9]+)?\s*([KkMmGgTt]([Ii]?[Bb])?|[Bb])?\s*$"


def to_bytes(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return parse_size(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
    return value


def listify(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Size = Annotated[
    int,
    BeforeValidator(to_bytes),
    Field(ge=0),
    WithJsonSchema(
        {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": SIZE_PATTERN}]}
    ),
]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$", max_length=200)]
ONE_OR_MORE: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
Names = Annotated[list[Name], BeforeValidator(listify), WithJsonSchema(ONE_OR_MORE)]
# A knob value: an integer, a size or percentage string, a choice, or '{{ expression }}'.
Value = StrictInt | StrictStr


def one_of(keys: tuple[str, ...]) -> Any:
    """A pydantic discriminator: the one of ``keys`` an entry has (None when it has none or several)."""

    def kind(value: Any) -> str | None:
        present = [key for key in keys if (key in value if isinstance(value, dict) else hasattr(value, key))]
        return present[0] if len(present) == 1 else None

    return kind


def suggest(key: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
