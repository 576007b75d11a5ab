"""The zswap kind on the controller (issue 12): planned from policies on captured hosts whose tree copies hold
/sys/module/zswap/parameters, merged between workload policies, judged for drift, recorded in baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from memtune.audit.baseline import host_state
from memtune.audit.drift import Kind, drift, planned_items
from memtune.cli.main import app
from memtune.engine.kinds import KINDS
from memtune.engine.knobs import NOTES
from memtune.engine.merge import ConflictError
from memtune.engine.plan import plan
from memtune.errors import PolicyError
from memtune.facts.model import HostFacts, parse_facts
from memtune.policy.load import allowed_merges, load_policy_set
from memtune.policy.model import PolicySet
from tests.support.trees import collect_with

PARAMETERS = "/sys/module/zswap/parameters"
BOOT_CONF = "/etc/memtune/boot-tmpfiles.conf"
UNIT = "/etc/systemd/system/memtune-boot.service"
# The captured host on a 6.18 kernel (every zswap file exists there) and one on 6.1 (no shrinker_enabled).
NEW, OLD = "firecracker", "small"
ALL_FILES = {
    "enabled": "N",
    "max_pool_percent": "20",
    "accept_threshold_percent": "90",
    "shrinker_enabled": "N",
}


def host(
    name: str = NEW,
    files: dict[str, str] | None = ALL_FILES,
    boot: dict[str, str] | None = None,
    **memtune: Any,
) -> HostFacts:
    """A captured host's facts with zswap ``files`` ({parameter: text}; None: no zswap directory) in a
    copy of its tree, and ``boot`` ({parameter: value}) written by memtune's (enabled) boot unit."""
    tree = {f"{PARAMETERS}/{key}": f"{text}\n" for key, text in (files or {}).items()}
    links = {}
    if boot is not None:
        tree[BOOT_CONF] = "".join(f"w {PARAMETERS}/{key} - - - - {value}\n" for key, value in boot.items())
        tree[UNIT] = "[Unit]\n"
        links["/etc/systemd/system/sysinit.target.wants/memtune-boot.service"] = UNIT
    data = collect_with(name, tree, links)
    data["memtune"].update(memtune)
    return parse_facts(data, name)


def policies(tmp_path: Path, *texts: str) -> PolicySet:
    for index, text in enumerate(texts):
        (tmp_path / f"p{index}.yml").write_text(text)
    return load_policy_set([tmp_path])


def workload(name: str, zswap: str) -> str:
    return f"layer: workload\nname: {name}\nrules:\n  - name: {name}-zswap\n    zswap: {zswap}\n"


BASELINE = (
    "layer: baseline\nname: base\nrules:\n"
    "  - name: compressed-swap\n"
    "    zswap:\n"
    "      enabled: true\n"
    "      max_pool_percent: 25\n"
    "      accept_threshold_percent: 80\n"
    "      shrinker_enabled: false\n"
)


def test_zswap_is_a_kind_of_the_registry() -> None:
    assert [kind.name for kind in KINDS] == ["sysctl", "thp", "hugepages", "cmdline", "cgroup", "zswap"]


def test_a_policy_plans_every_setting_booleans_as_words(tmp_path: Path) -> None:
    desired = plan(host(), policies(tmp_path, BASELINE))
    dumped = desired.model_dump(mode="json")["zswap"]
    assert {key: entry["value"] for key, entry in dumped.items()} == {
        "enabled": "Y",
        "max_pool_percent": 25,
        "accept_threshold_percent": 80,
        "shrinker_enabled": "N",
    }
    provenance = dumped["enabled"]["provenance"]
    assert (provenance["file"], provenance["line"], provenance["rule"]) == (
        str(tmp_path / "p0.yml"),
        6,
        "compressed-swap",
    )
    assert {"zswap is null", "zswap.enabled is null", "zswap.shrinker_enabled is null"} <= set(
        desired.facts_read
    )
    assert desired.values()["zswap.max_pool_percent"][0] == 25
    names = {"zswap.enabled", "zswap.max_pool_percent", "zswap.accept_threshold_percent"}
    assert planned_items(desired) >= names | {"zswap.shrinker_enabled"}


