"""The parts of ``ansible_facts.memtune`` (facts.model.HostFacts is built from them and from the knob kinds'
sections). The models mirror the module's RETURN documentation field for field and forbid unknown keys."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt, model_validator

from memtune.model import Model

# Facts are typed strictly: a boolean is not a number, "5" is not an integer, and no count exceeds what the
# kernel's own 64-bit counters hold. (Mapping keys, which JSON writes as strings, are still converted.)
Int = Annotated[StrictInt, Field(ge=-(2**63), le=2**64 - 1)]
Kb = Annotated[StrictInt, Field(ge=0, le=2**64 - 1)]
Float = StrictFloat


class SwapDevice(Model):
    path: str
    type: str
    size_kb: Kb
    used_kb: Kb
    priority: Int


class Memory(Model):
    mem_total_kb: Annotated[StrictInt, Field(gt=0, le=2**64 - 1)]
    mem_free_kb: Kb | None
    mem_available_kb: Kb | None
    buffers_kb: Kb | None
    cached_kb: Kb | None
    swap_total_kb: Kb | None
    swap_free_kb: Kb | None
    swap_used_kb: Kb | None
    committed_as_kb: Int | None
    commit_limit_kb: Kb | None
    hugetlb_kb: Kb | None
    anon_hugepages_kb: Kb | None
    swap_devices: list[SwapDevice]


class NodePool(Model):
    """A hugepage pool on one NUMA node (the kernel keeps no per-node reservations)."""

    nr: Kb | None
    free: Kb | None
    surplus: Kb | None


class HostPool(NodePool):
    resv: Kb | None = None
    overcommit: Kb | None = None


class Node(Model):
    id: Kb
    mem_total_kb: Kb | None
    mem_free_kb: Kb | None
    mem_used_kb: Kb | None
    file_pages_kb: Kb | None
    cpus: list[Int]
    distances: dict[int, Int]
    has_memory: StrictBool
    hugepages: dict[int, NodePool]


class Numa(Model):
    available: StrictBool
    online: list[Int]
    possible: list[Int]
    nodes: Annotated[list[Node], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_ids(self) -> Numa:
        ids = [node.id for node in self.nodes]
        if len(set(ids)) != len(ids):
            raise ValueError(f"NUMA node ids must be unique, got {ids}")
        return self


class Hugepages(Model):
    default_size_kb: Kb | None
    sizes_kb: list[Int]
    pools: dict[int, HostPool]


class SysctlEntry(Model):
    path: str
    line: Annotated[StrictInt, Field(ge=1)]
    value: str


class SysctlSource(Model):
    """Every assignment of one key at boot, in the order the boot applies them (the probe's one answer:
    plugins/module_utils/_boot/sysctl_files.py). ``after_memtune``: the assignments applied after memtune's
    own file, which memtune cannot win against."""

    entries: list[SysctlEntry]
    winner: SysctlEntry | None
    after_memtune: list[SysctlEntry]


class TunedWrite(Model):
    path: str
    line: Annotated[StrictInt, Field(ge=1)]
    knob: Literal["enabled", "defrag"]
    value: str


class Tuned(Model):
    """An active TuneD profile: another writer of memory settings at boot. Its sysctls are in
    ``sysctl_sources``; ``thp`` are its transparent hugepage writes, which run after memtune's boot unit."""

    profiles: list[str]
    reapply_sysctl: StrictBool
    thp: list[TunedWrite]


class Cgroup(Model):
    version: Literal["v1", "v2", "hybrid", "none"]
    memory_controller: StrictBool
    mount: str | None


class Platform(Model):
    virtualization: str
    container: str | None
    proc_sys_vm_writable: StrictBool
    systemd: StrictBool
    cgroup: Cgroup


class PressureLine(Model):
    avg10: Float
    avg60: Float
    avg300: Float
    total: Int


class Pressure(Model):
    some: PressureLine | None = None
    full: PressureLine | None = None


class Kernel(Model):
    release: str
    version: tuple[Int, Int, Int] | None
    cmdline: str | None


class Evidence(Model):
    pid: Int
    comm: str
    match: str


class WorkloadContainer(Model):
    runtime: Literal["docker", "containerd", "cri-o", "podman", "lxc"] | None  # None: cgroupfs under a pod
    id: str


class WorkloadPod(Model):
    uid: str
    qos: Literal["Guaranteed", "Burstable", "BestEffort"]


