"""Kernel command-line editing on copies of real grub and BLS files (tests/fixtures/bootloader)."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._boot import bootloader as bl
from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "bootloader"
DEBIAN_GRUB = (FIXTURES / "debian12-default-grub").read_text()
FEDORA_BLS = (FIXTURES / "fedora40-bls-entry.conf").read_text()
RHEL_BLS = (FIXTURES / "rhel9-bls-entry.conf").read_text()
GRUBBY_INFO = (FIXTURES / "fedora40-grubby-info-all.txt").read_text()
ONE_GIB = ["hugepagesz=1G", "hugepages=0:2"]


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


@pytest.mark.parametrize(
    ("args", "owned", "desired", "new_args", "new_owned"),
    [
        (["quiet"], [], ONE_GIB, ["quiet", *ONE_GIB], ONE_GIB),
        (["quiet", *ONE_GIB], ONE_GIB, ONE_GIB, ["quiet", *ONE_GIB], ONE_GIB),
        (
            ["quiet", "hugepages=0:2"],
            ["hugepages=0:2"],
            ["hugepages=0:4"],
            ["quiet", "hugepages=0:4"],
            ["hugepages=0:4"],
        ),
        (["quiet", *ONE_GIB], ONE_GIB, [], ["quiet"], []),
        # The host had the argument before memtune: it stays where it is and is not memtune's to remove.
        (
            ["transparent_hugepage=madvise", "quiet"],
            [],
            ["transparent_hugepage=madvise"],
            ["transparent_hugepage=madvise", "quiet"],
            [],
        ),
        (["transparent_hugepage=madvise", "quiet"], [], [], ["transparent_hugepage=madvise", "quiet"], []),
    ],
)
def test_plan_args(
    args: list[str], owned: list[str], desired: list[str], new_args: list[str], new_owned: list[str]
) -> None:
    assert bl.plan_args(args, owned, desired) == (new_args, new_owned)


def test_split_args_keeps_quoted_values_whole() -> None:
    assert bl.split_args('root=/dev/sda1 dyndbg="file foo.c +p" quiet') == [
        "root=/dev/sda1",
        'dyndbg="file foo.c +p"',
        "quiet",
    ]


def test_debian_grub_only_the_cmdline_line_changes() -> None:
    edited, owned = bl.edit_default_grub(DEBIAN_GRUB, [], ONE_GIB)
    assert owned == ONE_GIB
    assert changed_lines(DEBIAN_GRUB, edited) == [
        '-GRUB_CMDLINE_LINUX=""',
        '+GRUB_CMDLINE_LINUX="hugepagesz=1G hugepages=0:2"',
    ]
    assert bl.grub_args(edited) == ONE_GIB
    assert 'GRUB_CMDLINE_LINUX_DEFAULT="quiet"' in edited


def test_debian_grub_edit_is_idempotent_and_rollback_restores_the_file() -> None:
    edited, owned = bl.edit_default_grub(DEBIAN_GRUB, [], ONE_GIB)
    assert bl.edit_default_grub(edited, owned, ONE_GIB) == (edited, ONE_GIB)
    restored, left = bl.edit_default_grub(edited, owned, [])
    assert left == []
    assert changed_lines(DEBIAN_GRUB, restored) == []


def test_debian_grub_replaces_earlier_memtune_arguments() -> None:
    edited, owned = bl.edit_default_grub(DEBIAN_GRUB, [], ONE_GIB)
    again, owned = bl.edit_default_grub(edited, owned, ["hugepagesz=1G", "hugepages=0:4"])
    assert bl.grub_args(again) == ["hugepagesz=1G", "hugepages=0:4"]
    assert owned == ["hugepagesz=1G", "hugepages=0:4"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "GRUB_CMDLINE_LINUX='console=ttyS0'",
            "GRUB_CMDLINE_LINUX='console=ttyS0 hugepagesz=1G hugepages=0:2'",
        ),
        (
            "GRUB_CMDLINE_LINUX=console=ttyS0",
            'GRUB_CMDLINE_LINUX="console=ttyS0 hugepagesz=1G hugepages=0:2"',
        ),
        (
            'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX net.ifnames=0"',
            'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX net.ifnames=0 hugepagesz=1G hugepages=0:2"',
        ),
        (
            'export GRUB_CMDLINE_LINUX="quiet"',
            'export GRUB_CMDLINE_LINUX="quiet hugepagesz=1G hugepages=0:2"',
        ),
    ],
)
def test_grub_quoting_styles(line: str, expected: str) -> None:
    edited, _ = bl.edit_default_grub(f"GRUB_TIMEOUT=5\n{line}\n", [], ONE_GIB)
    assert edited == f"GRUB_TIMEOUT=5\n{expected}\n"


def test_grub_last_assignment_wins_and_is_the_one_edited() -> None:
    text = 'GRUB_CMDLINE_LINUX="a"\nGRUB_CMDLINE_LINUX="b"\n'
    edited, _ = bl.edit_default_grub(text, [], ["hugepages=16"])
    assert edited == 'GRUB_CMDLINE_LINUX="a"\nGRUB_CMDLINE_LINUX="b hugepages=16"\n'
    assert bl.grub_args(edited) == ["b", "hugepages=16"]


def test_grub_without_a_cmdline_line_gets_one() -> None:
    edited, owned = bl.edit_default_grub("GRUB_TIMEOUT=5", [], ["hugepages=16"])
    assert owned == ["hugepages=16"]
    assert edited == 'GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX="hugepages=16"\n'
    assert bl.edit_default_grub("GRUB_TIMEOUT=5\n", [], []) == ("GRUB_TIMEOUT=5\n", [])


@pytest.mark.parametrize("entry", [FEDORA_BLS, RHEL_BLS], ids=["fedora40", "rhel9"])
def test_bls_entry_only_options_change_and_rollback_restores(entry: str) -> None:
    edited, owned = bl.edit_bls_entry(entry, [], ONE_GIB)
    changes = changed_lines(entry, edited)
    assert len(changes) == 2 and changes[0].startswith("-options ") and changes[1].startswith("+options ")
    assert bl.bls_args(edited)[-2:] == ONE_GIB
    assert bl.bls_args(edited)[:-2] == bl.bls_args(entry)
    assert bl.edit_bls_entry(edited, owned, ONE_GIB) == (edited, ONE_GIB)
    assert bl.edit_bls_entry(edited, owned, [])[0] == entry


def test_rhel_tuned_variable_is_kept() -> None:
    edited, _ = bl.edit_bls_entry(RHEL_BLS, [], ONE_GIB)
    assert "rhgb quiet $tuned_params hugepagesz=1G hugepages=0:2\n" in edited


def test_parse_grubby_info() -> None:
    entries = bl.parse_grubby_info(GRUBBY_INFO)
    assert [e["index"] for e in entries] == [0, 1]
    assert entries[0]["kernel"] == "/boot/vmlinuz-6.10.7-200.fc40.x86_64"
    assert entries[0]["args"] == ["ro", "rootflags=subvol=root", "rhgb", "quiet"]
    assert entries[1]["args"][-1] == "hugepagesz=1G"


class Recorder:
    """Stands in for AnsibleModule.run_command: answers grubby --info and records every argv."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(argv)
        return 0, GRUBBY_INFO if argv[1] == "--info=ALL" else "", ""


