# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate the DesiredState that memory_apply takes (docs/desired-state.md). Pure: data in, data out.

The engine already validated the policy; this is the remote side's own guard, so that a bad or
hostile argument can name only allowlisted paths and well-formed values.
"""

from __future__ import annotations

import posixpath
import re

from ansible_collections.memtune.fleet.plugins.module_utils._contract import (
    CGROUP_LIMITS,
    DESIRED_SCHEMA_VERSION,
    SETTING_KINDS,
    UNIT_NAME_PATTERN,
)
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import settings as _settings

SYSCTL_KEY = re.compile(r"^(vm|kernel)(\.[a-z0-9_]+)+$")
UNIT_NAME = re.compile(UNIT_NAME_PATTERN)
CGROUP_ROOT = "/sys/fs/cgroup/"
# Kernel command-line parameters memtune may own (kernel-parameters.txt), all about memory.
CMDLINE_PARAMS = (
    "hugepagesz",
    "hugepages",
    "default_hugepagesz",
    "hugetlb_cma",
    "hugetlb_free_vmemmap",
    "transparent_hugepage",
    "numa_balancing",
    "kernelcore",
    "movablecore",
)
CMDLINE_ARG = re.compile(r"^([a-z_]+)(=[A-Za-z0-9_.,:+\-]+)?$")


class DesiredError(ValueError):
    """The desired state is malformed; the message names the field."""


def _require(condition, message):
    if not condition:
        raise DesiredError(message)


def _int(value, where, minimum=0):
    _require(
        isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
        "%s: expected an integer >= %d, got %r" % (where, minimum, value),
    )
    return value


def _sysctl(section):
    _require(isinstance(section, dict), "sysctl: expected a mapping of key to {value}")
    checked = {}
    for key, entry in section.items():
        _require(bool(SYSCTL_KEY.match(key)), "sysctl: %r is not a vm.* or kernel.* key" % key)
        _require(isinstance(entry, dict) and "value" in entry, "sysctl.%s: expected {value: ...}" % key)
        value = entry["value"]
        if isinstance(value, str):
            _require(
                value.strip() != "" and "\n" not in value and "\0" not in value and "=" not in value,
                "sysctl.%s: value %r is not a single-line value" % (key, value),
            )
            value = " ".join(value.split())
        else:
            value = _int(value, "sysctl.%s" % key, minimum=-(2**63))
        checked[key] = value
    return checked


def _mappings(section, name):
    """-> (where, entry) for each entry of a list of mappings, ``where`` like ``cgroups[2]``."""
    _require(isinstance(section, list), "%s: expected a list" % name)
    for index, entry in enumerate(section):
        where = "%s[%d]" % (name, index)
        _require(isinstance(entry, dict), "%s: expected a mapping" % where)
        yield where, entry


def _hugepages(section):
    pools, sizes = [], set()
    for where, pool in _mappings(section, "hugepages"):
        size = _int(pool.get("size_kb"), where + ".size_kb", minimum=1)
        _require(size not in sizes, "%s: a second pool of %d kB pages" % (where, size))
        sizes.add(size)
        per_node = pool.get("per_node")
        _require(isinstance(per_node, dict) and per_node, "%s.per_node: expected {node id: count}" % where)
        counts = {}
        for node, count in per_node.items():
            _require(str(node).isdigit(), "%s.per_node: %r is not a NUMA node id" % (where, node))
            counts[int(node)] = _int(count, "%s.per_node.%s" % (where, node))
        pools.append(
            {
                "size_kb": size,
                "per_node": counts,
                "boot": bool(pool.get("boot", False)),
                "required": bool(pool.get("required", False)),
            }
        )
    return pools


def _kernel_cmdline(section):
    args = []
    for where, entry in _mappings(section, "kernel_cmdline"):
        arg = entry.get("arg")
        match = CMDLINE_ARG.match(arg) if isinstance(arg, str) else None
        _require(match is not None, "%s: %r is not a single name[=value] argument" % (where, arg))
        _require(
            match.group(1) in CMDLINE_PARAMS,
            "%s: memtune does not manage %r (allowed: %s)"
            % (where, match.group(1), ", ".join(CMDLINE_PARAMS)),
        )
        args.append(arg)
    return args


def cgroup_path_ok(path):
    return (
        isinstance(path, str)
        and path.startswith(CGROUP_ROOT)
        and posixpath.normpath(path) == path
        and "/../" not in path + "/"
    )


def _cgroups(section):
    checked, seen = [], set()
    for where, entry in _mappings(section, "cgroups"):
        unit, path = entry.get("unit"), entry.get("path")
        _require((unit is None) != (path is None), "%s: set exactly one of unit and path" % where)
        if unit is not None:
            _require(
                isinstance(unit, str) and bool(UNIT_NAME.match(unit)),
                "%s.unit: %r is not a .service, .slice or .scope name" % (where, unit),
            )
        else:
            _require(
                cgroup_path_ok(path),
                "%s.path: %r is not a normalized path below %s" % (where, path, CGROUP_ROOT),
            )
        target = unit or path
        _require(target not in seen, "%s: %s is listed twice" % (where, target))
        seen.add(target)
        limits = entry.get("limits")
        _require(isinstance(limits, dict) and limits, "%s.limits: expected {MemoryMax: bytes, ...}" % where)
        for name, value in limits.items():
            _require(
                name in CGROUP_LIMITS,
                "%s.limits: unknown limit %r (expected one of %s)" % (where, name, ", ".join(CGROUP_LIMITS)),
            )
            if value != "infinity":
                _int(value, "%s.limits.%s" % (where, name))
        checked.append(
            {"unit": unit, "path": path, "limits": dict(limits), "force": bool(entry.get("force", False))}
        )
    return checked


def validate(desired):
    """DesiredState -> {"sysctl", "hugepages", "kernel_cmdline", "cgroups"} and one section per setting-files
    kind (thp, zswap); provenance dropped."""
    _require(isinstance(desired, dict), "desired: expected a mapping")
    version = desired.get("schema_version")
    _require(
        version == DESIRED_SCHEMA_VERSION,
        "desired.schema_version is %r; this memory_apply takes %d (use the engine "
        "and collection of the same memtune release)" % (version, DESIRED_SCHEMA_VERSION),
    )
    checked = {"sysctl": _sysctl(desired.get("sysctl") or {})}
    for kind in SETTING_KINDS:
        checked[kind.kind] = _settings.validate(kind, desired.get(kind.kind) or {}, _require, _int)
    checked["hugepages"] = _hugepages(desired.get("hugepages") or [])
    checked["kernel_cmdline"] = _kernel_cmdline(desired.get("kernel_cmdline") or [])
    checked["cgroups"] = _cgroups(desired.get("cgroups") or [])
    return checked
