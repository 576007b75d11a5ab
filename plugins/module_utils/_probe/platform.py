# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What kind of host this is: virtualization, container, cgroup hierarchy, systemd."""

from __future__ import annotations

from ansible_collections.memtune.fleet.plugins.module_utils._host.procfs import parse_mountinfo

# DMI vendor / product strings -> systemd-detect-virt's names.
_DMI_VENDORS = (
    ("QEMU", "qemu"), ("KVM", "kvm"), ("VMware", "vmware"), ("VirtualBox", "oracle"),
    ("innotek", "oracle"), ("Xen", "xen"), ("Microsoft Corporation", "microsoft"),
    ("Amazon EC2", "amazon"), ("Google", "google"), ("Bochs", "bochs"), ("Parallels", "parallels"),
    ("OpenStack", "kvm"), ("Firecracker", "firecracker"),
)


def detect_virtualization(tree, cpuinfo):
    """A systemd-detect-virt style name for the hypervisor, "none" on bare metal."""
    for path in ("/sys/class/dmi/id/product_name", "/sys/class/dmi/id/sys_vendor"):
        text = tree.read(path, optional=True) or ""
        for needle, name in _DMI_VENDORS:
            if needle.lower() in text.lower():
                return name
    flags = ()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = line.partition(":")[2].split()
            break
    return "vm-other" if "hypervisor" in flags else "none"


def detect_container(tree):
    """The container manager's name when this tree is a container, else None."""
    if tree.exists("/.dockerenv"):
        return "docker"
    if tree.exists("/run/.containerenv"):
        return "podman"
    text = tree.read("/run/systemd/container", optional=True)
    if text:
        return _manager_name(tree, "/run/systemd/container", text)
    environ = tree.read("/proc/1/environ", optional=True) or ""
    for item in environ.split("\0"):
        if item.startswith("container="):
            return _manager_name(tree, "/proc/1/environ", item.partition("=")[2])
    return None


def _manager_name(tree, path, name):
    """A container manager's name as systemd writes it (a short word), else "container-other"."""
    if name and len(name) <= 64 and name.isprintable() and " " not in name:
        return name
    if name:
        tree.warn("%s: %r is not a container manager's name: reported as container-other" % (path, name[:40]))
    return "container-other"


def detect_cgroup(tree, mountinfo):
    """{"version": v1|v2|hybrid|none, "memory_controller": bool, "mount": path of the memory hierarchy}."""
    mounts = parse_mountinfo(mountinfo or "")
    v2 = [m for m in mounts if m["fs_type"] == "cgroup2"]
    v1 = [m for m in mounts if m["fs_type"] == "cgroup"]
    v1_memory = [m for m in v1 if "memory" in m["super_options"]]
    if v2 and not v1:
        version = "v2"
    elif v1 and v2:
        version = "hybrid"
    elif v1:
        version = "v1"
    else:
        version = "none"
    if v1_memory:
        return {"version": version, "memory_controller": True, "mount": v1_memory[0]["mount_point"]}
    for mount in v2:
        controllers = tree.read(mount["mount_point"] + "/cgroup.controllers", optional=True) or ""
        if "memory" in controllers.split():
            return {"version": version, "memory_controller": True, "mount": mount["mount_point"]}
    return {"version": version, "memory_controller": False, "mount": v2[0]["mount_point"] if v2 else None}


def detect_systemd(tree):
    """systemd is the running init (sd_booted(3): /run/systemd/system exists)."""
    return tree.exists("/run/systemd/system") or (tree.read("/proc/1/comm", optional=True) == "systemd")
