"""The engine's errors for bad policy input: ``PolicyError``, a problem with a policy, its inputs or a plan,
located in a file, and ``PolicyErrors``, several of them at once. (Facts that cannot be used are
``memtune.facts.model.FactsError``.)"""

from __future__ import annotations


class PolicyError(ValueError):
    """Invalid input for the engine. ``str()`` gives ``file:line:column: message`` (as far as known)."""

    def __init__(
        self, message: str, file: str | None = None, line: int | None = None, column: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column

    @property
    def location(self) -> str:
        parts = [self.file or "<policy>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class PolicyErrors(PolicyError):
    """Several problems found in one run (``memtune validate`` reports them all); ``str()`` gives one
    ``file:line:column: message`` per line. Raised only with two or more errors."""

    def __init__(self, errors: list[PolicyError]) -> None:
        first = errors[0]
        super().__init__(first.message, first.file, first.line, first.column)
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


def raise_all(errors: list[PolicyError]) -> None:
    """Raise the one error, or all of them as PolicyErrors; nothing when there are none."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise PolicyErrors([part for error in errors for part in getattr(error, "errors", [error])])
