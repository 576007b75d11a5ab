# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A workload instance's version, from the files that say it, read through the instance's own root:
PG_VERSION in PostgreSQL's data directory, the Elasticsearch/OpenSearch and Kafka jar names, the dpkg
status file's package versions (MongoDB, Redis, MySQL/MariaDB, Elasticsearch), where a root has no dpkg
status file the RPM database's (rpm >= 4.16's ``rpmdb.sqlite``), Oracle's component inventory (comps.xml of
the home the binary runs from).

Files first. Only where none says it, and only for a binary of the host's own root, the binary's own
``--version`` (``run_version.py``: at most once per binary per probe, with a time limit). A version
nothing gives is null, with the evidence of what was looked at. Each reader returns (version, evidence).
"""

from __future__ import annotations

import os
import re
import stat
import struct
from urllib.parse import quote

from ansible_collections.memtune.fleet.plugins.module_utils._probe import run_version

DPKG_STATUS = "/var/lib/dpkg/status"
_PG_VERSION = re.compile(r"[0-9]{1,4}(?:\.[0-9]{1,4})?", re.ASCII)  # what PG_VERSION holds: "15", "9.6"
_PG_BIN = re.compile(r"/postgresql/([0-9.]{1,16})/bin/")
_PG_UNIT = re.compile(r"postgresql@([0-9]{1,4}(?:\.[0-9]{1,4})?)-[^/]+\.service")  # Debian's per-cluster unit
_KAFKA_JAR = re.compile(r"kafka_[0-9.]+-([0-9][0-9A-Za-z.\-]*?)\.jar")
_JAVA_HOMES = (("-Des.path.home=", "elasticsearch"), ("-Dopensearch.path.home=", "opensearch"))
_UPSTREAM = re.compile(r"[0-9][0-9A-Za-z.+~]{0,63}", re.ASCII)
_ORACLE_SERVER = re.compile(r'<COMP\s+NAME="oracle\.server"\s+VER="([0-9][0-9.]{0,31})"')
# workload -> dpkg package names (regular expressions), the server's own package first
PACKAGES = {
    "mongodb": (
        "mongodb-org-server",
        "mongodb-server-core",
        "mongodb-server",
        "percona-server-mongodb-server",
    ),
    "redis": ("redis-server",),
    "mysql": (
        r"mariadb-server-core(?:-[0-9.]+)?",
        r"mariadb-server(?:-[0-9.]+)?",
        r"mysql-server-core-[0-9.]+",
        "mysql-community-server-core",
        r"mysql-server(?:-[0-9.]+)?",
        r"percona-server-server(?:-[0-9.]+)?",
    ),
    "elasticsearch": ("elasticsearch", "opensearch"),
}


def data_dir(argv):
    """PostgreSQL's data directory from the postmaster's ``-D dir`` or ``-Ddir``; None without one."""
    found = None
    for index, word in enumerate(argv):
        if word == "-D" and index + 1 < len(argv):
            found = argv[index + 1]
        elif word.startswith("-D") and len(word) > 2:
            found = word[2:]
    return found


def upstream_version(version):
    """A Debian version's upstream part: "5:7.0.15-1~deb12u1" -> "7.0.15"; None when it is not one."""
    version = version.split(":", 1)[1] if ":" in version[:6] else version
    version = version.rsplit("-", 1)[0] if "-" in version else version
    return version if _UPSTREAM.fullmatch(version) else None


def _paragraph(status, start):
    end = status.find("\n\n", start)
    fields = {}
    for line in status[start : end if end >= 0 else len(status)].splitlines():
        key, sep, value = line.partition(":")
        if sep and not key.startswith((" ", "\t")):
            fields[key] = value.strip()
    return fields


_NEEDLE = "\nPackage: "
_REGEX_START = re.compile(r"[\\(\[.?*+{|]")


def _packages(text, name):
    """(package, its paragraph's fields) for each paragraph of ``text`` (a status file after a newline)
    whose Package matches ``name``, a regular expression. Found by the name's literal prefix with
    str.find: a regular expression over a 4 MiB status file costs milliseconds, the find much less."""
    needle = _NEEDLE + _REGEX_START.split(name, maxsplit=1)[0]
    at = text.find(needle)
    while at != -1:
        line_end = text.find("\n", at + 1)
        line_end = len(text) if line_end == -1 else line_end
        package = text[at + len(_NEEDLE):line_end].strip()
        if re.fullmatch(name, package):
            yield package, _paragraph(text, line_end)
        at = text.find(needle, line_end)


