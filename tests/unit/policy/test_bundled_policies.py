"""The bundled policies: every value against the number its source cites, and every policy planned on
the captured hosts."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.memtune.fleet.plugins.module_utils._probe.workloads import WORKLOADS
from memtune.engine.kinds.sysctl import SYSCTLS
from memtune.engine.knobs import UNIT_BYTES
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
PROTECT = "memtune_protect_databases"  # the opt-in group policy (policies/memtune_protect_databases.yml)


def vendor(where: str, values: dict[str, Any] | None = None) -> Source:
    """A vendor's documented value(s), said at ``where``."""
    return ("vendor", values or {}, where)


def memtune(where: str, values: dict[str, Any] | None = None) -> Source:
    """memtune's own heuristic (the rule must give its rationale), grounded in ``where``."""
    return ("memtune", values or {}, where)


def tuned(profile: str, values: dict[str, Any] | None = None) -> Source:
    """A value of TuneD's ``profile`` (its tuned.conf)."""
    return vendor(f"{TUNED}/{profile}/tuned.conf", values)


SOURCES: dict[tuple[str, str], Source] = {
    ("baseline", "swappiness"): tuned("throughput-performance", {"vm.swappiness": 10}),
    ("baseline", "watermarks"): memtune("min-free-kbytes"),  # an expression: see below
    ("baseline", "kswapd-gap"): memtune("watermark-scale-factor", {"vm.watermark_scale_factor": 100}),
    ("baseline", "numa-balancing"): memtune("kernel.html#numa-balancing", {"kernel.numa_balancing": 1}),
    ("postgresql", "huge-pages-from-shared-buffers"): vendor("kernel-resources.html#LINUX-HUGE-PAGES"),
    ("postgresql", "huge-pages"): vendor("kernel-resources.html#LINUX-HUGE-PAGES"),
    ("postgresql", "swappiness"): tuned("postgresql", {"vm.swappiness": 3}),
    ("postgresql", "no-thp"): tuned("postgresql", {"thp.enabled": "never"}),
    ("postgresql", "writeback"): tuned(
        "postgresql", {"vm.dirty_background_bytes": 67108864, "vm.dirty_bytes": 536870912}
    ),
    ("postgresql", "overcommit"): vendor(
        "kernel-resources.html#LINUX-MEMORY-OVERCOMMIT", {"vm.overcommit_memory": 2}
    ),
    ("postgresql", "overcommit-ratio"): vendor("knowledge.enterprisedb.com", {"vm.overcommit_ratio": 80}),
    ("mysql", "swappiness"): vendor("mariadb.com/kb/en/configuring-swappiness", {"vm.swappiness": 1}),
    ("mysql", "large-pages"): vendor("dev.mysql.com/doc/refman/8.4/en/large-page-support.html"),
    ("redis", "overcommit"): vendor(
        "redis.io/docs/latest/operate/oss_and_stack", {"vm.overcommit_memory": 1}
    ),
    ("redis", "no-thp"): vendor("redis.io/docs/latest/operate/oss_and_stack", {"thp.enabled": "never"}),
    ("mongodb", "thp-off-before-8"): vendor(
        "disable-transparent-huge-pages", {"thp.enabled": "never", "thp.defrag": "never"}
    ),
    ("mongodb", "thp-off-version-unknown"): vendor(
        "disable-transparent-huge-pages", {"thp.enabled": "never", "thp.defrag": "never"}
    ),
    ("mongodb", "thp-on-from-8"): vendor(
        "tcmalloc-performance",
        {"thp.enabled": "always", "thp.defrag": "defer+madvise", "thp.khugepaged_max_ptes_none": 0},
    ),
    ("mongodb", "overcommit-from-8"): vendor("tcmalloc-performance", {"vm.overcommit_memory": 1}),
    ("mongodb", "zone-reclaim"): vendor("production-notes", {"vm.zone_reclaim_mode": 0}),
    ("mongodb", "swappiness"): vendor("production-notes", {"vm.swappiness": 1}),
    ("mongodb", "map-count"): memtune("production-notes", {"vm.max_map_count": 262144}),
    ("elasticsearch", "map-count"): vendor("self-managed/vm-max-map-count", {"vm.max_map_count": 1048576}),
    ("elasticsearch", "swappiness"): vendor("setup-configuration-memory", {"vm.swappiness": 1}),
    ("kafka", "swappiness"): vendor("charmed-kafka-reference-performace-tuning", {"vm.swappiness": 1}),
    ("kafka", "writeback"): vendor(
        "charmed-kafka-reference-performace-tuning", {"vm.dirty_background_ratio": 5, "vm.dirty_ratio": 80}
    ),
    ("kafka", "map-count"): memtune(
        "charmed-kafka-reference-performace-tuning", {"vm.max_map_count": 262144}
    ),
    ("kvm_host", "swappiness"): tuned("virtual-host", {"vm.swappiness": 10}),
    ("kvm_host", "writeback"): tuned("virtual-host", {"vm.dirty_background_ratio": 5, "vm.dirty_ratio": 40}),
    ("kvm_host", "guest-hugepages"): vendor("hugetlbpage.html"),
    ("kvm_host", "guest-hugepages-1g"): vendor("hugetlbpage.html"),
    ("kubernetes", "kubelet-tunables"): vendor(
        "pkg/kubelet/cm/container_manager_linux.go", {"vm.overcommit_memory": 1, "vm.panic_on_oom": 0}
    ),
    ("kubernetes", "swap-before-1.34"): vendor("swap-memory-management"),
    ("kubernetes", "swap-from-1.34"): vendor("swap-memory-management"),
    ("kubernetes", "swap-version-unknown"): vendor("swap-memory-management"),
    ("kubernetes", "map-count"): vendor("cloud-on-k8s/virtual-memory", {"vm.max_map_count": 1048576}),
    ("kubernetes", "hugepages-per-node"): vendor("scheduling-hugepages"),
    ("oracle", "sga-hugepages"): vendor("restrictions-for-hugepages"),
    ("oracle", "no-thp"): vendor("21/cwlin/disabling-transparent-hugepages.html", {"thp.enabled": "never"}),
    ("oracle", "thp-madvise-uek7"): vendor(
        "23/cwlin/disabling-transparent-hugepages.html", {"thp.enabled": "madvise"}
    ),
    ("oracle", "numa-balancing"): tuned("oracle", {"kernel.numa_balancing": 0}),
    ("oracle", "swappiness"): tuned("oracle", {"vm.swappiness": 10}),
    ("oracle", "writeback"): tuned("oracle", {"vm.dirty_background_ratio": 3, "vm.dirty_ratio": 40}),
    ("sap_hana", "thp-madvise"): tuned("sap-hana", {"thp.enabled": "madvise"}),
    ("sap_hana", "writeback"): tuned("sap-hana", {"vm.dirty_background_ratio": 10, "vm.dirty_ratio": 40}),
    ("sap_hana", "numa-balancing"): tuned("sap-hana", {"kernel.numa_balancing": 0}),
    ("sap_hana", "swappiness"): tuned("sap-hana", {"vm.swappiness": 10}),
    ("hpc_compute", "zone-reclaim"): tuned("hpc-compute", {"vm.zone_reclaim_mode": 1}),
    ("hpc_compute", "numa-balancing"): tuned("hpc-compute", {"kernel.numa_balancing": 0}),
    ("hpc_compute", "thp-always"): tuned("hpc-compute", {"thp.enabled": "always"}),
    ("hpc_compute", "min-free"): tuned("hpc-compute", {"vm.min_free_kbytes": 135168}),
    ("hpc_compute", "writeback"): tuned(
        "latency-performance", {"vm.dirty_background_ratio": 3, "vm.dirty_ratio": 10}
    ),
    ("hpc_compute", "swappiness"): tuned("latency-performance", {"vm.swappiness": 10}),
    # The opt-in group policy: cgroup limits only (no sysctl or THP value), all memtune's own sizing.
    (PROTECT, "small-host"): memtune("cgroup-v2.html#memory-interface-files"),
    (PROTECT, "system-slice"): memtune("Effective low boundary"),
    (PROTECT, "postgresql-low"): memtune("systemd.resource-control.html#MemoryMin=bytes"),
    (PROTECT, "postgresql-slice-low"): memtune("Effective low boundary"),
    (PROTECT, "postgresql-min-shared-buffers"): memtune("runtime-config-resource.html#GUC-SHARED-BUFFERS"),
    (PROTECT, "postgresql-slice-min"): memtune("Effective min boundary"),
    (PROTECT, "mysql-low"): memtune("systemd.resource-control.html#MemoryMin=bytes"),
    (PROTECT, "redis-low"): memtune("systemd.resource-control.html#MemoryMin=bytes"),
    (PROTECT, "mongodb-low"): memtune("systemd.resource-control.html#MemoryMin=bytes"),
    (PROTECT, "user-slice-high"): memtune("systemd.resource-control.html#MemoryHigh=bytes"),
}


