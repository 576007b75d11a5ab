# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What memtune itself left on a host, and what the next boot will restore from it: its sysctl.d file,
the boot-time restore unit and the values it writes, cgroup drop-ins (with the limits in force now),
and the kernel command-line arguments in the bootloader configuration.

The probe reports this so the controller can tell runtime drift from boot drift without a second call.
"""

from __future__ import annotations

from ansible_collections.memtune.fleet.plugins.module_utils._boot.bootloader import (
    BLS_DIR,
    DEFAULT_GRUB,
    bls_args,
    grub_args,
)
from ansible_collections.memtune.fleet.plugins.module_utils._contract import (
    BOOT_CONF,
    BOOT_UNIT,
    BOOT_UNIT_LINK,
    DROPIN_NAME,
    SYSCTL_FILE,
    SYSTEMD_DIR,
)
from ansible_collections.memtune.fleet.plugins.module_utils._host.cgroup import V1_FILES, V2_FILES, read_raw
from ansible_collections.memtune.fleet.plugins.module_utils._host.ledger import LedgerError, summary
from ansible_collections.memtune.fleet.plugins.module_utils._host.ledger import load as load_ledger
from ansible_collections.memtune.fleet.plugins.module_utils._host.procfs import parse_int


def parse_boot_conf(text):
    """memtune's tmpfiles.d file -> {path: value} of its ``w PATH - - - - VALUE`` lines."""
    writes = {}
    for line in text.splitlines():
        fields = line.split(None, 6)
        if len(fields) == 7 and fields[0] == "w":
            writes[fields[1]] = fields[6].strip()
    return writes


def parse_dropin(text):
    """A systemd drop-in -> {MemoryX: bytes or "infinity"} for its memory limit lines."""
    limits = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name in V2_FILES:
            value = value.strip()
            number = parse_int(value)
            limits[name] = value if number is None or number < 0 else number
    return limits


def unit_cgroup(unit, mount):
    """The cgroup directory systemd gives ``unit`` below ``mount``: a slice nests in its parents
    (``a-b.slice`` in ``a.slice``); an instance of a template (``prefix@instance.service``) lives in
    ``system-<prefix>.slice`` (``-`` in the prefix escaped as ``\\x2d``), as the system manager places it
    (systemd.resource-control(5), Slice=); other units are taken to live in system.slice, their default.
    A unit whose ``Slice=`` says otherwise is not found here."""
    if unit.endswith(".slice"):
        parts = unit[: -len(".slice")].split("-")
        return mount + "".join("/" + "-".join(parts[: i + 1]) + ".slice" for i in range(len(parts)))
    prefix, at, _instance = unit.partition("@")
    if at and prefix:
        return "%s/system.slice/system-%s.slice/%s" % (mount, prefix.replace("-", "\\x2d"), unit)
    return "%s/system.slice/%s" % (mount, unit)


def _ledger(tree):
    """-> (the ledger or None, what the facts report of it or None). A file that cannot be used is reported
    with the reason (and a warning); a version-1 snapshot is read as the ledger it becomes."""
    try:
        ledger = load_ledger(tree)[0]
    except LedgerError as exc:
        tree.warn(str(exc))
        return None, {"path": exc.path, "error": exc.reason, "originals": [], "generations": []}
    return ledger, summary(ledger) if ledger else None


def _member(snapshot, section, name, kind):
    """snapshot[section][name] when it is a ``kind``, else an empty one: a damaged snapshot is empty."""
    value = snapshot.get(section) if snapshot else None
    value = value.get(name) if isinstance(value, dict) else None
    return value if isinstance(value, kind) else kind()


def _runtime(tree, path):
    names = list(V2_FILES) if tree.exists(path + "/memory.max") else list(V1_FILES)
    found = read_raw(tree, path, names)
    return found["limits"] if found["flavor"] else None


def running_units(workloads):
    """{unit: its cgroup below the memory mount} of the workload instances a unit of the system manager
    runs in its own cgroup: where the unit really is, whatever its ``Slice=``."""
    found = {}
    for workload in workloads:
        for instance in workload.get("instances") or []:
            unit, cgroup = instance.get("unit"), instance.get("cgroup") or ""
            if unit and instance.get("unit_manager") == "system" and cgroup.rsplit("/", 1)[-1] == unit:
                found[unit] = cgroup
    return found


def read_cgroups(tree, snapshot, mount, running=None):
    """[{unit, path, boot, runtime}] for every cgroup memtune manages: units with its drop-in (boot: the
    drop-in's limits), raw paths from its snapshot (boot: None, they do not survive a reboot). A unit's
    cgroup is where a workload instance shows it runs (``running``: running_units), else where systemd
    puts it by default (unit_cgroup)."""
    entries = []
    running = running or {}
    for directory in tree.listdir(SYSTEMD_DIR):
        dropin = "%s/%s/%s" % (SYSTEMD_DIR, directory, DROPIN_NAME)
        if directory.endswith(".d") and tree.exists(dropin):
            unit = directory[: -len(".d")]
            path = mount + running[unit] if unit in running else unit_cgroup(unit, mount)
            runtime = _runtime(tree, path) if mount else None
            entries.append({"unit": unit, "path": None, "boot": parse_dropin(tree.read(dropin) or ""),
                            "runtime": runtime})
    managed = _member(snapshot, "runtime", "cgroups", dict)
    for path in sorted(key for key in managed if key.startswith("/")):
        entries.append({"unit": None, "path": path, "boot": None, "runtime": _runtime(tree, path)})
    return entries


def read_bootloader(tree):
    """[{path, args}]: the kernel arguments each bootloader configuration will boot with."""
    found = []
    text = tree.read(DEFAULT_GRUB, optional=True)
    if text is not None:
        found.append({"path": DEFAULT_GRUB, "args": grub_args(text)})
    for name in tree.listdir(BLS_DIR):
        if name.endswith(".conf"):
            path = "%s/%s" % (BLS_DIR, name)
            found.append({"path": path, "args": bls_args(tree.read(path) or "")})
    return found


def read_memtune_state(tree, cgroup_mount, running=None):
    snapshot, ledger = _ledger(tree)
    boot_conf = tree.read(BOOT_CONF, optional=True)
    return {
        "sysctl_file": tree.exists(SYSCTL_FILE),
        "boot_unit": {"installed": tree.exists(BOOT_UNIT), "enabled": tree.exists(BOOT_UNIT_LINK)},
        "boot_writes": parse_boot_conf(boot_conf) if boot_conf else {},
        "snapshot": snapshot is not None,
        "ledger": ledger,
        "owned_cmdline": [arg for arg in _member(snapshot, "owned", "kernel_cmdline", list)
                          if isinstance(arg, str)],
        "bootloader": read_bootloader(tree),
        "cgroups": read_cgroups(tree, snapshot, cgroup_mount, running),
    }
