"""Report files are replaced in one step (a new inode renamed over the old name), never written in place
where a reader such as node_exporter's textfile collector could see half a file (issue 16)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from memtune.atomic_write import write_atomically


def test_the_file_is_replaced_by_a_rename_and_no_temporary_file_is_left(tmp_path: Path) -> None:
    path = tmp_path / "memtune-audit.prom"
    path.write_text("old\n")
    reader = path.open()  # a reader that opened the old file keeps reading the whole old file
    write_atomically(path, "new\n")
    assert reader.read() == "old\n" and path.read_text() == "new\n"
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert [item.name for item in tmp_path.iterdir()] == ["memtune-audit.prom"]
    reader.close()


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary_one(tmp_path: Path) -> None:
    path = tmp_path / "memtune-audit.json"
    path.write_text("old\n")
    with pytest.raises(UnicodeEncodeError):
        write_atomically(path, "\udcff")  # a lone surrogate cannot be encoded as UTF-8
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["memtune-audit.json"]
