"""Policy files as pydantic models (their JSON Schema is the published format), and sets of policies.
Loading and the checks that need no host facts are in ``memtune.policy.load``."""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    create_model,
    model_validator,
)

from memtune.engine.kinds import KINDS
from memtune.engine.kinds.cgroup import Cgroup, CgroupPath, CgroupUnit
from memtune.engine.kinds.hugepages import HugepagePool, PoolCount, PoolFraction, PoolTotal, pool_amount
from memtune.engine.knobs import MERGE_TEXT, Merge
from memtune.errors import PolicyError
from memtune.model import Model
from memtune.policy.fields import ONE_OR_MORE, Name, Names, Size, Value, listify
from memtune.policy.source import Marks, Path_

__all__ = [
    "LAYERS",
    "MAX_EXTENDS",
    "MERGE_TEXT",
    "Cgroup",
    "CgroupPath",
    "CgroupUnit",
    "CountRange",
    "Guards",
    "HugepagePool",
    "InputSpec",
    "Layer",
    "Policy",
    "PolicySet",
    "PoolCount",
    "PoolFraction",
    "PoolTotal",
    "Rule",
    "SizeRange",
    "Value",
    "When",
    "bundled_policy_dir",
    "policy_json_schema",
    "pool_amount",
]

Layer = Literal["baseline", "workload", "group", "host"]
LAYERS: tuple[Layer, ...] = ("baseline", "workload", "group", "host")
# How many workload policies one can build on through ``extends`` (a chain, not a count of parents).
MAX_EXTENDS = 32
_VERSION_CMP = re.compile(r"^\s*(==|!=|>=|<=|>|<)\s*([0-9]+(\.[0-9]+){0,2})\s*$")


def _version_condition(value: Any) -> Any:
    if isinstance(value, str) and (value.strip() == "unknown" or _VERSION_CMP.match(value)):
        return value.strip()
    raise ValueError(f"not a version comparison: {value!r} (write e.g. '>=5.8', '<8.0' or 'unknown')")


_VERSION_CONDITION_PATTERN = r"^(unknown|(==|!=|>=|<=|>|<)\s*[0-9.]+)$"
VersionCondition = Annotated[
    str,
    BeforeValidator(_version_condition),
    WithJsonSchema({"type": "string", "pattern": _VERSION_CONDITION_PATTERN}),
]


class SizeRange(Model):
    min: Size | None = None
    max: Size | None = None


class CountRange(Model):
    min: Annotated[int, Field(ge=0)] | None = None
    max: Annotated[int, Field(ge=0)] | None = None


class When(Model):
    """All given conditions must hold. Lists mean 'any of'."""

    workload: Names | None = None
    ram: SizeRange | None = None
    numa_nodes: CountRange | None = None
    kernel: (
        Annotated[list[VersionCondition], BeforeValidator(listify), WithJsonSchema(ONE_OR_MORE)] | None
    ) = None
    virtualization: Names | None = None
    inputs: Names | None = None
    workload_version: dict[Name, VersionCondition] | None = None
    expr: StrictStr | None = None


SourceKind = Literal["vendor", "memtune"]
# What ``merge:`` may name: each kind's merge keys (sysctl keys, thp.enabled, hugepages for every pool of
# the rule, ...).
_MERGE_KEY = "|".join(kind.merge_pattern for kind in KINDS if kind.merge_pattern)
MergeKey = Annotated[str, Field(pattern=rf"^({_MERGE_KEY})$")]
# The rule keys of the kinds' sections.
_SECTIONS = [kind.rule_key for kind in KINDS if kind.rule_key]


class RuleBase(Model):
    """A rule's fields but the kinds' sections and ``warn`` (see ``Rule``)."""

    name: Name
    source: StrictStr | None = Field(None, description="Where the values come from: URL, document, profile")
    source_kind: SourceKind = Field(
        "vendor",
        description="vendor: the value is the cited source's own (the software's, the kernel's or a vendor "
        "profile's); memtune: memtune's reasoning, written out in `rationale`",
    )
    rationale: StrictStr | None = Field(
        None, description="Why memtune chose the value (source_kind: memtune)"
    )
    merge: dict[MergeKey, Merge] = Field(
        {},
        description="How this rule's values combine with another workload policy's: only a merge the knob "
        "allows (memtune schema --knobs lists them)",
    )
    owner: Name | None = Field(
        None,
        description="A program that sets these knobs itself (e.g. kubelet): no other workload policy may "
        "change them",
    )
    when: When | None = None
    required: StrictBool = Field(False, description="Fail instead of skipping a knob this host lacks")

    if TYPE_CHECKING:
        warn: str | None

    @model_validator(mode="after")
    def _sets_something(self) -> RuleBase:
        if not (self.warn or any(kind.sets(kind.rule_section(self)) for kind in KINDS if kind.rule_key)):
            raise ValueError(f"rule {self.name!r} sets nothing: give {', '.join(_SECTIONS)} or warn")
        return self

    @model_validator(mode="after")
    def _explains_itself(self) -> RuleBase:
        if self.source_kind == "memtune" and not self.rationale:
            raise ValueError(f"rule {self.name!r}: source_kind memtune needs a rationale")
        return self