def test_a_kernel_without_zswap_or_a_file_skips_the_setting(tmp_path: Path) -> None:
    set_ = policies(tmp_path, BASELINE)
    without = plan(host(files=None), set_)
    assert without.model_dump()["zswap"] == {}
    assert {skipped.knob for skipped in without.skipped} == {
        "zswap.enabled",
        "zswap.max_pool_percent",
        "zswap.accept_threshold_percent",
        "zswap.shrinker_enabled",
    }
    assert without.skipped[0].reason == "this kernel has no zswap (/sys/module/zswap/parameters is missing)"
    # The 6.1 kernel has no shrinker_enabled (added in 6.8): the probe reports it as null.
    files = {key: text for key, text in ALL_FILES.items() if key != "shrinker_enabled"}
    old = plan(host(OLD, files=files), set_)
    assert sorted(old.model_dump()["zswap"]) == ["accept_threshold_percent", "enabled", "max_pool_percent"]
    assert [(s.knob, s.reason) for s in old.skipped] == [
        (
            "zswap.shrinker_enabled",
            f"kernel 6.1.0-50-amd64 has no {PARAMETERS}/shrinker_enabled (or the probe did not read it)",
        )
    ]


def test_a_required_rule_fails_on_a_kernel_without_zswap(tmp_path: Path) -> None:
    set_ = policies(
        tmp_path,
        BASELINE.replace("  - name: compressed-swap\n", "  - name: compressed-swap\n    required: true\n"),
    )
    with pytest.raises(PolicyError, match=r"this kernel has no zswap .*\(the rule is required\)$") as raised:
        plan(host(files=None), set_)
    assert raised.value.line == 7  # the enabled line


def test_max_pool_percent_takes_the_largest_workload_request(tmp_path: Path) -> None:
    set_ = policies(
        tmp_path, workload("a", "{max_pool_percent: 20}"), workload("b", "{max_pool_percent: 30}")
    )
    for order in (["a", "b"], ["b", "a"]):
        planned = plan(host(), set_, workloads=order).model_dump()["zswap"]["max_pool_percent"]
        assert planned["value"] == 30
        assert planned["provenance"]["merge"] == NOTES["max"]
    assert allowed_merges("zswap.max_pool_percent") == ("max",)
    assert allowed_merges("zswap.enabled") == allowed_merges("zswap.shrinker_enabled") == ("agree",)
    assert allowed_merges("zswap.accept_threshold_percent") == ("agree",)
    assert allowed_merges("zswap.compressor") == ()


def test_enabled_is_a_mode_workloads_must_agree_on(tmp_path: Path) -> None:
    agree = policies(tmp_path, workload("a", "{enabled: true}"), workload("b", "{enabled: true}"))
    assert plan(host(), agree, workloads=["a", "b"]).model_dump()["zswap"]["enabled"]["value"] == "Y"
    (tmp_path / "p1.yml").write_text(workload("b", "{enabled: false}"))
    with pytest.raises(ConflictError, match=r"zswap\.enabled"):
        plan(host(), load_policy_set([tmp_path]), workloads=["a", "b"])


def test_drift_runtime_and_memtunes_boot_write(tmp_path: Path) -> None:
    set_ = policies(tmp_path, BASELINE)
    desired = plan(host(), set_)
    findings = [(check.knob, found.kind) for check, found in drift(desired, host(), "h").findings()]
    assert ("zswap.enabled", Kind.runtime_drift) in findings
    assert ("zswap.max_pool_percent", Kind.runtime_drift) in findings
    assert {knob for knob, kind in findings if kind == Kind.boot_drift} == {
        "zswap.enabled",
        "zswap.max_pool_percent",
        "zswap.accept_threshold_percent",
        "zswap.shrinker_enabled",
    }
    nothing = next(check for check in drift(desired, host(), "h").checks if check.knob == "zswap.enabled")
    assert nothing.findings[-1].message == (
        "nothing sets zswap.enabled at boot: memtune-boot.service does not restore it"
    )
    applied = {
        "enabled": "Y",
        "max_pool_percent": "25",
        "accept_threshold_percent": "80",
        "shrinker_enabled": "N",
    }
    converged = drift(desired, host(files=applied, boot=applied), "h")
    assert not converged.drifted, [check.findings for check in converged.checks]
    check = next(check for check in converged.checks if check.knob == "zswap.max_pool_percent")
    assert (check.runtime, check.boot, check.boot_source) == (25, 25, "memtune-boot.service")
    stale = drift(desired, host(files=applied, boot={**applied, "enabled": "N"}), "h")
    assert [(c.knob, f.kind, f.message) for c, f in stale.findings()] == [
        ("zswap.enabled", Kind.boot_drift, "zswap.enabled boots as N (memtune-boot.service)")
    ]


