"""Drift: how a host differs from its plan, per knob and NUMA node, now and at the next boot.

``drift(desired, facts, host)`` is pure. For every planned value it makes one ``Check`` (one knob, one
node where that applies) holding the desired value, the value in force now, what the next boot will
restore and where that comes from, and the ``Finding`` s that make it fail:

- ``runtime_drift``: the kernel runs another value now;
- ``boot_drift``: the next boot will restore another value (another sysctl file wins, memtune's boot
  restore or bootloader entry is missing or stale);
- ``shortfall``: memtune asked for a hugepage pool and the kernel holds fewer pages;
- ``unsupported``: the host's kernel lacks the knob (the plan skipped it) or the node or page size;
- ``leftover``: memtune set the value (the host ledger's newest generation names it), the plan no longer
  contains it, and it is not restored yet: the next tune puts its original value back and takes it out of
  memtune's files;
- ``unmanaged``: no policy covers the host at all.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import Any

from memtune.engine.desired import DesiredState, HugepagePlan, Provenance, UnitCgroup
from memtune.engine.knobs import THP_FILES, THP_INTEGERS
from memtune.facts.model import HostFacts, ManagedCgroup, SysctlEntry
from memtune.model import Model

MEMTUNE_SYSCTL_FILE = "/etc/sysctl.d/90-memtune.conf"
BOOT_UNIT = "memtune-boot.service"
THP_DIR = "/sys/kernel/mm/transparent_hugepage"
NODES_DIR = "/sys/devices/system/node"
HUGEPAGES_DIR = "/sys/kernel/mm/hugepages"
# The kernel keeps cgroup limits in whole pages: a runtime value up to this much below the planned
# byte count is the same limit (64 KiB covers every page size Linux runs with).
CGROUP_ROUNDING = 65536


class Kind(enum.StrEnum):
    runtime_drift = "runtime_drift"
    boot_drift = "boot_drift"
    shortfall = "shortfall"
    unsupported = "unsupported"
    unmanaged = "unmanaged"
    leftover = "leftover"


# What memory_apply can mend; unsupported and unmanaged need a policy or a kernel, not an apply.
APPLICABLE = frozenset({Kind.runtime_drift, Kind.boot_drift, Kind.shortfall, Kind.leftover})


class Finding(Model):
    """One way a check fails. ``mendable``: memory_apply can put it right (it never edits other people's
    files, so a sysctl file of theirs that wins at boot is reported, not mended)."""

    kind: Kind
    message: str
    mendable: bool = True


class Check(Model):
    """One planned value on one host (and NUMA node): what it should be, is, and will be after boot."""

    knob: str
    node: int | None = None
    desired: Any
    runtime: Any = None
    boot: Any = None
    boot_source: str | None = None
    provenance: Provenance | None = None
    findings: list[Finding] = []

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def name(self) -> str:
        return self.knob if self.node is None else f"{self.knob}[node{self.node}]"


class HostDrift(Model):
    host: str
    checks: list[Check]

    @property
    def drifted(self) -> bool:
        return any(not check.ok for check in self.checks)

    def findings(self) -> Iterator[tuple[Check, Finding]]:
        for check in self.checks:
            for finding in check.findings:
                yield check, finding

    def applicable(self) -> list[Check]:
        """Checks memory_apply can mend: the ones that make the tune action call it."""
        return [c for c in self.checks if any(f.kind in APPLICABLE and f.mendable for f in c.findings)]


def same_sysctl(current: Any, wanted: Any) -> bool:
    """sysctl values compare as the kernel prints them: ints as ints, strings with white space folded."""
    if isinstance(current, str) or isinstance(wanted, str):
        return " ".join(str(current).split()) == " ".join(str(wanted).split())
    return bool(current == wanted)


def _finding(kind: Kind, message: str, mendable: bool = True) -> list[Finding]:
    return [Finding(kind=kind, message=message, mendable=mendable)]


def boot_conflict(key: str, wanted: int | str, facts: HostFacts) -> SysctlEntry | None:
    """The writer that lasts at boot when it runs after memtune's file and sets another value: memtune never
    edits other people's files, so this is reported, not mended."""
    source = facts.sysctl_sources.get(key)
    if source and source.after_memtune and not same_sysctl(source.after_memtune[-1].value, wanted):
        return source.after_memtune[-1]
    return None


