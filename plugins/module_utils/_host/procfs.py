# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parsers for /proc and /sys file formats: text in, plain data out. Garbled lines are skipped.

Numbers are read as the kernel writes them: ASCII digits within 64 bits (``parse_int``); anything else
(``int()`` would take '٣', '1_0' or '+5'; ``float()`` 'nan') makes the line garbled, never a value.
"""

from __future__ import annotations

import re

_KERNEL_VERSION = re.compile(r"^([0-9]+)\.([0-9]+)(?:\.([0-9]+))?")
_MEMINFO_LINE = re.compile(r"^(?:Node [0-9]+ )?([A-Za-z0-9_()]+):\s+([0-9]+)(?:\s+kB)?$", re.ASCII)
_DECIMAL = re.compile(r"^[0-9]{1,20}(?:\.[0-9]{1,20})?$", re.ASCII)
# Bounds on kernel id lists, with room above the kernel's own: CONFIG_NR_CPUS goes up to 8192 (x86's
# MAXSMP) and MAX_NUMNODES is 1 << NODES_SHIFT, NODES_SHIFT at most 10 (include/linux/numa.h, Kconfig).
MAX_CPUS = 1 << 16
MAX_NODES = 1 << 10
INT64_MIN, UINT64_MAX = -(1 << 63), (1 << 64) - 1


def parse_int(text):
    """The integer a kernel file writes (ASCII digits, an optional minus, within 64 bits), else None.
    Stricter than int(): no '+', '_', inner spaces or non-ASCII digits (int('٣') is 3)."""
    text = text.strip()
    digits = text[1:] if text.startswith("-") else text
    if not digits or len(digits) > 20 or not (digits.isascii() and digits.isdigit()):
        return None
    value = int(text)
    return value if INT64_MIN <= value <= UINT64_MAX else None


def parse_meminfo(text, repeated=None):
    """/proc/meminfo or /sys/.../nodeN/meminfo -> {field: int}; values in kB, counts as they are.

    A field given more than once keeps its first value; when ``repeated`` (a dict) is given, it maps
    each such field to all the values it was given, in order.
    """
    fields = {}
    for line in text.splitlines():
        match = _MEMINFO_LINE.match(line.strip())
        if not match:
            continue
        name, value = match.group(1), parse_int(match.group(2))
        if value is None:
            continue
        if name not in fields:
            fields[name] = value
        elif repeated is not None:
            repeated.setdefault(name, [fields[name]]).append(value)
    return fields


def parse_key_values(text):
    """Lines of ``name value`` (/proc/vmstat, numastat) -> {name: int}."""
    values = {}
    for line in text.splitlines():
        parts = line.split()
        value = parse_int(parts[1]) if len(parts) == 2 else None
        if value is not None:
            values[parts[0]] = value
    return values


def parse_swaps(text):
    """/proc/swaps -> [{path, type, size_kb, used_kb, priority}]."""
    devices = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) != 5:
            continue
        size, used, priority = parse_int(parts[2]), parse_int(parts[3]), parse_int(parts[4])
        if size is None or used is None or priority is None or size < 0 or used < 0:
            continue
        # Paths with spaces are escaped as \040 by the kernel.
        path = parts[0].replace("\\040", " ")
        devices.append({"path": path, "type": parts[1], "size_kb": size, "used_kb": used,
                        "priority": priority})
    return devices


def parse_pressure(text):
    """/proc/pressure/memory -> {"some": {avg10, avg60, avg300, total}, "full": {...}}."""
    pressure = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0] not in ("some", "full"):
            continue
        values = {}
        for item in parts[1:]:
            name, _sep, value = item.partition("=")
            number = _pressure_number(name, value)
            if number is None:
                break
            values[name] = number
        else:
            if set(values) >= {"avg10", "avg60", "avg300", "total"}:
                pressure[parts[0]] = values
    return pressure


def _pressure_number(name, text):
    """``total`` is a count of microseconds, the averages are percentages with two decimals."""
    if name == "total":
        value = parse_int(text)
        return value if value is not None and value >= 0 else None
    return float(text) if _DECIMAL.match(text) else None


def parse_cpulist(text, limit=MAX_CPUS):
    """A kernel cpulist/nodelist such as ``0-3,8,10-11`` -> [0, 1, 2, 3, 8, 10, 11] (sorted, unique).

    Raises ValueError for anything the kernel does not write: non-ASCII digits, a range that runs
    backwards, an id of ``limit`` or more, or more than ``limit`` ids in all (so ``0-4294967295`` costs
    no time and no memory)."""
    items, count = set(), 0
    for chunk in text.strip().split(","):
        chunk = chunk.strip()
        if not chunk:
            continue
        first, _sep, last = chunk.partition("-")
        start, end = _list_id(first, text), _list_id(last or first, text)
        if end < start:
            raise ValueError("range %s runs backwards in %r" % (chunk, text[:40]))
        if end >= limit:
            raise ValueError("id %d is beyond the kernel's limit (%d) in %r" % (end, limit - 1, text[:40]))
        count += end - start + 1
        if count > limit:
            raise ValueError("more than %d ids in %r" % (limit, text[:40]))
        items.update(range(start, end + 1))
    return sorted(items)


def _list_id(word, text):
    if not (word.isascii() and word.isdigit() and len(word) <= 20):
        raise ValueError("not a cpu list: %r" % text[:40])
    return int(word)


def sysctl_path(key):
    """``vm.swappiness`` -> its file, /proc/sys/vm/swappiness."""
    return "/proc/sys/" + key.replace(".", "/")


def parse_bracketed(text):
    """``always [madvise] never`` -> ("madvise", ["always", "madvise", "never"])."""
    choices, chosen = [], None
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            word = word[1:-1]
            chosen = word
        choices.append(word)
    return chosen, choices


def parse_kernel_version(release):
    """``6.1.0-26-amd64`` -> [6, 1, 0]; None when the release does not start with a version."""
    match = _KERNEL_VERSION.match(release.strip())
    if not match:
        return None
    return [int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)]


def parse_mountinfo(text):
    """/proc/self/mountinfo -> [{mount_point, fs_type, source, options, super_options}]."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 6 or len(tail) < 2:
            continue
        mounts.append({
            "mount_point": fields[4].replace("\\040", " "),
            "options": fields[5].split(","),
            "fs_type": tail[0],
            "source": tail[1],
            "super_options": tail[2].split(",") if len(tail) > 2 else [],
        })
    return mounts


def sysctl_value(text):
    """A /proc/sys value: an int when it is one (``parse_int``), else the string with runs of white space
    folded."""
    folded = " ".join(text.split())
    value = parse_int(folded)
    return folded if value is None else value
