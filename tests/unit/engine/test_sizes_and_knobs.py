"""Sizes, versions and the knob catalog's kernel-dependent ranges."""

from __future__ import annotations

import pytest

from memtune.engine.kinds.sysctl import SYSCTLS
from memtune.engine.knobs import parse_version
from memtune.engine.sizes import format_size, parse_percent, parse_size

SIZES = [
    ("2GiB", 2 * 1024**3),
    ("512MiB", 512 * 1024**2),
    ("512 MiB", 512 * 1024**2),
    ("64k", 65536),
    ("1.5GiB", 1536 * 1024**2),
    ("4096", 4096),
    (4096, 4096),
    ("1TiB", 1024**4),
    ("3b", 3),
]


@pytest.mark.parametrize(("text", "expected"), SIZES)
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "GiB", "2 parsecs", "-1", "0.3b", "1e3", True, -5, 0.0, None, [1]])
def test_parse_size_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)


@pytest.mark.parametrize(
    ("n_bytes", "text"), [(2 * 1024**3, "2GiB"), (1536 * 1024**2, "1536MiB"), (1000, "1000")]
)
def test_format_size(n_bytes: int, text: str) -> None:
    assert format_size(n_bytes) == text
    assert parse_size(text) == n_bytes


@pytest.mark.parametrize(
    ("text", "expected"), [("25%", 25.0), (" 12.5 % ", 12.5), ("25", None), ("x%", None)]
)
def test_parse_percent(text: str, expected: float | None) -> None:
    assert parse_percent(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5.8", (5, 8, 0)),
        ("6.1.0-26-amd64", (6, 1, 0)),
        ("6.12.95+deb12-amd64", (6, 12, 95)),
        ("4", (4, 0, 0)),
        ("8.0.4", (8, 0, 4)),
        ("15", (15, 0, 0)),
        ("5.14.0-427.el9.x86_64", (5, 14, 0)),
    ],
)
def test_parse_version(text: str, expected: tuple[int, int, int]) -> None:
    assert parse_version(text) == expected


# knob, kernel, (low, high) valid there
RANGES = [
    ("vm.swappiness", (5, 4, 0), (0, 100)),
    ("vm.swappiness", (5, 8, 0), (0, 200)),
    ("vm.swappiness", None, (0, 100)),  # unknown kernel: the narrowest range
    ("vm.watermark_scale_factor", (5, 10, 0), (1, 1000)),
    ("vm.watermark_scale_factor", (6, 1, 0), (1, 3000)),
    ("kernel.numa_balancing", (5, 15, 0), (0, 1)),
    ("kernel.numa_balancing", (6, 1, 0), (0, 3)),
    ("vm.dirty_bytes", (6, 1, 0), (8192, 2**63 - 1)),
    ("vm.zone_reclaim_mode", (6, 1, 0), (0, 7)),
    ("vm.overcommit_memory", (6, 1, 0), (0, 2)),
]


@pytest.mark.parametrize(("knob", "kernel", "expected"), RANGES)
def test_ranges_depend_on_kernel(
    knob: str, kernel: tuple[int, int, int] | None, expected: tuple[int, int]
) -> None:
    span = SYSCTLS[knob].span_for(kernel)
    assert (span.low, span.high) == expected


def test_every_knob_documents_itself_and_pairs_are_symmetric() -> None:
    for name, knob in SYSCTLS.items():
        assert knob.doc.startswith("https://docs.kernel.org/"), name
        if knob.exclusive_with:
            assert SYSCTLS[knob.exclusive_with].exclusive_with == name