def _sysctl_at_boot(key: str, wanted: int | str, facts: HostFacts) -> list[Finding]:
    source = facts.sysctl_sources.get(key)
    winner = source.winner if source else None
    if winner is None:
        return _finding(Kind.boot_drift, f"no sysctl file sets {key}: the kernel default is back at boot")
    if (beating := boot_conflict(key, wanted, facts)) is not None:
        return _finding(
            Kind.boot_drift,
            f"{beating.path}:{beating.line} sets {key} = {beating.value} at boot, after memtune's file "
            f"({MEMTUNE_SYSCTL_FILE}), so it wins",
            mendable=False,
        )
    if same_sysctl(winner.value, wanted):
        return []
    if winner.path == MEMTUNE_SYSCTL_FILE:
        return _finding(Kind.boot_drift, f"memtune's file sets {key} = {winner.value} at boot")
    return _finding(
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


def _sysctl(key: str, wanted: int | str, provenance: Provenance, facts: HostFacts) -> Check:
    if key not in facts.sysctl or facts.sysctl[key] is None:
        reason = (
            "was not probed"
            if key not in facts.sysctl
            else f"does not exist on kernel {facts.kernel.release}"
        )
        return Check(
            knob=key,
            desired=wanted,
            provenance=provenance,
            findings=_finding(Kind.unsupported, f"{key} {reason}"),
        )
    current = facts.sysctl[key]
    findings: list[Finding] = []
    if not same_sysctl(current, wanted):
        findings += _finding(
            Kind.runtime_drift, f"{key} is {current}, the plan says {wanted}{_why(key, current, wanted)}"
        )
    findings += _sysctl_at_boot(key, wanted, facts)
    source = facts.sysctl_sources.get(key)
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


def _boot_write(facts: HostFacts, path: str) -> tuple[str | None, str | None]:
    """(value, source) the memtune boot unit writes to ``path`` at boot, if it is enabled."""
    state = facts.memtune
    if state.boot_unit.enabled and path in state.boot_writes:
        return state.boot_writes[path], BOOT_UNIT
    return None, None


def tuned_thp(facts: HostFacts, name: str) -> tuple[str, str] | None:
    """(value, source) of the active TuneD profile's last write of THP ``name``: TuneD starts after
    memtune's boot unit, so its value is the one that lasts."""
    writes = [w for w in (facts.tuned.thp if facts.tuned else []) if w.knob == name]
    if not writes:
        return None
    profiles = " ".join(facts.tuned.profiles) if facts.tuned else ""
    return writes[-1].value, f"{writes[-1].path}:{writes[-1].line} (TuneD profile {profiles})"


def thp_at_boot(facts: HostFacts, name: str) -> tuple[str | None, str | None]:
    """(value, source) of THP ``name`` (enabled, defrag) after the next boot: an active TuneD profile, else
    memtune's boot unit, else the running kernel's command line for ``enabled``."""
    if (tuned := tuned_thp(facts, name)) is not None:
        return tuned
    boot, source = _boot_write(facts, f"{THP_DIR}/{THP_FILES.get(name, name)}")
    if boot is None and name == "enabled":
        for arg in (facts.kernel.cmdline or "").split():
            if arg.startswith("transparent_hugepage="):
                boot, source = arg.partition("=")[2], "kernel command line"
    return boot, source


def pool_at_boot(facts: HostFacts, node: int, size_kb: int) -> tuple[str | None, str | None]:
    """(pages, source) memtune's boot unit restores in the ``size_kb`` pool of NUMA node ``node``; on a
    kernel without NUMA nodes, node 0's pool is the host-wide one memory_apply writes."""
    if node == 0 and not facts.numa.available:
        return _boot_write(facts, f"{HUGEPAGES_DIR}/hugepages-{size_kb}kB/nr_hugepages")
    return _boot_write(facts, f"{NODES_DIR}/node{node}/hugepages/hugepages-{size_kb}kB/nr_hugepages")


def _thp(name: str, wanted: int | str, provenance: Provenance, facts: HostFacts) -> Check:
    knob = f"thp.{name}"
    if facts.thp is None:
        return Check(
            knob=knob,
            desired=wanted,
            provenance=provenance,
            findings=_finding(Kind.unsupported, "this kernel has no transparent hugepages"),
        )
    current = getattr(facts.thp, name)
    boot_text, source = thp_at_boot(facts, name)
    # The integer settings (khugepaged) are files of one number; the boot unit's writes are text.
    boot: int | str | None = (
        int(boot_text)
        if name in THP_INTEGERS and boot_text is not None and boot_text.isdigit()
        else boot_text
    )
    findings: list[Finding] = []
    if current != wanted:
        findings += _finding(Kind.runtime_drift, f"{knob} is {current}, the plan says {wanted}")
    if boot != wanted:
        findings += _finding(
            Kind.boot_drift,
            f"{knob} boots as {boot} ({source})"
            if boot is not None
            else f"nothing sets {knob} at boot: {BOOT_UNIT} does not restore it",
            mendable=tuned_thp(facts, name) is None,
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


def _pool_checks(pool: HugepagePlan, facts: HostFacts, cmdline: list[str]) -> Iterator[Check]:
    knob = f"hugepages.{pool.size_kb}kB"
    nodes = {node.id: node for node in facts.numa.nodes}
    boot_args = [arg for arg in cmdline if arg.startswith(("hugepages=", "hugepagesz="))]
    for node_key, count in sorted(pool.per_node.items(), key=lambda item: int(item[0])):
        node_id = int(node_key)
        node = nodes.get(node_id)
        held = node.hugepages.get(pool.size_kb) if node else None
        base = {"knob": knob, "node": node_id, "desired": count, "provenance": pool.provenance}
        if held is None or held.nr is None:
            missing = f"node {node_id}" if node is None else f"{pool.size_kb} kB pages on node {node_id}"
            yield Check(**base, findings=_finding(Kind.unsupported, f"this host has no {missing}"))
            continue
        boot, source = pool_at_boot(facts, node_id, pool.size_kb)
        requested = boot == str(count)
        findings: list[Finding] = []
        if held.nr < count and (requested or (pool.boot and boot_args)):
            findings += _finding(Kind.shortfall, f"node {node_id} holds {held.nr} of {count} requested pages")
        elif held.nr != count:
            findings += _finding(
                Kind.runtime_drift, f"node {node_id} holds {held.nr} pages, the plan {count}"
            )
        if not pool.boot and not requested:
            findings += _finding(
                Kind.boot_drift,
                f"{BOOT_UNIT} restores {boot} pages on node {node_id}"
                if boot is not None
                else f"nothing restores this pool on node {node_id} at boot",
            )
        yield Check(**base, runtime=held.nr, boot=boot, boot_source=source, findings=findings)


def _cmdline(arg: str, provenance: Provenance, facts: HostFacts) -> Check:
    running = (facts.kernel.cmdline or "").split()
    configured = [entry.path for entry in facts.memtune.bootloader if arg in entry.args]
    findings: list[Finding] = []
    if arg not in running:
        findings += _finding(
            Kind.runtime_drift, f"{arg} is not on the running kernel's command line yet (reboot)", False
        )
    if not facts.memtune.bootloader:
        findings += _finding(Kind.boot_drift, f"no bootloader configuration found to carry {arg}", False)
    elif len(configured) < len(facts.memtune.bootloader):
        missing = [e.path for e in facts.memtune.bootloader if e.path not in configured]
        findings += _finding(Kind.boot_drift, f"{arg} is missing from {', '.join(missing)}")
    return Check(
        knob=f"cmdline.{arg}",
        desired=arg,
        runtime=arg if arg in running else None,
        boot=arg if configured else None,
        boot_source=", ".join(configured) or None,
        provenance=provenance,
        findings=findings,
    )


def _same_limit(current: Any, wanted: int | str) -> bool:
    if isinstance(wanted, int) and isinstance(current, int):
        return wanted - CGROUP_ROUNDING < current <= wanted
    return bool(current == wanted)


def _managed(facts: HostFacts, unit: str | None, path: str | None) -> ManagedCgroup | None:
    for entry in facts.memtune.cgroups:
        if (unit and entry.unit == unit) or (path and entry.path == path):
            return entry
    return None


def _cgroup_checks(group: Any, facts: HostFacts) -> Iterator[Check]:
    unit = group.unit if isinstance(group, UnitCgroup) else None
    path = None if unit else group.path
    entry = _managed(facts, unit, path)
    for name, wanted in sorted(group.limits.items()):
        runtime = entry.runtime.get(name) if entry and entry.runtime else None
        boot = entry.boot.get(name) if entry and entry.boot else None
        findings: list[Finding] = []
        if entry is None or entry.runtime is None:
            where = f"unit {unit} has no cgroup (not running?)" if unit else f"cgroup {path} does not exist"
            findings += _finding(Kind.runtime_drift, f"{name} is not in force: {where}")
        elif not _same_limit(runtime, wanted):
            findings += _finding(Kind.runtime_drift, f"{name} is {runtime}, the plan says {wanted}")
        if unit and not _same_limit(boot, wanted):
            findings += _finding(
                Kind.boot_drift,
                f"memtune's drop-in for {unit} sets {name}={boot}"
                if boot is not None
                else f"no memtune drop-in sets {name} for {unit} at boot",
            )
        yield Check(
            knob=f"cgroup.{unit or path}.{name}",
            desired=wanted,
            runtime=runtime,
            boot=boot,
            boot_source=f"{unit}.d/50-memtune.conf" if boot is not None else None,
            provenance=group.provenance,
            findings=findings,
        )


def planned_items(desired: DesiredState) -> set[str]:
    """The names of every value ``desired`` sets, as the host ledger's generations name them
    (plugins/module_utils/_ledger.items is the remote copy; a test keeps the two equal)."""
    names = set(desired.sysctl) | {f"thp.{knob}" for knob in desired.thp}
    for pool in desired.hugepages:
        names |= {f"hugepages.{pool.size_kb}kB[node{node}]" for node in pool.per_node}
    names |= {f"cmdline.{arg.arg}" for arg in desired.kernel_cmdline}
    for group in desired.cgroups:
        target = group.unit if isinstance(group, UnitCgroup) else group.path
        names |= {f"cgroup.{target}.{name}" for name in group.limits}
    return names


def _leftover_runtime(item: str, facts: HostFacts) -> Any:
    if item in facts.sysctl:
        return facts.sysctl[item]
    if item.startswith("thp.") and facts.thp is not None:
        return getattr(facts.thp, item[len("thp.") :], None)
    return None


def leftovers(desired: DesiredState, facts: HostFacts) -> list[Check]:
    """What the ledger's newest generation set and ``desired`` no longer plans (see ``leftover``)."""
    ledger = facts.memtune.ledger
    if ledger is None or not ledger.generations:
        return []
    newest = ledger.generations[-1]
    return [
        Check(
            knob=item,
            desired=None,
            runtime=_leftover_runtime(item, facts),
            findings=_finding(
                Kind.leftover,
                f"{item} was set by memtune (generation {newest.id}) and is no longer planned: the next tune "
                + (
                    "restores its original value and removes it from memtune's files"
                    if item in ledger.originals
                    else "removes it from memtune's files"
                ),
            ),
        )
        for item in sorted(ledger.managed - planned_items(desired))
    ]


def drift(desired: DesiredState, facts: HostFacts, host: str) -> HostDrift:
    """Every planned value of ``host`` against its facts; see the module docstring for the kinds."""
    checks: list[Check] = []
    for key, planned in sorted(desired.sysctl.items()):
        checks.append(_sysctl(key, planned.value, planned.provenance, facts))
    for name, planned in sorted(desired.thp.items()):
        checks.append(_thp(name, planned.value, planned.provenance, facts))
    cmdline = [arg.arg for arg in desired.kernel_cmdline]
    for pool in desired.hugepages:
        checks.extend(_pool_checks(pool, facts, cmdline))
    for arg in desired.kernel_cmdline:
        checks.append(_cmdline(arg.arg, arg.provenance, facts))
    for group in desired.cgroups:
        checks.extend(_cgroup_checks(group, facts))
    for skipped in desired.skipped:
        checks.append(
            Check(
                knob=skipped.knob,
                desired=None,
                provenance=skipped.provenance,
                findings=_finding(Kind.unsupported, skipped.reason),
            )
        )
    checks.extend(leftovers(desired, facts))
    if not checks:
        checks.append(
            Check(
                knob="policy",
                desired=None,
                findings=_finding(Kind.unmanaged, "no policy rule applies to this host"),
            )
        )
    return HostDrift(host=host, checks=checks)
