"""Knob expressions: jinja2 expressions in a sandbox over one host's facts, with sizing helpers.

An expression sees only the names listed in ``NAMES`` and reads facts by key: attribute access on any
Python object (``''.__class__``, ``x.items``) is refused, globals such as ``cycler`` or ``range`` do not
exist, and only the filters in ``FILTERS`` are available. Every fact an evaluation reads is recorded, so
each planned value can say which inputs produced it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from jinja2 import StrictUndefined, TemplateError, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS as DEFAULT_FILTERS
from jinja2.parser import Parser
from jinja2.runtime import Undefined
from jinja2.sandbox import SandboxedEnvironment

from memtune.engine.knobs import Version, parse_version
from memtune.engine.sizes import parse_size

if TYPE_CHECKING:
    from memtune.facts.model import HostFacts, Node

FILTERS = (
    "abs",
    "default",
    "first",
    "float",
    "int",
    "last",
    "length",
    "list",
    "map",
    "max",
    "min",
    "reject",
    "rejectattr",
    "round",
    "select",
    "selectattr",
    "sort",
    "sum",
    "unique",
)
HELPERS = (
    "percent_of_ram",
    "percent_of_node",
    "size",
    "clamp",
    "round_to",
    "min",
    "max",
    "ceil",
    "floor",
    "sqrt",
    "kernel_at_least",
    "has_workload",
    "instances",
    "default_min_free_kbytes",
)
VARIABLES = (
    "facts",
    "inputs",
    "ram_kb",
    "ram_bytes",
    "numa_nodes",
    "nodes",
    "node",
    "kernel_version",
    "virtualization",
    "workloads",
)
NAMES = frozenset(HELPERS + VARIABLES)
# Variables that stand for one fact; they are recorded as inputs under the fact's path.
_VARIABLE_FACTS = {
    "ram_kb": "memory.mem_total_kb",
    "ram_bytes": "memory.mem_total_kb",
    "numa_nodes": "numa.nodes",
    "kernel_version": "kernel.version",
    "virtualization": "platform.virtualization",
    "workloads": "workloads",
}


class ExpressionError(ValueError):
    """A bad expression; ``line`` counts from the expression's first line (1)."""

    def __init__(self, message: str, line: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


_MAX_EXPONENT = 64
_MAX_REPEAT = 4096
# Bounds on what one expression may build: its source, its nesting, the values it makes (characters plus
# items, nested ones counted) and its integers (64 bits, what every kernel knob and size fits in).
MAX_SOURCE = 4000
MAX_DEPTH = 32
MAX_WEIGHT = 65536
INT_LIMIT = 2**64


def weight(value: Any, budget: int = MAX_WEIGHT) -> int:
    """Characters of strings plus items of lists and maps, nested ones included; counting stops once
    past ``budget``."""
    total, stack = 0, [value]
    while stack and total <= budget:
        item = stack.pop()
        total += len(item) + 1 if isinstance(item, str) else 1
        if isinstance(item, list | tuple):
            stack.extend(item[: budget + 1])
        elif isinstance(item, Mapping):
            stack.extend(list(item.values())[: budget + 1])
    return total


def check_int(value: Any) -> Any:
    """``value``, unless it is an integer beyond 64 bits (ExpressionError)."""
    if isinstance(value, int) and not isinstance(value, bool) and not -INT_LIMIT < value < INT_LIMIT:
        raise ExpressionError(f"integer {_short(value)} is beyond 64 bits")
    return value


def _short(value: int) -> str:
    bits = value.bit_length()
    return str(value) if bits <= 128 else f"of {bits} bits"


_SEQUENCES = (str, list, tuple)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Sandbox(SandboxedEnvironment):
    intercepted_binops = frozenset(["+", "-", "*", "/", "//", "%", "**"])

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return False  # facts are read by key; no Python attribute of any object is reachable

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """Refuse arithmetic that would eat the controller's CPU or memory: huge exponents, integers
        beyond 64 bits, repeated or joined sequences past MAX_WEIGHT, and ``%`` string formatting."""
        if operator == "**":
            return check_int(_power(left, right))
        if operator == "%" and isinstance(left, str):
            raise ExpressionError("string formatting with % is not allowed")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                repeated = isinstance(seq, str | list | tuple) and isinstance(count, int)
                if repeated and (count * len(seq) > _MAX_REPEAT or count * weight(seq) > MAX_WEIGHT):
                    raise ExpressionError(f"repeating a sequence {count} times is not allowed")
            if isinstance(left, int) and isinstance(right, int):
                check_int(left), check_int(right)
        joined = operator == "+" and isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES)
        if joined and weight(left) + weight(right) > MAX_WEIGHT:
            raise ExpressionError(f"joining sequences into more than {MAX_WEIGHT} items is not allowed")
        return check_int(super().call_binop(context, operator, left, right))


