"""The rollout role's health decision (plugins/filter/rollout_health.py, which roles/rollout/tasks/gate.yml
calls) on probes of captured hosts (tests/fixtures/hosts) with the PSI and vmstat lines a loaded kernel
writes: each threshold at, below and above its limit, a kernel without PSI, units, TCP ports and URLs
down, the order of the problems, and malformed input refused with a message."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.memtune.fleet.plugins.filter.evidence import memory_rates, memory_sample
from ansible_collections.memtune.fleet.plugins.filter.rollout_health import FilterModule, rollout_health
from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import collect

HOSTS = Path(__file__).resolve().parents[2] / "fixtures" / "hosts"
# The role's defaults (roles/rollout/defaults/main.yml).
DEFAULTS: dict[str, Any] = {"some_avg10_max": 10.0, "full_avg10_max": 5.0, "max_new_oom_kills": 0}


def psi(some: float, full: float) -> str:
    return (
        f"some avg10={some:.2f} avg60=1.00 avg300=0.50 total=123456\n"
        f"full avg10={full:.2f} avg60=0.50 avg300=0.20 total=23456\n"
    )


def probe(tmp_path: Path, pressure: str | None = psi(0.0, 0.0), oom_kill: int | None = 0) -> dict[str, Any]:
    """The registered memory_facts result of captured host ``small`` with /proc/pressure/memory (None: a
    kernel without PSI, no such file) and the oom_kill line of /proc/vmstat (None: a kernel without it)."""
    root = tmp_path / "small"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(HOSTS / "small", root, symlinks=True)
    if pressure is None:
        shutil.rmtree(root / "proc" / "pressure")
    else:
        (root / "proc" / "pressure" / "memory").write_text(pressure)
    vmstat = root / "proc" / "vmstat"
    lines = [line for line in vmstat.read_text().splitlines() if not line.startswith("oom_kill ")]
    vmstat.write_text("\n".join([*lines, *([f"oom_kill {oom_kill}"] if oom_kill is not None else [])]) + "\n")
    return {"changed": False, "ansible_facts": {"memtune": collect(Tree(str(root)), workloads=False)}}


def health(facts: dict[str, Any], **arguments: Any) -> dict[str, Any]:
    return rollout_health(facts, **{"oom_baseline": 0, **DEFAULTS, **arguments})


def loop_result(item: dict[str, Any], failed: bool) -> dict[str, Any]:
    """One entry of a registered loop's ``results`` as wait_for and uri leave it."""
    return {"item": item, "failed": failed, "changed": False, "ansible_loop_var": "item"}


def test_a_quiet_host_passes_with_its_figures(tmp_path: Path) -> None:
    result = health(probe(tmp_path, psi(1.5, 0.25), oom_kill=3), oom_baseline=3)
    assert result == {"problems": [], "some": 1.5, "full": 0.25, "oom_new": 0, "pressure": True}


@pytest.mark.parametrize(
    ("some", "full", "problems"),
    [
        (9.99, 4.99, []),
        (10.0, 5.0, []),  # at the limit is within it (the gate's `>`)
        (10.01, 5.0, ["memory pressure some avg10 10.01 > 10.0"]),
        (10.0, 5.01, ["memory pressure full avg10 5.01 > 5.0"]),
        (
            25.5,
            12.0,
            ["memory pressure some avg10 25.5 > 10.0", "memory pressure full avg10 12.0 > 5.0"],
        ),
    ],
)
def test_pressure_at_below_and_above_its_limits(
    tmp_path: Path, some: float, full: float, problems: list[str]
) -> None:
    result = health(probe(tmp_path, psi(some, full)))
    assert result["problems"] == problems
    assert (result["some"], result["full"], result["pressure"]) == (some, full, True)


@pytest.mark.parametrize(("kills", "problems"), [(4, []), (5, []), (6, ["1 new OOM kill(s) > 0"])])
def test_new_oom_kills_at_below_and_above_the_limit(tmp_path: Path, kills: int, problems: list[str]) -> None:
    assert health(probe(tmp_path, oom_kill=kills), oom_baseline=5)["problems"] == problems


@pytest.mark.parametrize(
    ("allowed", "problems"),
    [(1, ["2 new OOM kill(s) > 1"]), (2, []), (1.5, ["2 new OOM kill(s) > 1.5"])],
)
def test_the_oom_kill_limit_is_quoted_as_given(tmp_path: Path, allowed: float, problems: list[str]) -> None:
    result = health(probe(tmp_path, oom_kill=12), oom_baseline=10, max_new_oom_kills=allowed)
    assert (result["oom_new"], result["problems"]) == (2, problems)


