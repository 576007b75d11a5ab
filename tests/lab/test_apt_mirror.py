"""The mirror comes from this machine's apt sources, in either format; no host is ever assumed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from apt_mirror import find_mirror, parse_deb822, parse_one_line

DEB822 = """\
Types: deb deb-src
URIs: http://mirror.example.org/debian/
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://security.example.org/debian-security
Suites: bookworm-security
Components: main
"""


@pytest.mark.parametrize(
    ("text", "suite", "expected"),
    [
        (DEB822, "bookworm", "http://mirror.example.org/debian"),
        (DEB822, "bookworm-security", "http://security.example.org/debian-security"),
        (DEB822, "trixie", ""),
        (DEB822.replace("Types: deb deb-src", "Types: deb-src"), "bookworm", ""),
        ("Enabled: no\n" + DEB822, "bookworm", ""),
        (
            "Types: deb\n# a comment\nURIs:\n http://folded.example.org/d\nSuites: bookworm\n",
            "bookworm",
            "http://folded.example.org/d",
        ),
    ],
)
def test_deb822(text: str, suite: str, expected: str) -> None:
    assert find_mirror(parse_deb822(text), suite) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("deb http://one.example.org/debian bookworm main", "http://one.example.org/debian"),
        (
            "deb [arch=amd64 signed-by=/k.gpg] http://two.example.org/debian/ bookworm main contrib",
            "http://two.example.org/debian",
        ),
        ("# deb http://off.example.org/debian bookworm main", ""),
        ("deb-src http://src.example.org/debian bookworm main", ""),
        ("deb http://other.example.org/debian bookworm-backports main", ""),
    ],
)
def test_one_line(line: str, expected: str) -> None:
    assert find_mirror(parse_one_line(line), "bookworm") == expected


def run_cli(root: Path) -> subprocess.CompletedProcess[str]:
    lab = Path(__file__).resolve().parents[2] / "lab"
    return subprocess.run(
        [sys.executable, str(lab / "apt_mirror.py"), "--root", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_prefers_deb822_then_one_line_files(tmp_path: Path) -> None:
    apt = tmp_path / "etc" / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list").write_text("deb http://list.example.org/debian bookworm main\n")
    assert run_cli(tmp_path).stdout == "http://list.example.org/debian\n"
    (apt / "sources.list.d" / "debian.sources").write_text(DEB822)
    assert run_cli(tmp_path).stdout == "http://mirror.example.org/debian\n"


def test_cli_fails_without_a_bookworm_source(tmp_path: Path) -> None:
    (tmp_path / "etc" / "apt").mkdir(parents=True)
    result = run_cli(tmp_path)
    assert result.returncode == 1
    assert "no enabled 'deb' source for suite 'bookworm'" in result.stderr
    assert result.stdout == ""


def test_no_lab_script_names_a_mirror_host(lab_dir: Path) -> None:
    for path in sorted(lab_dir.iterdir()):
        if path.suffix in {".sh", ".py", ".conf", ".mk"}:
            assert "debian.org" not in path.read_text(), path.name
