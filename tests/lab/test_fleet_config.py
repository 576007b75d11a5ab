"""The fleet definition and the inventory written from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fleet import Guest, count_cpus, list_lines, parse_fleet, render_inventory, render_ssh_config

MAX_VCPUS = 6  # the host has 2 cores; TCG guests beyond this crawl


@pytest.fixture
def fleet(lab_dir: Path) -> list[Guest]:
    return parse_fleet((lab_dir / "fleet.conf").read_text())


def test_fleet_fits_the_machine(fleet: list[Guest]) -> None:
    assert sum(count_cpus(str(node["cpus"])) for g in fleet for node in g.nodes) <= MAX_VCPUS


def test_guests_differ_in_ram_node_count_and_kernel(fleet: list[Guest]) -> None:
    assert len({sum(int(str(n["mib"])) for n in g.nodes) for g in fleet}) == len(fleet)
    assert len({len(g.nodes) for g in fleet}) == len(fleet)
    assert {g.kernel_line for g in fleet} == {"6.1", "6.12"}


def test_fleet_has_a_cpuless_node_and_room_for_1gib_hugepages(fleet: list[Guest]) -> None:
    assert any(node["cpus"] == "" for g in fleet for node in g.nodes)
    assert any("nokaslr" in g.kernel_args and min(int(str(n["mib"])) for n in g.nodes) >= 3072 for g in fleet)


def test_nodes_then_any_number_of_kernel_args() -> None:
    (guest,) = parse_fleet("hp 6.1 3072@0 3072@1-2 1024@ nokaslr hugepagesz=1G hugepages=2  # 1 GiB pages\n")
    assert guest.nodes == [
        {"mib": 3072, "cpus": "0"},
        {"mib": 3072, "cpus": "1-2"},
        {"mib": 1024, "cpus": ""},
    ]
    assert guest.kernel_args == "nokaslr hugepagesz=1G hugepages=2"
    assert list_lines([guest]) == "hp|6.1|nokaslr hugepagesz=1G hugepages=2|3072@0 3072@1-2 1024@\n"


def test_list_keeps_an_empty_args_field(fleet: list[Guest]) -> None:
    assert list_lines(fleet).splitlines()[0] == "small|6.1||2048@0"


# a bad table, the line the error names, the message (a regular expression) after "fleet.conf:<line>: "
BAD_TABLES = [
    ("small 6.1\n", 1, "want 'name kernel MiB@cpus... \\[kernel args\\]'"),
    ("# c\nsmall 6.1 2048\n", 2, "NUMA node '2048' is not MiB@cpus"),
    ("small 6.1 2048@0 nokaslr 1024@1\n", 1, "NUMA node '1024@1' is not MiB@cpus .or follows"),
    ("small 6.1 2048@x\n", 1, "NUMA node '2048@x' is not MiB@cpus"),
    ("small 6.1 nokaslr\n", 1, "guest 'small' has no NUMA node"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD_TABLES)
def test_bad_fleet_lines_name_their_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ValueError, match=f"fleet.conf:{line}: {message}"):
        parse_fleet(text)


def test_list_cli_fails_on_a_bad_table(lab_dir: Path, tmp_path: Path) -> None:
    table = tmp_path / "fleet.conf"
    table.write_text("ok 6.1 1024@0\nbad 6.1 1024\n")
    result = subprocess.run(
        [sys.executable, str(lab_dir / "fleet.py"), "list", "--fleet", str(table)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"{table}:2: NUMA node '1024' is not MiB@cpus" in result.stderr


@pytest.mark.parametrize(("cpus", "count"), [("", 0), ("0", 1), ("2-3", 2), ("0-3", 4)])
def test_count_cpus(cpus: str, count: int) -> None:
    assert count_cpus(cpus) == count


@pytest.fixture
def run_dir(tmp_path: Path, fleet: list[Guest]) -> Path:
    for port, guest in enumerate(fleet, start=2251):
        (tmp_path / guest.name).mkdir()
        (tmp_path / guest.name / "port").write_text(f"{port}\n")
        (tmp_path / guest.name / "kernel").write_text(f"{guest.kernel_line}.0-1-amd64\n")
    return tmp_path


def test_inventory_reaches_each_guest_by_its_own_port(fleet: list[Guest], run_dir: Path) -> None:
    inventory = yaml.safe_load(render_inventory(fleet, str(run_dir), "/k/id"))
    lab = inventory["all"]["children"]["lab"]
    assert [h["ansible_port"] for h in lab["hosts"].values()] == [2251, 2252, 2253]
    assert lab["vars"]["ansible_python_interpreter"] == "/usr/bin/python3"
    assert lab["vars"]["ansible_ssh_private_key_file"] == "/k/id"
    assert f"ControlPath={run_dir}/ssh-%C" in lab["vars"]["ansible_ssh_common_args"]
    numa3 = lab["hosts"]["numa3"]
    assert (numa3["lab_numa_nodes"], numa3["lab_mem_mib"], numa3["lab_vcpus"]) == (3, 5120, 2)
    assert numa3["lab_kernel_release"] == "6.12.0-1-amd64"


def test_inventory_groups_guests_by_kernel_line(fleet: list[Guest], run_dir: Path) -> None:
    children = yaml.safe_load(render_inventory(fleet, str(run_dir), "/k/id"))["all"]["children"]
    assert sorted(children["kernel_6_1"]["hosts"]) == ["numa2", "small"]
    assert sorted(children["kernel_6_12"]["hosts"]) == ["numa3"]


def test_ssh_config_names_each_guest(fleet: list[Guest], run_dir: Path) -> None:
    config = render_ssh_config(fleet, str(run_dir), "/k/id")
    assert "Host numa2\n    HostName 127.0.0.1\n    Port 2252\n    IdentityFile /k/id\n" in config
