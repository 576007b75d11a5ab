# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the next boot sets for each sysctl, and who sets it: the one answer tune, audit and the probe use.

The writers, in the order the boot runs them (the last assignment of a key wins):

1. ``sysctl.<key>=<value>`` on the kernel command line: the kernel applies these itself before init
   (Linux >= 5.8), so every file below beats them.
2. An active TuneD profile's ``[sysctl]`` lines, when TuneD re-applies the system's sysctl files after its
   own (``reapply_sysctl = 1`` in tuned-main.conf, TuneD's default): then any file beats TuneD.
3. The sysctl.d files (sysctl.d(5), systemd-sysctl): the ``*.conf`` files of every directory below, merged
   by file name (a name in an earlier directory masks the same name in a later one; a link to /dev/null
   masks it for good), applied in file-name order. memtune's own file takes its place in that order whether
   it exists yet or not: entries after it are the ones memtune cannot win against.
4. /etc/sysctl.conf: procps' ``sysctl --system`` applies it last, and so do the init scripts of hosts without
   systemd; systemd-sysctl does not read it, except through a sysctl.d link (Debian's 99-sysctl.conf).
5. TuneD's ``[sysctl]`` lines when it does not re-apply the system's files (``reapply_sysctl = 0``).

TuneD's ``[vm]`` and ``[sysfs]`` lines that write transparent hugepages are reported as writers too
(:func:`tuned_profile`): TuneD starts after memtune's boot unit, so its values are the ones that last.
"""

from __future__ import annotations

import fnmatch
import os

from ansible_collections.memtune.fleet.plugins.module_utils._contract import SYSCTL_DIRS, THP_DIR
from ansible_collections.memtune.fleet.plugins.module_utils._contract import SYSCTL_FILE as MEMTUNE_FILE
from ansible_collections.memtune.fleet.plugins.module_utils._probe.platform import detect_systemd

SYSCTL_CONF = "/etc/sysctl.conf"
CMDLINE = "/proc/cmdline"
MAX_KEY_LENGTH = 256  # the longest names under /proc/sys (net.ipv4.conf.<interface>.<knob>) are under 100
TUNED_ACTIVE = "/etc/tuned/active_profile"
TUNED_MAIN = "/etc/tuned/tuned-main.conf"
# Where TuneD looks for a profile by name, first match wins (TuneD 2.x, and the profiles/ layout of 2.23+).
TUNED_PROFILE_DIRS = ("/etc/tuned/profiles", "/etc/tuned", "/usr/lib/tuned/profiles", "/usr/lib/tuned")
TUNED_INCLUDE_DEPTH = 10


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


def parse_cmdline_sysctls(cmdline):
    """``sysctl.vm.swappiness=10`` arguments of a kernel command line -> [(1, key, value)]."""
    found = []
    for arg in (cmdline or "").split():
        name, sep, value = arg.partition("=")
        if sep and name.startswith("sysctl.") and len(name) > len("sysctl."):
            found.append((1, normalize_key(name[len("sysctl."):]), value))
    return found


def parse_ini(text):
    """TuneD's INI files -> [(line_number, section, key, value)]; ``#`` and ``;`` start comments."""
    entries, section = [], None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        key, sep, value = line.partition("=")
        if sep and section is not None:
            entries.append((number, section, key.strip(), value.strip()))
    return entries


def _find_profile(tree, name):
    for directory in TUNED_PROFILE_DIRS:
        path = "%s/%s/tuned.conf" % (directory, name)
        if tree.exists(path):
            return path
    return None


def tuned_profile(tree):
    """The active TuneD profile as a writer, or None: {"profiles", "reapply_sysctl", "sysctl": [(path,
    line, key, value)], "thp": [{path, line, knob, value}]}. Included profiles come first, as TuneD merges
    them; a missing profile is a warning, an include cycle or chain deeper than 10 stops there."""
    active = (tree.read(TUNED_ACTIVE, optional=True) or "").split()
    if not active:
        return None
    main = dict((key, value) for _line, section, key, value in parse_ini("[main]\n" + (
        tree.read(TUNED_MAIN, optional=True) or "")) if section == "main")
    reapply = main.get("reapply_sysctl", "1").strip().lower() not in ("0", "false", "no", "off")
    result = {"profiles": active, "reapply_sysctl": reapply, "sysctl": [], "thp": []}
    seen = set()

    def load(name, depth):
        if name in seen or depth > TUNED_INCLUDE_DEPTH:
            return
        seen.add(name)
        path = _find_profile(tree, name)
        if path is None:
            tree.warn("TuneD profile %s is active but %s/tuned.conf is in none of %s"
                      % (name, name, ", ".join(TUNED_PROFILE_DIRS)))
            return
        entries = parse_ini(tree.read(path) or "")
        for _line, section, key, value in entries:
            if section == "main" and key == "include":
                for parent in value.replace(",", " ").split():
                    load(parent, depth + 1)
        for number, section, key, value in entries:
            if section == "sysctl":
                result["sysctl"].append((path, number, normalize_key(key), value))
            elif section == "vm" and key in ("transparent_hugepages", "transparent_hugepage"):
                result["thp"].append({"path": path, "line": number, "knob": "enabled", "value": value})
            elif section == "sysfs" and key.startswith(THP_DIR + "/"):
                knob = key[len(THP_DIR) + 1:]
                if knob in ("enabled", "defrag"):
                    result["thp"].append({"path": path, "line": number, "knob": knob, "value": value})

    for name in active:
        load(name, 0)
    return result


def _masked(tree, path):
    """A link to /dev/null masks the name (sysctl.d(5))."""
    return tree.readlink(path) is not None and tree.realpath(path) == "/dev/null"


def sysctl_d_files(tree):
    """The sysctl.d files the boot applies, in order, with memtune's own file in its place (present or
    not): [(path, is_memtune)]."""
    chosen = {}
    for directory in SYSCTL_DIRS:
        for name in tree.listdir(directory):
            if name.endswith(".conf") and name not in chosen:
                chosen[name] = "%s/%s" % (directory, name)
    own = os.path.basename(MEMTUNE_FILE)
    chosen[own] = MEMTUNE_FILE  # /etc/sysctl.d comes first: no other directory can mask it
    return [(chosen[name], name == own) for name in sorted(chosen) if not _masked(tree, chosen[name])]


def boot_order(tree, systemd=True, tuned=None):
    """[(path, assignments, after_memtune)]: every writer of sysctls at boot, first to last, with its
    ``[(line, key, value)]`` and whether it runs after memtune's file (memtune cannot win against it)."""
    order = []
    cmdline = parse_cmdline_sysctls(tree.read(CMDLINE, optional=True))
    if cmdline:
        order.append((CMDLINE, cmdline, False))
    tuned_writes = {}
    for path, line, key, value in (tuned or {}).get("sysctl", []):
        tuned_writes.setdefault(path, []).append((line, key, value))
    reapply = bool(tuned and tuned["reapply_sysctl"])
    if reapply:
        order.extend((path, writes, False) for path, writes in tuned_writes.items())
    after = False
    linked = set()
    for path, ours in sysctl_d_files(tree):
        if ours:
            after = True
            continue
        text = tree.read(path)
        linked.add(tree.realpath(path))
        if text is not None:
            order.append((path, parse_sysctl_conf(text), after))
    conf_applied = not systemd or reapply
    if conf_applied and tree.exists(SYSCTL_CONF) and tree.realpath(SYSCTL_CONF) not in linked:
        order.append((SYSCTL_CONF, parse_sysctl_conf(tree.read(SYSCTL_CONF) or ""), True))
    if tuned and not reapply:
        order.extend((path, writes, True) for path, writes in tuned_writes.items())
    return order


_READ = object()


def sysctl_sources(tree, keys, tuned=_READ):
    """{key: {"entries": [{path, line, value}], "winner": entry or None, "after_memtune": [entries]}}:
    every assignment of each key in boot order, the one that lasts, and those memtune's file cannot beat.
    memtune's own file is read in its place like any other. ``tuned``: the host's tuned_profile(), read
    here unless the caller has it."""
    if tuned is _READ:
        tuned = tuned_profile(tree)
    sources = {key: {"entries": [], "winner": None, "after_memtune": []} for key in keys}
    order = boot_order(tree, detect_systemd(tree), tuned)
    for path, assignments, after in _with_own_file(tree, order):
        for number, written, value in assignments:
            matched = [written] if written in sources else _glob_matches(tree, path, number, written, keys)
            for key in matched:
                entry = {"path": path, "line": number, "value": value}
                sources[key]["entries"].append(entry)
                sources[key]["winner"] = entry
                if after:
                    sources[key]["after_memtune"].append(entry)
    return sources


def _glob_matches(tree, path, number, written, keys):
    """The requested keys a glob key (``vm.dirty_*``) sets. A key longer than any sysctl's name is not
    matched: fnmatch's regex for a pattern of thousands of ``*`` and ``[`` takes a second per line."""
    if not any(char in written for char in "*?["):
        return []
    if len(written) > MAX_KEY_LENGTH:
        tree.warn("%s:%d: a key of %d characters names no sysctl: ignored" % (path, number, len(written)))
        return []
    return fnmatch.filter(keys, written)


def _with_own_file(tree, order):
    """``order`` with memtune's file read in its place: after the writers memtune beats."""
    text = tree.read(MEMTUNE_FILE, optional=True)
    own = [(MEMTUNE_FILE, parse_sysctl_conf(text), False)] if text is not None else []
    before = [writer for writer in order if not writer[2]]
    return before + own + [writer for writer in order if writer[2]]
