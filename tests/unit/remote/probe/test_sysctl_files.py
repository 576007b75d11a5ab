"""Which sysctl file wins at boot: systemd-sysctl's ordering and masking, on real directory trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._boot.sysctl_files import (
    boot_order,
    normalize_key,
    parse_sysctl_conf,
    sysctl_sources,
    tuned_profile,
)
from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree


def paths(tree: Tree, systemd: bool = False) -> list[str]:
    """The writers the boot runs, first to last (systemd-sysctl's order when ``systemd``)."""
    return [path for path, _, _ in boot_order(tree, systemd)]


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
    assert paths(tree) == [
        "/usr/lib/sysctl.d/10-a.conf",
        "/etc/sysctl.d/20-b.conf",
        "/run/sysctl.d/30-c.conf",
    ]
    source = sysctl_sources(tree, ["vm.swappiness"])["vm.swappiness"]
    assert [entry["value"] for entry in source["entries"]] == ["1", "2", "3"]
    assert source["winner"] == {"path": "/run/sysctl.d/30-c.conf", "line": 1, "value": "3"}
    assert source["after_memtune"] == [], "all three sort before 90-memtune.conf: memtune's file wins"


def test_etc_masks_the_same_name_in_usr_lib(tmp_path: Path) -> None:
    write(tmp_path, "/usr/lib/sysctl.d/50-default.conf", "vm.swappiness=60\n")
    write(tmp_path, "/etc/sysctl.d/50-default.conf", "# masked\n")
    source = sysctl_sources(Tree(str(tmp_path)), ["vm.swappiness"])["vm.swappiness"]
    assert source == {"entries": [], "winner": None, "after_memtune": []}


def test_a_link_to_dev_null_masks_the_name(tmp_path: Path) -> None:
    write(tmp_path, "/usr/lib/sysctl.d/95-vendor.conf", "vm.swappiness=60\n")
    (tmp_path / "etc/sysctl.d").mkdir(parents=True)
    os.symlink("/dev/null", tmp_path / "etc/sysctl.d/95-vendor.conf")
    source = sysctl_sources(Tree(str(tmp_path)), ["vm.swappiness"])["vm.swappiness"]
    assert source == {"entries": [], "winner": None, "after_memtune": []}


def test_memtunes_own_file_takes_its_place_in_the_order(tmp_path: Path) -> None:
    """Issue 13, bug 1: a file sorting before 90-memtune.conf loses to it, one sorting after wins."""
    write(tmp_path, "/etc/sysctl.d/10-early.conf", "vm.swappiness=60\n")
    write(tmp_path, "/usr/lib/sysctl.d/99-late.conf", "vm.swappiness=30\n")
    write(tmp_path, "/etc/sysctl.d/90-memtune.conf", "# memtune\nvm.swappiness = 10\n")
    source = sysctl_sources(Tree(str(tmp_path)), ["vm.swappiness"])["vm.swappiness"]
    assert [entry["path"] for entry in source["entries"]] == [
        "/etc/sysctl.d/10-early.conf",
        "/etc/sysctl.d/90-memtune.conf",
        "/usr/lib/sysctl.d/99-late.conf",
    ]
    assert source["after_memtune"] == [{"path": "/usr/lib/sysctl.d/99-late.conf", "line": 1, "value": "30"}]
    os.unlink(tmp_path / "usr/lib/sysctl.d/99-late.conf")
    source = sysctl_sources(Tree(str(tmp_path)), ["vm.swappiness"])["vm.swappiness"]
    assert source["winner"] == {"path": "/etc/sysctl.d/90-memtune.conf", "line": 2, "value": "10"}
    os.unlink(tmp_path / "etc/sysctl.d/90-memtune.conf")  # not written yet: it would still win
    source = sysctl_sources(Tree(str(tmp_path)), ["vm.swappiness"])["vm.swappiness"]
    assert source["winner"]["path"] == "/etc/sysctl.d/10-early.conf" and source["after_memtune"] == []


def test_kernel_arguments_come_first(tmp_path: Path) -> None:
    write(tmp_path, "/proc/cmdline", "quiet sysctl.vm.swappiness=1 sysctl.vm/max_map_count=70000 sysctl.=x\n")
    write(tmp_path, "/usr/lib/sysctl.d/20-a.conf", "vm.swappiness=20\n")
    sources = sysctl_sources(Tree(str(tmp_path)), ["vm.swappiness", "vm.max_map_count"])
    assert [entry["path"] for entry in sources["vm.swappiness"]["entries"]] == [
        "/proc/cmdline",
        "/usr/lib/sysctl.d/20-a.conf",
    ]
    assert sources["vm.max_map_count"]["winner"] == {"path": "/proc/cmdline", "line": 1, "value": "70000"}


@pytest.mark.parametrize(
    ("main_conf", "after_memtune"),
    [("", False), ("reapply_sysctl = 1\n", False), ("reapply_sysctl = 0\n", True)],
)
def test_tuned_sysctls_run_before_or_after_the_files(
    tmp_path: Path, main_conf: str, after_memtune: bool
) -> None:
    write(tmp_path, "/etc/tuned/active_profile", "db\n")
    write(tmp_path, "/etc/tuned/tuned-main.conf", main_conf)
    write(tmp_path, "/usr/lib/tuned/base/tuned.conf", "[sysctl]\nvm.dirty_ratio = 40\n")
    write(
        tmp_path,
        "/etc/tuned/db/tuned.conf",
        "[main]\ninclude=base\n[sysctl]\nvm.swappiness=30\n[sysfs]\n"
        "/sys/kernel/mm/transparent_hugepage/defrag=never\n[vm]\ntransparent_hugepages=madvise\n",
    )
    tree = Tree(str(tmp_path))
    profile = tuned_profile(tree)
    assert profile is not None and profile["reapply_sysctl"] is not after_memtune
    assert [(w["knob"], w["value"]) for w in profile["thp"]] == [("defrag", "never"), ("enabled", "madvise")]
    sources = sysctl_sources(tree, ["vm.swappiness", "vm.dirty_ratio"])
    assert sources["vm.dirty_ratio"]["winner"] == {
        "path": "/usr/lib/tuned/base/tuned.conf",
        "line": 2,
        "value": "40",
    }
    assert bool(sources["vm.swappiness"]["after_memtune"]) is after_memtune


def test_a_missing_or_cyclic_tuned_profile_is_a_warning_not_a_hang(tmp_path: Path) -> None:
    write(tmp_path, "/etc/tuned/active_profile", "a gone\n")
    write(tmp_path, "/etc/tuned/a/tuned.conf", "[main]\ninclude=b\n")
    write(tmp_path, "/etc/tuned/b/tuned.conf", "[main]\ninclude=a\n[sysctl]\nvm.swappiness=5\n")
    tree = Tree(str(tmp_path))
    profile = tuned_profile(tree)
    assert profile is not None and profile["profiles"] == ["a", "gone"]
    assert [entry[3] for entry in profile["sysctl"]] == ["5"]
    assert any("TuneD profile gone is active" in warning for warning in tree.warnings)


def test_sysctl_conf_applies_last_unless_linked(tmp_path: Path) -> None:
    write(tmp_path, "/etc/sysctl.conf", "vm.swappiness=7\n")
    write(tmp_path, "/etc/sysctl.d/99-zz.conf", "vm.swappiness=5\n")
    tree = Tree(str(tmp_path))  # no /run/systemd/system: procps' sysctl --system applies it last
    assert paths(tree)[-1] == "/etc/sysctl.conf"
    assert sysctl_sources(tree, ["vm.swappiness"])["vm.swappiness"]["winner"]["value"] == "7"
    # systemd-sysctl does not read /etc/sysctl.conf
    (tmp_path / "run/systemd/system").mkdir(parents=True)
    assert paths(tree, systemd=True) == ["/etc/sysctl.d/99-zz.conf"]
    assert sysctl_sources(tree, ["vm.swappiness"])["vm.swappiness"]["winner"]["value"] == "5"
    # Debian links /etc/sysctl.d/99-sysctl.conf to it: applied once, in its sorted place.
    os.symlink("../sysctl.conf", tmp_path / "etc/sysctl.d/99-sysctl.conf")
    assert paths(tree) == ["/etc/sysctl.d/99-sysctl.conf", "/etc/sysctl.d/99-zz.conf"]
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
    order = paths(tree)
    assert "/etc/sysctl.d/99-sysctl.conf" in order
    assert "/etc/sysctl.conf" not in order
    assert order == sorted(order, key=os.path.basename)
