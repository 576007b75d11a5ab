"""zswap, the setting-files kind added after the registry (issue 12): one declaration in
plugins/module_utils/_contract.py. On copies of a captured host's tree with zswap's parameter files
added: probe, validate, plan, the runtime write, the boot file's line, leftover and both rollbacks, all
through the real memory_apply module (its ``root`` hook)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._apply.desired import validate
from ansible_collections.memtune.fleet.plugins.module_utils._contract import BOOT_CONF, LEDGER, ZSWAP
from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import settings
from ansible_collections.memtune.fleet.plugins.module_utils._kinds.check import DesiredError
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import collect
from memtune.audit.drift import drift
from tests.unit.remote.apply.test_host_kinds import audit, copy_host, policies
from tests.unit.remote.apply.test_lifecycle_on_tree import ok, run

PARAMETERS = "sys/module/zswap/parameters"
# What this machine's 6.18 kernel shows (compressor and zpool are not memtune's).
FILES = {
    "enabled": "N\n",
    "max_pool_percent": "20\n",
    "accept_threshold_percent": "90\n",
    "shrinker_enabled": "Y\n",
}
PROVENANCE = {"file": "policy.yml", "line": 3, "rule": "zswap"}


def zswap_host(tmp_path: Path, files: dict[str, str] = FILES) -> Path:
    root = copy_host("small", tmp_path / "host")
    (root / PARAMETERS).mkdir(parents=True)
    for name, text in files.items():
        (root / PARAMETERS / name).write_text(text)
    return root


def desired(**zswap: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "zswap": {name: {"value": value, "provenance": PROVENANCE} for name, value in zswap.items()},
    }


def read(root: Path, name: str) -> str:
    return (root / PARAMETERS / name).read_text()


def boot_lines(root: Path) -> list[str]:
    conf = root / BOOT_CONF.lstrip("/")
    return [line for line in conf.read_text().splitlines() if line.startswith("w ")] if conf.exists() else []


def ledger(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / LEDGER.lstrip("/")).read_text())
    return data


def test_the_probe_reads_each_file_in_its_format(tmp_path: Path) -> None:
    root = zswap_host(tmp_path)
    assert settings.probe(Tree(str(root)), ZSWAP) == {
        "enabled": "N",
        "max_pool_percent": 20,
        "accept_threshold_percent": 90,
        "shrinker_enabled": "Y",
    }


def test_a_file_missing_is_null_and_no_directory_is_no_zswap(tmp_path: Path) -> None:
    """The Debian 12 guests' 6.1 kernel has no shrinker_enabled (6.8 added it)."""
    root = zswap_host(tmp_path, {name: text for name, text in FILES.items() if name != "shrinker_enabled"})
    assert settings.probe(Tree(str(root)), ZSWAP)["shrinker_enabled"] is None
    (root / PARAMETERS / "enabled").write_text("maybe\n")
    tree = Tree(str(root))
    assert settings.probe(tree, ZSWAP)["enabled"] is None
    assert any("expected Y or N" in warning for warning in tree.warnings)
    assert settings.probe(Tree(str(copy_host("small", tmp_path / "plain"))), ZSWAP) is None


def test_validate_takes_y_n_and_percentages_only() -> None:
    assert validate(desired(enabled="Y", max_pool_percent=30))["zswap"] == {
        "enabled": "Y",
        "max_pool_percent": 30,
    }
    for bad, message in (
        (desired(enabled=True), r"zswap.enabled: expected \{value: Y or N\}, got True"),
        (desired(enabled="yes"), r"zswap.enabled: expected \{value: Y or N\}"),
        (desired(max_pool_percent=101), r"zswap.max_pool_percent: expected a percentage 0..100, got 101"),
        (desired(max_pool_percent=-1), r"zswap.max_pool_percent: expected an integer >= 0"),
        (desired(max_pool_percent="20"), r"zswap.max_pool_percent: expected an integer >= 0"),
        (desired(compressor="zstd"), r"zswap: unknown knob 'compressor' \(expected one of enabled, "),
        ({"schema_version": 1, "zswap": "on"}, "zswap: expected a mapping"),
    ):
        with pytest.raises(DesiredError, match=message):
            validate(bad)


