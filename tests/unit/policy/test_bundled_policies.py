"""The bundled policies: every value against the number its source cites, and every policy planned on
the captured hosts."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._probe.workloads import WORKLOADS
from memtune.engine.knobs import SYSCTLS, UNIT_BYTES
from memtune.engine.plan import plan
from memtune.engine.sizes import parse_size
from memtune.facts.model import HostFacts
from memtune.facts.synthetic import resize
from memtune.policy.model import PolicySet

# What each source says, read 2026-12-01 and kept here, apart from the policies: (policy, rule) ->
# (vendor | memtune, {knob: the value the source gives}, where exactly it says so). A policy value that
# drifts from its source, a rule missing here, or a memtune heuristic passed off as a vendor's fails.
# TuneD's vm plugin writes a percentage given as dirty_bytes / dirty_background_bytes to the *_ratio
# sysctls (tuned/plugins/plugin_vm.py); "includes" follows the profile's include= line.
TUNED = "https://github.com/redhat-performance/tuned/blob/master/profiles"
Source = tuple[str, dict[str, Any], str]
SOURCES: dict[tuple[str, str], Source] = {
    ("baseline", "swappiness"): (
        "vendor",
        {"vm.swappiness": 10},
        f"{TUNED}/throughput-performance/tuned.conf",
    ),
    ("baseline", "watermarks"): ("memtune", {}, "min-free-kbytes"),  # an expression: see below
    ("baseline", "kswapd-gap"): ("memtune", {"vm.watermark_scale_factor": 100}, "watermark-scale-factor"),
    ("baseline", "numa-balancing"): ("memtune", {"kernel.numa_balancing": 1}, "kernel.html#numa-balancing"),
    ("postgresql", "huge-pages-from-shared-buffers"): (
        "vendor",
        {},
        "kernel-resources.html#LINUX-HUGE-PAGES",
    ),
    ("postgresql", "huge-pages"): ("vendor", {}, "kernel-resources.html#LINUX-HUGE-PAGES"),
    ("postgresql", "swappiness"): ("vendor", {"vm.swappiness": 3}, f"{TUNED}/postgresql/tuned.conf"),
    ("postgresql", "no-thp"): ("vendor", {"thp.enabled": "never"}, f"{TUNED}/postgresql/tuned.conf"),
    ("postgresql", "writeback"): (
        "vendor",
        {"vm.dirty_background_bytes": 67108864, "vm.dirty_bytes": 536870912},
        f"{TUNED}/postgresql/tuned.conf",
    ),
    ("postgresql", "overcommit"): (
        "vendor",
        {"vm.overcommit_memory": 2},
        "kernel-resources.html#LINUX-MEMORY-OVERCOMMIT",
    ),
    ("postgresql", "overcommit-ratio"): ("vendor", {"vm.overcommit_ratio": 80}, "knowledge.enterprisedb.com"),
    ("mysql", "swappiness"): ("vendor", {"vm.swappiness": 1}, "mariadb.com/kb/en/configuring-swappiness"),
    ("mysql", "large-pages"): ("vendor", {}, "dev.mysql.com/doc/refman/8.4/en/large-page-support.html"),
    ("redis", "overcommit"): (
        "vendor",
        {"vm.overcommit_memory": 1},
        "redis.io/docs/latest/operate/oss_and_stack",
    ),
    ("redis", "no-thp"): ("vendor", {"thp.enabled": "never"}, "redis.io/docs/latest/operate/oss_and_stack"),
    ("mongodb", "thp-off-before-8"): (
        "vendor",
        {"thp.enabled": "never", "thp.defrag": "never"},
        "disable-transparent-huge-pages",
    ),
    ("mongodb", "thp-off-version-unknown"): (
        "vendor",
        {"thp.enabled": "never", "thp.defrag": "never"},
        "disable-transparent-huge-pages",
    ),
    ("mongodb", "thp-on-from-8"): (
        "vendor",
        {"thp.enabled": "always", "thp.defrag": "defer+madvise", "thp.khugepaged_max_ptes_none": 0},
        "tcmalloc-performance",
    ),
    ("mongodb", "overcommit-from-8"): ("vendor", {"vm.overcommit_memory": 1}, "tcmalloc-performance"),
    ("mongodb", "zone-reclaim"): ("vendor", {"vm.zone_reclaim_mode": 0}, "production-notes"),
    ("mongodb", "swappiness"): ("vendor", {"vm.swappiness": 1}, "production-notes"),
    ("mongodb", "map-count"): ("memtune", {"vm.max_map_count": 262144}, "production-notes"),
    ("elasticsearch", "map-count"): (
        "vendor",
        {"vm.max_map_count": 1048576},
        "self-managed/vm-max-map-count",
    ),
    ("elasticsearch", "swappiness"): ("vendor", {"vm.swappiness": 1}, "setup-configuration-memory"),
    ("kafka", "swappiness"): ("vendor", {"vm.swappiness": 1}, "charmed-kafka-reference-performace-tuning"),
    ("kafka", "writeback"): (
        "vendor",
        {"vm.dirty_background_ratio": 5, "vm.dirty_ratio": 80},
        "charmed-kafka-reference-performace-tuning",
    ),
    ("kafka", "map-count"): (
        "memtune",
        {"vm.max_map_count": 262144},
        "charmed-kafka-reference-performace-tuning",
    ),
    ("kvm_host", "swappiness"): ("vendor", {"vm.swappiness": 10}, f"{TUNED}/virtual-host/tuned.conf"),
    ("kvm_host", "writeback"): (
        "vendor",
        {"vm.dirty_background_ratio": 5, "vm.dirty_ratio": 40},
        f"{TUNED}/virtual-host/tuned.conf",
    ),
    ("kvm_host", "guest-hugepages"): ("vendor", {}, "hugetlbpage.html"),
    ("kvm_host", "guest-hugepages-1g"): ("vendor", {}, "hugetlbpage.html"),
    ("kubernetes", "kubelet-tunables"): (
        "vendor",
        {"vm.overcommit_memory": 1, "vm.panic_on_oom": 0},
        "pkg/kubelet/cm/container_manager_linux.go",
    ),
    ("kubernetes", "swap-before-1.34"): ("vendor", {}, "swap-memory-management"),
    ("kubernetes", "swap-from-1.34"): ("vendor", {}, "swap-memory-management"),
    ("kubernetes", "swap-version-unknown"): ("vendor", {}, "swap-memory-management"),
    ("kubernetes", "map-count"): ("vendor", {"vm.max_map_count": 1048576}, "cloud-on-k8s/virtual-memory"),
    ("kubernetes", "hugepages-per-node"): ("vendor", {}, "scheduling-hugepages"),
    ("oracle", "sga-hugepages"): ("vendor", {}, "restrictions-for-hugepages"),
    ("oracle", "no-thp"): (
        "vendor",
        {"thp.enabled": "never"},
        "21/cwlin/disabling-transparent-hugepages.html",
    ),
    ("oracle", "thp-madvise-uek7"): (
        "vendor",
        {"thp.enabled": "madvise"},
        "23/cwlin/disabling-transparent-hugepages.html",
    ),
    ("oracle", "numa-balancing"): ("vendor", {"kernel.numa_balancing": 0}, f"{TUNED}/oracle/tuned.conf"),
    ("oracle", "swappiness"): ("vendor", {"vm.swappiness": 10}, f"{TUNED}/oracle/tuned.conf"),
    ("oracle", "writeback"): (
        "vendor",
        {"vm.dirty_background_ratio": 3, "vm.dirty_ratio": 40},
        f"{TUNED}/oracle/tuned.conf",
    ),
    ("sap_hana", "thp-madvise"): ("vendor", {"thp.enabled": "madvise"}, f"{TUNED}/sap-hana/tuned.conf"),
    ("sap_hana", "writeback"): (
        "vendor",
        {"vm.dirty_background_ratio": 10, "vm.dirty_ratio": 40},
        f"{TUNED}/sap-hana/tuned.conf",
    ),
    ("sap_hana", "numa-balancing"): ("vendor", {"kernel.numa_balancing": 0}, f"{TUNED}/sap-hana/tuned.conf"),
    ("sap_hana", "swappiness"): ("vendor", {"vm.swappiness": 10}, f"{TUNED}/sap-hana/tuned.conf"),
    ("hpc_compute", "zone-reclaim"): (
        "vendor",
        {"vm.zone_reclaim_mode": 1},
        f"{TUNED}/hpc-compute/tuned.conf",
    ),
    ("hpc_compute", "numa-balancing"): (
        "vendor",
        {"kernel.numa_balancing": 0},
        f"{TUNED}/hpc-compute/tuned.conf",
    ),
    ("hpc_compute", "thp-always"): ("vendor", {"thp.enabled": "always"}, f"{TUNED}/hpc-compute/tuned.conf"),
    ("hpc_compute", "min-free"): (
        "vendor",
        {"vm.min_free_kbytes": 135168},
        f"{TUNED}/hpc-compute/tuned.conf",
    ),
    ("hpc_compute", "writeback"): (
        "vendor",
        {"vm.dirty_background_ratio": 3, "vm.dirty_ratio": 10},
        f"{TUNED}/latency-performance/tuned.conf",
    ),
    ("hpc_compute", "swappiness"): (
        "vendor",
        {"vm.swappiness": 10},
        f"{TUNED}/latency-performance/tuned.conf",
    ),
}


def _policy(bundled: PolicySet, name: str) -> Any:
    return bundled.baseline if name == "baseline" else bundled.workloads[name]


def _written(rule: Any) -> dict[str, Any]:
    """The literal values a rule writes, sizes in the knob's unit as the planner reads them."""
    found: dict[str, Any] = {}
    for key, value in rule.sysctl.items():
        if isinstance(value, str) and "{{" in value:
            continue
        unit = SYSCTLS[key].unit
        found[key] = parse_size(value) // UNIT_BYTES[unit] if isinstance(value, str) else value
    for key, value in (rule.thp.settings() if rule.thp else {}).items():
        found[f"thp.{key}"] = value
    return found