def test_a_kernel_without_psi_skips_the_pressure_checks(tmp_path: Path) -> None:
    """Bug (issue 12, the Jinja gate): it compared the 0 it printed for a kernel without PSI against the
    maxima, so a negative maximum failed such a host ("memory pressure some avg10 0 > -1"), where the
    role's argument spec says that kernel skips the pressure checks. The filter skips them."""
    facts = probe(tmp_path, pressure=None)
    assert facts["ansible_facts"]["memtune"]["pressure"] is None
    result = health(facts, some_avg10_max=-1, full_avg10_max=-1)
    assert result == {"problems": [], "some": 0, "full": 0, "oom_new": 0, "pressure": False}
    # The success message prints "pressure some 0, full 0" there, as the Jinja gate did.
    assert (str(result["some"]), str(result["full"])) == ("0", "0")


def test_a_kernel_without_the_oom_kill_counter_counts_no_new_kill(tmp_path: Path) -> None:
    facts = probe(tmp_path, oom_kill=None)
    assert "oom_kill" not in facts["ansible_facts"]["memtune"]["vmstat"]
    assert health(facts)["oom_new"] == 0


def test_thresholds_given_on_the_command_line_are_numbers(tmp_path: Path) -> None:
    """``-e rollout_health_pressure_some_avg10_max=20`` arrives as the string "20"."""
    result = health(probe(tmp_path, psi(20.5, 0)), some_avg10_max="20", max_new_oom_kills="0")
    assert result["problems"] == ["memory pressure some avg10 20.5 > 20"]


SERVICES = {
    "sshd.service": {"name": "sshd.service", "state": "running", "status": "enabled", "source": "systemd"},
    "cron.service": {"name": "cron.service", "state": "stopped", "status": "enabled", "source": "systemd"},
    "docker.socket": {"name": "docker.socket", "state": "running", "status": "enabled", "source": "systemd"},
}


def test_units_not_running_in_the_order_given(tmp_path: Path) -> None:
    result = health(
        probe(tmp_path),
        services=SERVICES,
        units=["sshd", "cron", "docker.socket", "postgresql", "sshd.service", "nginx.service"],
    )
    assert result["problems"] == [
        "unit not active: cron.service",
        "unit not active: postgresql.service",
        "unit not active: nginx.service",
    ]


def test_units_without_service_facts_are_all_down(tmp_path: Path) -> None:
    assert health(probe(tmp_path), units=["sshd"])["problems"] == ["unit not active: sshd.service"]


def test_tcp_and_http_failures_name_the_port_and_the_url(tmp_path: Path) -> None:
    tcp = [loop_result({"port": 22}, False), loop_result({"port": 9, "timeout": 1}, True)]
    http = [
        loop_result({"url": "http://127.0.0.1:8080/health"}, True),
        loop_result({"url": "http://127.0.0.1/"}, False),
    ]
    assert health(probe(tmp_path), tcp=tcp, http=http)["problems"] == [
        "TCP port not open: 9",
        "URL not answering as expected: http://127.0.0.1:8080/health",
    ]


def evidence(before_some: float, after_some: float) -> dict[str, Any]:
    def window(some: float) -> dict[str, Any]:
        text = "100.00 1.00\npgscan_kswapd 0\noom_kill 0\n" + psi(some, 0.0)
        later = "110.00 1.00\npgscan_kswapd 50\noom_kill 0\n" + psi(some, 0.0)
        return memory_rates(memory_sample(text), memory_sample(later))

    return {"before": window(before_some), "after": window(after_some)}


def test_every_problem_in_the_gates_order(tmp_path: Path) -> None:
    result = health(
        probe(tmp_path, psi(30.0, 6.0), oom_kill=2),
        evidence=evidence(1.0, 30.0),
        max_worsening={"psi_some_avg10": 5},
        services=SERVICES,
        units=["cron"],
        tcp=[loop_result({"port": 5432}, True)],
        http=[loop_result({"url": "https://db1/"}, True)],
    )
    assert result["problems"] == [
        "memory pressure some avg10 30.0 > 10.0",
        "memory pressure full avg10 6.0 > 5.0",
        "2 new OOM kill(s) > 0",
        "psi_some_avg10 worse than before: 1.0 -> 30.0 (+29.0 > 5)",
        "unit not active: cron.service",
        "TCP port not open: 5432",
        "URL not answering as expected: https://db1/",
    ]


def test_no_limits_compare_no_evidence(tmp_path: Path) -> None:
    """The gate before the change passes ``{}``: the evidence is not judged there."""
    assert health(probe(tmp_path), evidence=evidence(1.0, 30.0), max_worsening={})["problems"] == []
    assert health(probe(tmp_path), evidence=None, max_worsening={"psi_some_avg10": 5})["problems"] == []