if TYPE_CHECKING:
    Rule = RuleBase
else:
    Rule = create_model(
        "Rule",
        __base__=RuleBase,
        __module__=__name__,
        **{name: field for kind in KINDS for name, field in kind.rule_fields.items()},
        warn=(StrictStr | None, Field(None, description="A warning to report when the rule applies")),
    )


class InputSpec(Model):
    type: Literal["int", "size", "str", "bool", "version"]
    default: StrictInt | StrictStr | StrictBool | None = None
    description: str = ""


class Guards(Model):
    min_free_kbytes_max_percent: Annotated[float, Field(gt=0, le=50)] = 5.0
    hugepages_min_node_free_percent: Annotated[float, Field(ge=0, lt=100)] = 10.0


class Policy(Model):
    """One policy file (or inline dict): a layer of rules."""

    layer: Layer
    name: Name
    description: str = ""
    extends: Names = []
    inputs: dict[Name, InputSpec] = {}
    guards: Guards | None = None
    rules: list[Rule] = []
    _file: str = PrivateAttr(default="<policy>")
    _marks: Marks | None = PrivateAttr(default=None)
    _memo: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    def file(self) -> str:
        return self._file

    @property
    def memo(self) -> dict[str, Any]:
        """Scratch space for work derived from this (immutable) policy, such as the planner's rule table."""
        return self._memo

    def mark(self, path: Path_) -> tuple[int | None, int | None]:
        return self._marks.at(path) if self._marks else (None, None)

    def error(self, message: str, path: Path_) -> PolicyError:
        line, column = self.mark(path)
        return PolicyError(message, self._file, line, column)


def policy_json_schema() -> dict[str, Any]:
    """The policy format, with every knob of the catalog: its unit, kernel range and merge rule."""
    schema = Policy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "memtune policy"
    for kind in KINDS:
        kind.schema(schema["$defs"], schema["$defs"]["Rule"]["properties"])
    return schema


# -- sets of policies ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicySet:
    """The policies available to plan with: at most one baseline, and workload, group and host policies
    by name."""

    baseline: Policy | None = None
    workloads: Mapping[str, Policy] = field(default_factory=dict)
    groups: Mapping[str, Policy] = field(default_factory=dict)
    hosts: Mapping[str, Policy] = field(default_factory=dict)

    @classmethod
    def of(cls, policies: Iterable[Policy]) -> PolicySet:
        baseline: Policy | None = None
        by_layer: dict[str, dict[str, Policy]] = {"workload": {}, "group": {}, "host": {}}
        for policy in policies:
            if policy.layer == "baseline":
                if baseline is not None:
                    raise _duplicate(policy, baseline, "a second baseline policy")
                baseline = policy
                continue
            table = by_layer[policy.layer]
            if policy.name in table:
                what = f"duplicate {policy.layer} policy {policy.name!r}"
                raise _duplicate(policy, table[policy.name], what)
            table[policy.name] = policy
        result = cls(baseline, by_layer["workload"], by_layer["group"], by_layer["host"])
        for name in result.workloads:
            result.workload_chain(name)
        return result

    def workload_chain(self, name: str) -> list[Policy]:
        """The workload policy and those it extends, the extended ones first."""
        order: list[Policy] = []

        def visit(current: str, trail: tuple[str, ...], by: Policy | None) -> None:
            if len(trail) >= MAX_EXTENDS:
                assert by is not None
                raise by.error(
                    f"extends chain deeper than {MAX_EXTENDS} policies: {' -> '.join(trail[:3])} -> ... "
                    f"-> {current}",
                    ("extends",),
                )
            if current in trail:
                cycle = " -> ".join((*trail[trail.index(current) :], current))
                policy = self.workloads[current]
                raise policy.error(f"circular extends: {cycle}", ("extends",))
            found = self.workloads.get(current)
            if found is None:
                assert by is not None
                raise by.error(f"extends unknown workload policy {current!r}", ("extends",))
            for parent in found.extends:
                visit(parent, (*trail, current), found)
            if found not in order:
                order.append(found)

        visit(name, (), None)
        return order


def _duplicate(policy: Policy, first: Policy, what: str) -> PolicyError:
    line, _column = first.mark(("name",))
    return policy.error(f"{what} (first in {first.file}{f':{line}' if line else ''})", ("name",))


def bundled_policy_dir() -> Path:
    """The bundled policies: the package data ``memtune/policies`` of an installed wheel, else ``policies/``
    beside ``src/memtune`` (a checkout, or the copy the collection ships); relative to the working
    directory when below it, so provenance reads ``policies/baseline.yml``."""
    packaged = Path(str(importlib.resources.files("memtune") / "policies")).resolve()
    path = packaged if packaged.is_dir() else Path(__file__).resolve().parents[3] / "policies"
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path
