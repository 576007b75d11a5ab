# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read a host's /proc, /sys and /etc below a root directory, collecting warnings instead of raising."""

from __future__ import annotations

import errno
import os


class Tree:
    """A view of a host's files below ``root`` ("/" for the live host, a captured tree otherwise).

    Reads never raise for a missing or unreadable file: they return None and, unless the file is
    optional, note a warning. The caller decides what a missing file means.
    """

    def __init__(self, root="/"):
        self.root = root
        self.live = os.path.realpath(root) == "/"
        self.warnings = []

    def path(self, path):
        """The real path of the host's ``path``; below a captured root, links resolve inside it."""
        if self.live:
            return path
        return os.path.join(self.root, self.resolve(path).lstrip("/"))

    def resolve(self, path, hops=40):
        """Resolve ``path`` as the captured host would (a chroot's view), without leaving the root."""
        parts = [part for part in path.split("/") if part not in ("", ".")]
        done = []
        while parts:
            part = parts.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = os.path.join(self.root, *done, part)
            if os.path.islink(candidate) and hops > 0:
                hops -= 1
                target = os.readlink(candidate)
                if target.startswith("/"):
                    done = []
                parts = [p for p in target.split("/") if p not in ("", ".")] + parts
                continue
            done.append(part)
        return "/" + "/".join(done)

    def warn(self, message):
        self.warnings.append(message)

    def read(self, path, optional=False):
        """Return the text of ``path`` with surrounding white space removed, or None."""
        try:
            with open(self.path(path), "rb") as handle:
                data = handle.read()
        except OSError as exc:
            if not (optional and exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ESRCH)):
                self.warn("cannot read %s: %s" % (path, exc.strerror or exc))
            return None
        return data.decode("utf-8", "replace").strip()

    def read_int(self, path, optional=False):
        text = self.read(path, optional)
        if text is None:
            return None
        try:
            return int(text)
        except ValueError:
            self.warn("%s: expected an integer, got %r" % (path, text[:40]))
            return None

    def listdir(self, path):
        """Names in a directory, sorted; an absent directory is an empty one."""
        try:
            return sorted(os.listdir(self.path(path)))
        except OSError:
            return []

    def readlink(self, path):
        """The target of the link ``path`` (not followed), or None."""
        parent, name = os.path.split(path)
        try:
            return os.readlink(os.path.join(self.path(parent), name))
        except OSError:
            return None

    def exists(self, path):
        return os.path.lexists(self.path(path))

    def writable(self, path):
        """Whether the live host lets us write ``path``; a captured tree is never writable."""
        return self.live and os.access(path, os.W_OK)
