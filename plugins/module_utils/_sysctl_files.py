# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which sysctl configuration files set a key, and which one wins at boot.

systemd-sysctl's order (sysctl.d(5)): the files of all directories below are sorted by file name; a
file name in an earlier directory masks the same name in a later one; files are applied in that order,
so the last assignment of a key wins. /etc/sysctl.conf is applied after them (procps' `sysctl
--system`, and Debian's /etc/sysctl.d/99-sysctl.conf link to it), unless a sysctl.d file links to it.
"""

from __future__ import annotations

import fnmatch
import os

SYSCTL_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d",
               "/lib/sysctl.d")
SYSCTL_CONF = "/etc/sysctl.conf"


def normalize_key(key):
    """``vm/swappiness`` and ``vm.swappiness`` name the same knob (sysctl.d(5))."""
    key = key.strip()
    if "/" in key:
        key = key.replace(".", "\0").replace("/", ".").replace("\0", "/")
    return key


def parse_sysctl_conf(text):
    """A sysctl.d file -> [(line_number, key, value)]; comments and lines without '=' are skipped.

    A leading '-' (ignore a failed write) is dropped from the key; glob keys are kept as written.
    """
    assignments = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key = normalize_key(key.lstrip("-"))
        if key:
            assignments.append((number, key, value.strip()))
    return assignments


def boot_order(tree):
    """The sysctl files the boot applies, first to last, as paths below the tree's root."""
    chosen = {}
    for directory in SYSCTL_DIRS:
        for name in tree.listdir(directory):
            if name.endswith(".conf") and name not in chosen:
                chosen[name] = os.path.join(directory, name)
    ordered = [chosen[name] for name in sorted(chosen)]
    linked = {os.path.realpath(tree.path(path)) for path in ordered}
    if tree.exists(SYSCTL_CONF) and os.path.realpath(tree.path(SYSCTL_CONF)) not in linked:
        ordered.append(SYSCTL_CONF)
    return ordered


def sysctl_sources(tree, keys):
    """{key: {"entries": [{path, line, value}], "winner": entry or None}} for each key in ``keys``."""
    sources = {key: {"entries": [], "winner": None} for key in keys}
    for path in boot_order(tree):
        text = tree.read(path)
        if text is None:
            continue
        for number, written, value in parse_sysctl_conf(text):
            matched = [written] if written in sources else fnmatch.filter(keys, written)
            for key in matched:
                entry = {"path": path, "line": number, "value": value}
                sources[key]["entries"].append(entry)
                sources[key]["winner"] = entry
    return sources
