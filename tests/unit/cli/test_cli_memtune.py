"""The `memtune` command, black-box through typer's CliRunner, on facts of real hosts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.support.cli import CAPTURED, POLICIES, REPO, facts_dir, run, write_vars

__all__ = ["facts_dir"]


@pytest.fixture(scope="module")
def live_facts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This machine's facts from the real module, saved by `ansible --tree` as a file named after the host."""
    directory = tmp_path_factory.mktemp("live")
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible"),
            "localhost",
            "-m",
            "memtune.fleet.memory_facts",
            "--tree",
            str(directory),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(REPO),
            "PATH": "/usr/bin:/bin",
            "LC_ALL": "C.UTF-8",
            "HOME": str(directory),
        },
    )
    assert (directory / "localhost").exists(), done.stdout + done.stderr
    return directory / "localhost"


def test_validate_bundled() -> None:
    result = run("validate", POLICIES)
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == len(list(POLICIES.glob("*.yml")))
    assert "ok  " in result.stdout and "(baseline baseline, 4 rules)" in result.stdout


# file text -> the exact error line
INVALID = [
    ("layer: baseline\nname: b\nrulez: []\n", "bad.yml:3:1: unknown key 'rulez' (did you mean 'rules'?)"),
    (
        "layer: baseline\nname: b\nrules:\n  - name: r\n"
        "    sysctl: {vm.swappiness: \"{{ ''.__class__ }}\"}\n",
        "bad.yml:5:14: rule 'r': access to '__class__' is not allowed: expressions read facts only",
    ),
    # the parser's own words differ between libyaml and pure-Python PyYAML
    ("layer: baseline\nname: [b\n", "bad.yml:3:1: invalid YAML: "),
    (
        "layer: baseline\nname: b\nrules:\n  - name: r\n    sysctl: {vm.swappiness: '{{ 1 + }}'}\n",
        "bad.yml:5:14: rule 'r': expression syntax: unexpected 'end of template'",
    ),
]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_validate_invalid(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "bad.yml").write_text(text)
    result = run("validate", tmp_path / "bad.yml")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {tmp_path}/{message}")
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1
    assert message.endswith(": ") or result.stderr == f"error: {tmp_path}/{message}\n"
    assert result.stdout == ""


def test_plan_json(facts_dir: Path, tmp_path: Path) -> None:
    variables = tmp_path / "vars.yml"
    variables.write_text(
        "numa2:\n  memtune_workloads: [postgresql]\n  memtune_inputs: {postgresql_huge_pages: 1000}\n"
    )
    result = run("plan", "--facts", facts_dir, "--policy", POLICIES, "--vars", variables, "--format", "json")
    assert result.exit_code == 0, result.stderr
    plans = json.loads(result.stdout)
    assert sorted(plans) == sorted(CAPTURED)
    assert plans["numa2"]["hugepages"][0]["per_node"] == {"0": 491, "1": 509}
    assert plans["numa2"]["sysctl"]["vm.swappiness"]["value"] == 3
    assert plans["small"]["sysctl"]["vm.swappiness"]["value"] == 10
    assert plans["firecracker"]["sysctl"]["vm.min_free_kbytes"]["provenance"]["inputs"] == {
        "memory.mem_total_kb": 24684084
    }


def test_plan_table(facts_dir: Path) -> None:
    result = run("plan", "--facts", facts_dir / "numa3.json", "--workload", "hpc_compute")
    assert result.exit_code == 0, result.stderr
    assert "vm.zone_reclaim_mode" in result.stdout
    assert "policies/hpc_compute.yml:" in result.stdout and "numa3" in result.stdout