def dpkg_version(status, names):
    """(upstream version, evidence) of the first of ``names`` (regular expressions, in order of
    preference) that the dpkg status text says is installed; (None, evidence) when none is."""
    text = "\n" + status
    for name in names:
        installed = sorted(
            (package, fields.get("Version", ""))
            for package, fields in _packages(text, name)
            if fields.get("Status", "").endswith(" installed")
        )
        for package, found in installed:
            version = upstream_version(found)
            if version is None:
                return None, "%s: package %s has no valid Version (%r)" % (DPKG_STATUS, package, found[:40])
            return version, "%s: %s %s" % (DPKG_STATUS, package, found)
    return None, "%s: none of %s installed" % (DPKG_STATUS, ", ".join(names))


# workload -> RPM package names (exact), the server's own package first. RHEL 9 AppStream: redis,
# mariadb-server, mysql-server; Fedora 41+ and RHEL 10: valkey (Redis's fork, its server binary is
# valkey-server with a redis-server link), community-mysql-server (Fedora's MySQL); upstream repositories:
# mongodb-org-server (repo.mongodb.org), percona-server-mongodb-server, MariaDB-server (MariaDB's yum
# repository), mysql-community-server (repo.mysql.com), percona-server-server, elasticsearch
# (artifacts.elastic.co), opensearch (artifacts.opensearch.org).
RPM_PACKAGES = {
    "mongodb": ("mongodb-org-server", "percona-server-mongodb-server"),
    "redis": ("redis", "valkey"),
    "mysql": (
        "mariadb-server",
        "MariaDB-server",
        "mysql-server",
        "community-mysql-server",
        "mysql-community-server",
        "percona-server-server",
    ),
    "elasticsearch": ("elasticsearch", "opensearch"),
}
# Where rpm keeps its database: /var/lib/rpm (RHEL 9, Amazon Linux 2023); Fedora 36+ keeps it in
# /usr/lib/sysimage/rpm and links /var/lib/rpm there (an image may lack the link).
RPM_DIRS = ("/var/lib/rpm", "/usr/lib/sysimage/rpm")
RPMDB_SQLITE = "rpmdb.sqlite"
_RPM_UNREAD = (
    ("Packages", "a Berkeley DB database (rpm < 4.16: RHEL 7/8)"),
    ("Packages.db", "an ndb database"),
)
# Sanity bounds, not measured on real hosts: SQLite reads only the pages a lookup needs, so the file's
# size costs no memory; a database past 512 MiB is taken as not rpm's. One header of 16 MiB is far above
# what a package's file list makes (rpm's own limit is 256 MiB) and is the most one lookup holds.
MAX_RPMDB = 512 << 20
MAX_HEADER = 16 << 20
MAX_HEADER_TAGS = 0xFFFF  # rpm's limit on a header's index entries
MAX_STEPS = 2000  # progress-handler calls (each after 1000 SQLite VM instructions) per query
MAX_ROWS = 8  # packages of one name looked at (several versions of one name: multilib, parallel installs)
_TAG_NAME, _TAG_VERSION, _TAG_RELEASE, _TAG_EPOCH = 1000, 1001, 1002, 1003
_TYPE_INT32, _TYPE_STRING = 4, 6


class RpmdbError(Exception):
    """An rpmdb.sqlite, or a header in it, that is not what rpm writes."""


