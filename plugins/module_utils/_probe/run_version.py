# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The last resort for a workload's version, when no file says it: the running binary's own
``--version``.

Only on the live host, only for an instance that runs in the host's own root (never a container's
binary: it would run with the host's libraries, as root), only for a binary that is still the one
running (not ``(deleted)``, replaced by an upgrade), owned by root and writable by nobody else. Each
binary runs at most once per probe (by device and inode), for at most TIMEOUT seconds, and at most
MAX_OUTPUT bytes of what it prints are read; its environment is a bare PATH and LC_ALL=C. At most
MAX_RUNS binaries run in one probe: ``mariadbd --version`` alone costs 27 ms of CPU on the project's VM
(bench/RESULTS.md), and the whole probe's budget is 50 ms; a second binary gets null, with the reason.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import stat
import time

TIMEOUT = 2.0
MAX_OUTPUT = 4096
MAX_RUNS = 1
# workload -> what its server binary's --version prints: mongod "db version v7.0.5", redis-server
# "Redis server v=7.0.15 sha=...", mariadbd "mariadbd  Ver 10.11.6-MariaDB-0+deb12u1 for debian-linux-gnu"
# (mysqld "mysqld  Ver 8.0.36 for Linux"), postgres "postgres (PostgreSQL) 15.8"
PATTERNS = {
    "mongodb": re.compile(r"db version v([0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4})"),
    "redis": re.compile(r"\bv=([0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4})"),
    "mysql": re.compile(r"\bVer ([0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4})"),
    "postgresql": re.compile(r"\(PostgreSQL\) ([0-9]{1,4}(?:\.[0-9]{1,4})?)"),
}
_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


def _runnable(exe):
    """(the stat of ``exe``, None) when it may be run, else (None, why not)."""
    if not exe or not exe.startswith("/"):
        return None, "its binary is not known"
    if exe.endswith(" (deleted)"):
        return None, "its binary %s was replaced on disk since it started" % exe
    try:
        info = os.stat(exe)
    except OSError as exc:
        return None, "%s: %s" % (exe, exc.strerror)
    if not stat.S_ISREG(info.st_mode) or not info.st_mode & 0o111:
        return None, "%s is not an executable file" % exe
    if info.st_uid != 0 or info.st_mode & 0o022:
        return None, "%s is not owned by root or is writable by others" % exe
    return info, None


def _spawn(exe, null, write):
    """Start ``exe --version`` in a session of its own, stdout and stderr to ``write``; -> its pid.
    fork and execve, not AnsibleModule.run_command (no timeout, reads all a process prints) nor
    subprocess (ansible-test asks modules for run_command instead): the child only sets up its
    descriptors and replaces itself; the descriptors Python opened are close-on-exec (PEP 446)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            os.dup2(null, 0)
            os.dup2(write, 1)
            os.dup2(write, 2)
            os.chdir("/")
            os.execve(exe, [exe, "--version"], _ENV)
        finally:
            os._exit(127)
    return pid


def _reap(pid):
    """The exit status of ``pid``; its whole session is killed first if it still runs."""
    done, status = os.waitpid(pid, os.WNOHANG)
    if done == 0:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        done, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status


def _output(exe):
    """(what ``exe --version`` printed, at most MAX_OUTPUT bytes, or None; why not)."""
    read, write = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        pid = _spawn(exe, null, write)
    except OSError as exc:
        for fd in (read, write, null):
            os.close(fd)
        return None, "%s --version could not start: %s" % (exe, exc.strerror)
    os.close(write)
    os.close(null)
    out, why = b"", None
    deadline = time.monotonic() + TIMEOUT
    try:
        while len(out) < MAX_OUTPUT:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([read], [], [], left)[0]:
                why = "%s --version gave no answer in %g s" % (exe, TIMEOUT)
                break
            chunk = os.read(read, MAX_OUTPUT - len(out))
            if not chunk:
                break
            out += chunk
    finally:
        os.close(read)
        status = _reap(pid)
    if why:
        return None, why
    if not out.strip():
        return None, "%s --version printed nothing (exit status %s)" % (exe, status)
    return out.decode("utf-8", "replace"), None


class VersionRuns:
    """One probe's ``--version`` answers, by binary (device, inode): each binary runs at most once."""

    def __init__(self):
        self.answers = {}
        self.runs = 0

    def version(self, workload, exe):
        """(version or None, evidence) from ``exe --version``."""
        pattern = PATTERNS.get(workload)
        if pattern is None:
            return None, "no --version is read for %s" % workload
        info, refused = _runnable(exe)
        if info is None:
            return None, "--version not run: " + refused
        key = (info.st_dev, info.st_ino, workload)
        if key not in self.answers:
            if self.runs >= MAX_RUNS:
                return None, "--version not run: %d binaries already run in this probe" % self.runs
            self.runs += 1
            text, why = _output(exe)
            if text is None:
                self.answers[key] = (None, why)
            else:
                match = pattern.search(text)
                first = text.strip().splitlines()[0][:120]  # _output gives no blank text
                self.answers[key] = (
                    (match.group(1), "%s --version: %s" % (exe, first))
                    if match
                    else (None, "%s --version printed no %s version: %r" % (exe, workload, first))
                )
        return self.answers[key]
