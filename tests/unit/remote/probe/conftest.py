"""Fixtures of the probe's tests."""

from __future__ import annotations

import shutil

import pytest

from tests.support import rpm_db
from tests.support.trees import HOSTS


@pytest.fixture(scope="session")
def rpmdb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The rpmdb.sqlite Debian's rpm writes into a copy of captured numa2 (no dpkg there) when the
    packages of tests/support/rpm_db.py are installed into it: built once a session."""
    scratch = tmp_path_factory.mktemp("rpm")
    tree = scratch / "numa2"
    shutil.copytree(HOSTS / "numa2", tree, symlinks=True)
    return rpm_db.install(tree / "var/lib/rpm", rpm_db.build_rpms(scratch)).read_bytes()