def test_plan_from_a_jsonfile_fact_cache(facts_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    facts = json.loads((facts_dir / "small.json").read_text())["ansible_facts"]["memtune"]
    (cache / "db01.example.com").write_text(
        json.dumps({"ansible_memtune": facts, "ansible_hostname": "db01"})
    )
    result = run("plan", "--facts", cache, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert list(json.loads(result.stdout)) == ["db01.example.com"]


def test_plan_live_facts(live_facts: Path) -> None:
    result = run("plan", "--facts", live_facts, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["localhost"]["schema_version"] == 1


BAD_FACTS = [
    ("{not json", "not JSON: Expecting property name enclosed in double quotes"),
    (
        '{"schema_version": 7}',
        "this memtune reads version 4: the probe is newer than the controller; upgrade memtune",
    ),
    (
        '{"schema_version": 3}',
        "facts schema_version 3; this memtune reads version 4: the facts come from an older probe",
    ),
    ('{"schema_version": 4, "root": "/"}', "invalid facts: kernel: Field required"),
]


@pytest.mark.parametrize(("text", "words"), BAD_FACTS)
def test_plan_bad_facts(tmp_path: Path, text: str, words: str) -> None:
    (tmp_path / "h.json").write_text(text)
    result = run("plan", "--facts", tmp_path / "h.json")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {tmp_path}/h.json")
    assert words in result.stderr and "Traceback" not in result.stderr


def test_plan_guard_names_host_and_rule(facts_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "base.yml").write_text(
        "layer: baseline\nname: b\nrules:\n  - {name: pool, hugepages: [{size: 2MiB, total: 6GiB}]}\n"
    )
    result = run("plan", "--facts", facts_dir / "firecracker.json", "--policy", tmp_path)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"error: {tmp_path}/base.yml:4: host firecracker: rule 'pool': hugepages would "
        "take 6291456 kB of NUMA node 0's 6645964 kB"
    )


def test_vars_errors(facts_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "vars.yml").write_text("small:\n  memtune_input: {}\n")
    result = run("plan", "--facts", facts_dir, "--vars", tmp_path / "vars.yml")
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path}/vars.yml:2:3: small.memtune_input: unknown key\n"


def test_explain(facts_dir: Path) -> None:
    result = run("explain", "--facts", facts_dir / "small.json", "--workload", "postgresql", "vm.swappiness")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("vm.swappiness = 3 ← policies/postgresql.yml:")
    assert lines[0].endswith(" rule `swappiness`")
    assert lines[-1].startswith("  overrides 10 ← policies/baseline.yml:") and lines[-1].endswith(
        "(baseline)"
    )


def test_explain_errors(facts_dir: Path) -> None:
    unknown = run("explain", "--facts", facts_dir / "small.json", "vm.nothing")
    assert unknown.exit_code == 2 and "the plan does not set 'vm.nothing'" in unknown.stderr
    several = run("explain", "--facts", facts_dir, "vm.swappiness")
    assert several.exit_code == 2 and "pick one with --host" in several.stderr
    chosen = run("explain", "--facts", facts_dir, "--host", "numa2", "kernel.numa_balancing")
    assert chosen.exit_code == 0 and chosen.stdout.startswith("kernel.numa_balancing = 1 ←")


def test_schema_validates_the_bundled_policies() -> None:
    result = run("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in POLICIES.glob("*.yml"):
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
        assert errors == [], path
    assert list(validator.iter_errors({"layer": "baseline", "name": "b", "rulez": []}))


def test_usage_errors_exit_2() -> None:
    assert run("plan").exit_code == 2
    assert run("frobnicate").exit_code == 2


def test_inline_policies_from_vars(facts_dir: Path, tmp_path: Path) -> None:
    ours = {"name": "ours", "sysctl": {"vm.swappiness": 11}}
    mine = {"name": "mine", "sysctl": {"vm.max_map_count": 300000}}
    host = {"group_names": ["db"], "memtune_group_policies": [{"rules": [ours]}]}
    variables = write_vars(
        tmp_path / "vars.yml", {"small": {**host, "memtune_host_policy": {"rules": [mine]}}}
    )
    result = run("plan", "--facts", facts_dir / "small.json", "--vars", variables, "--format", "json")
    assert result.exit_code == 0, result.stderr
    sysctl = json.loads(result.stdout)["small"]["sysctl"]
    assert sysctl["vm.swappiness"]["value"] == 11
    assert sysctl["vm.swappiness"]["provenance"]["file"] == f"{variables}:small.memtune_group_policies[0]"
    assert sysctl["vm.max_map_count"]["provenance"]["layer"] == "host"
    mine["sysctl"] = {"vm.swapiness": 1}
    write_vars(variables, {"small": {"memtune_host_policy": {"rules": [mine]}}})
    bad = run("plan", "--facts", facts_dir / "small.json", "--vars", variables)
    assert bad.exit_code == 2
    assert bad.stderr == (
        f"error: {variables}:small.memtune_host_policy: host small: rule 'mine': unknown knob 'vm.swapiness' "
        "(did you mean 'vm.swappiness'?)\n"
    )


def test_explain_an_expression(facts_dir: Path) -> None:
    result = run("explain", "--facts", facts_dir / "firecracker.json", "vm.min_free_kbytes")
    assert result.exit_code == 0, result.stderr
    first, *rest = result.stdout.splitlines()
    assert re.fullmatch(
        r"vm\.min_free_kbytes = 123420 ← \S*policies/baseline\.yml:\d+ rule `watermarks`: "
        r"clamp\(percent_of_ram\(0\.5\), default_min_free_kbytes\(\), '1GiB'\)",
        first,
    )
    assert "  inputs: memory.mem_total_kb=24684084" in rest
