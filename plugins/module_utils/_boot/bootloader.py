# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel command line memtune owns, through the host's bootloader tool.

Three ways, tried in this order: grubby (Fedora, RHEL: edits every BLS entry and /etc/default/grub),
/etc/default/grub's GRUB_CMDLINE_LINUX plus update-grub or grub(2)-mkconfig (Debian, Ubuntu, SUSE),
and BLS entries in /boot/loader/entries (systemd-boot). The editors are pure: text in, text out.

memtune removes only arguments it added itself (listed in its snapshot as ``owned``); an argument the
host already had stays where it is and is not owned, so a rollback leaves it.
"""

from __future__ import annotations

import os
import re

from ansible_collections.memtune.fleet.plugins.module_utils._host.persist import atomic_write, read_text

DEFAULT_GRUB = "/etc/default/grub"
BLS_DIR = "/boot/loader/entries"
_TOKEN = re.compile(r'(?:[^\s"]+|"[^"]*")+')
_GRUB_ASSIGNMENT = re.compile(r"^(\s*(?:export\s+)?GRUB_CMDLINE_LINUX=)(.*)$")
_GRUBBY_FIELD = re.compile(r"^(\w+)=(.*)$")
# update-grub is Debian's wrapper; the mkconfig commands are what it runs elsewhere.
GRUB_UPDATERS = (
    ("update-grub",),
    ("grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"),
    ("grub-mkconfig", "-o", "/boot/grub/grub.cfg"),
)


def split_args(text):
    """A kernel command line -> its arguments; double-quoted values stay one argument."""
    return _TOKEN.findall(text)


def plan_args(args, owned, desired):
    """-> (new_args, new_owned): drop owned arguments no longer desired, append desired ones missing."""
    stale = [arg for arg in owned if arg not in desired]
    kept = [arg for arg in args if arg not in stale]
    new_owned = [arg for arg in desired if arg in owned or arg not in kept]
    return kept + [arg for arg in desired if arg not in kept], new_owned


def _unquote(value):
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[0], value[1:-1]
    return "", value


def grub_args(text):
    """The arguments of the last GRUB_CMDLINE_LINUX assignment in /etc/default/grub (the one that counts)."""
    args = []
    for line in text.splitlines():
        match = _GRUB_ASSIGNMENT.match(line)
        if match:
            args = split_args(_unquote(match.group(2))[1])
    return args


def edit_default_grub(text, owned, desired):
    """-> (new_text, new_owned). Rewrites the last GRUB_CMDLINE_LINUX line (appends one if there is none);
    every other line, GRUB_CMDLINE_LINUX_DEFAULT included, is kept byte for byte."""
    lines = text.splitlines(True)
    index = None
    for number, line in enumerate(lines):
        if _GRUB_ASSIGNMENT.match(line.rstrip("\n")):
            index = number
    if index is None:
        new_args, new_owned = plan_args([], owned, desired)
        if not new_args:
            return text, new_owned
        prefix = "" if not text or text.endswith("\n") else "\n"
        return text + prefix + 'GRUB_CMDLINE_LINUX="%s"\n' % " ".join(new_args), new_owned
    match = _GRUB_ASSIGNMENT.match(lines[index].rstrip("\n"))
    quote, value = _unquote(match.group(2))
    new_args, new_owned = plan_args(split_args(value), owned, desired)
    quote = quote or '"'
    ending = "\n" if lines[index].endswith("\n") else ""
    lines[index] = "%s%s%s%s%s" % (match.group(1), quote, " ".join(new_args), quote, ending)
    return "".join(lines), new_owned


def _keyword(line):
    """A BLS entry line -> (keyword, rest of the line)."""
    parts = line.strip().split(None, 1)
    return (parts[0] if parts else ""), (parts[1] if len(parts) > 1 else "")


def bls_args(text):
    for line in text.splitlines():
        key, value = _keyword(line)
        if key == "options":
            return split_args(value)
    return []


def edit_bls_entry(text, owned, desired):
    """-> (new_text, new_owned) for one /boot/loader/entries/*.conf: its ``options`` line rewritten."""
    lines = text.splitlines(True)
    for number, line in enumerate(lines):
        key, value = _keyword(line)
        if key == "options":
            new_args, new_owned = plan_args(split_args(value), owned, desired)
            ending = "\n" if line.endswith("\n") else ""
            lines[number] = "options %s%s" % (" ".join(new_args), ending)
            return "".join(lines), new_owned
    new_args, new_owned = plan_args([], owned, desired)
    if not new_args:
        return text, new_owned
    prefix = "" if not text or text.endswith("\n") else "\n"
    return text + prefix + "options %s\n" % " ".join(new_args), new_owned


def parse_grubby_info(text):
    """``grubby --info=ALL`` -> [{"index", "kernel", "args": [..]}], one per boot entry."""
    entries, current = [], None
    for line in text.splitlines():
        match = _GRUBBY_FIELD.match(line.strip())
        if not match:
            continue
        name, value = match.group(1), _unquote(match.group(2))[1]
        if name == "index":
            current = {"index": int(value) if value.isdigit() else value, "kernel": None, "args": []}
            entries.append(current)
        elif current is not None and name == "kernel":
            current["kernel"] = value
        elif current is not None and name == "args":
            current["args"] = split_args(value)
    return entries


class Bootloader:
    """The host's bootloader, seen through ``tree``; ``run`` runs an argv list (never a shell) and
    ``which`` finds a command. Below a root other than / no command is run: only files are edited."""

    def __init__(self, tree, run, which):
        self.tree, self.run, self.which = tree, run, which
        self.grubby = which("grubby") if tree.live else None
        self.entries = [
            os.path.join(BLS_DIR, name) for name in tree.listdir(BLS_DIR) if name.endswith(".conf")
        ]
        if self.grubby:
            self.tool = "grubby"
        elif tree.exists(DEFAULT_GRUB):
            self.tool = "grub"
        elif self.entries:
            self.tool = "bls"
        else:
            self.tool = None

    def files(self):
        """The files this tool edits (saved in the snapshot before a change)."""
        return {"grub": [DEFAULT_GRUB], "bls": self.entries}.get(self.tool, [])

    def current(self):
        """[args of each boot entry] (one list for /etc/default/grub)."""
        if self.tool == "grubby":
            rc, out, err = self.run([self.grubby, "--info=ALL"])
            if rc != 0:
                raise OSError("grubby --info=ALL failed (rc=%d): %s" % (rc, err.strip()))
            return [entry["args"] for entry in parse_grubby_info(out)]
        if self.tool == "grub":
            return [grub_args(self._read(DEFAULT_GRUB))]
        return [bls_args(self._read(path)) for path in self.entries]

    def _read(self, path):
        return read_text(self.tree.path(path)) or ""

    def differs(self, owned, desired):
        return any(plan_args(args, owned, desired)[0] != args for args in self.current())

    def change(self, owned, desired):
        """Rewrite the command line; -> (new_owned, warnings)."""
        warnings, new_owned = [], list(desired)
        if self.tool == "grubby":
            stale = [arg for arg in owned if arg not in desired]
            present = set(arg for args in self.current() for arg in args)
            new_owned = [arg for arg in desired if arg in owned or arg not in present]
            argv = [self.grubby, "--update-kernel=ALL"]
            if desired:
                argv.append("--args=%s" % " ".join(desired))
            if stale:
                argv.append("--remove-args=%s" % " ".join(stale))
            rc, _out, err = self.run(argv)
            if rc != 0:
                raise OSError("%s failed (rc=%d): %s" % (" ".join(argv), rc, err.strip()))
            return new_owned, warnings
        editor = edit_default_grub if self.tool == "grub" else edit_bls_entry
        for path in self.files():
            text = self._read(path)
            new_text, new_owned = editor(text, owned, desired)
            full = self.tree.path(path)
            if new_text != text:
                mode = os.stat(full).st_mode & 0o7777
                atomic_write(full, new_text, mode=mode)
        if self.tool == "grub":
            warnings.extend(self._update_grub())
        return new_owned, warnings

    def _update_grub(self):
        if not self.tree.live:
            return ["%s edited below %s; update-grub not run there" % (DEFAULT_GRUB, self.tree.root)]
        for updater in GRUB_UPDATERS:
            binary = self.which(updater[0])
            if binary and (len(updater) == 1 or os.path.isdir(os.path.dirname(updater[2]))):
                rc, _out, err = self.run([binary, *list(updater[1:])])
                if rc != 0:
                    raise OSError("%s failed (rc=%d): %s" % (updater[0], rc, err.strip()))
                return []
        return [
            "%s edited, but neither update-grub nor grub(2)-mkconfig was found: regenerate grub.cfg "
            "before rebooting" % DEFAULT_GRUB
        ]
