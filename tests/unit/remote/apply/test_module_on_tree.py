"""memory_apply end to end below its documented ``root`` test hook: a host made of plain files (its /proc/sys,
/sys and /etc), so persistence, conflicts, the Debian grub file and rollback can be checked byte for byte.
The real kernel is exercised by tests/live/test_apply_live.py."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.modules import run_on_tree

REPO = Path(__file__).resolve().parents[4]
DEBIAN_GRUB = (REPO / "tests" / "fixtures" / "bootloader" / "debian12-default-grub").read_text()
HOST = {
    "proc/sys/vm/swappiness": "60\n",
    "proc/sys/vm/min_free_kbytes": "67584\n",
    "proc/sys/vm/compact_memory": "",
    "proc/cmdline": "BOOT_IMAGE=/vmlinuz-6.1.0-26-amd64 root=/dev/vda1 ro quiet\n",
    "sys/kernel/mm/transparent_hugepage/enabled": "always [madvise] never\n",
    "sys/kernel/mm/transparent_hugepage/defrag": "always defer defer+madvise [madvise] never\n",
    "sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages": "0\n",
    "sys/fs/cgroup/batch/memory.max": "max\n",
    "sys/fs/cgroup/batch/memory.high": "max\n",
    "sys/fs/cgroup/batch/memory.current": "1048576\n",
    "etc/sysctl.d/10-local.conf": "vm.min_free_kbytes = 90000\n",
    "etc/sysctl.d/99-site.conf": "# site policy\nvm.swappiness = 30\n",
    "etc/default/grub": DEBIAN_GRUB,
    "etc/systemd/system/sysinit.target.wants/.keep": "",
}
DESIRED = {
    "schema_version": 1,
    "sysctl": {
        "vm.swappiness": {"value": 10, "provenance": {}},
        "vm.min_free_kbytes": {"value": 90112, "provenance": {}},
    },
    "thp": {"enabled": {"value": "never", "provenance": {}}},
    "hugepages": [
        {"size_kb": 2048, "per_node": {"0": 64}, "boot": False, "required": False, "provenance": {}}
    ],
    "kernel_cmdline": [
        {"arg": "hugepagesz=1G", "provenance": {}},
        {"arg": "hugepages=0:2", "provenance": {}},
    ],
    "cgroups": [
        {"path": "/sys/fs/cgroup/batch", "limits": {"MemoryMax": 1 << 30}, "force": False, "provenance": {}}
    ],
}


def snapshot_tree(root: Path) -> dict[str, str]:
    """Every file and link below root (/run, where the lock lives, aside), as text or link target."""
    found = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if name == "run" or name.startswith("run/"):
            continue
        if path.is_symlink():
            found[name] = "-> " + os.readlink(path)
        elif path.is_file():
            found[name] = path.read_text()
        elif path.is_dir():
            found[name + "/"] = ""
    return found


@pytest.fixture
def host(tmp_path: Path) -> Path:
    for name, text in HOST.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def apply(root: Path, check: bool = False, **args: Any) -> dict[str, Any]:
    args.setdefault("desired", DESIRED)
    if args.get("state") == "absent" or args.get("rollback"):
        args.pop("desired")
    result, _ = run_on_tree("memory_apply", root, dict(args, _ansible_check_mode=check, _ansible_diff=True))
    return result


def warnings(result: dict[str, Any]) -> list[str]:
    """The module's warnings as text (ansible-core 2.19 wraps each one in a WarningSummary when run bare)."""
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]


