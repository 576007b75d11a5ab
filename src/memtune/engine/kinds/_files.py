"""The "setting files" family: a kind that is a directory of files, one setting each, in one of three
formats: a bracketed choice (``always [madvise] never``), an integer, or a ``Y``/``N`` word. Transparent
hugepages and zswap are declarations of this family (engine/kinds/thp.py, zswap.py): a table of
``Setting`` s; the policy section, the facts section, planning, drift, baseline and leftovers follow.

Written at run time by memory_apply, kept for the next boot by memtune's boot unit (a ``w`` line of its
tmpfiles conf, as ``facts.memtune.boot_writes``), like the host side's copy of the same table.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, cast

from pydantic import Field, StrictBool, StrictInt, create_model

from memtune.audit.checks import (
    BOOT_UNIT,
    Check,
    Finding,
    Kind,
    Value,
    boot_write,
    finding,
    unsupported,
    value,
)
from memtune.engine.kinds.base import KnobKind, read
from memtune.engine.knobs import MERGE_TEXT, Merge, Version, format_version
from memtune.engine.planned import Planned, Provenance, replacing
from memtune.model import Model
from memtune.policy.source import Path_

if TYPE_CHECKING:
    from pydantic import BaseModel

    from memtune.engine.layers import Planner
    from memtune.engine.rules import RuleContext
    from memtune.facts.model import HostFacts

Form = Literal["choice", "int", "bool"]
WORDS = {True: "Y", False: "N"}


@dataclass(frozen=True)
class Setting:
    """One file below the kind's directory. ``choices``: choice -> first kernel offering it (``choice``);
    ``low``..``high``: the valid range (``int``). ``optional``: a kernel with the directory may lack the
    file (its fact is then null); ``older_probes``: probes before it was added did not report it."""

    file: str
    form: Form
    since: Version
    merge: Merge = "agree"
    doc: str | None = None
    choices: Mapping[str, Version] = field(default_factory=dict)
    low: int = 0
    high: int = 0
    optional: bool = False
    older_probes: bool = False

    def rule_type(self) -> Any:
        if self.form == "choice":
            return Literal[tuple(self.choices)]
        if self.form == "int":
            return Annotated[StrictInt, Field(ge=self.low, le=self.high)]
        return StrictBool

    def facts_fields(self, key: str) -> dict[str, tuple[Any, Any]]:
        default: Any = None if self.older_probes else ...
        if self.form == "choice":
            return {
                key: (str | None, default),
                f"{key}_choices": (list[str], [] if self.older_probes else ...),
            }
        kind: Any = int if self.form == "int" else Literal["Y", "N"]
        return {key: (kind | None, default)}


class RuleSection(Model):
    """The base of a family kind's rule section."""

    def settings(self) -> dict[str, int | str | bool]:
        """The settings the section sets, as written."""
        return {key: value for key in type(self).model_fields if (value := getattr(self, key)) is not None}


Section = RuleSection | None
State = dict[str, Planned]