def test_the_filter_is_registered_under_its_name() -> None:
    assert FilterModule().filters() == {"rollout_health": rollout_health}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"some_avg10_max": "high"}, "rollout_health: some_avg10_max is not a number: 'high'"),
        ({"full_avg10_max": None}, "rollout_health: full_avg10_max is not a number: None"),
        ({"max_new_oom_kills": [1]}, "rollout_health: max_new_oom_kills is not a number: [1]"),
        ({"some_avg10_max": True}, "rollout_health: some_avg10_max is not a number: True"),
        ({"some_avg10_max": float("nan")}, "rollout_health: some_avg10_max is not a number: nan"),
        ({"oom_baseline": "some"}, "rollout_health: oom_baseline is not a number: 'some'"),
        ({"oom_baseline": 1.5}, "rollout_health: oom_baseline is not a whole number: 1.5"),
        ({"oom_baseline": "inf"}, "rollout_health: oom_baseline is not a whole number: 'inf'"),
        (
            {"max_worsening": {"pgscan_direct": "lots"}},
            "rollout_health: max_worsening.pgscan_direct is not a number: 'lots'",
        ),
        ({"max_worsening": {"psi": 1}}, "memory_worsening: unknown metrics psi"),
        ({"max_worsening": [1]}, "rollout_health: max_worsening is not a mapping: [1]"),
        ({"evidence": "x"}, "rollout_health: evidence is not a mapping: 'x'"),
        (
            {"evidence": {"before": {}, "after": {}}, "max_worsening": {"psi_some_avg10": 1}},
            "rollout_health: the evidence is not memory_rates windows (KeyError: 'metrics')",
        ),
        ({"services": ["sshd"]}, "rollout_health: services is not a mapping: ['sshd']"),
        ({"units": "sshd"}, "rollout_health: units is not a list: 'sshd'"),
        ({"units": [None]}, "rollout_health: units: a unit name is not a string: None"),
        ({"tcp": {"port": 9}}, "rollout_health: tcp is not a list: {'port': 9}"),
        ({"tcp": ["failed"]}, "rollout_health: tcp[0] is not a mapping: 'failed'"),
        ({"tcp": [{"failed": True}]}, "rollout_health: tcp[0].item is not a mapping: None"),
        ({"http": [{"failed": True, "item": {"uri": "x"}}]}, "rollout_health: http[0].item has no url"),
    ],
)
def test_malformed_input_is_refused_with_a_message(
    tmp_path: Path, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(AnsibleFilterError, match="^" + re.escape(message)):
        health(probe(tmp_path), **arguments)


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        ("ok", "rollout_health: probe is not a mapping: 'ok'"),
        ({"ansible_facts": {"memtune": []}}, "rollout_health: probe.ansible_facts.memtune is not a mapping"),
        ({"ansible_facts": {"memtune": {"pressure": "yes"}}}, "rollout_health: pressure is not a mapping"),
        (
            {"ansible_facts": {"memtune": {"vmstat": {"oom_kill": "x"}}}},
            "rollout_health: vmstat.oom_kill is not a number",
        ),
        (
            {"ansible_facts": {"memtune": {"pressure": {"some": {"avg10": "lots"}}}}},
            "rollout_health: pressure.some.avg10 is not a number: 'lots'",
        ),
    ],
)
def test_a_malformed_probe_is_refused_with_a_message(facts: Any, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match="^" + re.escape(message)):
        health(facts)


@pytest.mark.parametrize("line", [{"avg60": 1.0}, {"avg10": None}])
def test_a_psi_line_without_its_avg10_is_refused(line: dict[str, Any]) -> None:
    """Bug (issue 12, the Jinja gate): ``__pressure.some.avg10 | default(0) | float`` turned a missing or
    null avg10 (or any text) into 0.0, so a host whose probe had lost its pressure figure passed the gate
    as unloaded. The filter refuses it instead."""
    facts = {"ansible_facts": {"memtune": {"pressure": {"some": line, "full": {"avg10": 0.0}}}}}
    with pytest.raises(AnsibleFilterError, match=r"^rollout_health: pressure\.some"):
        health(facts)


def test_a_psi_kind_the_kernel_does_not_report_counts_as_zero() -> None:
    """As the Jinja gate did (``default(0)``): only ``some`` reported, ``full`` is 0.0."""
    facts = {"ansible_facts": {"memtune": {"pressure": {"some": {"avg10": 3.0}}}}}
    assert health(facts) == {"problems": [], "some": 3.0, "full": 0.0, "oom_new": 0, "pressure": True}