def rpm_header(blob):
    """{tag: value} of NAME, VERSION, RELEASE (str) and EPOCH (int) of an rpm header blob as rpmdb.sqlite
    stores it (rpm's header without the lead magic): il and dl (big-endian 32-bit counts), il index
    entries of 16 bytes (tag, type, offset, count), then dl bytes of data. Raises RpmdbError."""
    if not isinstance(blob, bytes) or len(blob) < 8:
        raise RpmdbError("a header shorter than 8 bytes")
    index_length, data_length = struct.unpack_from(">II", blob)
    if not 1 <= index_length <= MAX_HEADER_TAGS:
        raise RpmdbError("a header with %d index entries" % index_length)
    start = 8 + 16 * index_length
    if start + data_length > len(blob):
        raise RpmdbError("a header of %d bytes that says it holds %d" % (len(blob), start + data_length))
    data = blob[start : start + data_length]
    found = {}
    for entry in range(index_length):
        tag, kind, offset, count = struct.unpack_from(">IIII", blob, 8 + 16 * entry)
        if tag not in (_TAG_NAME, _TAG_VERSION, _TAG_RELEASE, _TAG_EPOCH) or tag in found:
            continue
        if tag == _TAG_EPOCH:
            if kind != _TYPE_INT32 or count < 1 or offset % 4 or offset + 4 > data_length:
                raise RpmdbError("an EPOCH entry of type %d at %d" % (kind, offset))
            found[tag] = struct.unpack_from(">I", data, offset)[0]
            continue
        end = data.find(b"\0", offset, offset + 256) if kind == _TYPE_STRING and offset < data_length else -1
        if end < 0:
            raise RpmdbError(
                "tag %d is not a string of at most 255 bytes (type %d at %d)" % (tag, kind, offset)
            )
        found[tag] = data[offset:end].decode("ascii", "replace")
    return found


def _rpm_query(path, names):
    """(name, header fields) of the first of ``names`` the database at ``path`` holds, or None. Opened
    read-only and immutable (no lock, no journal, nothing written next to it: the root is a container's or
    a captured tree's), every query bounded by SQLite's progress handler."""
    import sqlite3  # not every Python has it (a minimal build): the caller says so

    steps = [0]

    def progress():
        steps[0] += 1
        return 1 if steps[0] > MAX_STEPS else 0

    connection = sqlite3.connect("file:%s?mode=ro&immutable=1" % quote(path), uri=True, timeout=0)
    try:
        connection.set_progress_handler(progress, 1000)
        for name in names:
            steps[0] = 0
            rows = connection.execute(
                "SELECT length(p.blob), CASE WHEN length(p.blob) <= ? THEN p.blob END FROM Name AS n"
                " JOIN Packages AS p ON p.hnum = n.hnum WHERE n.key = ? ORDER BY p.hnum LIMIT ?",
                (MAX_HEADER, name, MAX_ROWS),
            ).fetchall()
            for length, blob in rows:
                if blob is None:
                    raise RpmdbError(
                        "package %s has a header of %s bytes (at most %d read)" % (name, length, MAX_HEADER)
                    )
                header = rpm_header(blob)
                if header.get(_TAG_NAME) != name:
                    raise RpmdbError(
                        "the Name index's %s leads to a header of %r" % (name, header.get(_TAG_NAME))
                    )
                return name, header
        return None
    finally:
        connection.close()


def _rpmdb(root):
    """((path, real path, stat) of the RPM database of ``root``, None), or (None, the answer when there is
    none it reads: an older format, or no database)."""
    tried = []
    for directory in RPM_DIRS:
        sqlite_path = "%s/%s" % (directory, RPMDB_SQLITE)
        try:
            real = root.path(sqlite_path)
            return (sqlite_path, real, os.stat(real)), None
        except (OSError, ValueError):
            pass
        for name, what in _RPM_UNREAD:
            other = "%s/%s" % (directory, name)
            try:
                present = os.path.lexists(root.path(other))
            except (OSError, ValueError):
                present = False
            if present:
                return None, (None, "%s is %s: not read" % (other, what))
        tried.append(sqlite_path)
    return None, (None, "no RPM database (%s)" % ", ".join(tried))


def _identity(info):
    """A file's identity for the answers kept per file: inode, size, mtime."""
    return info.st_ino, info.st_size, info.st_mtime_ns


def rpm_version(root, names):
    """(version, evidence) of the first of ``names`` the RPM database of ``root`` (a Tree) holds, and the
    database's identity (None when nothing was read). Never raises for what the files hold."""
    found, answer = _rpmdb(root)
    if found is None:
        return answer, None
    path, real, info = found
    return _rpm_answer(path, real, info, names, root.live), _identity(info)


