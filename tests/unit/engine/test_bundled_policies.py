"""The bundled policies: every value against the number its source cites, and every policy planned on
the captured hosts."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._workloads import WORKLOADS
from memtune.facts import HostFacts
from memtune.plan import plan
from memtune.policy import PolicySet
from memtune.synthetic import resize

# policy, rule, knob, value the cited source gives, words naming the source in the rule's `source:`
CITED: list[tuple[str, str, str, Any, str]] = [
    ("baseline", "swappiness", "vm.swappiness", 10, "TuneD virtual-host"),
    ("baseline", "kswapd-gap", "vm.watermark_scale_factor", 100, "watermark-scale-factor"),
    ("baseline", "numa-balancing", "kernel.numa_balancing", 1, "kernel.html#numa-balancing"),
    ("postgresql", "swappiness", "vm.swappiness", 3, "TuneD postgresql"),
    ("postgresql", "no-thp", "thp.enabled", "never", "TuneD postgresql"),
    ("postgresql", "writeback", "vm.dirty_background_bytes", "64MiB", "67108864"),
    ("postgresql", "writeback", "vm.dirty_bytes", "512MiB", "536870912"),
    ("postgresql", "overcommit", "vm.overcommit_memory", 2, "postgresql.org/docs"),
    ("postgresql", "overcommit-ratio", "vm.overcommit_ratio", 80, "enterprisedb.com"),
    ("redis", "overcommit", "vm.overcommit_memory", 1, "redis.io"),
    ("redis", "no-thp", "thp.enabled", "never", "redis.io"),
    ("mongodb", "thp-off-before-8", "thp.enabled", "never", "7.0 and earlier"),
    ("mongodb", "thp-off-before-8", "thp.defrag", "never", "7.0 and earlier"),
    ("mongodb", "thp-off-version-unknown", "thp.enabled", "never", "7.0 and earlier"),
    ("mongodb", "thp-off-version-unknown", "thp.defrag", "never", "7.0 and earlier"),
    ("mongodb", "thp-on-from-8", "thp.enabled", "always", "8.0+"),
    ("mongodb", "thp-on-from-8", "thp.defrag", "defer+madvise", "defer+madvise"),
    ("mongodb", "zone-reclaim", "vm.zone_reclaim_mode", 0, "production-notes"),
    ("mongodb", "swappiness", "vm.swappiness", 1, "production-notes"),
    ("mongodb", "map-count", "vm.max_map_count", 262144, "max_map_count"),
    ("elasticsearch", "map-count", "vm.max_map_count", 1048576, "vm-max-map-count"),
    ("elasticsearch", "swappiness", "vm.swappiness", 1, "elastic.co"),
    ("kafka", "swappiness", "vm.swappiness", 1, "vm.swappiness=1"),
    ("kafka", "writeback", "vm.dirty_background_ratio", 5, "vm.dirty_background_ratio=5"),
    ("kafka", "writeback", "vm.dirty_ratio", 80, "vm.dirty_ratio=80"),
    ("kafka", "map-count", "vm.max_map_count", 262144, "memtune uses 262144"),
    ("kvm_host", "swappiness", "vm.swappiness", 10, "TuneD virtual-host"),
    ("kvm_host", "writeback", "vm.dirty_background_ratio", 5, "TuneD virtual-host"),
    ("kvm_host", "writeback", "vm.dirty_ratio", 10, "TuneD virtual-host"),
    ("kubernetes", "map-count", "vm.max_map_count", 262144, "262144"),
    ("oracle", "no-thp", "thp.enabled", "never", "19c"),
    ("oracle", "numa-balancing", "kernel.numa_balancing", 0, "kernel.html#numa-balancing"),
    (
        "oracle",
        "swappiness",
        "vm.swappiness",
        1,
        "TuneD oracle profile (profiles/oracle/tuned.conf): vm.swappiness = 1",
    ),
    ("oracle", "thp-madvise-23", "thp.enabled", "madvise", "23ai on UEK7 and later"),
    ("sap_hana", "thp-madvise", "thp.enabled", "madvise", "TuneD sap-hana"),
    ("sap_hana", "thp-never-older", "thp.enabled", "never", "SAP Note"),
    ("sap_hana", "numa-balancing", "kernel.numa_balancing", 0, "TuneD sap-hana"),
    ("sap_hana", "swappiness", "vm.swappiness", 10, "TuneD sap-hana"),
    ("hpc_compute", "zone-reclaim", "vm.zone_reclaim_mode", 1, "TuneD hpc-compute"),
    ("hpc_compute", "numa-balancing", "kernel.numa_balancing", 0, "TuneD hpc-compute"),
    ("hpc_compute", "thp-always", "thp.enabled", "always", "TuneD hpc-compute"),
]


def _policy(bundled: PolicySet, name: str) -> Any:
    return bundled.baseline if name == "baseline" else bundled.workloads[name]


@pytest.mark.parametrize("case", CITED, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CITED])
def test_value_matches_its_source(bundled: PolicySet, case: tuple[str, str, str, Any, str]) -> None:
    policy, rule, knob, value, cited = case
    found = {r.name: r for r in _policy(bundled, policy).rules}[rule]
    written = getattr(found.thp, knob.removeprefix("thp.")) if knob.startswith("thp.") else found.sysctl[knob]
    assert written == value
    assert found.source is not None and cited in found.source


def test_every_rule_cites_a_source_and_every_knob_is_in_the_table(bundled: PolicySet) -> None:
    tabled = {(c[0], c[1], c[2]) for c in CITED}
    for policy in [bundled.baseline, *bundled.workloads.values()]:
        assert policy is not None
        for rule in policy.rules:
            assert rule.source, f"{policy.file}: rule {rule.name} has no source"
            knobs = [
                *rule.sysctl,
                *(f"thp.{k}" for k in ("enabled", "defrag") if rule.thp and getattr(rule.thp, k)),
            ]
            untabled = [k for k in knobs if (policy.name, rule.name, k) not in tabled]
            # expressions are checked by what they compute (test_baseline_min_free_kbytes)
            assert all(isinstance(rule.sysctl.get(k), str) and "{{" in rule.sysctl[k] for k in untabled), (
                untabled
            )


def test_workload_policies_match_the_probes_workload_names(bundled: PolicySet) -> None:
    assert set(bundled.workloads) - set(WORKLOADS) == {"hpc_compute"}  # forced only, never detected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("firecracker", 123420),  # 0.5 % of 24684084 kB
        ("small", None),  # below 8 GiB: the kernel's default stays
        ("numa2", None),
    ],
)
def test_baseline_min_free_kbytes(
    bundled: PolicySet, hosts: dict[str, HostFacts], host: str, expected: int | None
) -> None:
    planned = plan(hosts[host], bundled).sysctl.get("vm.min_free_kbytes")
    assert (planned.value if planned else None) == expected


def test_baseline_on_the_captured_hosts(bundled: PolicySet, hosts: dict[str, HostFacts]) -> None:
    planned = {
        name: {k: v.value for k, v in plan(facts, bundled).sysctl.items()} for name, facts in hosts.items()
    }
    assert planned["numa2"] == {"vm.swappiness": 10, "kernel.numa_balancing": 1}
    assert planned["numa3"] == {"vm.swappiness": 10, "kernel.numa_balancing": 1}
    assert planned["small"] == {"vm.swappiness": 10}


@pytest.mark.parametrize(("version", "enabled"), [("7.0", "never"), ("8.0.4", "always"), (None, "never")])
def test_mongodb_thp_by_version(
    bundled: PolicySet, hosts: dict[str, HostFacts], version: str | None, enabled: str
) -> None:
    inputs = {"mongodb_version": version} if version else {}
    desired = plan(hosts["small"], bundled, workloads=["mongodb"], inputs=inputs)
    assert desired.thp["enabled"].value == enabled
    assert any("mongod version unknown" in w for w in desired.warnings) == (version is None)


@pytest.mark.parametrize(
    ("kernel", "enabled"), [(None, "madvise"), ((4, 18, 0), "never"), ((5, 14, 0), "madvise")]
)
def test_sap_hana_thp_by_kernel(
    bundled: PolicySet, hosts: dict[str, HostFacts], kernel: tuple[int, int, int] | None, enabled: str
) -> None:
    facts = hosts["numa3"]  # kernel 6.12
    if kernel is not None:
        facts = resize(facts, facts.memory.mem_total_kb, 1, kernel=kernel)
    assert plan(facts, bundled, workloads=["sap_hana"]).thp["enabled"].value == enabled


def test_postgresql_hugepages(bundled: PolicySet, hosts: dict[str, HostFacts]) -> None:
    facts = hosts["numa2"]
    by_pages = plan(facts, bundled, workloads=["postgresql"], inputs={"postgresql_huge_pages": 1000})
    assert sum(by_pages.hugepages[0].per_node.values()) == 1000
    by_buffers = plan(facts, bundled, workloads=["postgresql"], inputs={"postgresql_shared_buffers": "1GiB"})
    assert sum(by_buffers.hugepages[0].per_node.values()) == 538  # ceil(1.05 GiB / 2 MiB)
    both = plan(
        facts,
        bundled,
        workloads=["postgresql"],
        inputs={"postgresql_huge_pages": 600, "postgresql_shared_buffers": "1GiB"},
    )
    pool = both.hugepages[0]
    assert sum(pool.per_node.values()) == 600
    assert pool.provenance.overrides[0].rule == "huge-pages-from-shared-buffers"


@pytest.mark.parametrize(("version", "enabled"), [(None, "never"), ("19", "never"), ("23.4", "madvise")])
def test_oracle_thp_by_release(
    bundled: PolicySet, hosts: dict[str, HostFacts], version: str | None, enabled: str
) -> None:
    inputs = {"oracle_version": version} if version else {}
    assert plan(hosts["numa3"], bundled, workloads=["oracle"], inputs=inputs).thp["enabled"].value == enabled


def test_oracle_sga_and_kubernetes_per_node(bundled: PolicySet, hosts: dict[str, HostFacts]) -> None:
    facts = hosts["numa2"]
    oracle = plan(facts, bundled, workloads=["oracle"], inputs={"oracle_sga": "2GiB"})
    assert sum(oracle.hugepages[0].per_node.values()) == 1024
    k8s = plan(facts, bundled, workloads=["kubernetes"], inputs={"kubernetes_hugepages_per_node": "256MiB"})
    assert k8s.hugepages[0].per_node == {"0": 128, "1": 128}


@pytest.mark.parametrize(
    "workload",
    [
        "postgresql",
        "redis",
        "mongodb",
        "elasticsearch",
        "kafka",
        "kvm_host",
        "kubernetes",
        "oracle",
        "sap_hana",
        "hpc_compute",
    ],
)
def test_every_workload_plans_on_every_host(
    bundled: PolicySet, hosts: dict[str, HostFacts], workload: str
) -> None:
    for name, facts in hosts.items():
        desired = plan(facts, bundled, workloads=[workload])
        assert desired.sysctl or desired.thp, (name, workload)
        for planned in desired.sysctl.values():
            assert planned.provenance.source