def test_check_mode_reports_everything_and_writes_nothing(host: Path) -> None:
    before = snapshot_tree(host)
    result = apply(host, check=True)
    assert result["changed"] is True, result
    assert snapshot_tree(host) == before
    changed = {(k["kind"], k["name"]): (k["before"], k["after"]) for k in result["knobs"] if k["changed"]}
    assert changed == {
        ("sysctl", "vm.swappiness"): (60, 10),
        ("sysctl", "vm.min_free_kbytes"): (67584, 90112),
        ("thp", "enabled"): ("madvise", "never"),
        ("hugepages", "2048kB node0"): (0, 64),
        ("cgroup", "/sys/fs/cgroup/batch"): ({"MemoryMax": "infinity"}, {"MemoryMax": 1 << 30}),
    }
    assert result["reboot_required"] is True
    assert result["kernel_cmdline"] == {
        "tool": "grub",
        "before": [],
        "after": ["hugepagesz=1G", "hugepages=0:2"],
    }
    assert {f["path"] for f in result["files"]} == {
        "/etc/sysctl.d/90-memtune.conf",
        "/etc/memtune/boot-tmpfiles.conf",
        "/etc/systemd/system/memtune-boot.service",
        "/etc/systemd/system/sysinit.target.wants/memtune-boot.service",
    }
    headers = [d["before_header"] for d in result["diff"]]
    assert headers[0] == "runtime (before)" and "kernel command line (grub)" in headers
    assert "sysctl vm.swappiness = 60\n" in result["diff"][0]["before"]
    assert "sysctl vm.swappiness = 10\n" in result["diff"][0]["after"]


def test_conflict_is_a_warning_with_file_and_line_or_a_failure_on_request(host: Path) -> None:
    before = snapshot_tree(host)
    failed = apply(host, fail_on_conflict=True)
    assert failed.get("failed") is True
    assert "vm.swappiness: /etc/sysctl.d/99-site.conf:2 sets 30" in failed["msg"]
    assert snapshot_tree(host) == before
    result = apply(host, check=True)
    # 10-local.conf comes before 90-memtune.conf at boot, so it is no conflict.
    assert result["conflicts"] == [
        {
            "key": "vm.swappiness",
            "path": "/etc/sysctl.d/99-site.conf",
            "line": 2,
            "value": "30",
            "desired": 10,
        }
    ]
    assert any("99-site.conf line 2" in w for w in warnings(result))


def test_apply_converge_and_roll_back_leave_the_host_as_it_was(host: Path) -> None:
    before = snapshot_tree(host)
    result = apply(host)
    assert result["changed"] is True and not result.get("failed"), result
    read = {k["name"]: k.get("read_back") for k in result["knobs"]}
    assert read["vm.swappiness"] == 10 and read["2048kB node0"] == 64
    assert (host / "proc/sys/vm/swappiness").read_text() == "10\n"
    assert (host / "sys/kernel/mm/transparent_hugepage/enabled").read_text() == "never\n"
    assert (host / "sys/fs/cgroup/batch/memory.max").read_text() == f"{1 << 30}\n"
    assert (
        (host / "etc/sysctl.d/90-memtune.conf")
        .read_text()
        .endswith("vm.min_free_kbytes = 90112\nvm.swappiness = 10\n")
    )
    assert (host / "etc/sysctl.d/90-memtune.conf").stat().st_mode & 0o777 == 0o644
    assert 'GRUB_CMDLINE_LINUX="hugepagesz=1G hugepages=0:2"\n' in (host / "etc/default/grub").read_text()
    assert os.readlink(host / "etc/systemd/system/sysinit.target.wants/memtune-boot.service") == (
        "/etc/systemd/system/memtune-boot.service"
    )
    boot = (host / "etc/memtune/boot-tmpfiles.conf").read_text()
    assert "w /sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages - - - - 64\n" in boot
    saved = json.loads((host / "var/lib/memtune/ledger.json").read_text())
    assert saved["runtime"]["sysctl"] == {"vm.swappiness": 60, "vm.min_free_kbytes": 67584}
    assert saved["owned"]["kernel_cmdline"] == ["hugepagesz=1G", "hugepages=0:2"]
    assert saved["files"]["/etc/default/grub"] == DEBIAN_GRUB

    # The kernel shows THP's choice in brackets; a plain file keeps what was written. Play the kernel.
    (host / "sys/kernel/mm/transparent_hugepage/enabled").write_text("always madvise [never]\n")
    again = apply(host)
    assert again["changed"] is False and again["files"] == [] and again["msg"].startswith("no changes"), again
    assert again["reboot_required"] is True  # /proc/cmdline still lacks the arguments

    rolled = apply(host, state="absent")
    assert rolled["changed"] is True and not rolled.get("failed"), rolled
    assert (host / "sys/kernel/mm/transparent_hugepage/enabled").read_text() == "madvise\n"
    (host / "sys/kernel/mm/transparent_hugepage/enabled").write_text("always [madvise] never\n")
    # Everything is as it was but the ledger, which keeps the originals and records the rollback.
    after = snapshot_tree(host)
    kept = json.loads(after.pop("var/lib/memtune/ledger.json"))
    assert [after.pop("var/"), after.pop("var/lib/"), after.pop("var/lib/memtune/")] == ["", "", ""]
    assert after == before
    assert kept["runtime"]["sysctl"] == saved["runtime"]["sysctl"]
    assert kept["generations"][-1]["action"] == "rollback-original"
    assert apply(host, rollback=True)["changed"] is False


