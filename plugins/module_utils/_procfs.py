# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parsers for /proc and /sys file formats: text in, plain data out. Garbled lines are skipped."""

from __future__ import annotations

import re

_KERNEL_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")
_MEMINFO_LINE = re.compile(r"^(?:Node \d+ )?([A-Za-z0-9_()]+):\s+(\d+)(?:\s+kB)?$")


def parse_meminfo(text):
    """/proc/meminfo or /sys/.../nodeN/meminfo -> {field: int}; values in kB, counts as they are."""
    fields = {}
    for line in text.splitlines():
        match = _MEMINFO_LINE.match(line.strip())
        if match:
            fields[match.group(1)] = int(match.group(2))
    return fields


def parse_key_values(text):
    """Lines of ``name value`` (/proc/vmstat, numastat) -> {name: int}."""
    values = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            values[parts[0]] = int(parts[1])
    return values


def parse_swaps(text):
    """/proc/swaps -> [{path, type, size_kb, used_kb, priority}]."""
    devices = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) != 5:
            continue
        try:
            size, used, priority = int(parts[2]), int(parts[3]), int(parts[4])
        except ValueError:
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
            try:
                values[name] = int(value) if name == "total" else float(value)
            except ValueError:
                break
        else:
            if set(values) >= {"avg10", "avg60", "avg300", "total"}:
                pressure[parts[0]] = values
    return pressure


def parse_cpulist(text):
    """A kernel cpulist/nodelist such as ``0-3,8,10-11`` -> [0, 1, 2, 3, 8, 10, 11]."""
    items = []
    for chunk in text.strip().split(","):
        chunk = chunk.strip()
        if not chunk:
            continue
        first, _sep, last = chunk.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise ValueError("not a cpu list: %r" % text)
        items.extend(range(int(first), int(last or first) + 1))
    return items


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
    """A /proc/sys value: an int when it is one, else the string with runs of white space folded."""
    folded = " ".join(text.split())
    try:
        return int(folded)
    except ValueError:
        return folded