def test_apply_writes_the_file_persists_it_for_boot_and_keeps_the_original(tmp_path: Path) -> None:
    root = zswap_host(tmp_path)
    result = ok(run(root, desired=desired(max_pool_percent=30, shrinker_enabled="N")))
    assert result["changed"] is True
    assert read(root, "max_pool_percent") == "30\n" and read(root, "shrinker_enabled") == "N\n"
    knobs = {(k["kind"], k["name"]): (k["before"], k["after"], k["read_back"]) for k in result["knobs"]}
    assert knobs == {
        ("zswap", "max_pool_percent"): (20, 30, 30),
        ("zswap", "shrinker_enabled"): ("Y", "N", "N"),
    }
    assert boot_lines(root) == [
        "w /sys/module/zswap/parameters/max_pool_percent - - - - 30",
        "w /sys/module/zswap/parameters/shrinker_enabled - - - - N",
    ]
    saved = ledger(root)
    assert saved["runtime"]["zswap"] == {"max_pool_percent": 20, "shrinker_enabled": "Y"}
    assert saved["generations"][-1]["items"] == ["zswap.max_pool_percent", "zswap.shrinker_enabled"]
    assert "zswap max_pool_percent = 20" in result["diff"][0]["before"]
    again = ok(run(root, desired=desired(max_pool_percent=30, shrinker_enabled="N")))
    assert again["changed"] is False, again


def test_a_setting_this_kernel_lacks_is_skipped(tmp_path: Path) -> None:
    root = zswap_host(tmp_path, {name: text for name, text in FILES.items() if name != "shrinker_enabled"})
    result = ok(run(root, desired=desired(shrinker_enabled="Y", max_pool_percent=25)))
    assert [(s["kind"], s["name"]) for s in result["skipped_knobs"]] == [("zswap", "shrinker_enabled")]
    assert boot_lines(root) == ["w /sys/module/zswap/parameters/max_pool_percent - - - - 25"]
    plain = copy_host("small", tmp_path / "plain")
    result = ok(run(plain, desired=desired(max_pool_percent=25)))
    assert result["skipped_knobs"] == [
        {
            "kind": "zswap",
            "name": "max_pool_percent",
            "reason": "this kernel has no /sys/module/zswap/parameters",
        }
    ]
    assert result["changed"] is False


def test_a_dropped_setting_goes_back_to_its_original_and_out_of_the_boot_file(tmp_path: Path) -> None:
    root = zswap_host(tmp_path)
    ok(run(root, desired=desired(max_pool_percent=30, enabled="Y")))
    assert read(root, "enabled") == "Y\n"
    result = ok(run(root, desired=desired(max_pool_percent=30)))
    assert read(root, "enabled") == "N\n" and read(root, "max_pool_percent") == "30\n"
    assert [k["leftover"] for k in result["knobs"] if k["name"] == "enabled"] == [True]
    assert boot_lines(root) == ["w /sys/module/zswap/parameters/max_pool_percent - - - - 30"]
    ok(run(root, desired={"schema_version": 1}))
    assert read(root, "max_pool_percent") == "20\n" and boot_lines(root) == []


def test_rollback_previous_then_original(tmp_path: Path) -> None:
    root = zswap_host(tmp_path)
    ok(run(root, desired=desired(max_pool_percent=30)))
    ok(run(root, desired=desired(max_pool_percent=40, accept_threshold_percent=50)))
    ok(run(root, rollback="previous"))
    assert read(root, "max_pool_percent") == "30\n" and read(root, "accept_threshold_percent") == "90\n"
    assert boot_lines(root) == ["w /sys/module/zswap/parameters/max_pool_percent - - - - 30"]
    ok(run(root, rollback="original"))
    assert {name: read(root, name) for name in FILES} == FILES
    assert not (root / BOOT_CONF.lstrip("/")).exists()


def test_the_probe_reports_zswap_and_a_policy_plans_applies_and_audits_clean(tmp_path: Path) -> None:
    """Both sides end to end: the facts' zswap section, the engine's plan from a policy, memory_apply on the
    tree, the audit of the tree afterwards."""
    root = zswap_host(tmp_path)
    assert collect(Tree(str(root)))["zswap"] == {
        "enabled": "N",
        "max_pool_percent": 20,
        "accept_threshold_percent": 90,
        "shrinker_enabled": "Y",
    }
    assert collect(Tree(str(copy_host("small", tmp_path / "plain"))))["zswap"] is None
    policy = policies(tmp_path, [{"name": "zswap", "source": "test", "zswap": {"max_pool_percent": 33}}])
    desired, facts = audit(root, policy)
    assert drift(desired, facts, "host").drifted
    ok(run(root, desired=desired.model_dump(mode="json")))
    assert read(root, "max_pool_percent") == "33\n"
    desired, facts = audit(root, policy)
    after = drift(desired, facts, "host")
    assert not after.drifted, [(c.name, f.message) for c, f in after.findings()]