def _rpm_answer(path, real, info, names, live):
    if not stat.S_ISREG(info.st_mode):
        return None, "%s is not a regular file: not read" % path
    try:
        import sqlite3
    except ImportError as exc:
        return None, "%s not read: this Python has no sqlite3 (%s)" % (path, exc)
    # SQLite opens the file this descriptor holds (/proc/self/fd/N): what was checked is what is read,
    # even when the root's owner swaps the file for a FIFO or a link in between.
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | (0 if live else os.O_NOFOLLOW)
    try:
        handle = os.open(real, flags)
    except OSError as exc:
        return None, "%s not read: %s" % (path, exc.strerror)
    try:
        held = os.fstat(handle)
        if not stat.S_ISREG(held.st_mode):
            return None, "%s is not a regular file: not read" % path
        if held.st_size > MAX_RPMDB:
            return None, "%s is larger than %d bytes: not read" % (path, MAX_RPMDB)
        found = _rpm_query("/proc/self/fd/%d" % handle, names)
    except (sqlite3.Error, RpmdbError, struct.error, ValueError, OverflowError) as exc:
        return None, "%s not read: %s" % (path, exc)
    finally:
        os.close(handle)
    if found is None:
        return None, "%s: none of %s installed" % (path, ", ".join(names))
    name, header = found
    version, release = header.get(_TAG_VERSION, ""), header.get(_TAG_RELEASE, "")
    epoch = header.get(_TAG_EPOCH)
    said = "%s%s-%s" % ("%d:" % epoch if epoch is not None else "", version, release)
    if not _UPSTREAM.fullmatch(version):
        return None, "%s: package %s has no valid Version (%r)" % (path, name, version[:40])
    return version, "%s: %s %s" % (path, name, said[:80])


# workload -> the variable its official container image sets to the version it was built from
IMAGE_VARIABLES = {"redis": "REDIS_VERSION"}


class DpkgAnswers:
    """One probe's package answers, kept by the status file's identity (inode, size, mtime): the host's
    processes share one file, and containers of one image share the image layer's (overlayfs shows the
    lower file's inode). At most MAX_FILES distinct files are read in one probe (about 0.5 ms each for
    a 400 kB file): the probe's time stays bounded on a node running many images. A root without a dpkg
    status file is asked its RPM database, kept and bounded the same way (MAX_FILES databases)."""

    MAX_FILES = 32

    def __init__(self):
        self.answers = {}
        self.files = 0
        self.rpm_answers = {}
        self.rpm_files = 0

    def rpm(self, root, workload):
        """(version, evidence) from the RPM database of ``root``."""
        found, answer = _rpmdb(root)
        if found is None:
            return answer
        path, real, info = found
        key = (_identity(info), workload)
        if key not in self.rpm_answers:
            if self.rpm_files >= self.MAX_FILES:
                return None, "RPM database not read: %d already read in this probe" % self.rpm_files
            self.rpm_files += 1
            self.rpm_answers[key] = _rpm_answer(path, real, info, RPM_PACKAGES[workload], root.live)
        return self.rpm_answers[key]

    def version(self, root, workload):
        key = _file_key(root, DPKG_STATUS)
        if key is not None and (key, workload) in self.answers:
            return self.answers[key, workload]
        if self.files >= self.MAX_FILES:
            return None, "%s not read: %d status files already read in this probe" % (DPKG_STATUS, self.files)
        status = root.read(DPKG_STATUS, optional=True) if root is not None else None
        if status is None:
            absent = "%s not readable in the instance's root" % DPKG_STATUS
            if root is None:
                return None, absent
            found, why = self.rpm(root, workload)
            return found, "%s; %s" % (absent, why)
        self.files += 1
        answer = dpkg_version(status, PACKAGES[workload])
        if key is not None:
            self.answers[key, workload] = answer
        return answer


class Instance:
    """What a version reader may use: the instance's root (a Tree or None), its leader's argv and
    binary, its unit, the probe's DpkgAnswers, and ``environ()``, the leader's /proc/<pid>/environ
    (read only when asked), and the probe's VersionRuns when its binary may be run (None otherwise)."""

    def __init__(self, root, argv, exe, unit, dpkg_answers, *, environ=lambda: None, runs=None):
        self.root = root
        self.runs = runs
        self.argv = argv
        self.exe = exe or (argv[0] if argv else "")
        self.unit = unit
        self._dpkg = dpkg_answers
        self.environ = environ

    def dpkg(self, workload):
        """(version, evidence) from the dpkg status file of the instance's root."""
        return self._dpkg.version(self.root, workload)


def _file_key(root, path):
    if root is None:
        return None
    try:
        return _identity(os.stat(root.path(path)))
    except (OSError, ValueError):
        return None


