"""Policy files as pydantic models (their JSON Schema is the published format), and sets of policies.
Loading and the checks that need no host facts are in ``memtune.policy.load``."""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    JsonValue,
    PrivateAttr,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    WithJsonSchema,
    model_validator,
)

from memtune.engine.knobs import (
    CGROUP_LIMITS,
    HUGEPAGE_MERGES,
    HUGEPAGE_SIZES_KB,
    SYSCTLS,
    THP_FILES,
    THP_MERGE,
    Merge,
)
from memtune.engine.sizes import parse_size
from memtune.errors import PolicyError
from memtune.model import Model
from memtune.policy.source import Marks, Path_

Layer = Literal["baseline", "workload", "group", "host"]
LAYERS: tuple[Layer, ...] = ("baseline", "workload", "group", "host")
_SIZE_PATTERN = r"^\s*[0-9]+(\.[0-9]+)?\s*([KkMmGgTt]([Ii]?[Bb])?|[Bb])?\s*$"
# How many workload policies one can build on through ``extends`` (a chain, not a count of parents).
MAX_EXTENDS = 32
_VERSION_CMP = re.compile(r"^\s*(==|!=|>=|<=|>|<)\s*([0-9]+(\.[0-9]+){0,2})\s*$")


def _to_bytes(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return parse_size(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
    return value


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _hugepage_size(value: Any) -> Any:
    n_bytes = _to_bytes(value)
    if isinstance(n_bytes, int) and n_bytes // 1024 in HUGEPAGE_SIZES_KB and n_bytes % 1024 == 0:
        return n_bytes // 1024
    raise ValueError("hugepage size must be 2MiB or 1GiB")


def _version_condition(value: Any) -> Any:
    if isinstance(value, str) and (value.strip() == "unknown" or _VERSION_CMP.match(value)):
        return value.strip()
    raise ValueError(f"not a version comparison: {value!r} (write e.g. '>=5.8', '<8.0' or 'unknown')")


Size = Annotated[
    int,
    BeforeValidator(_to_bytes),
    Field(ge=0),
    WithJsonSchema(
        {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": _SIZE_PATTERN}]}
    ),
]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$", max_length=200)]
_ONE_OR_MORE: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
Names = Annotated[list[Name], BeforeValidator(_listify), WithJsonSchema(_ONE_OR_MORE)]
_VERSION_CONDITION_PATTERN = r"^(unknown|(==|!=|>=|<=|>|<)\s*[0-9.]+)$"
VersionCondition = Annotated[
    str,
    BeforeValidator(_version_condition),
    WithJsonSchema({"type": "string", "pattern": _VERSION_CONDITION_PATTERN}),
]
# A knob value: an integer, a size or percentage string, a choice, or '{{ expression }}'.
Value = StrictInt | StrictStr


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
        Annotated[list[VersionCondition], BeforeValidator(_listify), WithJsonSchema(_ONE_OR_MORE)] | None
    ) = None
    virtualization: Names | None = None
    inputs: Names | None = None
    workload_version: dict[Name, VersionCondition] | None = None
    expr: StrictStr | None = None


class Thp(Model):
    enabled: Literal["always", "madvise", "never"] | None = None
    defrag: Literal["always", "defer", "defer+madvise", "madvise", "never"] | None = None
    shmem_enabled: Literal["always", "within_size", "advise", "never", "deny", "force"] | None = Field(
        None, description="THP for tmpfs and shared memory (shmem_enabled, since 4.8)"
    )
    khugepaged_defrag: Annotated[StrictInt, Field(ge=0, le=1)] | None = Field(
        None, description="khugepaged/defrag: 1 lets khugepaged compact memory to collapse pages"
    )
    khugepaged_max_ptes_none: Annotated[StrictInt, Field(ge=0, le=511)] | None = Field(
        None, description="khugepaged/max_ptes_none: unmapped pages khugepaged may fill when collapsing"
    )

    def settings(self) -> dict[str, int | str]:
        return {key: value for key in THP_FILES if (value := getattr(self, key)) is not None}


class _Pool(Model):
    size: Annotated[
        int, BeforeValidator(_hugepage_size), WithJsonSchema({"type": "string", "enum": ["2MiB", "1GiB"]})
    ]
    placement: Literal["spread", "per_node"] = "spread"
    nodes: list[Annotated[int, Field(ge=0)]] | None = None
    boot: StrictBool = False
    required: StrictBool = False


class PoolCount(_Pool):
    count: Value


class PoolTotal(_Pool):
    total: Value


class PoolFraction(_Pool):
    fraction: Annotated[float, Field(gt=0, lt=1)] | StrictStr


def _one_of(keys: tuple[str, ...]) -> Any:
    def kind(value: Any) -> str | None:
        present = [key for key in keys if (key in value if isinstance(value, dict) else hasattr(value, key))]
        return present[0] if len(present) == 1 else None

    return kind


def pool_amount(pool: PoolCount | PoolTotal | PoolFraction) -> tuple[str, Any]:
    """-> ("count" | "total" | "fraction", the value as written)."""
    if isinstance(pool, PoolCount):
        return "count", pool.count
    if isinstance(pool, PoolTotal):
        return "total", pool.total
    return "fraction", pool.fraction


HugepagePool = Annotated[
    Annotated[PoolCount, Tag("count")]
    | Annotated[PoolTotal, Tag("total")]
    | Annotated[PoolFraction, Tag("fraction")],
    Discriminator(
        _one_of(("count", "total", "fraction")),
        custom_error_type="pool_amount",
        custom_error_message="a hugepage pool needs exactly one of count, total or fraction",
    ),
]


class _Cgroup(Model):
    force: StrictBool = False
    MemoryMin: Value | None = None
    MemoryLow: Value | None = None
    MemoryHigh: Value | None = None
    MemoryMax: Value | None = None
    MemorySwapMax: Value | None = None

    @model_validator(mode="after")
    def _has_limits(self) -> _Cgroup:
        if not self.limits():
            raise ValueError(f"set at least one of {', '.join(CGROUP_LIMITS)}")
        return self

    def limits(self) -> dict[str, int | str]:
        return {name: value for name in CGROUP_LIMITS if (value := getattr(self, name)) is not None}


class CgroupUnit(_Cgroup):
    unit: Annotated[str, Field(pattern=r"^[A-Za-z0-9:_.@\\-]+\.(service|slice|scope)$")]


def _inside_cgroup_root(path: str) -> str:
    if any(part in (".", "..") for part in path.split("/")):
        raise ValueError(f"cgroup path {path!r} must stay below /sys/fs/cgroup (no '.' or '..' parts)")
    return path


class CgroupPath(_Cgroup):
    path: Annotated[
        str, Field(pattern=r"^/sys/fs/cgroup(/[A-Za-z0-9:_.@-]+)+$"), AfterValidator(_inside_cgroup_root)
    ]


Cgroup = Annotated[
    Annotated[CgroupUnit, Tag("unit")] | Annotated[CgroupPath, Tag("path")],
    Discriminator(
        _one_of(("unit", "path")),
        custom_error_type="cgroup_target",
        custom_error_message="a cgroup entry needs exactly one of unit or path",
    ),
]


_KNOB_NAMES: list[JsonValue] = [*sorted(SYSCTLS)]
SourceKind = Literal["vendor", "memtune"]
# What ``merge:`` may name: sysctl keys, thp.enabled / thp.defrag, and hugepages (every pool of the rule).
MergeKey = Annotated[str, Field(pattern=r"^((vm|kernel)(\.[a-z0-9_]+)+|thp\.[a-z_]+|hugepages)$")]


class Rule(Model):
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
    # The knob names in the schema too, so an editor flags vm.swapiness as it is typed.
    sysctl: dict[str, Value] = Field({}, json_schema_extra={"propertyNames": {"enum": _KNOB_NAMES}})
    thp: Thp | None = None
    hugepages: list[HugepagePool] = []
    cgroups: list[Cgroup] = []
    warn: StrictStr | None = Field(None, description="A warning to report when the rule applies")

    @model_validator(mode="after")
    def _sets_something(self) -> Rule:
        if not (self.sysctl or self.thp or self.hugepages or self.cgroups or self.warn):
            raise ValueError(f"rule {self.name!r} sets nothing: give sysctl, thp, hugepages, cgroups or warn")
        return self

    @model_validator(mode="after")
    def _explains_itself(self) -> Rule:
        if self.source_kind == "memtune" and not self.rationale:
            raise ValueError(f"rule {self.name!r}: source_kind memtune needs a rationale")
        return self


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


MERGE_TEXT = {
    "max": "between workload policies the largest value wins (a minimum requirement)",
    "min": "between workload policies the smallest value wins (a ceiling)",
    "sum": "between workload policies the pools add up",
    "agree": "a mode: workload policies that want different values are a conflict",
}


def policy_json_schema() -> dict[str, Any]:
    """The policy format, with every knob of the catalog: its unit, kernel range and merge rule."""
    schema = Policy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "memtune policy"
    value = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    rule = schema["$defs"]["Rule"]["properties"]
    rule["sysctl"]["properties"] = {
        knob.name: {
            **value,
            "description": f"{knob.unit}, {knob.widest.low}..{knob.widest.high} (since "
            f"{'.'.join(map(str, knob.since))}); {MERGE_TEXT[knob.merge]}. {knob.doc}",
            "x-merge": knob.merge,
        }
        for knob in SYSCTLS.values()
    }
    rule["sysctl"]["additionalProperties"] = False
    for key in THP_FILES:
        prop = schema["$defs"]["Thp"]["properties"][key]
        prop["description"] = f"{prop.get('description', key)}; {MERGE_TEXT[THP_MERGE]}"
        schema["$defs"]["Thp"]["properties"][key]["x-merge"] = THP_MERGE
    rule["hugepages"]["description"] = (
        f"Hugepage pools; {MERGE_TEXT['sum']} (a rule may say merge: {{hugepages: max}})"
    )
    rule["hugepages"]["x-merge"] = list(HUGEPAGE_MERGES)
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
