"""Real RPM databases for the probe's tests (issue 18): tiny packages built by Debian's ``rpmbuild`` from
specs written here and installed with ``rpm --justdb`` (rpm 4.18, the sqlite backend), so the probe reads
a database rpm itself wrote. ``make apt`` installs Debian's ``rpm`` (Makefile APT_PACKAGES)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

# (Name, Epoch or None, Version, Release)
PACKAGES = (
    ("redis", None, "7.2.4", "1.el9"),
    ("mongodb-org-server", 1, "8.0.4", "1.el9"),
    ("mariadb-server", 3, "10.11.6", "1.fc40"),
)
_SPEC = """Name: {name}
{epoch}Version: {version}
Release: {release}
Summary: memtune test package
License: GPL-3.0-or-later
BuildArch: noarch
%description
A memtune test package: no files, only its header.
%files
"""


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `make apt` (Debian's rpm package)")
    return found


def build_rpms(
    workdir: Path, packages: tuple[tuple[str, int | None, str, str], ...] = PACKAGES
) -> list[Path]:
    """The .rpm files of ``packages``, built in ``workdir``."""
    rpmbuild = _tool("rpmbuild")
    top = workdir / "rpmbuild"
    for name, epoch, version, release in packages:
        spec = workdir / f"{name}.spec"
        spec.write_text(
            _SPEC.format(
                name=name,
                epoch="" if epoch is None else f"Epoch: {epoch}\n",
                version=version,
                release=release,
            )
        )
        subprocess.run(
            [rpmbuild, "--quiet", "-bb", "--define", f"_topdir {top}", str(spec)],
            check=True,
            capture_output=True,
            timeout=120,
        )
    return sorted((top / "RPMS").glob("*/*.rpm"))


def install(dbpath: Path, rpms: list[Path]) -> Path:
    """``rpms`` installed (header only: --justdb) into the database at ``dbpath``; its rpmdb.sqlite."""
    dbpath.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [_tool("rpm"), "--dbpath", str(dbpath), "--justdb", "--nodeps", "--noscripts", "-i", *map(str, rpms)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return dbpath / "rpmdb.sqlite"