def _policy(bundled: PolicySet, name: str) -> Any:
    if name == "baseline":
        return bundled.baseline
    return bundled.groups[name] if name in bundled.groups else bundled.workloads[name]


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
    for policy in [bundled.baseline, *bundled.workloads.values(), *bundled.groups.values()]:
        assert policy is not None
        for rule in policy.rules:
            assert rule.source, f"{policy.file}: rule {rule.name} has no source"
            assert (policy.name, rule.name) in SOURCES, f"{policy.file}: rule {rule.name} is not in SOURCES"


def test_workload_policies_match_the_probes_workload_names(bundled: PolicySet) -> None:
    assert set(bundled.workloads) == set(WORKLOADS)  # hpc_compute too, from slurmd and pbs_mom (issue 18)


def test_the_only_bundled_group_policy_is_the_opt_in_protection(bundled: PolicySet) -> None:
    assert set(bundled.groups) == {PROTECT}
    assert bundled.groups[PROTECT].layer == "group"


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


def test_the_protection_declares_postgresqls_inputs_with_the_same_types(bundled: PolicySet) -> None:
    # One inventory value feeds both policies (the hugepage pool and MemoryMin): the types must agree.
    protect, postgresql = bundled.groups[PROTECT].inputs, bundled.workloads["postgresql"].inputs
    assert set(protect) <= set(postgresql)
    assert {name: spec.type for name, spec in protect.items()} == {
        name: postgresql[name].type for name in protect
    }
