"""What a knob kind is on the controller: one class per kind (engine/kinds/<kind>.py, one ``KIND`` each)
declares its sections of the policy rule, the facts and the desired state, and how it plans, judges drift,
records a baseline and reads a leftover. Central code (Rule, HostFacts, DesiredState, the Planner, drift,
baselines) only loops over the registry (``memtune.engine.kinds.KINDS``).

A kind module imports no model built from the registry at run time (policy.model, facts.model,
engine.desired, engine.layers, audit.drift): only their parts (engine.planned, audit.checks, policy.fields,
facts.parts), so that the registry can be built first.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from memtune.audit.checks import Check, Value
from memtune.engine.knobs import Merge
from memtune.engine.planned import Provenance
from memtune.policy.source import Path_

if TYPE_CHECKING:
    from pydantic import BaseModel

    from memtune.engine.layers import Planner
    from memtune.engine.rules import RuleContext
    from memtune.facts.model import HostFacts

P = TypeVar("P")  # the kind's section of a policy rule
S = TypeVar("S")  # what the Planner holds for the kind while it plans one host
D = TypeVar("D")  # the kind's section of the desired state

# A model field a kind adds: name -> (annotation, default or pydantic FieldInfo), as pydantic.create_model
# takes it.
Fields = dict[str, tuple[Any, Any]]


def read(model: BaseModel, name: str) -> object:
    """A section of a model built from the registry; each kind casts it to its own type."""
    return cast(object, getattr(model, name))


class RuleChecks(ABC):
    """What a kind's static checks of a rule (``memtune validate``, no facts) may use."""

    @abstractmethod
    def expression(self, value: Any, path: Path_) -> bool:
        """Check ``value`` as an expression; False when it is not one."""

    @abstractmethod
    def error(self, message: str, path: Path_) -> Exception:
        """A PolicyError of the rule, located at ``path`` below the rule."""


class KnobKind(ABC, Generic[P, S, D]):
    """One knob kind. ``name`` prefixes its check, ledger and merge names (``thp.enabled``); ``order`` places
    its sections among the others' (and its checks in drift)."""

    name: ClassVar[str]
    order: ClassVar[int]
    # The rule's section (the policy key) and the desired state's section.
    rule_key: ClassVar[str | None] = None
    desired_key: ClassVar[str]
    # Model fields: the rule's section(s), the facts' section(s), the desired state's section(s).
    rule_fields: ClassVar[Fields] = {}
    facts_fields: ClassVar[Fields] = {}
    desired_fields: ClassVar[Fields] = {}
    # The ``merge:`` keys of a rule this kind owns (a regular expression, one alternative of the schema's).
    merge_pattern: ClassVar[str | None] = None
    # The models of the rule's section (``memtune validate`` suggests their keys for an unknown one).
    rule_models: ClassVar[tuple[type[BaseModel], ...]] = ()

    # -- sections -----------------------------------------------------------------------------------------
    def rule_section(self, rule: BaseModel) -> P:
        assert self.rule_key is not None
        return cast(P, read(rule, self.rule_key))

    def desired_section(self, desired: BaseModel) -> D:
        return cast(D, read(desired, self.desired_key))

    def sets(self, section: P) -> bool:
        """Whether the rule's section sets anything."""
        return bool(section)

    # -- policy checks without facts ---------------------------------------------------------------------
    def merges(self, key: str) -> tuple[Merge, ...]:
        """The merges the catalog allows for ``merge:`` key ``key`` (empty: not this kind's knob)."""
        return ()

    def setting_values(self, section: P) -> Iterator[tuple[str, Any, Path_, Merge]]:
        """(merge key, value, path below the rule, catalog merge) of every value the section sets."""
        return iter(())

    def merge_keys(self, section: P) -> set[str]:
        """The ``merge:`` keys this section sets."""
        return {key for key, _value, _path, _merge in self.setting_values(section)}

    def checks(self, section: P, rule: RuleChecks) -> Iterator[Callable[[], None]]:
        """The section's checks that need no facts (each may raise a PolicyError)."""
        return iter(())

    def schema(self, defs: dict[str, Any], rule: dict[str, Any]) -> None:
        """Describe the kind in the policy JSON Schema (``$defs`` and the Rule's properties)."""

    # -- planning -----------------------------------------------------------------------------------------
    @abstractmethod
    def start(self) -> S:
        """What the Planner holds for this kind before the first rule."""

    def plan(self, planner: Planner, ctx: RuleContext, section: P, state: S) -> None:
        """Apply one rule's section (the rule matched)."""

    def finish(self, planner: Planner, state: S) -> dict[str, Any]:
        """The kind's desired-state sections after the last rule (after conflicts are raised)."""
        return {self.desired_key: state}

    # -- the desired state --------------------------------------------------------------------------------
    @abstractmethod
    def values(self, section: D) -> Iterator[tuple[str, Any, Provenance]]:
        """(knob name, value, provenance) of every planned value (``DesiredState.values``)."""

    @abstractmethod
    def items(self, section: D) -> Iterator[str]:
        """The names the host ledger gives the planned values (``planned_items``)."""

    # -- the host -----------------------------------------------------------------------------------------
    @abstractmethod
    def drift(self, section: D, facts: HostFacts, desired: BaseModel) -> Iterator[Check]:
        """One check per planned value (and NUMA node), runtime and boot."""

    def host_state(self, facts: HostFacts) -> Iterator[tuple[str, Value]]:
        """The values a baseline records, by knob name."""
        return iter(())

    def leftover(self, item: str, facts: HostFacts) -> tuple[bool, Any]:
        """(whether ledger item ``item`` is this kind's, the value it runs now)."""
        return False, None


AnyKind = KnobKind[Any, Any, Any]