def _power(left: Any, right: Any) -> Any:
    if not (_is_number(left) and _is_number(right)):
        return left**right  # a TypeError, reported as such
    if abs(right) > _MAX_EXPONENT:
        raise ExpressionError(f"exponent {right} is too large (at most {_MAX_EXPONENT})")
    if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        check_int(left)
        if (abs(left).bit_length() - 1) * right >= 64:
            raise ExpressionError(f"{left} ** {right} is beyond 64 bits")
    return left**right


def _sum(values: Any, attribute: Any = None, start: Any = 0) -> Any:
    """jinja2's ``sum`` for numbers only: summing lists or strings would get around MAX_WEIGHT."""
    if attribute is not None:
        raise ExpressionError("sum(attribute=...) is not supported; map the attribute first")
    total = start
    for value in values:
        if not (_is_number(total) and _is_number(value)):
            raise ExpressionError(f"sum() adds numbers, not {type(value).__name__} to {type(total).__name__}")
        total = check_int(total + value)
    return total


def _int(value: Any, default: int = 0, base: int = 10) -> Any:
    return check_int(DEFAULT_FILTERS["int"](value, default, base))


_OWN_FILTERS: dict[str, Callable[..., Any]] = {"sum": _sum, "int": _int}


_ENV = _Sandbox(undefined=StrictUndefined, autoescape=False)
_ENV.globals.clear()
_ENV.filters = {name: _OWN_FILTERS.get(name, DEFAULT_FILTERS[name]) for name in FILTERS}
_ENV.tests = dict(_ENV.tests)


@dataclass(frozen=True)
class Expression:
    source: str
    names: frozenset[str]
    input_names: frozenset[str]
    function: Callable[..., Any]
    # Whether the expression gives true or false: True surely, False surely not, None (a fact) unknown.
    boolean: bool | None = None


def split_expression(value: str) -> str | None:
    """The expression inside ``{{ ... }}`` when that is the whole value; None for a plain string."""
    text = value.strip()
    if "{{" not in text and "}}" not in text:
        return None
    if not (text.startswith("{{") and text.endswith("}}")) or text.count("{{") != 1:
        raise ExpressionError("an expression must be the whole value, written as '{{ expression }}'")
    inner = text[2:-2].strip()
    if not inner:
        raise ExpressionError("empty expression")
    return inner


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Expression:
    if len(source) > MAX_SOURCE:
        raise ExpressionError(f"expression of {len(source)} characters (at most {MAX_SOURCE})")
    _check_nesting(source)
    try:
        parser = Parser(_ENV, source, state="variable")
        tree = parser.parse_expression()
        if not parser.stream.eos:
            raise ExpressionError(f"unexpected {parser.stream.current.value!r} after the expression")
        names, input_names = _check_tree(tree)
        function = _ENV.compile_expression(source, undefined_to_none=False)
    except ExpressionError:
        raise
    except RecursionError:
        raise ExpressionError(f"expression nested deeper than {MAX_DEPTH} levels") from None
    except TemplateError as exc:
        line = getattr(exc, "lineno", 1) or 1
        raise ExpressionError(f"expression syntax: {exc.message or exc}", line) from None
    return Expression(source, names, input_names, function, gives_bool(tree))


_BOOLEAN_HELPERS = frozenset({"kernel_at_least", "has_workload"})


