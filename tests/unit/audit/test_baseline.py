"""Baselines from captured hosts: what is recorded per knob and node, and what counts as moved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memtune import parse_facts
from memtune.audit.baseline import Baseline, dump_baseline, host_state, load_baseline, moved
from memtune.facts.model import FactsError, HostFacts
from tests.support.trees import collect_with, sysctl_files

POOL = "/sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages"


def facts(host: str = "numa2", **edit: Any) -> HostFacts:
    sources = {"vm.swappiness": [(edit["site_file"], 3, "30")]} if "site_file" in edit else {}
    data = collect_with(host, sysctl_files(sources))
    if "swappiness" in edit:
        data["sysctl"]["vm.swappiness"] = edit["swappiness"]
    if "boot_pool" in edit:
        data["memtune"].update(
            boot_writes={POOL: edit["boot_pool"]}, boot_unit={"installed": True, "enabled": True}
        )
    return parse_facts(data, host)


def test_state_records_every_knob_now_and_at_boot() -> None:
    probed = facts(site_file="/etc/sysctl.d/99-site.conf", boot_pool="64")
    state = host_state(probed)
    assert state["vm.swappiness"]["runtime"] == probed.sysctl["vm.swappiness"]
    assert (state["vm.swappiness"]["boot"], state["vm.swappiness"]["boot_source"]) == (
        "30",
        "/etc/sysctl.d/99-site.conf:3",
    )
    assert set(probed.sysctl) <= set(state)
    pools = {name for name in state if name.startswith("hugepages.")}
    expected = {f"hugepages.{size}kB[node{node.id}]" for node in probed.numa.nodes for size in node.hugepages}
    assert pools == expected and "hugepages.2048kB[node1]" in pools
    assert (state["hugepages.2048kB[node1]"]["boot"], state["hugepages.2048kB[node1]"]["boot_source"]) == (
        "64",
        "memtune-boot.service",
    )
    assert probed.thp is not None and state["thp.enabled"]["runtime"] == probed.thp.enabled
    assert state["cmdline"]["runtime"] == probed.kernel.cmdline


def test_nothing_moved_on_the_same_facts() -> None:
    recorded = Baseline(hosts={"numa2": host_state(facts()), "small": host_state(facts("small"))})
    assert moved(recorded, {"numa2": host_state(facts()), "small": host_state(facts("small"))}) == []


def test_runtime_and_boot_movement_and_hosts_that_came_or_went() -> None:
    recorded = Baseline(hosts={"numa2": host_state(facts()), "gone": host_state(facts("small"))})
    now = {
        "numa2": host_state(facts(swappiness=77, site_file="/etc/sysctl.d/99-site.conf")),
        "new": host_state(facts("small")),
    }
    found = {(m.host, m.knob, m.field): m for m in moved(recorded, now)}
    assert set(found) == {
        ("numa2", "vm.swappiness", "runtime"),
        ("numa2", "vm.swappiness", "boot"),
        ("gone", "host", "host"),
        ("new", "host", "host"),
    }
    runtime = found["numa2", "vm.swappiness", "runtime"]
    assert (runtime.after, runtime.message) == (
        77,
        f"vm.swappiness runs 77, the baseline recorded {runtime.before}",
    )
    assert found["numa2", "vm.swappiness", "boot"].message.endswith(
        "boots as 30 (/etc/sysctl.d/99-site.conf:3), the baseline recorded None"
    )
    assert (found["gone", "host", "host"].before, found["gone", "host", "host"].after) == (
        "present",
        "absent",
    )
    # A host whose facts could not be read is an error elsewhere, not a host that went away.
    assert all(m.host != "gone" for m in moved(recorded, now, missing={"gone"}))


def test_baseline_file_round_trip_and_bad_files(tmp_path: Path) -> None:
    recorded = Baseline(hosts={"numa2": host_state(facts())})
    path = tmp_path / "baseline.json"
    path.write_text(dump_baseline(recorded.hosts))
    assert load_baseline(path) == recorded
    path.write_text('{"schema_version": 2, "hosts": {}}')
    with pytest.raises(FactsError, match=r"baseline.json: not a memtune baseline: schema_version: "):
        load_baseline(path)
    path.write_text("{")
    with pytest.raises(FactsError, match="not a memtune baseline"):
        load_baseline(path)
    with pytest.raises(FactsError, match="cannot read the baseline"):
        load_baseline(tmp_path / "missing.json")