class SettingFiles(KnobKind[Section, State, State]):
    """A kind of the family: subclasses declare the class attributes below; the models are built from
    ``settings`` when the subclass is defined."""

    directory: ClassVar[str]
    label: ClassVar[str]  # in messages: "THP defrag defer first appeared in 4.6"
    absent: ClassVar[str]  # why a host without the directory lacks every setting
    settings: ClassVar[dict[str, Setting]]
    model_name: ClassVar[str]  # the policy and facts models' name (the schema's $defs)
    baseline: ClassVar[tuple[str, ...]]  # the settings a baseline records
    rule_model: ClassVar[type[RuleSection]]
    facts_model: ClassVar[type[Model]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.rule_key = cls.desired_key = cls.name
        cls.merge_pattern = rf"{cls.name}\.[a-z_]+"
        rule_fields: dict[str, Any] = {
            key: (setting.rule_type() | None, Field(None, description=setting.doc))
            for key, setting in cls.settings.items()
        }
        facts_fields: dict[str, Any] = {
            name: spec
            for key, setting in cls.settings.items()
            for name, spec in setting.facts_fields(key).items()
        }
        cls.rule_model = create_model(
            cls.model_name,
            __base__=RuleSection,
            __module__=cls.__module__,
            **rule_fields,
        )
        cls.facts_model = create_model(
            cls.model_name,
            __base__=Model,
            __module__=cls.__module__,
            **facts_fields,
        )
        cls.rule_models = (cls.rule_model,)
        cls.rule_fields = {cls.name: (cls.rule_model | None, None)}
        cls.facts_fields = {cls.name: (cls.facts_model | None, ...)}
        keys: Any = Literal[tuple(cls.settings)]
        cls.desired_fields = {cls.name: (dict[keys, Planned], {})}

    # -- sections -----------------------------------------------------------------------------------------
    def facts_section(self, facts: HostFacts) -> Model | None:
        return cast("Model | None", read(facts, self.name))

    def fact(self, facts: HostFacts, key: str) -> int | str | None:
        """The value setting ``key`` has now (None: no such directory or file)."""
        found = self.facts_section(facts)
        return cast("int | str | None", read(found, key)) if found is not None else None

    def chosen(self, section: Section) -> dict[str, int | str]:
        """The settings a rule's section sets, as the file takes them (booleans as Y/N)."""
        given = section.settings() if section is not None else {}
        return {
            key: WORDS[bool(raw)] if self.settings[key].form == "bool" else raw for key, raw in given.items()
        }

    def sets(self, section: Section) -> bool:
        return section is not None

    def merges(self, key: str) -> tuple[Merge, ...]:
        prefix = f"{self.name}."
        if key.startswith(prefix) and key[len(prefix) :] in self.settings:
            return (self.settings[key[len(prefix) :]].merge,)
        return ()

    def setting_values(self, section: Section) -> Iterator[tuple[str, Any, Path_, Merge]]:
        for key, raw in self.chosen(section).items():
            yield f"{self.name}.{key}", raw, (self.name, key), self.settings[key].merge

    def schema(self, defs: dict[str, Any], rule: dict[str, Any]) -> None:
        for key, setting in self.settings.items():
            prop = defs[self.model_name]["properties"][key]
            prop["description"] = f"{prop.get('description', key)}; {MERGE_TEXT[setting.merge]}"
            prop["x-merge"] = setting.merge

    # -- planning -----------------------------------------------------------------------------------------
    def start(self) -> State:
        return {}

    def plan(self, planner: Planner, ctx: RuleContext, section: Section, state: State) -> None:
        for key, wanted in self.chosen(section).items():
            self._plan(planner, ctx, key, wanted, state)

    def _plan(self, planner: Planner, ctx: RuleContext, key: str, wanted: int | str, state: State) -> None:
        setting = self.settings[key]
        path = (self.name, key)
        name = f"{self.name}.{key}"
        planner.saw_kernel()
        planner.saw(f"{self.name} is null")
        planner.saw(f"{name}_choices" if setting.form == "choice" else f"{name} is null")
        if setting.form == "choice" and setting.optional:
            planner.saw(f"{name} is null")
        facts = self.facts_section(planner.facts)
        if facts is None:
            return planner.lacking(ctx, name, self.absent, path)
        release = planner.facts.kernel.release
        if (setting.form != "choice" or setting.optional) and read(facts, key) is None:
            reason = f"kernel {release} has no {self.directory}/{setting.file} (or the probe did not read it)"
            return planner.lacking(ctx, name, reason, path)
        choices = cast("list[str]", read(facts, f"{key}_choices")) if setting.form == "choice" else []
        if choices and wanted not in choices:
            reason = f"kernel {release} offers {self.label} {key} {'/'.join(choices)}, not {wanted}"
            return planner.lacking(ctx, name, reason, path)
        since = setting.choices[str(wanted)] if setting.form == "choice" else setting.since
        if not choices and planner.version is not None and planner.version < since:
            reason = (
                f"{self.label} {key} {wanted} first appeared in {format_version(since)}; kernel is {release}"
            )
            return planner.lacking(ctx, name, reason, path)
        new = ctx.provenance(path)
        old = state.get(key)
        if old is not None and planner.shared(ctx, name, old.provenance):
            wins = partial(_wins, setting.merge, old.value, wanted)
            combined = planner.combine(
                ctx, name, name, old, new, value=wanted, merge=setting.merge, wins=wins
            )
            if not isinstance(combined, Provenance):
                if combined is not None:
                    state[key] = combined
                return None
            new = combined
        changes = old is None or old.value != wanted
        provenance = replacing(planner.settling(ctx, name, None, new, changes=changes), old)
        state[key] = ctx.planned(path, wanted, provenance)
        planner.hold(ctx, name)
        return None

    def finish(self, planner: Planner, state: State) -> dict[str, Any]:
        return {self.name: {key: state[key] for key in self.settings if key in state}}

    # -- the desired state and the host -------------------------------------------------------------------
    def values(self, section: State) -> Iterator[tuple[str, Any, Provenance]]:
        for key, planned in section.items():
            yield f"{self.name}.{key}", planned.value, planned.provenance

    def items(self, section: State) -> Iterator[str]:
        return (f"{self.name}.{key}" for key in section)

    def at_boot(self, facts: HostFacts, key: str) -> tuple[str | None, str | None]:
        """(value, source) of setting ``key`` after the next boot: memtune's boot unit's write."""
        return boot_write(facts, f"{self.directory}/{self.settings[key].file}")

    def boot_mendable(self, facts: HostFacts, key: str) -> bool:
        """Whether memory_apply can mend the setting's boot value (nothing else writes it later)."""
        return True

    def drift(self, section: State, facts: HostFacts, desired: BaseModel) -> Iterator[Check]:
        for key, planned in sorted(section.items()):
            yield self._check(key, planned.value, planned.provenance, facts)

    def _check(self, key: str, wanted: int | str, provenance: Provenance, facts: HostFacts) -> Check:
        knob = f"{self.name}.{key}"
        found = self.facts_section(facts)
        if found is None:
            return unsupported(knob, wanted, provenance, self.absent)
        current = read(found, key)
        boot_text, source = self.at_boot(facts, key)
        # Integer settings are files of one number; the boot unit's writes are text.
        boot: int | str | None = (
            int(boot_text)
            if self.settings[key].form == "int" and boot_text is not None and boot_text.isdigit()
            else boot_text
        )
        findings: list[Finding] = []
        if current != wanted:
            findings += finding(Kind.runtime_drift, f"{knob} is {current}, the plan says {wanted}")
        if boot != wanted:
            findings += finding(
                Kind.boot_drift,
                f"{knob} boots as {boot} ({source})"
                if boot is not None
                else f"nothing sets {knob} at boot: {BOOT_UNIT} does not restore it",
                mendable=self.boot_mendable(facts, key),
            )
        return Check(
            knob=knob,
            desired=wanted,
            runtime=current,
            boot=boot,
            boot_source=source,
            provenance=provenance,
            findings=findings,
        )

    def host_state(self, facts: HostFacts) -> Iterator[tuple[str, Value]]:
        found = self.facts_section(facts)
        if found is None:
            return
        for key in self.baseline:
            boot, source = self.at_boot(facts, key)
            yield f"{self.name}.{key}", value(read(found, key), boot, source)

    def leftover(self, item: str, facts: HostFacts) -> tuple[bool, Any]:
        prefix = f"{self.name}."
        if not item.startswith(prefix):
            return False, None
        found = self.facts_section(facts)
        return True, getattr(found, item[len(prefix) :], None) if found is not None else None


def _wins(merge: Merge, old: Any, new: Any) -> bool:
    return bool(new > old) if merge == "max" else bool(new < old)