def gives_bool(tree: nodes.Node) -> bool | None:
    """Whether ``tree`` gives a boolean, as far as its shape tells (``when.expr`` must)."""
    if isinstance(tree, nodes.Compare | nodes.Test | nodes.Not):
        return True
    if isinstance(tree, nodes.Const):
        return isinstance(tree.value, bool)
    if isinstance(tree, nodes.And | nodes.Or):
        return _both(gives_bool(tree.left), gives_bool(tree.right))
    if isinstance(tree, nodes.CondExpr):
        return _both(gives_bool(tree.expr1), True if tree.expr2 is None else gives_bool(tree.expr2))
    if isinstance(tree, nodes.Call):
        return isinstance(tree.node, nodes.Name) and tree.node.name in _BOOLEAN_HELPERS
    if isinstance(tree, nodes.Filter):
        return None if tree.name in ("first", "last", "default", "min", "max") else False
    if isinstance(tree, nodes.Name | nodes.Getattr | nodes.Getitem):
        return None
    return False  # arithmetic, literals, lists, string joins


def _both(left: bool | None, right: bool | None) -> bool | None:
    if left is False or right is False:
        return False
    return True if left and right else None


def _check_nesting(source: str) -> None:
    """Brackets nested past MAX_DEPTH, before the (recursive) parser sees them."""
    depth = 0
    for char in source:
        depth += char in "([{"
        depth -= char in ")]}"
        if depth > MAX_DEPTH:
            raise ExpressionError(f"expression nested deeper than {MAX_DEPTH} levels")


def _depth(tree: nodes.Node) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())
    return deepest


def _check_tree(tree: nodes.Node) -> tuple[frozenset[str], frozenset[str]]:
    names: set[str] = set()
    input_names: set[str] = set()
    if _depth(tree) > MAX_DEPTH:
        raise ExpressionError(f"expression nested deeper than {MAX_DEPTH} levels")
    for const in tree.find_all(nodes.Const):
        check_int(const.value)
    for node in [tree, *tree.find_all((nodes.Name, nodes.Getattr, nodes.Getitem))]:
        line = node.lineno or 1
        if isinstance(node, nodes.Name):
            if node.name not in NAMES:
                raise ExpressionError(
                    f"unknown name {node.name!r} (expressions may use: {', '.join(sorted(NAMES))})", line
                )
            names.add(node.name)
        elif isinstance(node, nodes.Getattr):
            _check_key(node.attr, line)
            if isinstance(node.node, nodes.Name) and node.node.name == "inputs":
                input_names.add(node.attr)
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            _check_key(node.arg.value, line)
            if isinstance(node.node, nodes.Name) and node.node.name == "inputs":
                input_names.add(node.arg.value)
    return frozenset(names), frozenset(input_names)


def _check_key(key: str, line: int) -> None:
    if key.startswith("_"):
        raise ExpressionError(f"access to {key!r} is not allowed: expressions read facts only", line)


class _Tracked:
    """Read-only view of facts that records every leaf it hands out."""

    __slots__ = ("_data", "_path", "_scope")

    def __init__(self, data: Any, path: str, scope: Scope) -> None:
        self._data = data
        self._path = path
        self._scope = scope

    def _child_path(self, key: Any) -> str:
        if isinstance(key, int):
            return f"{self._path}[{key}]"
        return f"{self._path}.{key}" if self._path else str(key)

    def __getitem__(self, key: Any) -> Any:
        data = self._data
        try:
            if isinstance(data, Mapping):
                if key not in data and isinstance(key, str) and key.isdigit():
                    key = int(key)
                value = data[key]
            elif isinstance(data, list | tuple):
                value = data[key]
            elif isinstance(key, str) and key in type(data).model_fields:
                value = getattr(data, key)
            else:
                raise KeyError(key)
        except (KeyError, IndexError, TypeError):
            self._scope.missing = self._child_path(key)
            raise KeyError(key) from None
        return self._scope.track(value, self._child_path(key))

    def __iter__(self) -> Iterator[Any]:
        data = self._data
        if isinstance(data, Mapping):
            return iter(list(data))
        if isinstance(data, list | tuple):
            return (self[index] for index in range(len(data)))
        return iter(type(data).model_fields)

    def __len__(self) -> int:
        data = self._data
        return len(data) if isinstance(data, Mapping | list | tuple) else len(type(data).model_fields)

    def __contains__(self, item: Any) -> bool:
        return item in self._data if isinstance(self._data, Mapping | list | tuple) else False

    def __repr__(self) -> str:
        return f"<facts {self._path or 'root'}>"