def test_a_baseline_records_every_setting_now_and_at_boot() -> None:
    state = host_state(host(boot={"max_pool_percent": "30"}))
    assert state["zswap.enabled"] == {"runtime": "N", "boot": None, "boot_source": None}
    assert state["zswap.max_pool_percent"] == {
        "runtime": 20,
        "boot": "30",
        "boot_source": "memtune-boot.service",
    }
    assert state["zswap.shrinker_enabled"]["runtime"] == "N"
    assert not [name for name in host_state(host(files=None)) if name.startswith("zswap.")]


def test_a_setting_memtune_set_and_the_plan_dropped_is_a_leftover(tmp_path: Path) -> None:
    ledger = {
        "path": "/var/lib/memtune/ledger.json",
        "error": None,
        "originals": ["zswap.max_pool_percent"],
        "generations": [
            {"id": 1, "time": None, "action": "apply", "plan_hash": None, "items": ["zswap.max_pool_percent"]}
        ],
    }
    facts = host(ledger=ledger)
    left = [check for check in drift(plan(facts, PolicySet()), facts, "h").checks if check.knob != "policy"]
    assert [(check.knob, check.runtime, check.findings[0].kind) for check in left] == [
        ("zswap.max_pool_percent", 20, Kind.leftover)
    ]
    assert "restores its original value" in left[0].findings[0].message


# A bad zswap section: the file:line:column of the bad key, exit 2, nothing planned.
BAD = [
    (
        "      max_pool_percent: 101\n",
        "bad.yml:6:7: rules[0].zswap.max_pool_percent: Input should be less than or equal to 100",
    ),
    ("      enabled: 'Y'\n", "bad.yml:6:7: rules[0].zswap.enabled: Input should be a valid boolean"),
    ("      compressor: lz4\n", "bad.yml:6:7: rules[0].zswap: unknown key 'compressor'"),
]


@pytest.mark.parametrize(("line", "message"), BAD)
def test_a_bad_zswap_section_is_an_error_at_its_line(tmp_path: Path, line: str, message: str) -> None:
    (tmp_path / "bad.yml").write_text("layer: baseline\nname: b\nrules:\n  - name: r\n    zswap:\n" + line)
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "bad.yml")])
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path}/{message}\n"
    assert result.stdout == ""


def test_a_merge_zswap_does_not_allow_and_a_mode_set_both_ways(tmp_path: Path) -> None:
    merge = (
        "layer: workload\nname: w\nrules:\n  - name: r\n    merge: {zswap.max_pool_percent: sum}\n"
        "    zswap: {max_pool_percent: 10}\n"
    )
    with pytest.raises(
        PolicyError, match=r"zswap\.max_pool_percent cannot merge by 'sum'; the knob catalog allows max$"
    ):
        policies(tmp_path, merge)
    (tmp_path / "p0.yml").unlink()
    both = (
        "layer: baseline\nname: b\nrules:\n  - name: zswap-on\n    zswap: {enabled: true}\n"
        "  - name: zswap-off\n    zswap: {enabled: false}\n"
    )
    with pytest.raises(PolicyError, match=r"zswap\.enabled = N contradicts rule 'zswap-on'") as raised:
        policies(tmp_path, both)
    assert raised.value.line == 7