def test_grubby_updates_all_kernels_and_owns_only_what_no_entry_had(tmp_path: Path) -> None:
    tree = Tree("/")
    assert tree.live
    run = Recorder()
    loader = bl.Bootloader(tree, run, lambda name: "/usr/sbin/grubby" if name == "grubby" else None)
    assert loader.tool == "grubby"
    assert loader.differs([], ONE_GIB)
    owned, warnings = loader.change(["hugepages=0:1"], ONE_GIB)
    assert run.calls[-1] == [
        "/usr/sbin/grubby",
        "--update-kernel=ALL",
        "--args=hugepagesz=1G hugepages=0:2",
        "--remove-args=hugepages=0:1",
    ]
    # Entry 1 already had hugepagesz=1G, so a rollback must not take it away: memtune does not own it.
    assert owned == ["hugepages=0:2"]
    assert warnings == []


def test_tool_detection_below_a_root(tmp_path: Path) -> None:
    def never(name: str) -> str:
        raise AssertionError("no command may be looked up below a root other than /")

    assert bl.Bootloader(Tree(str(tmp_path)), None, never).tool is None
    entries = tmp_path / "boot/loader/entries"
    entries.mkdir(parents=True)
    (entries / "a.conf").write_text(FEDORA_BLS)
    assert bl.Bootloader(Tree(str(tmp_path)), None, never).tool == "bls"
    (tmp_path / "etc/default").mkdir(parents=True)
    (tmp_path / "etc/default/grub").write_text(DEBIAN_GRUB)
    loader = bl.Bootloader(Tree(str(tmp_path)), None, never)
    assert loader.tool == "grub"
    owned, warnings = loader.change([], ONE_GIB)
    assert owned == ONE_GIB
    assert warnings and "update-grub not run" in warnings[0]
    assert bl.grub_args((tmp_path / "etc/default/grub").read_text()) == ONE_GIB
