"""sysctl knobs (/proc/sys): the catalog of every sysctl memtune plans (its unit, the kernels that have it and
its valid range there), planned from a rule's ``sysctl:`` map, judged against the running kernel and the
sysctl file that wins at boot.

Ranges follow Documentation/admin-guide/sysctl/vm.rst and kernel.rst and the ``extra1``/``extra2`` bounds
of the kernel's sysctl tables; ``since`` is the first mainline release with the knob or the range.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from pydantic import Field, JsonValue

from memtune.audit.checks import Check, Finding, Kind, Value, finding, unsupported, value
from memtune.engine.kinds.base import KnobKind, RuleChecks, read
from memtune.engine.knobs import (
    INT_MAX,
    LONG_MAX,
    MERGE_TEXT,
    UNIT_BYTES,
    Knob,
    Merge,
    Span,
    Unit,
    Version,
    format_version,
)
from memtune.engine.planned import Planned, Provenance, replacing
from memtune.engine.sizes import is_size, parse_size
from memtune.facts.parts import Int, SysctlEntry, SysctlSource
from memtune.policy.fields import Value as RuleValue
from memtune.policy.fields import suggest
from memtune.policy.source import Path_

if TYPE_CHECKING:
    from pydantic import BaseModel

    from memtune.engine.layers import Planner
    from memtune.engine.rules import RuleContext
    from memtune.facts.model import HostFacts

MEMTUNE_SYSCTL_FILE = "/etc/sysctl.d/90-memtune.conf"

_VM = "https://docs.kernel.org/admin-guide/sysctl/vm.html"
_KERNEL = "https://docs.kernel.org/admin-guide/sysctl/kernel.html"

# Bytes/ratio pairs: writing one zeroes the other (its ``exclusive_with``).
_PAIRS = (
    ("vm.overcommit_ratio", "vm.overcommit_kbytes"),
    ("vm.dirty_background_bytes", "vm.dirty_background_ratio"),
    ("vm.dirty_bytes", "vm.dirty_ratio"),
)
_TWINS = {name: twin for pair in _PAIRS for name, twin in (pair, pair[::-1])}


def _knob(name: str, unit: Unit, merge: Merge, *spans: tuple[Version, int, int]) -> Knob:
    """A catalog entry: ``spans`` are (since, low, high). Its documentation is its section of vm.rst or
    kernel.rst (``vm.min_free_kbytes`` -> vm.html#min-free-kbytes)."""
    page, _dot, anchor = name.partition(".")
    doc = f"{_VM if page == 'vm' else _KERNEL}#{anchor.replace('_', '-')}"
    return Knob(name, unit, tuple(Span(*span) for span in spans), doc, merge, _TWINS.get(name))


_ALWAYS: Version = (2, 6, 0)
_V2629: Version = (2, 6, 29)  # the *_bytes twins of the dirty ratios
# name, unit, merge, (since, low, high) of each range: a row a knob.
SYSCTLS: dict[str, Knob] = {
    knob.name: knob
    for knob in (
        # 0..200 since "mm: allow swappiness that prefers reclaiming anon over the file workingset" (5.8).
        _knob("vm.swappiness", "percent", "min", (_ALWAYS, 0, 100), ((5, 8, 0), 0, 200)),
        _knob("vm.min_free_kbytes", "kB", "max", (_ALWAYS, 0, INT_MAX)),
        # Added in 4.6 with a ceiling of 1000 (10 % of memory); vm.rst now documents 3000 (30 %).
        _knob("vm.watermark_scale_factor", "count", "max", ((4, 6, 0), 1, 1000), ((5, 19, 0), 1, 3000)),
        _knob("vm.watermark_boost_factor", "count", "max", ((5, 0, 0), 0, INT_MAX)),
        # Bit 1 (2, memory tiering) since 5.18 ("NUMA balancing: optimize page placement for memory tiering").
        _knob("kernel.numa_balancing", "mode", "agree", ((3, 8, 0), 0, 1), ((5, 18, 0), 0, 3)),
        _knob("vm.overcommit_memory", "mode", "agree", (_ALWAYS, 0, 2)),
        # A share of RAM (or kB, its twin) that mode 2 lets be committed: more is the larger requirement.
        _knob("vm.overcommit_ratio", "percent", "max", (_ALWAYS, 0, INT_MAX)),
        # Added in 3.14 ("mm: add overcommit_kbytes sysctl variable"); writing it zeroes overcommit_ratio.
        _knob("vm.overcommit_kbytes", "kB", "max", ((3, 14, 0), 0, LONG_MAX // 1024)),
        # 0 kills a task, 1 panics unless the OOM is confined to a cpuset/mempolicy, 2 always panics.
        _knob("vm.panic_on_oom", "mode", "agree", (_ALWAYS, 0, 2)),
        _knob("vm.max_map_count", "count", "max", (_ALWAYS, 0, INT_MAX)),
        _knob("vm.zone_reclaim_mode", "mode", "agree", (_ALWAYS, 0, 7)),
        _knob("vm.dirty_background_bytes", "bytes", "min", (_V2629, 1, LONG_MAX)),
        _knob("vm.dirty_background_ratio", "percent", "min", (_ALWAYS, 0, 100)),
        # The kernel refuses dirty_bytes below two pages.
        _knob("vm.dirty_bytes", "bytes", "min", (_V2629, 8192, LONG_MAX)),
        _knob("vm.dirty_ratio", "percent", "min", (_ALWAYS, 0, 100)),
    )
}


_KNOB_NAMES: list[JsonValue] = [*sorted(SYSCTLS)]

Section = dict[str, int | str]
State = dict[str, Planned]


def facts_sysctl(facts: HostFacts) -> dict[str, int | str | None]:
    return cast("dict[str, int | str | None]", read(facts, "sysctl"))


def facts_sources(facts: HostFacts) -> dict[str, SysctlSource]:
    return cast("dict[str, SysctlSource]", read(facts, "sysctl_sources"))


def same_sysctl(current: Any, wanted: Any) -> bool:
    """sysctl values compare as the kernel prints them: ints as ints, strings with white space folded."""
    if isinstance(current, str) or isinstance(wanted, str):
        return " ".join(str(current).split()) == " ".join(str(wanted).split())
    return bool(current == wanted)


def boot_conflict(key: str, wanted: int | str, facts: HostFacts) -> SysctlEntry | None:
    """The writer that lasts at boot when it runs after memtune's file and sets another value: memtune never
    edits other people's files, so this is reported, not mended."""
    source = facts_sources(facts).get(key)
    if source and source.after_memtune and not same_sysctl(source.after_memtune[-1].value, wanted):
        return source.after_memtune[-1]
    return None


def _at_boot(key: str, wanted: int | str, facts: HostFacts) -> list[Finding]:
    source = facts_sources(facts).get(key)
    winner = source.winner if source else None
    if winner is None:
        return finding(Kind.boot_drift, f"no sysctl file sets {key}: the kernel default is back at boot")
    if (beating := boot_conflict(key, wanted, facts)) is not None:
        return finding(
            Kind.boot_drift,
            f"{beating.path}:{beating.line} sets {key} = {beating.value} at boot, after memtune's file "
            f"({MEMTUNE_SYSCTL_FILE}), so it wins",
            mendable=False,
        )
    if same_sysctl(winner.value, wanted):
        return []
    if winner.path == MEMTUNE_SYSCTL_FILE:
        return finding(Kind.boot_drift, f"memtune's file sets {key} = {winner.value} at boot")
    return finding(
        Kind.boot_drift,
        f"{winner.path}:{winner.line} sets {key} = {winner.value} at boot and memtune's file does not set "
        f"{key} (it is applied after {winner.path}: tune writes it)",
    )


def _why(key: str, current: Any, wanted: Any) -> str:
    """What may have moved a knob when no one wrote it."""
    if (
        key == "vm.min_free_kbytes"
        and isinstance(current, int)
        and isinstance(wanted, int)
        and current > wanted
    ):
        return (
            " (the kernel raises vm.min_free_kbytes by itself when memory is added, by hot-plug or memory "
            "onlined lazily, and when khugepaged starts; if no one wrote it, that is why: tune writes the "
            "plan back)"
        )
    return ""


def _check_value(rule: RuleChecks, key: str, raw: Any, path: Path_) -> None:
    """A literal value against the knob's widest range (the facts decide the kernel's)."""
    knob = SYSCTLS[key]
    number = raw
    if isinstance(raw, str):
        if knob.unit not in UNIT_BYTES or not is_size(raw):
            kind = "a size or an integer" if knob.unit in UNIT_BYTES else "an integer"
            raise rule.error(f"{key} must be {kind} or an expression, not {raw!r}", path)
        number = parse_size(raw) // UNIT_BYTES[knob.unit]
    widest = knob.widest
    if not widest.low <= number <= widest.high:
        raise rule.error(
            f"{key} = {number} is outside {widest.low}..{widest.high}, its range on every kernel", path
        )


class Sysctl(KnobKind[Section, State, State]):
    name = "sysctl"
    order = 10
    rule_key = "sysctl"
    desired_key = "sysctl"
    # The knob names in the schema too, so an editor flags vm.swapiness as it is typed.
    rule_fields = {
        "sysctl": (
            dict[str, RuleValue],
            Field({}, json_schema_extra={"propertyNames": {"enum": _KNOB_NAMES}}),
        )
    }
    facts_fields = {
        "sysctl": (dict[str, Int | str | None], ...),
        "sysctl_sources": (dict[str, SysctlSource], ...),
    }
    desired_fields = {"sysctl": (dict[str, Planned], {})}
    merge_pattern = r"(vm|kernel)(\.[a-z0-9_]+)+"

    def merges(self, key: str) -> tuple[Merge, ...]:
        knob = SYSCTLS.get(key)
        return (knob.merge,) if knob else ()

    def setting_values(self, section: Section) -> Iterator[tuple[str, Any, Path_, Merge]]:
        for key, raw in section.items():
            if key in SYSCTLS:  # an unknown key is the checks' error
                yield key, raw, ("sysctl", key), SYSCTLS[key].merge

    def merge_keys(self, section: Section) -> set[str]:
        return set(section)

    def checks(self, section: Section, rule: RuleChecks) -> Iterator[Callable[[], None]]:
        def check(key: str, raw: Any) -> None:
            path = ("sysctl", key)
            if key not in SYSCTLS:
                raise rule.error(f"unknown knob {key!r}{suggest(key, SYSCTLS)}", path)
            if not rule.expression(raw, path):
                _check_value(rule, key, raw, path)

        for key, raw in section.items():
            yield lambda key=key, raw=raw: check(key, raw)  # type: ignore[misc]

    def schema(self, defs: dict[str, Any], rule: dict[str, Any]) -> None:
        any_value = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
        rule["sysctl"]["properties"] = {
            knob.name: {
                **any_value,
                "description": f"{knob.unit}, {knob.widest.low}..{knob.widest.high} (since "
                f"{'.'.join(map(str, knob.since))}); {MERGE_TEXT[knob.merge]}. {knob.doc}",
                "x-merge": knob.merge,
            }
            for knob in SYSCTLS.values()
        }
        rule["sysctl"]["additionalProperties"] = False

    # -- planning -----------------------------------------------------------------------------------------
    def start(self) -> State:
        return {}

    def plan(self, planner: Planner, ctx: RuleContext, section: Section, state: State) -> None:
        for key, raw in section.items():
            self._plan(planner, ctx, key, raw, state)

    def _plan(self, planner: Planner, ctx: RuleContext, key: str, raw: Any, state: State) -> None:
        knob = SYSCTLS[key]
        path = ("sysctl", key)
        facts = planner.facts
        release = facts.kernel.release
        planner.saw_kernel()
        planner.saw(f"sysctl.{key} is null")
        running = facts_sysctl(facts)
        if key in running and running[key] is None:
            return planner.lacking(ctx, key, f"kernel {release} has no {key}", path)
        if planner.version is not None and planner.version < knob.since:
            return planner.lacking(
                ctx, key, f"{key} first appeared in {format_version(knob.since)}; kernel is {release}", path
            )
        value, expression, used = planner.value(
            ctx, path, raw, unit_bytes=UNIT_BYTES.get(knob.unit), what=key
        )
        span = knob.span_for(planner.version)
        if not span.low <= value <= span.high:
            raise ctx.error(
                f"{key} = {value} is outside {span.low}..{span.high}, its range on kernel {release}", path
            )
        if key == "vm.min_free_kbytes":
            planner.saw("memory.mem_total_kb")
            limit = facts.memory.mem_total_kb * planner.guards.min_free_kbytes_max_percent / 100
            if value > limit:
                raise ctx.error(
                    f"{key} = {value} is above {planner.guards.min_free_kbytes_max_percent:g} % of RAM "
                    f"({int(limit)} kB): the host would be short of memory",
                    path,
                )
        new = ctx.provenance(path, expression, used)
        twin = knob.exclusive_with if knob.exclusive_with in state else None
        old_key = key if key in state else twin
        old = state.get(old_key) if old_key else None
        if old_key is not None and old is not None and planner.shared(ctx, old_key, old.provenance):
            merge = ctx.rule.merge.get(key, knob.merge)
            wins = partial(self._wins, planner, merge, (old_key, old.value), (key, value))
            combined = planner.combine(ctx, key, old_key, old, new, value=value, merge=merge, wins=wins)
            if not isinstance(combined, Provenance):
                if combined is not None:
                    state[old_key] = combined
                return None
            new = combined
        changes = old is None or old_key != key or old.value != value
        new = planner.settling(ctx, key, twin, new, changes=changes)
        provenance = replacing(new, state.get(key))
        if twin is not None:
            provenance = replacing(provenance, state.pop(twin))
            planner.holders.pop(twin, None)
        state[key] = ctx.planned(path, value, provenance)
        planner.hold(ctx, key)
        return None

    def _wins(self, planner: Planner, merge: Merge, old: tuple[str, Any], new: tuple[str, Any]) -> bool:
        """Whether the new value wins under ``merge`` (max or min), comparing twins in bytes."""
        before, after = self._magnitude(planner, *old), self._magnitude(planner, *new)
        return after > before if merge == "max" else after < before

    @staticmethod
    def _magnitude(planner: Planner, key: str, value: Any) -> int:
        unit = SYSCTLS[key].unit
        if unit == "percent" and SYSCTLS[key].exclusive_with:
            planner.saw("memory.mem_total_kb")
            # A ratio is a share of the memory the kernel counts (at most MemTotal) against its twin in bytes.
            return int(planner.facts.memory.mem_total_kb * 1024 * int(value) // 100)
        return int(value) * UNIT_BYTES.get(unit, 1)

    def finish(self, planner: Planner, state: State) -> dict[str, Any]:
        return {"sysctl": dict(sorted(state.items()))}

    # -- the desired state and the host -------------------------------------------------------------------
    def values(self, section: State) -> Iterator[tuple[str, Any, Provenance]]:
        for key, planned in section.items():
            yield key, planned.value, planned.provenance

    def items(self, section: State) -> Iterator[str]:
        return iter(section)

    def drift(self, section: State, facts: HostFacts, desired: BaseModel) -> Iterator[Check]:
        for key, planned in sorted(section.items()):
            yield self._check(key, planned.value, planned.provenance, facts)

    @staticmethod
    def _check(key: str, wanted: int | str, provenance: Provenance, facts: HostFacts) -> Check:
        running = facts_sysctl(facts)
        if key not in running or running[key] is None:
            reason = (
                "was not probed" if key not in running else f"does not exist on kernel {facts.kernel.release}"
            )
            return unsupported(key, wanted, provenance, f"{key} {reason}")
        current = running[key]
        findings: list[Finding] = []
        if not same_sysctl(current, wanted):
            findings += finding(
                Kind.runtime_drift, f"{key} is {current}, the plan says {wanted}{_why(key, current, wanted)}"
            )
        findings += _at_boot(key, wanted, facts)
        source = facts_sources(facts).get(key)
        winner = source.winner if source else None
        return Check(
            knob=key,
            desired=wanted,
            runtime=current,
            provenance=provenance,
            findings=findings,
            boot=winner.value if winner else None,
            boot_source=f"{winner.path}:{winner.line}" if winner else None,
        )

    def host_state(self, facts: HostFacts) -> Iterator[tuple[str, Value]]:
        sources = facts_sources(facts)
        for key, runtime in sorted(facts_sysctl(facts).items()):
            source = sources.get(key)
            winner = source.winner if source else None
            yield (
                key,
                value(
                    runtime=runtime,
                    boot=winner.value if winner else None,
                    boot_source=f"{winner.path}:{winner.line}" if winner else None,
                ),
            )

    def leftover(self, item: str, facts: HostFacts) -> tuple[bool, Any]:
        running = facts_sysctl(facts)
        return (True, running[item]) if item in running else (False, None)


KIND = Sysctl()