class Scope:
    """What expressions see for one host. Helpers answer in the unit of the knob being planned."""

    def __init__(self, facts: HostFacts, inputs: Mapping[str, Any], workloads: frozenset[str]) -> None:
        self.facts = facts
        self.used: dict[str, Any] = {}
        self.missing: str | None = None
        self.unit_bytes: int | None = None
        self.unit_name = ""
        self.node: Node | None = None
        self.workloads = workloads
        ram_kb = facts.memory.mem_total_kb
        self._base: dict[str, Any] = {
            "facts": _Tracked(facts, "", self),
            "inputs": _Tracked(dict(inputs), "inputs", self),
            "ram_kb": ram_kb,
            "ram_bytes": ram_kb * 1024,
            "numa_nodes": len(facts.numa.nodes),
            "nodes": _Tracked(facts.numa.nodes, "numa.nodes", self),
            "kernel_version": facts.kernel.version,
            "virtualization": facts.platform.virtualization,
            "workloads": sorted(workloads),
            "percent_of_ram": self.percent_of_ram,
            "percent_of_node": self.percent_of_node,
            "size": self.size,
            "clamp": self.clamp,
            "round_to": self.round_to,
            "min": min,
            "max": max,
            "ceil": math.ceil,
            "floor": math.floor,
            "sqrt": math.isqrt,
            "kernel_at_least": self.kernel_at_least,
            "has_workload": self.has_workload,
            "instances": self.instances,
            "default_min_free_kbytes": self.default_min_free_kbytes,
        }

    def track(self, value: Any, path: str) -> Any:
        """Leaves (scalars, and lists or maps of scalars) are recorded and handed out as they are."""
        if _is_leaf(value):
            self.used[path] = list(value) if isinstance(value, tuple) else value
            return value
        if isinstance(value, list | tuple) and all(_is_leaf(item) for item in value):
            self.used[path] = list(value)
            return list(value)
        if isinstance(value, Mapping) and all(_is_leaf(item) for item in value.values()):
            self.used[path] = dict(value)
            return dict(value)
        return _Tracked(value, path, self)

    def evaluate(
        self, expression: Expression, unit_bytes: int | None, unit_name: str, node: Node | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """-> (result, the facts and inputs it read). Raises ExpressionError."""
        self.used = {}
        self.missing = None
        self.unit_bytes, self.unit_name, self.node = unit_bytes, unit_name, node
        for name in expression.names & _VARIABLE_FACTS.keys():
            self.used[_VARIABLE_FACTS[name]] = _fact_summary(self.facts, name)
        variables = self._base
        if node is not None:
            variables = {**self._base, "node": _Tracked(node, f"numa.nodes[id={node.id}]", self)}
        try:
            result = expression.function(**variables)
            if isinstance(result, Undefined):
                result._fail_with_undefined_error()
            check_int(result)
            if weight(result) > MAX_WEIGHT:
                raise ExpressionError(f"the result is larger than {MAX_WEIGHT} items")
        except SecurityError as exc:
            raise ExpressionError(f"refused by the sandbox: {exc}") from None
        except UndefinedError as exc:
            detail = f"{self.missing!r} is not a known fact or input" if self.missing else str(exc)
            raise ExpressionError(f"undefined: {detail}") from None
        except ExpressionError:
            raise
        except RecursionError:
            raise ExpressionError("evaluation nested too deeply") from None
        except Exception as exc:  # an expression that raises is bad policy input, never a crash
            raise ExpressionError(f"evaluation failed: {type(exc).__name__}: {exc}") from None
        return result, dict(self.used)

    # -- helpers -------------------------------------------------------------------------------------
    def _to_unit(self, n_bytes: float, helper: str) -> int:
        if self.unit_bytes is None:
            raise ExpressionError(f"{helper}() gives a size, but {self.unit_name} is not a size")
        return int(n_bytes // self.unit_bytes)

    def _number(self, value: Any, helper: str) -> float:
        if isinstance(value, str):
            try:
                return self._to_unit(parse_size(value), helper)
            except ValueError as exc:
                raise ExpressionError(f"{helper}(): {exc}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ExpressionError(f"{helper}() takes numbers or sizes, not {value!r}")
        return value

    def _percent(self, value: Any, helper: str) -> float:
        if not _is_number(value) or not 0 <= value <= 100:
            raise ExpressionError(f"{helper}() takes a percentage from 0 to 100, not {value!r}")
        return float(value)

    def percent_of_ram(self, percent: Any) -> int:
        percent = self._percent(percent, "percent_of_ram")
        self.used["memory.mem_total_kb"] = self.facts.memory.mem_total_kb
        return self._to_unit(self.facts.memory.mem_total_kb * 1024 * percent / 100, "percent_of_ram")

    def percent_of_node(self, percent: Any) -> int:
        percent = self._percent(percent, "percent_of_node")
        if self.node is None:
            raise ExpressionError("percent_of_node() works only in per-node hugepage amounts")
        self.used[f"numa.nodes[id={self.node.id}].mem_total_kb"] = self.node.mem_total_kb
        return self._to_unit((self.node.mem_total_kb or 0) * 1024 * percent / 100, "percent_of_node")

    def size(self, text: str | int) -> int:
        try:
            return self._to_unit(parse_size(text), "size")
        except ValueError as exc:
            raise ExpressionError(f"size(): {exc}") from None

    def clamp(self, value: Any, low: Any, high: Any) -> float:
        number, lo, hi = (self._number(item, "clamp") for item in (value, low, high))
        if lo > hi:
            raise ExpressionError(f"clamp(): lower bound {lo} is above upper bound {hi}")
        return min(max(number, lo), hi)

    def round_to(self, value: Any, multiple: Any) -> int:
        number, step = self._number(value, "round_to"), self._number(multiple, "round_to")
        if step <= 0:
            raise ExpressionError("round_to(): the multiple must be positive")
        return int((number + step / 2) // step * step)

    def kernel_at_least(self, version: str) -> bool:
        self.used["kernel.version"] = _fact_summary(self.facts, "kernel_version")
        current: Version | None = self.facts.kernel.version
        return current is not None and current >= parse_version(version)

    def has_workload(self, name: str) -> bool:
        self.used["workloads"] = sorted(self.workloads)
        return name in self.workloads

    def instances(self, *names: str, within: str | None = None) -> int:
        """How many units or cgroups ``workload:`` entries for ``names`` (default: every chosen workload)
        limit on this host: distinct targets of the chosen workloads' instances, those ``within`` a slice or
        cgroup (``within='system-postgresql.slice'``: a path component) only when given."""
        self.used["workloads"] = sorted(self.workloads)
        wanted = [name for name in names or sorted(self.workloads) if name in self.workloads]
        targets = set()
        for name in wanted:
            workload = self.facts.workload(name)
            for instance in workload.instances if workload else []:
                target, _reason = instance.limit_target()
                if target is None:
                    continue
                if within is not None and within not in (instance.cgroup or "").split("/"):
                    continue
                targets.add(target)
        self.used["workloads targets"] = sorted({*self.used.get("workloads targets", []), *targets})
        return len(targets)

    def default_min_free_kbytes(self) -> int:
        """The kernel's own default: sqrt(lowmem_kb * 16), clamped to 128..262144 kB (mm/page_alloc.c)."""
        ram_kb = self.facts.memory.mem_total_kb
        self.used["memory.mem_total_kb"] = ram_kb
        kb = min(max(math.isqrt(ram_kb * 16), 128), 262144)
        return self._to_unit(kb * 1024, "default_min_free_kbytes")


def _is_leaf(value: Any) -> bool:
    return (
        value is None
        or isinstance(value, int | float | str | bool)
        or (isinstance(value, tuple) and all(isinstance(item, int) for item in value))
    )


def _fact_summary(facts: HostFacts, name: str) -> Any:
    if name in ("ram_kb", "ram_bytes"):
        return facts.memory.mem_total_kb
    if name == "numa_nodes":
        return len(facts.numa.nodes)
    if name == "kernel_version":
        return list(facts.kernel.version) if facts.kernel.version else None
    if name == "virtualization":
        return facts.platform.virtualization
    return sorted(facts.workload_names)
