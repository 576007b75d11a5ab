"""The controller's view of ``ansible_facts.memtune``, the dict the ``memory_facts`` module returns.

The models mirror the module's RETURN documentation field for field and forbid unknown keys, so a
change on one side fails the test that runs the real module and validates its output here. The knob
kinds' sections (``sysctl``, ``thp``, ``hugepages``, ...) come from the kinds registry (engine/kinds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, ValidationError, create_model

from memtune.engine.kinds import KINDS
from memtune.facts.parts import (
    Int,
    Kernel,
    Memory,
    MemtuneState,
    Node,
    Numa,
    Platform,
    Pressure,
    PressureLine,
    SysctlEntry,
    SysctlSource,
    Tuned,
    Workload,
)
from memtune.model import Model

__all__ = [
    "SCHEMA_VERSION",
    "FactsError",
    "HostFacts",
    "Node",
    "PressureLine",
    "SysctlEntry",
    "SysctlSource",
    "parse_facts",
]

SCHEMA_VERSION = 4


def _exact_int(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"schema_version must be an integer, not {value!r}")
    return value


class HostFactsBase(Model):
    """Everything the probe knows about one host; validated before any planning. The knob kinds' sections
    are added from the registry (a kind reads its own through a typed accessor)."""

    schema_version: Annotated[Literal[4], BeforeValidator(_exact_int)]
    root: str
    kernel: Kernel
    memory: Memory
    numa: Numa
    tuned: Tuned | None
    platform: Platform
    pressure: Pressure | None
    vmstat: dict[str, Int]
    workloads: list[Workload]
    memtune: MemtuneState
    warnings: list[str]

    @property
    def workload_names(self) -> frozenset[str]:
        """Every detected workload, those seen only in containers or pods included."""
        return frozenset(workload.name for workload in self.workloads)

    @property
    def host_workload_names(self) -> frozenset[str]:
        """The workloads that run on the host itself (not only in containers or pods)."""
        return frozenset(workload.name for workload in self.workloads if workload.on_host)

    def workload(self, name: str) -> Workload | None:
        return next((workload for workload in self.workloads if workload.name == name), None)


if TYPE_CHECKING:
    HostFacts = HostFactsBase
else:
    HostFacts = create_model(
        "HostFacts",
        __base__=HostFactsBase,
        __doc__=HostFactsBase.__doc__,
        __module__=__name__,
        **{name: field for kind in KINDS for name, field in kind.facts_fields.items()},
    )


class FactsError(ValueError):
    """Facts that cannot be used: unreadable, not JSON, another schema version, or the wrong shape."""


def _which_side(version: object) -> str:
    """What to upgrade when the probe's facts and this controller disagree on the schema."""
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        return (
            f"this memtune reads version {SCHEMA_VERSION}: the probe is newer than the controller; upgrade "
            "memtune (the collection and the memtune package) on the controller"
        )
    if isinstance(version, int) and not isinstance(version, bool):
        return (
            f"this memtune reads version {SCHEMA_VERSION}: the facts come from an older probe; probe the "
            "host again with this memtune.fleet collection (saved facts: collect them again)"
        )
    return f"this memtune reads version {SCHEMA_VERSION}; probe the host again with this collection"


def parse_facts(data: Any, source: str = "<facts>") -> HostFacts:
    """Validate a facts dict. Accepts the bare dict, ``{"memtune": ...}``, ``{"ansible_facts": {...}}``
    (a module result) and an Ansible jsonfile fact cache entry (``{"ansible_memtune": ...}``)."""
    if isinstance(data, dict) and "schema_version" not in data:
        if isinstance(data.get("ansible_facts"), dict):
            data = data["ansible_facts"]
        for key in ("memtune", "ansible_memtune"):
            if isinstance(data.get(key), dict):
                data = data[key]
                break
    if not isinstance(data, dict):
        raise FactsError(f"{source}: expected a JSON object with memtune facts")
    version = data.get("schema_version")
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise FactsError(f"{source}: facts schema_version {version!r}; {_which_side(version)}")
    try:
        return HostFacts.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()[:5]
        )
        raise FactsError(f"{source}: invalid facts: {problems}") from None
