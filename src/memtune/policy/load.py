"""Loading policies: YAML with locations, validation errors as file:line:column, and the checks that
need no host facts (knobs, literal ranges, expressions, inputs, rule names)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from memtune.engine.kinds import KINDS
from memtune.engine.kinds.base import RuleChecks
from memtune.engine.knobs import Merge
from memtune.engine.plan import input_value
from memtune.errors import PolicyError, raise_all
from memtune.policy.expr import ExpressionError, compile_expression, split_expression
from memtune.policy.fields import suggest
from memtune.policy.model import Guards, InputSpec, Policy, PolicySet, Rule, SizeRange, When
from memtune.policy.source import Marks, Path_, load_yaml_file


def load_policy_file(path: Path) -> Policy:
    data, marks = load_yaml_file(path)
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
        raise_all(validation_errors(exc, data, file, marks))
        raise  # unreachable: a ValidationError has at least one error
    policy._file = file
    policy._marks = marks
    _check_policy(policy)
    return policy


def validation_errors(exc: ValidationError, data: Any, file: str, marks: Marks | None) -> list[PolicyError]:
    """One error per problem pydantic found (at most MAX_ERRORS), once per place."""
    found: dict[str, PolicyError] = {}
    for error in exc.errors(include_url=False)[:MAX_ERRORS]:
        problem = _validation_error(error, data, file, marks)
        found.setdefault(f"{problem.location}", problem)
    return list(found.values())


def _validation_error(error: Any, data: Any, file: str, marks: Marks | None) -> PolicyError:
    loc = tuple(error["loc"])
    path, mark = marks.locate(loc) if marks else (_data_path(data, loc), (None, None))
    where = _dotted(path)
    if error["type"] == "extra_forbidden":
        key = path[-1] if path else loc[-1]
        message = f"unknown key {key!r}{suggest(str(key), _allowed_keys(error, data, path[:-1]))}"
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
        *(model for kind in KINDS for model in kind.rule_models),
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


def _dotted(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# What an input's default may be written as, by the input's type (the inventory may be less exact).
_DEFAULT_TYPES: dict[str, type | tuple[type, ...]] = {
    "int": int,
    "size": (int, str),
    "str": str,
    "bool": bool,
    "version": str,
}


def _check_policy(policy: Policy) -> None:
    if policy.extends and policy.layer != "workload":
        raise policy.error("only workload policies can extend other workload policies", ("extends",))
    errors: list[PolicyError] = []
    for name, spec in policy.inputs.items():
        if spec.default is not None:
            try:
                if not isinstance(spec.default, _DEFAULT_TYPES[spec.type]) or (
                    spec.type != "bool" and isinstance(spec.default, bool)
                ):
                    raise PolicyError(f"{name}: a default of type {spec.type} cannot be {spec.default!r}")
                input_value(name, spec, spec.default)
            except PolicyError as exc:
                errors.append(policy.error(f"inputs.{exc.message}", ("inputs", name, "default")))
    seen: dict[str, int] = {}
    for index, rule in enumerate(policy.rules):
        if rule.name in seen:
            errors.append(
                policy.error(
                    f"duplicate rule name {rule.name!r} (also rules[{seen[rule.name]}])",
                    ("rules", index, "name"),
                )
            )
        seen[rule.name] = index
        for check in (_check_rule, _check_merge):
            try:
                check(policy, rule, ("rules", index))
            except PolicyError as exc:
                errors.append(exc)
    try:
        _check_mode_fights(policy)
    except PolicyError as exc:
        errors.append(exc)
    raise_all(errors)


def allowed_merges(key: str) -> tuple[Merge, ...]:
    """The merges the catalog allows for a ``merge:`` key (empty: not a knob)."""
    for kind in KINDS:
        if found := kind.merges(key):
            return found
    return ()


def _sections(rule: Rule) -> list[tuple[Any, Any]]:
    """(kind, the rule's section) of every kind with a rule section."""
    return [(kind, kind.rule_section(rule)) for kind in KINDS if kind.rule_key is not None]


def _check_merge(policy: Policy, rule: Rule, at: Path_) -> None:
    sets = {key for kind, section in _sections(rule) for key in kind.merge_keys(section)}
    for key, merge in rule.merge.items():
        path = (*at, "merge", key)
        if key not in sets:
            raise policy.error(f"rule {rule.name!r}: merge names {key!r}, which this rule does not set", path)
        allowed = allowed_merges(key)
        if merge not in allowed:
            raise policy.error(
                f"rule {rule.name!r}: {key} cannot merge by {merge!r}; the knob catalog allows "
                f"{', '.join(allowed)}",
                path,
            )


def _check_mode_fights(policy: Policy) -> None:
    """Two rules of one policy setting a mode to different literals where the later one always applies
    (no ``when``): the earlier rule can never take effect, so the policy contradicts itself. Rules with a
    ``when`` are overrides the planner resolves in order (later wins), since only the facts decide."""
    first: dict[str, tuple[int, Rule, Any]] = {}
    for index, rule in enumerate(policy.rules):
        modes: list[tuple[str, Any, Path_]] = [
            (key, value, path)
            for kind, section in _sections(rule)
            for key, value, path, merge in kind.setting_values(section)
            if merge == "agree"
        ]
        for key, value, path in modes:
            literal = not (isinstance(value, str) and split_expression(value) is not None)
            earlier = first.get(key)
            if earlier is not None and rule.when is None and literal and earlier[2] != value:
                line, _column = policy.mark(("rules", earlier[0], "name"))
                raise policy.error(
                    f"rule {rule.name!r}: {key} = {value} contradicts rule {earlier[1].name!r} "
                    f"(line {line}: {earlier[2]}), and this rule has no `when`: {key} is a mode, one "
                    "policy must not set it both ways (give one of them a `when`, or drop one)",
                    ("rules", index, *path),
                )
            if literal and (earlier is None or rule.when is None):
                first[key] = (index, rule, value)


def _check_rule(policy: Policy, rule: Rule, at: Path_) -> None:
    def expression(value: Any, path: Path_, *, condition: bool = False) -> bool:
        """Check an expression value; False when ``value`` is not one. A ``condition`` (``when.expr``)
        may leave out the braces and must give true or false."""
        if not isinstance(value, str):
            return False
        try:
            source = split_expression(value) or (value if condition else None)
            if source is None:
                return False
            compiled = compile_expression(source)
            if condition and compiled.boolean is False:
                raise ExpressionError("when.expr must give true or false (write a comparison or a test)")
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

    def when(when: When) -> None:
        expression(when.expr, ("when", "expr"), condition=True)
        for key, bounds in (("ram", when.ram), ("numa_nodes", when.numa_nodes)):
            low, high = (bounds.min, bounds.max) if bounds is not None else (None, None)
            if low is not None and high is not None and low > high:
                raise policy.error(
                    f"rule {rule.name!r}: when.{key} can never match: min {low} is above max {high}",
                    (*at, "when", key),
                )
        for name in when.inputs or ():
            if name not in policy.inputs:
                raise policy.error(
                    f"rule {rule.name!r}: input {name!r} is not declared under 'inputs:'",
                    (*at, "when", "inputs"),
                )

    # Every problem of the rule, one per condition, knob, pool and limit (validate reports them all).
    checks: list[Callable[[], None]] = [partial(when, rule.when)] if rule.when else []
    checks += [
        check
        for kind, section in _sections(rule)
        for check in kind.checks(section, _RuleChecks(policy, rule, at, expression))
    ]
    _run_all(checks)


class _RuleChecks(RuleChecks):
    """A rule's checks, for the kinds' static checks of their sections."""

    def __init__(
        self, policy: Policy, rule: Rule, at: Path_, expression: Callable[[Any, Path_], bool]
    ) -> None:
        self.policy, self.rule, self.at, self._expression = policy, rule, at, expression

    def expression(self, value: Any, path: Path_) -> bool:
        return self._expression(value, path)

    def error(self, message: str, path: Path_) -> PolicyError:
        return self.policy.error(f"rule {self.rule.name!r}: {message}", (*self.at, *path))


def _run_all(checks: list[Callable[[], None]]) -> None:
    """Run every check, then raise all the PolicyErrors they raised (PolicyErrors for several)."""
    errors: list[PolicyError] = []
    for check in checks:
        try:
            check()
        except PolicyError as exc:
            errors.append(exc)
    raise_all(errors)


def policy_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())
    return [path]


MAX_ERRORS = 50


def load_policy_set(paths: Iterable[Path]) -> PolicySet:
    """Load every policy file under ``paths`` (files or directories) and check them as one set. Every
    file's errors are reported together (PolicyErrors), up to MAX_ERRORS."""
    policies: list[Policy] = []
    errors: list[PolicyError] = []
    given: dict[Path, Path] = {}
    for path in paths:
        if not path.exists():
            errors.append(PolicyError("no such file or directory", str(path)))
            continue
        files = policy_files(path)
        if not files:
            errors.append(PolicyError(f"no policies in {path} (no *.yml or *.yaml files)", str(path)))
        for file in files:
            real = file.resolve()
            if real in given:
                errors.append(PolicyError(f"given twice (also as {given[real]})", str(file)))
                continue
            given[real] = file
            try:
                policies.append(load_policy_file(file))
            except PolicyError as exc:
                errors.append(exc)
        if len(errors) >= MAX_ERRORS:
            break
    raise_all(errors[:MAX_ERRORS])
    return PolicySet.of(policies)
