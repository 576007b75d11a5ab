"""Which sysctl file wins at boot: systemd-sysctl's ordering and masking, on real directory trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._sysctl_files import (
    boot_order,
    normalize_key,
    parse_sysctl_conf,
    sysctl_sources,
)
from ansible_collections.memtune.fleet.plugins.module_utils._tree import Tree


def write(root: Path, path: str, text: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("vm.swappiness", "vm.swappiness"),
        ("vm/swappiness", "vm.swappiness"),
        ("net/ipv4/conf/eth0.100/rp_filter", "net.ipv4.conf.eth0/100.rp_filter"),
        (" vm.max_map_count ", "vm.max_map_count"),
    ],
)
def test_normalize_key(written: str, expected: str) -> None:
    assert normalize_key(written) == expected


def test_parse_conf_lines() -> None:
    text = "\n".join(
        [
            "# comment",
            "; also comment",
            "",
            "vm.swappiness = 10",
            "-vm.min_free_kbytes=90112",
            "nonsense line",
            "vm/dirty_ratio =  80 ",
        ]
    )
    assert parse_sysctl_conf(text) == [
        (4, "vm.swappiness", "10"),
        (5, "vm.min_free_kbytes", "90112"),
        (7, "vm.dirty_ratio", "80"),
    ]


def test_order_sorts_by_name_across_directories(tmp_path: Path) -> None:
    write(tmp_path, "/usr/lib/sysctl.d/10-a.conf", "vm.swappiness=1\n")
    write(tmp_path, "/etc/sysctl.d/20-b.conf", "vm.swappiness=2\n")
    write(tmp_path, "/run/sysctl.d/30-c.conf", "vm.swappiness=3\n")
    write(tmp_path, "/etc/sysctl.d/README", "vm.swappiness=99\n")  # not a .conf file
    tree = Tree(str(tmp_path))
    assert boot_order(tree) == [
        "/usr/lib/sysctl.d/10-a.conf",
        "/etc/sysctl.d/20-b.conf",
        "/run/sysctl.d/30-c.conf",
    ]
    source = sysctl_sources(tree, ["vm.swappiness"])["vm.swappiness"]
    assert [entry["value"] for entry in source["entries"]] == ["1", "2", "3"]
    assert source["winner"] == {"path": "/run/sysctl.d/30-c.conf", "line": 1, "value": "3"}


def test_etc_masks_the_same_name_in_usr_lib(tmp_path: Path) -> None:
    write(tmp_path, "/usr/lib/sysctl.d/50-default.conf", "vm.swappiness=60\n")
    write(tmp_path, "/etc/sysctl.d/50-default.conf", "# masked\n")
    source = sysctl_sources(Tree(str(tmp_path)), ["vm.swappiness"])["vm.swappiness"]
    assert source == {"entries": [], "winner": None}


def test_sysctl_conf_applies_last_unless_linked(tmp_path: Path) -> None:
    write(tmp_path, "/etc/sysctl.conf", "vm.swappiness=7\n")
    write(tmp_path, "/etc/sysctl.d/99-zz.conf", "vm.swappiness=5\n")
    tree = Tree(str(tmp_path))
    assert boot_order(tree)[-1] == "/etc/sysctl.conf"
    assert sysctl_sources(tree, ["vm.swappiness"])["vm.swappiness"]["winner"]["value"] == "7"
    # Debian links /etc/sysctl.d/99-sysctl.conf to it: applied once, in its sorted place.
    os.symlink("../sysctl.conf", tmp_path / "etc/sysctl.d/99-sysctl.conf")
    assert boot_order(tree) == ["/etc/sysctl.d/99-sysctl.conf", "/etc/sysctl.d/99-zz.conf"]
    assert sysctl_sources(tree, ["vm.swappiness"])["vm.swappiness"]["winner"]["value"] == "5"


def test_absolute_links_stay_inside_the_captured_root(tmp_path: Path) -> None:
    write(tmp_path, "/etc/sysctl.conf", "vm.swappiness=11\n")
    (tmp_path / "etc/sysctl.d").mkdir()
    os.symlink("/etc/sysctl.conf", tmp_path / "etc/sysctl.d/99-sysctl.conf")
    source = sysctl_sources(Tree(str(tmp_path)), ["vm.swappiness"])["vm.swappiness"]
    assert source["winner"] == {"path": "/etc/sysctl.d/99-sysctl.conf", "line": 1, "value": "11"}
    assert len(source["entries"]) == 1


def test_glob_keys_match_managed_keys(tmp_path: Path) -> None:
    write(tmp_path, "/etc/sysctl.d/60-dirty.conf", "vm.dirty_*ratio = 9\n")
    sources = sysctl_sources(
        Tree(str(tmp_path)), ["vm.dirty_ratio", "vm.dirty_background_ratio", "vm.swappiness"]
    )
    assert sources["vm.dirty_ratio"]["winner"]["value"] == "9"
    assert sources["vm.dirty_background_ratio"]["winner"]["value"] == "9"
    assert sources["vm.swappiness"]["winner"] is None


def test_captured_debian_host_reads_sysctl_conf_once(fixture_hosts: Path) -> None:
    tree = Tree(str(fixture_hosts / "firecracker"))
    order = boot_order(tree)
    assert "/etc/sysctl.d/99-sysctl.conf" in order
    assert "/etc/sysctl.conf" not in order
    assert order == sorted(order, key=os.path.basename)
