# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cgroup memory limits: systemd units (a drop-in plus ``systemctl set-property --runtime``) and raw
cgroup directories (v2 ``memory.*`` files, v1 ``memory.limit_in_bytes``).

Limit names and values are systemd's: bytes, or "infinity". The kernel keeps limits in whole pages,
so raw values are compared after rounding down to the page size, as the kernel does.
"""

from __future__ import annotations

import os

from ansible_collections.memtune.fleet.plugins.module_utils._contract import DROPIN_NAME, SYSTEMD_DIR
from ansible_collections.memtune.fleet.plugins.module_utils._host.procfs import parse_int

SHOW_PROPERTIES = (
    "LoadState",
    "MemoryCurrent",
    "MemoryMin",
    "MemoryLow",
    "MemoryHigh",
    "MemoryMax",
    "MemorySwapMax",
)
V2_FILES = {
    "MemoryMin": "memory.min",
    "MemoryLow": "memory.low",
    "MemoryHigh": "memory.high",
    "MemoryMax": "memory.max",
    "MemorySwapMax": "memory.swap.max",
}
V1_FILES = {"MemoryMax": "memory.limit_in_bytes"}
# A limit below the current usage reclaims or OOM-kills at once: refused unless ``force``.
CAPPING_LIMITS = ("MemoryHigh", "MemoryMax")
V1_UNLIMITED = 0x7FFFFFFFFFFFF000 - 0x1000  # PAGE_COUNTER_MAX pages in bytes, less a page of slack
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def dropin_path(unit):
    return "%s/%s.d/%s" % (SYSTEMD_DIR, unit, DROPIN_NAME)


def render_dropin(unit, limits, header):
    """The drop-in that makes ``limits`` survive reboots; the section follows the unit type."""
    section = {"slice": "Slice", "scope": "Scope"}.get(unit.rsplit(".", 1)[-1], "Service")
    body = "".join("%s=%s\n" % (name, limits[name]) for name in sorted(limits))
    return "%s[%s]\n%s" % (header, section, body)


def parse_systemctl_show(text):
    """``systemctl show -p A,B unit`` output -> {A: value}; sizes as int, "infinity" and others as str."""
    values = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            values[name] = int(value) if value.isdigit() else value
    return values


def kernel_value(value):
    """A systemd limit as the kernel will keep it in a raw cgroup: whole pages, or "infinity"."""
    if value == "infinity":
        return value
    return value // PAGE_SIZE * PAGE_SIZE


def read_raw_value(text, flavor):
    if text is None:
        return None
    number = parse_int(text)  # not int(): it takes '٣', and a million digits would take seconds
    if text == "max" or (flavor == "v1" and number is not None and number >= V1_UNLIMITED):
        return "infinity"
    return text if number is None or number < 0 else number


def raw_flavor(tree, path):
    """ "v2", "v1" or None when the directory has no memory controller files."""
    if tree.exists(path + "/memory.max"):
        return "v2"
    if tree.exists(path + "/memory.limit_in_bytes"):
        return "v1"
    return None


def read_raw(tree, path, names):
    """{"flavor", "usage", "limits": {name: value}, "unsupported": [names without a file]}."""
    flavor = raw_flavor(tree, path)
    files = V2_FILES if flavor == "v2" else V1_FILES
    usage_file = "memory.current" if flavor == "v2" else "memory.usage_in_bytes"
    limits, unsupported = {}, []
    for name in names:
        if name in files and tree.exists("%s/%s" % (path, files[name])):
            limits[name] = read_raw_value(tree.read("%s/%s" % (path, files[name])), flavor)
        else:
            unsupported.append(name)
    return {
        "flavor": flavor,
        "usage": tree.read_int("%s/%s" % (path, usage_file), optional=True),
        "limits": limits,
        "unsupported": unsupported,
    }


def raw_write(path, flavor, name, value):
    """-> (file path, text) that sets one limit of a raw cgroup."""
    files = V2_FILES if flavor == "v2" else V1_FILES
    text = ("max" if flavor == "v2" else "-1") if value == "infinity" else str(value)
    return "%s/%s" % (path, files[name]), text


def below_usage(limits, usage):
    """Names of capping limits lower than the current usage (bytes)."""
    if usage is None:
        return []
    return [name for name in CAPPING_LIMITS if isinstance(limits.get(name), int) and limits[name] < usage]


class Systemd:
    """systemctl through ``run`` (argv lists, never a shell)."""

    def __init__(self, run, systemctl):
        self.run, self.systemctl = run, systemctl

    def _call(self, *args):
        rc, out, err = self.run([self.systemctl, *list(args)])
        if rc != 0:
            raise OSError("systemctl %s failed (rc=%d): %s" % (" ".join(args), rc, err.strip()))
        return out

    def show(self, unit):
        """{"load_state", "usage", "limits": {name: value}} of a unit."""
        values = parse_systemctl_show(self._call("show", "--property=" + ",".join(SHOW_PROPERTIES), unit))
        usage = values.get("MemoryCurrent")
        return {
            "load_state": values.get("LoadState"),
            "usage": usage if isinstance(usage, int) else None,
            "limits": {name: values.get(name) for name in SHOW_PROPERTIES[2:]},
        }

    def daemon_reload(self):
        self._call("daemon-reload")

    def set_runtime(self, unit, limits):
        self._call(
            "set-property", "--runtime", unit, *["%s=%s" % (name, limits[name]) for name in sorted(limits)]
        )