class WorkloadInstance(Model):
    """One running instance of a workload: its processes, where they run (cgroup, systemd unit, container
    or pod) and the version its files give, each field's evidence in ``evidence``."""

    pids: list[Int]
    leader: Int
    cgroup: str | None
    cgroup_version: Literal[1, 2] | None
    unit: str | None
    unit_manager: str | None
    container: WorkloadContainer | None
    pod: WorkloadPod | None
    root: str | None
    data_dir: str | None
    version: str | None
    evidence: dict[str, str]

    @property
    def contained(self) -> bool:
        """Whether it runs in a container or a Kubernetes pod (its runtime owns its limits). The host's
        copy: ``_probe/placement.py`` ``contained``."""
        return self.container is not None or self.pod is not None

    def limit_target(self) -> tuple[str | None, str]:
        """(the unit, or the cgroup path below /sys/fs/cgroup, that limits this instance's memory; "") or
        (None, why memtune cannot limit it): what a ``workload:`` cgroup entry becomes."""
        if self.contained:
            return (
                None,
                "a container's or pod's memory limits belong to its runtime (its resources), not the host",
            )
        if self.unit and self.unit_manager == "system":
            return self.unit, ""
        if self.unit:
            return None, (
                f"its unit {self.unit} belongs to {self.unit_manager}; memtune sets unit limits through the "
                "system manager"
            )
        if self.cgroup is None:
            return None, "its cgroup could not be read"
        if self.cgroup_version == 1:
            return None, "no systemd unit runs it, and on cgroup v1 memtune limits only units"
        if self.cgroup == "/":
            return None, "it runs in the root cgroup, which takes no memory limits"
        return "/sys/fs/cgroup" + self.cgroup, ""

    def where(self) -> str:
        """Where it runs, for messages: ``pod <uid> (Burstable)``, ``docker container <id>``, the unit."""
        if self.pod is not None:
            return f"pod {self.pod.uid} ({self.pod.qos})"
        if self.container is not None:
            return f"{self.container.runtime or 'a'} container {self.container.id[:12]}"
        return self.unit or self.cgroup or f"pid {self.leader}"


class Workload(Model):
    name: str
    pids: list[Int]
    evidence: list[Evidence]
    version: str | None
    instances: list[WorkloadInstance]

    @property
    def on_host(self) -> bool:
        """Whether it runs on the host itself: an instance outside containers and pods, or no instance
        known (its processes exited while the probe read them; it counts as before issue 18). The host's
        copy: ``_probe/fingerprint.py`` ``on_host`` (tests/unit/engine/test_workload_instances.py keeps
        them equal)."""
        return not self.instances or any(not instance.contained for instance in self.instances)


CgroupLimit = int | str  # bytes, or "infinity"


class ManagedCgroup(Model):
    """A cgroup memtune manages: a systemd unit (limits at boot from its drop-in) or a raw path."""

    unit: str | None
    path: str | None
    boot: dict[str, CgroupLimit] | None
    runtime: dict[str, CgroupLimit | None] | None


class BootloaderArgs(Model):
    path: str
    args: list[str]


class BootUnit(Model):
    installed: StrictBool
    enabled: StrictBool


class LedgerGeneration(Model):
    """One run that changed what memtune manages: ``items`` are the values it set, named as the audit
    names its checks (``vm.swappiness``, ``thp.enabled``, ``hugepages.2048kB[node0]``, ``cmdline.<arg>``,
    ``cgroup.<unit or path>.<limit>``)."""

    id: Int
    time: str | None
    action: Literal["apply", "rollback-original", "migrated"]
    plan_hash: str | None
    items: list[str]


class Ledger(Model):
    """The host's ledger (/var/lib/memtune/ledger.json), small: no values, only names. ``error`` says why a
    file there cannot be used (then the other fields are empty)."""

    path: str
    error: str | None
    originals: list[str]
    generations: list[LedgerGeneration]

    @property
    def managed(self) -> frozenset[str]:
        """What memtune set last and has not yet restored: the newest generation's items."""
        return frozenset(self.generations[-1].items) if self.generations else frozenset()


class MemtuneState(Model):
    """What memtune left on the host and what the next boot restores from it."""

    sysctl_file: StrictBool
    boot_unit: BootUnit
    boot_writes: dict[str, str]
    snapshot: StrictBool
    ledger: Ledger | None
    owned_cmdline: list[str]
    bootloader: list[BootloaderArgs]
    cgroups: list[ManagedCgroup]
