# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What memtune leaves on disk: its sysctl.d file, the boot-time restore unit, the snapshot, the lock.

Renderers are pure (data in, file text out); the writers are atomic (temp file, fsync, rename).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import tempfile
import time

from ansible_collections.memtune.fleet.plugins.module_utils._contract import (
    BOOT_CONF,
    SETTING_KINDS,
    STATE_DIR,
    SYSCTL_FILE,
    SYSTEMD_DIR,
)

TEMP_PREFIX = ".memtune-"
# Where atomic_write puts its temporary files (beside the files it replaces), besides units' drop-in
# directories below SYSTEMD_DIR; the last two hold the bootloader files (_bootloader imports this module).
WRITTEN_DIRS = (
    os.path.dirname(SYSCTL_FILE),
    os.path.dirname(BOOT_CONF),
    SYSTEMD_DIR,
    STATE_DIR,
    "/etc/default",
    "/boot/loader/entries",
)
TMPFILES_BINARIES = ("/usr/bin/systemd-tmpfiles", "/bin/systemd-tmpfiles")
HEADER = (
    "# Managed by memtune (memtune.fleet.memory_apply); edits are overwritten.\n"
    "# Remove it with memory_apply state=absent, which restores the previous values.\n"
)


def render_sysctl(values):
    """{key: value} -> the text of memtune's sysctl.d file, keys sorted; None when there is nothing."""
    if not values:
        return None
    return HEADER + "".join("%s = %s\n" % (key, values[key]) for key in sorted(values))


def render_boot_conf(writes):
    """[(path, value)] -> a tmpfiles.d(5) file of ``w`` lines that write each value at boot."""
    if not writes:
        return None
    return HEADER + "".join("w %s - - - - %s\n" % (path, value) for path, value in writes)


def render_boot_unit(tmpfiles_binary):
    """The oneshot unit that applies BOOT_CONF early at boot: after /sys and sysctl, before sysinit.target,
    so the pools exist before any workload's service starts."""
    return (
        HEADER + "[Unit]\n"
        "Description=memtune: restore hugepage pools and transparent hugepages\n"
        "DefaultDependencies=no\n"
        "After=local-fs.target systemd-sysctl.service\n"
        "Before=sysinit.target shutdown.target\n"
        "Conflicts=shutdown.target\n"
        "ConditionPathExists=%s\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        "ExecStart=%s --create %s\n"
        "\n"
        "[Install]\n"
        "WantedBy=sysinit.target\n" % (BOOT_CONF, tmpfiles_binary, BOOT_CONF)
    )


def read_text(path):
    """The file's text, or None when it does not exist."""
    try:
        with open(path) as handle:
            return handle.read()
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def make_dirs(path, created):
    """Create ``path`` and missing parents (0755), appending each directory created to ``created``."""
    missing = []
    while path and not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for directory in reversed(missing):
        os.mkdir(directory, 0o755)
        created.append(directory)


def atomic_write(path, text, mode=0o644, created_dirs=None):
    """Write ``text`` to ``path`` so that readers see the old or the new file, never a part."""
    directory = os.path.dirname(path)
    make_dirs(directory, created_dirs if created_dirs is not None else [])
    handle, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=directory)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp, mode)
        os.rename(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_file(path):
    """Remove ``path``; True when there was something to remove."""
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        raise
    return True


def remove_stale_temps(tree):
    """Remove the temporary files that a run killed in the middle of atomic_write left behind; only under
    the host lock, when no other run can be writing one. -> the paths removed."""
    directories = list(WRITTEN_DIRS)
    directories += [
        "%s/%s" % (SYSTEMD_DIR, name) for name in tree.listdir(SYSTEMD_DIR) if name.endswith(".d")
    ]
    removed = []
    for directory in directories:
        for name in tree.listdir(directory):
            if name.startswith(TEMP_PREFIX) and remove_file(tree.path("%s/%s" % (directory, name))):
                removed.append("%s/%s" % (directory, name))
    return removed


def remove_empty_dirs(directories):
    """Remove the directories memtune created, deepest first, when they are empty."""
    for directory in sorted(directories, key=len, reverse=True):
        with contextlib.suppress(OSError):
            os.rmdir(directory)


def symlink(target, link, created_dirs):
    make_dirs(os.path.dirname(link), created_dirs)
    if os.path.islink(link) and os.readlink(link) == target:
        return False
    remove_file(link)
    os.symlink(target, link)
    return True


def load_snapshot(path):
    """The saved snapshot, or None. A damaged snapshot is an error: rolling back from it would be wrong."""
    text = read_text(path)
    if text is None:
        return None
    try:
        snapshot = json.loads(text)
    except ValueError as exc:
        raise ValueError("%s is not valid JSON (%s); move it away to start afresh" % (path, exc)) from None
    if not isinstance(snapshot, dict) or snapshot.get("version") != 1:
        raise ValueError("%s is not a memtune snapshot of version 1" % path)
    return snapshot


def new_snapshot():
    return {
        "version": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "runtime": dict(
            {"sysctl": {}, "hugepages": {}, "cgroups": {}}, **{k.kind: {} for k in SETTING_KINDS}
        ),
        "files": {},
        "dirs": [],
        "owned": {"kernel_cmdline": [], "dropins": []},
    }


def remember(snapshot, section, key, value):
    """Keep the first value seen: the snapshot holds what the host had before memtune touched it."""
    snapshot[section].setdefault(key, value)


def save_snapshot(path, snapshot):
    atomic_write(path, json.dumps(snapshot, indent=2, sort_keys=True) + "\n", mode=0o600)


class LockTimeout(Exception):
    pass


class HostLock:
    """An exclusive flock(2) on LOCK_FILE, so two memory_apply runs on one host cannot interleave."""

    def __init__(self, path, timeout):
        self.path, self.timeout, self.handle = path, timeout, None

    def __enter__(self):
        make_dirs(os.path.dirname(self.path), [])
        self.handle = open(self.path, "a+")
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                    self.handle.seek(0)
                    holder = self.handle.read().strip() or "unknown"
                    self.handle.close()
                    raise LockTimeout(
                        "another memtune run (pid %s) holds %s; waited %ss"
                        % (holder, self.path, self.timeout)
                    ) from None
                time.sleep(0.1)
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write("%d\n" % os.getpid())
        self.handle.flush()
        return self

    def __exit__(self, *exc_info):
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()
        return False
