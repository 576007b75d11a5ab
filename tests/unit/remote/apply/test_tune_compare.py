"""The tune action's decisions around a remote apply: which sysctl files would undo memtune at boot, and
which read-backs disagree (what differs is memtune.audit.drift's, tested in tests/unit/audit/test_drift.py).
Facts
come from the captured firecracker host (tests/fixtures/hosts), changed where a case needs it."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.memtune.fleet.plugins.action.tune import conflicts, read_back_problems
from memtune import DesiredState, HostFacts, parse_facts
from tests.support.trees import collect_with, sysctl_files

SOURCE = {"file": "policies/test.yml", "line": 3, "rule": "r", "layer": "baseline"}
OURS = "/etc/sysctl.d/90-memtune.conf"


def facts(sources: dict[str, list[tuple[str, int, str]]] | None = None, **sysctl: Any) -> HostFacts:
    """Firecracker facts; ``sysctl`` overrides values, ``sources`` lists the sysctl files setting a key."""
    data = collect_with("firecracker", sysctl_files(sources or {}))
    data["sysctl"].update({key.replace("__", "."): value for key, value in sysctl.items()})
    return parse_facts(data, "firecracker")


def desired(**sections: Any) -> DesiredState:
    return DesiredState.model_validate({"schema_version": 1, **sections})


def planned(value: Any) -> dict[str, Any]:
    return {"value": value, "provenance": SOURCE}


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (
            [(OURS, 3, "10"), ("/etc/sysctl.d/99-site.conf", 7, "30")],
            ["vm.swappiness: /etc/sysctl.d/99-site.conf line 7 sets 30"],
        ),
        (
            # Debian's /etc/sysctl.d/99-sysctl.conf links to /etc/sysctl.conf: applied in its sorted place.
            [(OURS, 3, "10"), ("/etc/sysctl.conf", 12, "60")],
            ["vm.swappiness: /etc/sysctl.d/99-sysctl.conf line 12 sets 60"],
        ),
        ([("/etc/sysctl.d/99-site.conf", 7, "10")], []),  # the same value: no conflict
        ([("/usr/lib/sysctl.d/50-default.conf", 2, "60")], []),  # applied before memtune's file
        # Bug 1 of issue 13: a site file that sorts before memtune's loses to it; not a conflict.
        ([("/etc/sysctl.d/10-early.conf", 1, "60")], []),
        ([(OURS, 3, "10")], []),
    ],
)
def test_conflicts_name_the_file_and_line_that_win_at_boot(
    entries: list[tuple[str, int, str]], expected: list[str]
) -> None:
    found = conflicts(desired(sysctl={"vm.swappiness": planned(10)}), facts({"vm.swappiness": entries}))
    assert [message.split(" and is applied")[0] for message in found] == expected


def test_read_back_problems() -> None:
    applied = {
        "knobs": [
            {"kind": "sysctl", "name": "vm.min_free_kbytes", "after": 5, "read_back": 128, "changed": True},
            {"kind": "sysctl", "name": "vm.swappiness", "after": 10, "read_back": 10, "changed": True},
            {"kind": "hugepages", "name": "2048kB node0", "after": 64, "read_back": 12, "changed": True},
            {"kind": "thp", "name": "enabled", "after": "never", "changed": False},
        ]
    }
    assert read_back_problems(applied) == ["sysctl vm.min_free_kbytes: wrote 5, the kernel reports 128"]
