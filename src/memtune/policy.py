"""Policy files: pydantic models, YAML loading with locations, and the checks that need no host facts."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from memtune.errors import PolicyError
from memtune.expr import ExpressionError, compile_expression, split_expression
from memtune.knobs import CGROUP_LIMITS, HUGEPAGE_SIZES_KB, SYSCTLS, UNIT_BYTES
from memtune.sizes import is_size, parse_percent, parse_size
from memtune.yaml_source import Marks, Path_, load_yaml

Layer = Literal["baseline", "workload", "group", "host"]
LAYERS: tuple[Layer, ...] = ("baseline", "workload", "group", "host")
_SIZE_PATTERN = r"^\s*[0-9]+(\.[0-9]+)?\s*([KkMmGgTt]([Ii]?[Bb])?|[Bb])?\s*$"
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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SizeRange(_Strict):
    min: Size | None = None
    max: Size | None = None


class CountRange(_Strict):
    min: Annotated[int, Field(ge=0)] | None = None
    max: Annotated[int, Field(ge=0)] | None = None


class When(_Strict):
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


class Thp(_Strict):
    enabled: Literal["always", "madvise", "never"] | None = None
    defrag: Literal["always", "defer", "defer+madvise", "madvise", "never"] | None = None


class _Pool(_Strict):
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


class _Cgroup(_Strict):
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


class CgroupPath(_Cgroup):
    path: Annotated[str, Field(pattern=r"^/sys/fs/cgroup(/[A-Za-z0-9:_.@-]+)+$")]


Cgroup = Annotated[
    Annotated[CgroupUnit, Tag("unit")] | Annotated[CgroupPath, Tag("path")],
    Discriminator(
        _one_of(("unit", "path")),
        custom_error_type="cgroup_target",
        custom_error_message="a cgroup entry needs exactly one of unit or path",
    ),
]


class Rule(_Strict):
    name: Name
    source: StrictStr | None = Field(None, description="Where the values come from: URL, document, profile")
    when: When | None = None
    required: StrictBool = Field(False, description="Fail instead of skipping a knob this host lacks")
    sysctl: dict[str, Value] = {}
    thp: Thp | None = None
    hugepages: list[HugepagePool] = []
    cgroups: list[Cgroup] = []
    warn: StrictStr | None = Field(None, description="A warning to report when the rule applies")

    @model_validator(mode="after")
    def _sets_something(self) -> Rule:
        if not (self.sysctl or self.thp or self.hugepages or self.cgroups or self.warn):
            raise ValueError(f"rule {self.name!r} sets nothing: give sysctl, thp, hugepages, cgroups or warn")
        return self


class InputSpec(_Strict):
    type: Literal["int", "size", "str", "bool", "version"]
    default: StrictInt | StrictStr | StrictBool | None = None
    description: str = ""


class Guards(_Strict):
    min_free_kbytes_max_percent: Annotated[float, Field(gt=0, le=50)] = 5.0
    hugepages_min_node_free_percent: Annotated[float, Field(ge=0, lt=100)] = 10.0


class Policy(_Strict):
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
    schema = Policy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "memtune policy"
    return schema


# -- loading -----------------------------------------------------------------------------------------


def load_policy_file(path: Path) -> Policy:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read: {getattr(exc, 'strerror', None) or exc}", str(path)) from None
    data, marks = load_yaml(text, str(path))
    return policy_from_data(data, str(path), marks)


def policy_from_data(
    data: Any, file: str, marks: Marks | None = None, *, defaults: Mapping[str, str] | None = None
) -> Policy:
    """Validate a policy given as data (a loaded YAML file, or an inline dict from inventory).
    ``defaults`` fills keys the data leaves out, e.g. ``{"layer": "host", "name": "db01"}`` for an
    inline host policy."""
    if not isinstance(data, dict):
        raise PolicyError("a policy must be a mapping with layer, name and rules", file, 1 if marks else None)
    data = {**(defaults or {}), **data}
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc, data, file, marks) from None
    policy._file = file
    policy._marks = marks
    _check_policy(policy)
    return policy


def _validation_error(exc: ValidationError, data: Any, file: str, marks: Marks | None) -> PolicyError:
    error = exc.errors(include_url=False)[0]
    loc = tuple(error["loc"])
    path, mark = marks.locate(loc) if marks else (_data_path(data, loc), (None, None))
    where = _dotted(path)
    if error["type"] == "extra_forbidden":
        key = path[-1] if path else loc[-1]
        message = f"unknown key {key!r}{_suggest(str(key), _allowed_keys(error, data, path[:-1]))}"
        where = _dotted(path[:-1])
    elif error["type"] == "missing":
        message = f"missing key {loc[-1]!r}"
    else:
        message = error["msg"].removeprefix("Value error, ")
    prefix = f"{where}: " if where else ""
    return PolicyError(prefix + message, file, mark[0], mark[1])


def _data_path(data: Any, loc: tuple[Any, ...]) -> Path_:
    path: list[str | int] = []
    for part in loc:
        in_dict = isinstance(data, dict) and part in data
        if in_dict or (isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)):
            path.append(part)
            data = data[part]
    return tuple(path)


def _allowed_keys(error: Any, data: Any, path: Path_) -> list[str]:
    node: Any = data
    for part in path:
        node = node[part]
    models: list[type[BaseModel]] = [
        Policy,
        Rule,
        When,
        Thp,
        PoolCount,
        PoolTotal,
        PoolFraction,
        CgroupUnit,
        CgroupPath,
        InputSpec,
        Guards,
        SizeRange,
    ]
    best: list[str] = []
    for model in models:
        fields = list(model.model_fields)
        if isinstance(node, dict) and len(set(node) & set(fields)) > len(set(node) & set(best)):
            best = fields
    return best


def _suggest(key: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _dotted(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _check_policy(policy: Policy) -> None:
    if policy.extends and policy.layer != "workload":
        raise policy.error("only workload policies can extend other workload policies", ("extends",))
    seen: dict[str, int] = {}
    for index, rule in enumerate(policy.rules):
        if rule.name in seen:
            raise policy.error(
                f"duplicate rule name {rule.name!r} (also rules[{seen[rule.name]}])", ("rules", index, "name")
            )
        seen[rule.name] = index
        _check_rule(policy, rule, ("rules", index))


def _check_rule(policy: Policy, rule: Rule, at: Path_) -> None:
    def expression(value: Any, path: Path_) -> bool:
        """Check an expression value; False when ``value`` is not one."""
        if not isinstance(value, str):
            return False
        try:
            source = split_expression(value)
            if source is None:
                return False
            compiled = compile_expression(source)
        except ExpressionError as exc:
            line, column = policy.mark((*at, *path))
            raise PolicyError(
                f"rule {rule.name!r}: {exc.message}",
                policy.file,
                (line or 1) + exc.line - 1 if line else None,
                column,
            ) from None
        undeclared = sorted(compiled.input_names - policy.inputs.keys())
        if undeclared:
            raise policy.error(
                f"rule {rule.name!r}: input {undeclared[0]!r} is not declared under 'inputs:' of this policy",
                (*at, *path),
            )
        return True

    if rule.when:
        expression(rule.when.expr, ("when", "expr"))
        for name in rule.when.inputs or ():
            if name not in policy.inputs:
                raise policy.error(
                    f"rule {rule.name!r}: input {name!r} is not declared under 'inputs:'",
                    (*at, "when", "inputs"),
                )
    for key, value in rule.sysctl.items():
        if key not in SYSCTLS:
            raise policy.error(
                f"rule {rule.name!r}: unknown knob {key!r}{_suggest(key, SYSCTLS)}", (*at, "sysctl", key)
            )
        if not expression(value, ("sysctl", key)):
            _check_sysctl(policy, rule, key, value, (*at, "sysctl", key))
    for index, pool in enumerate(rule.hugepages):
        kind, amount = pool_amount(pool)
        plain = not expression(amount, ("hugepages", index, kind)) and isinstance(amount, str)
        if plain and (kind != "total" or not is_size(str(amount))):
            raise policy.error(
                f"rule {rule.name!r}: hugepage {kind} {amount!r} is not a "
                f"{'size' if kind == 'total' else 'number'} or an expression",
                (*at, "hugepages", index, kind),
            )
    for index, group in enumerate(rule.cgroups):
        for name, limit in group.limits().items():
            path = ("cgroups", index, name)
            if expression(limit, path) or isinstance(limit, int):
                continue
            if limit != "infinity" and parse_percent(limit) is None and not is_size(limit):
                raise policy.error(
                    f"rule {rule.name!r}: {name} {limit!r} is not a size, a percentage of "
                    "RAM, 'infinity' or an expression",
                    (*at, *path),
                )


def _check_sysctl(policy: Policy, rule: Rule, key: str, value: Any, path: Path_) -> None:
    knob = SYSCTLS[key]
    if isinstance(value, str):
        if knob.unit not in UNIT_BYTES or not is_size(value):
            kind = "a size or an integer" if knob.unit in UNIT_BYTES else "an integer"
            raise policy.error(
                f"rule {rule.name!r}: {key} must be {kind} or an expression, not {value!r}", path
            )
        value = parse_size(value) // UNIT_BYTES[knob.unit]
    widest = knob.widest
    if not widest.low <= value <= widest.high:
        raise policy.error(
            f"rule {rule.name!r}: {key} = {value} is outside {widest.low}..{widest.high}, "
            "its range on every kernel",
            path,
        )


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
    line, _ = first.mark(("name",))
    return policy.error(f"{what} (first in {first.file}{f':{line}' if line else ''})", ("name",))


def policy_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())
    return [path]


def load_policy_set(paths: Iterable[Path]) -> PolicySet:
    """Load every policy file under ``paths`` (files or directories) and check them as one set."""
    policies: list[Policy] = []
    for path in paths:
        if not path.exists():
            raise PolicyError("no such file or directory", str(path))
        policies.extend(load_policy_file(file) for file in policy_files(path))
    return PolicySet.of(policies)


def bundled_policy_dir() -> Path:
    """``policies/`` of the memtune checkout this package runs from (relative to the working directory
    when below it, so provenance reads ``policies/baseline.yml``)."""
    path = Path(__file__).resolve().parents[2] / "policies"
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path