def test_a_limit_below_usage_is_refused_unless_forced(host: Path) -> None:
    desired = dict(
        DESIRED,
        cgroups=[
            {"path": "/sys/fs/cgroup/batch", "limits": {"MemoryMax": 4096}, "force": False, "provenance": {}}
        ],
    )
    before = snapshot_tree(host)
    refused = apply(host, desired=desired)
    assert refused.get("failed") is True
    assert refused["msg"] == (
        "cgroup /sys/fs/cgroup/batch uses 1048576 bytes; MemoryMax=4096 below that is "
        "refused (set force: true to apply anyway)"
    )
    assert snapshot_tree(host) == before
    desired["cgroups"][0]["force"] = True
    forced = apply(host, desired=desired, check=True)
    assert forced["changed"] is True and not forced.get("failed")


def test_unsupported_host_is_skipped_or_failed(host: Path) -> None:
    """A read-only /proc/sys/vm, as in a container: a read-only bind mount over the tree's directory."""
    vm = host / "proc/sys/vm"
    mounted = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(vm), str(vm)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount read-only here: {mounted.stderr.decode().strip()}")
    try:
        assert not os.access(vm / "swappiness", os.W_OK)
        skipped = apply(host)
        assert skipped["skipped"] is True and skipped["changed"] is False
        assert skipped["msg"] == f"{vm} is not writable here (a container, or not root)"
        failed = apply(host, on_unsupported="fail")
        assert failed["failed"] is True and "not writable" in failed["msg"]
    finally:
        subprocess.run(["umount", str(vm)], check=True)


def test_unknown_pool_and_bad_thp_value_change_nothing(host: Path) -> None:
    before = snapshot_tree(host)
    no_pool = dict(
        DESIRED, hugepages=[{"size_kb": 1048576, "per_node": {"0": 1}, "boot": True, "required": False}]
    )
    assert "node 0 has no pool of 1048576 kB hugepages" in apply(host, desired=no_pool)["msg"]
    bad_thp = dict(DESIRED, thp={"enabled": {"value": "sometimes"}})
    assert (
        "'sometimes' is not one of this kernel's choices (always, madvise, never)"
        in apply(host, desired=bad_thp)["msg"]
    )
    assert snapshot_tree(host) == before


def test_a_unit_limit_without_systemd_is_skipped_with_the_reason(host: Path) -> None:
    desired = {
        "schema_version": 1,
        "cgroups": [{"unit": "db.service", "limits": {"MemoryMax": 1 << 30}, "force": False}],
    }
    result = apply(host, desired=desired)
    assert result["changed"] is False and not result.get("failed"), result
    assert result["skipped_knobs"] == [
        {"kind": "cgroup", "name": "db.service", "reason": "systemd is not the running init here"}
    ]
    assert not (host / "etc/systemd/system/db.service.d").exists()