def postgresql(instance, directory):
    tried = []
    if directory and directory.startswith("/") and instance.root is not None:
        text = instance.root.read(os.path.join(directory, "PG_VERSION"), optional=True)
        if text and _PG_VERSION.fullmatch(text):
            return text, "%s/PG_VERSION says %s" % (directory, text)
        tried.append("%s/PG_VERSION %s" % (directory, "holds %r" % text[:20] if text else "is not readable"))
    elif directory:
        tried.append(
            "data directory %s not read (%s)"
            % (directory, "relative" if not directory.startswith("/") else "no root to read it through")
        )
    # A fallback says what it fell back from: a corrupt PG_VERSION must show in the evidence.
    match = _PG_BIN.search(instance.exe)
    if match:
        return match.group(1), "; ".join([*tried, "binary %s" % instance.exe])
    match = _PG_UNIT.fullmatch(instance.unit or "")
    if match:
        return match.group(1), "; ".join([*tried, "unit %s" % instance.unit])
    tried.append("binary %s and unit %s name no version" % (instance.exe or "unknown", instance.unit))
    return None, "; ".join(tried)


def kafka(instance):
    match = _KAFKA_JAR.search(" ".join(instance.argv))
    if match:
        return match.group(1), "jar %s" % match.group(0)
    return None, "no kafka_<scala>-<version>.jar on the command line"


def elasticsearch(instance):
    for flag, product in _JAVA_HOMES:
        home = next((word[len(flag) :] for word in instance.argv if word.startswith(flag)), None)
        if home and home.startswith("/") and instance.root is not None:
            pattern = re.compile(
                r"%s-([0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}(?:-[A-Za-z0-9.]{1,32})?)\.jar" % product
            )
            lib = os.path.join(home, "lib")
            for name in instance.root.listdir(lib):
                match = pattern.fullmatch(name)
                if match:
                    return match.group(1), "jar %s/%s" % (lib, name)
    version, why = instance.dpkg("elasticsearch")
    return version, why if version else "no <product>-<version>.jar in the home's lib/; " + why


def oracle(instance):
    home = os.path.dirname(os.path.dirname(instance.exe)) if instance.exe.endswith("/bin/oracle") else None
    if home is None or instance.root is None:
        return None, "binary %s is not <ORACLE_HOME>/bin/oracle" % (instance.exe or "unknown")
    comps = os.path.join(home, "inventory/ContentsXML/comps.xml")
    match = _ORACLE_SERVER.search(instance.root.read(comps, optional=True) or "")
    if match:
        return match.group(1), "%s: oracle.server %s" % (comps, match.group(1))
    return None, "%s: no oracle.server component" % comps


def image_variable(instance, name, tried):
    """The version an image's ``name=`` environment variable gives (the official Redis image is built from
    source: no package says it)."""
    environ = instance.environ() or ""
    for item in environ.split("\0"):
        key, sep, value = item.partition("=")
        if sep and key == name:
            found = value if _UPSTREAM.fullmatch(value) else None
            return found, "%s; environment %s=%s" % (tried, name, value[:40])
    if environ and not environ.strip("\0"):
        # Seen on the lab's guests: a running redis-server's environment reads as NUL bytes only.
        return None, "%s; no %s in the environment: it reads as NUL bytes only (%s)" % (
            tried,
            name,
            "redis-server writes its process title over it unless set-proc-title is no",
        )
    return None, "%s; no %s in the environment" % (tried, name)


def version(workload, instance, directory=None):
    """(version or None, evidence) of one instance of ``workload``: from its files, else from its
    binary's ``--version`` where the instance allows it."""
    found, why = _from_files(workload, instance, directory)
    if found is None and instance.runs is not None and workload in run_version.PATTERNS:
        found, ran = instance.runs.version(workload, instance.exe)
        why = "%s; %s" % (why, ran)
    return found, why


def _from_files(workload, instance, directory):
    if workload == "postgresql":
        return postgresql(instance, directory)
    if workload == "kafka":
        return kafka(instance)
    if workload == "elasticsearch":
        return elasticsearch(instance)
    if workload == "oracle":
        return oracle(instance)
    if workload in PACKAGES:
        found, why = instance.dpkg(workload)
        if found is None and workload in IMAGE_VARIABLES:
            return image_variable(instance, IMAGE_VARIABLES[workload], why)
        return found, why
    return None, "no file names a %s version" % workload
