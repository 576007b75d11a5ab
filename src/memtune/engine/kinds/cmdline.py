"""Kernel command line arguments memtune owns (``hugepagesz=``/``hugepages=`` of pools reserved at boot):
no rule section of their own, planned from the hugepages kind's pools, carried by the bootloader
configuration and in force after the next boot."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from memtune.audit.checks import Check, Finding, Kind, Value, finding, value
from memtune.engine.hugepages import boot_arguments
from memtune.engine.kinds import hugepages
from memtune.engine.kinds.base import KnobKind
from memtune.engine.planned import CmdlineArg, Provenance

if TYPE_CHECKING:
    from pydantic import BaseModel

    from memtune.engine.layers import Planner
    from memtune.facts.model import HostFacts

Desired = list[CmdlineArg]


class Cmdline(KnobKind[None, None, Desired]):
    name = "cmdline"
    order = 40
    desired_key = "kernel_cmdline"
    desired_fields = {"kernel_cmdline": (list[CmdlineArg], [])}

    def start(self) -> None:
        return None

    def finish(self, planner: Planner, state: None) -> dict[str, Any]:
        facts = planner.facts
        pools = planner.state(hugepages.KIND)
        cmdline, warnings = boot_arguments(pools.values(), facts.kernel.version, facts.kernel.release)
        planner.warnings += warnings
        return {"kernel_cmdline": cmdline}

    def values(self, section: Desired) -> Iterator[tuple[str, Any, Provenance]]:
        for arg in section:
            yield f"cmdline.{arg.arg}", arg.arg, arg.provenance

    def items(self, section: Desired) -> Iterator[str]:
        return (f"cmdline.{arg.arg}" for arg in section)

    def drift(self, section: Desired, facts: HostFacts, desired: BaseModel) -> Iterator[Check]:
        for arg in section:
            yield _check(arg.arg, arg.provenance, facts)

    def host_state(self, facts: HostFacts) -> Iterator[tuple[str, Value]]:
        entries = facts.memtune.bootloader
        yield (
            "cmdline",
            value(
                runtime=facts.kernel.cmdline,
                boot=" ".join(sorted({arg for entry in entries for arg in entry.args})) or None,
                boot_source=", ".join(entry.path for entry in entries) or None,
            ),
        )


def _check(arg: str, provenance: Provenance, facts: HostFacts) -> Check:
    running = (facts.kernel.cmdline or "").split()
    configured = [entry.path for entry in facts.memtune.bootloader if arg in entry.args]
    findings: list[Finding] = []
    if arg not in running:
        findings += finding(
            Kind.runtime_drift, f"{arg} is not on the running kernel's command line yet (reboot)", False
        )
    if not facts.memtune.bootloader:
        findings += finding(Kind.boot_drift, f"no bootloader configuration found to carry {arg}", False)
    elif len(configured) < len(facts.memtune.bootloader):
        missing = [e.path for e in facts.memtune.bootloader if e.path not in configured]
        findings += finding(Kind.boot_drift, f"{arg} is missing from {', '.join(missing)}")
    return Check(
        knob=f"cmdline.{arg}",
        desired=arg,
        runtime=arg if arg in running else None,
        boot=arg if configured else None,
        boot_source=", ".join(configured) or None,
        provenance=provenance,
        findings=findings,
    )


KIND = Cmdline()
