"""A policy rule in its layer, as the planner applies it: provenance and errors located in its file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from memtune.engine.planned import Planned, Provenance, replacing
from memtune.errors import PolicyError
from memtune.policy.model import Policy, Rule
from memtune.policy.source import Path_

if TYPE_CHECKING:
    from memtune.engine.kinds.base import AnyKind

__all__ = ["RuleContext", "replacing", "rules_of"]


class RuleContext:
    """A rule in its layer: where it is, for provenance and error messages. Built once per policy and
    layer; the provenance of literal values is shared by every host planned with it."""

    def __init__(self, layer: str, policy: Policy, index: int, rule: Rule) -> None:
        self.layer, self.policy, self.rule, self.at = layer, policy, rule, ("rules", index)
        self.file = policy.file
        self._base: dict[Path_, Provenance] = {}
        self._planned: dict[tuple[Path_, int | str], Planned] = {}
        # The knob kinds this rule sets and its section of each (the Planner fills it on first use).
        self.sections: list[tuple[AnyKind, Any]] | None = None

    def provenance(
        self, path: Path_, expression: str | None = None, inputs: Mapping[str, Any] | None = None
    ) -> Provenance:
        base = self._base.get(path)
        if base is None:
            line, _column = self.policy.mark((*self.at, *path))
            base = _provenance(self.file, line, self.rule, self.layer, expression=None, inputs={})
            self._base[path] = base
        if expression is None and not inputs:
            return base
        return _provenance(
            self.file, base.line, self.rule, self.layer, expression=expression, inputs=dict(inputs or {})
        )

    def planned(self, path: Path_, value: int | str, provenance: Provenance) -> Planned:
        """A Planned value; the ones with this rule's literal provenance are shared between hosts."""
        if provenance is not self._base.get(path):
            return Planned.model_construct(value=value, provenance=provenance)
        key = (path, value)
        found = self._planned.get(key)
        if found is None:
            found = self._planned[key] = Planned.model_construct(value=value, provenance=provenance)
        return found

    def error(self, message: str, path: Path_ = ()) -> PolicyError:
        return self.policy.error(f"rule {self.rule.name!r}: {message}", (*self.at, *path))


def _provenance(
    file: str, line: int | None, rule: Rule, layer: str, *, expression: str | None, inputs: dict[str, Any]
) -> Provenance:
    return Provenance.model_construct(
        file=file,
        line=line,
        rule=rule.name,
        layer=layer,
        source=rule.source,
        expression=expression,
        inputs=inputs,
        overrides=[],
        value=None,
    )


def rules_of(policy: Policy, layer: str) -> list[RuleContext]:
    """The policy's rules for ``layer``, memoized on the policy (it is immutable)."""
    memo = policy.memo
    if layer not in memo:
        memo[layer] = [RuleContext(layer, policy, index, rule) for index, rule in enumerate(policy.rules)]
    rules: list[RuleContext] = memo[layer]
    return rules
