# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read a host's /proc, /sys and /etc below a root directory, collecting warnings instead of raising.

Below a root other than "/" every path goes through one resolver, ``Tree.resolve``: it walks the path a
component at a time as the captured host would see it (a chroot), so no symbolic link, absolute or
relative, can lead outside the root: an absolute target starts again at the root, ``..`` stops at the
root, and more than MAX_HOPS links in one lookup is ELOOP, as in the kernel. The path it returns has no
link left in it, and the final open does not follow one (O_NOFOLLOW). The resolver reads a static tree:
a tree that someone rewrites while it is probed is outside what it guards against.

Every read, live or not, reads regular files only and at most MAX_READ bytes of one. Below a captured
root a FIFO, a device or a socket is reported and never opened; on the live host the open is
non-blocking (a FIFO does not wait for a writer) and anything but a regular file is closed unread.
"""

from __future__ import annotations

import errno
import os
import stat

from ansible_collections.memtune.fleet.plugins.module_utils._host.procfs import parse_int

MAX_HOPS = 40  # the kernel's MAXSYMLINKS (include/linux/namei.h): links followed in one lookup
MAX_READ = 1 << 20  # bytes; no file the probe reads is anywhere near this on a real host
_CHUNK = 1 << 14
_QUIET = (errno.ENOENT, errno.ENOTDIR, errno.ESRCH)  # an optional file that is not there
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode):
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


class Tree:
    """A view of a host's files below ``root`` ("/" for the live host, a captured tree otherwise).

    Reads never raise for a missing or unreadable file: they return None and, unless the file is
    optional, note a warning. The caller decides what a missing file means.
    """

    def __init__(self, root="/", max_read=MAX_READ, confined=False):
        """``confined``: resolve every path below ``root`` even when it is the live "/" (a process's
        /proc/<pid>/root, whose absolute links must not lead to the host's files)."""
        self.root = root
        self.live = not confined and os.path.realpath(root) == "/"
        self.max_read = max_read
        self.warnings = []
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        self._flags = flags if self.live else flags | os.O_NOFOLLOW

    def path(self, path):
        """The real path of the host's ``path``; below a captured root, links resolve inside it.
        Raises OSError (ELOOP) for a link loop below a captured root."""
        if self.live:
            return path
        return self._below(self.resolve(path))

    def _below(self, resolved):
        return os.path.join(self.root, resolved.lstrip("/"))

    def resolve(self, path, follow_last=True):
        """``path`` as the captured host sees it, every link followed inside the root (the last one only
        when ``follow_last``): an absolute path without ``.``, ``..`` or links. Components that do not
        exist are kept as written. Raises OSError: ELOOP after MAX_HOPS links, EINVAL for a NUL byte."""
        if "\0" in path:
            raise OSError(errno.EINVAL, "path contains a NUL byte", path)
        pending = [part for part in reversed(path.split("/")) if part not in ("", ".")]
        done = []
        hops = 0
        while pending:
            part = pending.pop()
            if part == "..":
                if done:
                    done.pop()
                continue
            if not pending and not follow_last:
                done.append(part)
                break
            candidate = os.path.join(self.root, *done, part)
            try:
                is_link = stat.S_ISLNK(os.lstat(candidate).st_mode)
            except OSError:
                is_link = False  # missing: the rest of the path cannot hide a link either
            if not is_link:
                done.append(part)
                continue
            hops += 1
            if hops > MAX_HOPS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            pending.extend(reversed([item for item in target.split("/") if item not in ("", ".")]))
        return "/" + "/".join(done)

    def realpath(self, path):
        """The host's canonical name for ``path`` (os.path.realpath as the host would compute it); the
        path unchanged when it cannot be resolved (a loop), as os.path.realpath does."""
        if self.live:
            return os.path.realpath(path)
        try:
            return self.resolve(path)
        except OSError:
            return path

    def warn(self, message):
        self.warnings.append(message)

    def read(self, path, optional=False):
        """Return the text of ``path`` with surrounding white space removed, or None."""
        try:
            data = self._read_bytes(path)
        except (OSError, ValueError) as exc:
            if not (optional and getattr(exc, "errno", None) in _QUIET):
                self.warn("cannot read %s: %s" % (path, getattr(exc, "strerror", None) or exc))
            return None
        if data is None:
            return None
        return data.decode("utf-8", "replace").strip()

    def _read_bytes(self, path):
        real = self.path(path)
        if not self.live:  # a tree from elsewhere: its FIFOs and devices are not even opened
            mode = os.stat(real).st_mode
            if not stat.S_ISREG(mode):
                self.warn("%s is %s: not read" % (path, _kind(mode)))
                return None
        handle = os.open(real, self._flags)  # non-blocking: a FIFO without a writer does not wait
        try:
            mode = os.fstat(handle).st_mode
            if not stat.S_ISREG(mode):
                self.warn("%s is %s: not read" % (path, _kind(mode)))
                return None
            chunks, size = [], 0
            while size <= self.max_read:
                chunk = os.read(handle, _CHUNK)  # not max_read: allocating 1 MiB a read triples the cost
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            os.close(handle)
        if size > self.max_read:
            self.warn("%s is larger than %d bytes: not read" % (path, self.max_read))
            return None
        return b"".join(chunks)

    def read_int(self, path, optional=False):
        """A file's one integer of at most 64 bits, or None (with a warning when it holds something else)."""
        text = self.read(path, optional)
        if text is None:
            return None
        value = parse_int(text)
        if value is None:
            self.warn("%s: expected an integer, got %r" % (path, text[:40]))
        return value

    def listdir(self, path):
        """Names in a directory, sorted; an absent directory is an empty one, an unreadable one a warning."""
        try:
            return sorted(os.listdir(self.path(path)))
        except (OSError, ValueError) as exc:
            if getattr(exc, "errno", None) not in _QUIET:
                self.warn("cannot list %s: %s" % (path, getattr(exc, "strerror", None) or exc))
            return []

    def readlink(self, path):
        """The target of the link ``path`` (not followed), or None."""
        try:
            if self.live:
                return os.readlink(path)
            return os.readlink(self._below(self.resolve(path, follow_last=False)))
        except (OSError, ValueError):
            return None

    def exists(self, path):
        """Whether ``path`` names anything, a dangling link included (os.path.lexists)."""
        if self.live:
            return os.path.lexists(path)
        try:
            return os.path.lexists(self._below(self.resolve(path, follow_last=False)))
        except OSError:
            return False

    def writable(self, path):
        """Whether the live host lets us write ``path``; a captured tree is never writable."""
        return self.live and os.access(path, os.W_OK)