def test_temporary_files_a_killed_run_left_are_removed_by_the_next_run(host: Path) -> None:
    left = [host / "etc/sysctl.d/.memtune-k1ll3d", host / "etc/systemd/system/db.service.d/.memtune-x9"]
    others = [host / "etc/sysctl.d/.other-tool-tmp", host / "etc/systemd/system/db.service.d/override.conf"]
    for path in [*left, *others]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("vm.swappiness = 1")

    checked = apply(host, check=True)
    assert all(path.exists() for path in left), "check mode removed something"

    result = apply(host)
    assert not result.get("failed"), result
    assert not any(path.exists() for path in left)
    assert all(path.exists() for path in others)
    assert {w for w in warnings(result) if "interrupted" in w} == {
        "removed /etc/sysctl.d/.memtune-k1ll3d, left by an interrupted memtune run",
        "removed /etc/systemd/system/db.service.d/.memtune-x9, left by an interrupted memtune run",
    }
    assert not any("interrupted" in w for w in warnings(checked))


def test_shmem_and_khugepaged_settings_apply_persist_and_roll_back(host: Path) -> None:
    """Issue 17's THP settings: shmem_enabled (a choice) and khugepaged's defrag and max_ptes_none
    (integers) are written, restored at boot by memtune's unit, converge, and roll back."""
    thp = host / "sys/kernel/mm/transparent_hugepage"
    (thp / "shmem_enabled").write_text("always within_size advise [never] deny force\n")
    (thp / "khugepaged").mkdir()
    (thp / "khugepaged/defrag").write_text("1\n")
    (thp / "khugepaged/max_ptes_none").write_text("511\n")
    before = snapshot_tree(host)
    desired = {
        "schema_version": 1,
        "thp": {
            "shmem_enabled": {"value": "advise", "provenance": {}},
            "khugepaged_defrag": {"value": 0, "provenance": {}},
            "khugepaged_max_ptes_none": {"value": 0, "provenance": {}},
        },
    }
    result = apply(host, desired=desired)
    assert result["changed"] is True and not result.get("failed"), result
    read = {k["name"]: k.get("read_back") for k in result["knobs"]}
    # a plain file has no brackets for the chosen word (the kernel shows them); integers read back as written
    assert read == {"shmem_enabled": None, "khugepaged_defrag": 0, "khugepaged_max_ptes_none": 0}
    assert (thp / "khugepaged/max_ptes_none").read_text() == "0\n"
    boot = (host / "etc/memtune/boot-tmpfiles.conf").read_text()
    assert "w /sys/kernel/mm/transparent_hugepage/shmem_enabled - - - - advise\n" in boot
    assert "w /sys/kernel/mm/transparent_hugepage/khugepaged/defrag - - - - 0\n" in boot
    assert "w /sys/kernel/mm/transparent_hugepage/khugepaged/max_ptes_none - - - - 0\n" in boot
    saved = json.loads((host / "var/lib/memtune/ledger.json").read_text())
    assert saved["runtime"]["thp"] == {
        "shmem_enabled": "never",
        "khugepaged_defrag": 1,
        "khugepaged_max_ptes_none": 511,
    }

    (thp / "shmem_enabled").write_text("always within_size [advise] never deny force\n")  # play the kernel
    assert apply(host, desired=desired)["changed"] is False

    rolled = apply(host, state="absent")
    assert rolled["changed"] is True and not rolled.get("failed"), rolled
    assert (thp / "khugepaged/max_ptes_none").read_text() == "511\n"
    assert (thp / "shmem_enabled").read_text() == "never\n"
    (thp / "shmem_enabled").write_text("always within_size advise [never] deny force\n")
    # Everything is as it was but the ledger, which keeps the originals.
    after = snapshot_tree(host)
    after.pop("var/lib/memtune/ledger.json")
    assert [after.pop("var/"), after.pop("var/lib/"), after.pop("var/lib/memtune/")] == ["", "", ""]
    assert after == before


def test_a_kernel_without_khugepaged_files_skips_them(host: Path) -> None:
    desired = {"schema_version": 1, "thp": {"khugepaged_max_ptes_none": {"value": 0, "provenance": {}}}}
    result = apply(host, desired=desired)
    assert result["changed"] is False and not result.get("failed"), result
    assert [s["name"] for s in result["skipped_knobs"]] == ["khugepaged_max_ptes_none"]
    assert "khugepaged/max_ptes_none" in result["skipped_knobs"][0]["reason"]
