"""Black-box checks of tuning, shared by the molecule scenarios: after converge, every value memtune
planned for a host is what that host's kernel runs and what its memtune sysctl file restores at boot.

The plan is asked of the tune action in check mode (which changes nothing) and compared with the files
the host itself shows; on the QEMU fleet, plans must differ where the guests differ.
"""

from typing import Any

import pytest

MEMTUNE_SYSCTL = "/etc/sysctl.d/90-memtune.conf"


@pytest.fixture(scope="module")
def tuned(host: Any) -> dict[str, Any]:
    result = host.ansible("memtune.fleet.tune", check=True)
    assert result.get("plan"), result
    return result


def sysctl_file_values(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith(("#", ";")):
            values[key.strip()] = value.strip()
    return values


def test_a_converged_host_has_nothing_to_apply(tuned: dict[str, Any]) -> None:
    assert tuned["changed"] is False
    assert tuned["remote_calls"] == 1
    assert tuned["differences"] == []


def test_the_kernel_runs_every_planned_sysctl(host: Any, tuned: dict[str, Any]) -> None:
    for key, planned in tuned["plan"]["sysctl"].items():
        path = "/proc/sys/" + key.replace(".", "/")
        assert host.file(path).content_string.split() == str(planned["value"]).split(), key


def test_memtunes_sysctl_file_restores_them_at_boot(host: Any, tuned: dict[str, Any]) -> None:
    planned = {key: str(item["value"]) for key, item in tuned["plan"]["sysctl"].items()}
    if not planned:
        pytest.skip("no sysctl planned for this host")
    sysctl_file = host.file(MEMTUNE_SYSCTL)
    assert sysctl_file.is_file
    assert sysctl_file.mode == 0o644
    assert sysctl_file_values(sysctl_file.content_string) == planned


def test_thp_runs_as_planned(host: Any, tuned: dict[str, Any]) -> None:
    for name, planned in tuned["plan"]["thp"].items():
        text = host.file(f"/sys/kernel/mm/transparent_hugepage/{name}").content_string
        assert f"[{planned['value']}]" in text, name


def test_plans_follow_the_host(host: Any, tuned: dict[str, Any]) -> None:
    """numa_balancing is planned on multi-node hosts only (baseline.yml `numa-balancing`)."""
    nodes = len(host.check_output("ls -d /sys/devices/system/node/node[0-9]*").split())
    planned = tuned["plan"]["sysctl"]
    if nodes > 1:
        assert planned["kernel.numa_balancing"]["value"] == 1
        assert planned["kernel.numa_balancing"]["provenance"]["rule"] == "numa-balancing"
    else:
        assert "kernel.numa_balancing" not in planned