@pytest.mark.parametrize("key", sorted(SOURCES), ids=[f"{p}-{r}" for p, r in sorted(SOURCES)])
def test_value_matches_its_source(bundled: PolicySet, key: tuple[str, str]) -> None:
    kind, values, where = SOURCES[key]
    rule = {r.name: r for r in _policy(bundled, key[0]).rules}[key[1]]
    assert _written(rule) == values
    assert rule.source_kind == kind
    assert rule.source is not None and where in rule.source, f"{key}: the source no longer names {where}"
    assert kind == "vendor" or rule.rationale


def test_every_bundled_rule_is_in_the_table(bundled: PolicySet) -> None:
    for policy in [bundled.baseline, *bundled.workloads.values()]:
        assert policy is not None
        for rule in policy.rules:
            assert rule.source, f"{policy.file}: rule {rule.name} has no source"
            assert (policy.name, rule.name) in SOURCES, f"{policy.file}: rule {rule.name} is not in SOURCES"


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


# TuneD 2.25+ sets madvise on every kernel (it used to leave older kernels to SAP Note 2131662's never).
@pytest.mark.parametrize(
    ("kernel", "enabled"), [(None, "madvise"), ((4, 18, 0), "madvise"), ((5, 14, 0), "madvise")]
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


# Oracle's install guides gate THP on the kernel (UEK7 = 5.15), not on the database release.
@pytest.mark.parametrize(
    ("kernel", "version", "enabled"),
    [(None, None, "madvise"), ((5, 4, 17), "23.4", "never"), ((5, 15, 0), "19", "madvise")],
)
def test_oracle_thp_by_kernel(
    bundled: PolicySet,
    hosts: dict[str, HostFacts],
    kernel: tuple[int, int, int] | None,
    version: str | None,
    enabled: str,
) -> None:
    facts = hosts["numa3"]  # kernel 6.12
    if kernel is not None:
        facts = resize(facts, facts.memory.mem_total_kb, 1, kernel=kernel)
    inputs = {"oracle_version": version} if version else {}
    assert plan(facts, bundled, workloads=["oracle"], inputs=inputs).thp["enabled"].value == enabled


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
        "mysql",
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
