"""Plan, apply and audit agree on every host kind (issue 13, bugs 4 and 5): the engine plans a copy of a
captured host's tree, the real memory_apply module applies the plan below it (its ``root`` hook), the
probe reads the tree again and the audit finds nothing left to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import collect
from memtune import parse_facts, plan
from memtune.audit.drift import drift
from memtune.policy.load import load_policy_file
from memtune.policy.model import PolicySet
from tests.support.modules import run_on_tree

REPO = Path(__file__).resolve().parents[4]
HOSTS = REPO / "tests" / "fixtures" / "hosts"


def copy_host(name: str, root: Path) -> Path:
    shutil.copytree(HOSTS / name, root, symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True, exist_ok=True)  # where the boot unit goes
    return root


def policies(tmp_path: Path, rules: list[dict[str, Any]]) -> PolicySet:
    path = tmp_path / "policy.yml"
    path.write_text(json.dumps({"layer": "baseline", "name": "kinds", "rules": rules}))
    return PolicySet.of([load_policy_file(path)])


def memory_apply(root: Path, desired: dict[str, Any]) -> dict[str, Any]:
    result, _ = run_on_tree("memory_apply", root, {"desired": desired, "_ansible_diff": True})
    assert not result.get("failed"), result
    return result


def audit(root: Path, policy: PolicySet) -> Any:
    facts = parse_facts(collect(Tree(str(root))), root.name)
    return plan(facts, policy, host=root.name), facts


def test_a_host_without_numa_nodes_gets_its_host_wide_pool_and_audits_clean(tmp_path: Path) -> None:
    """Bug 4: memory_apply fell back to the host-wide pool, the audit called the pool unsupported."""
    root = copy_host("small", tmp_path / "flat")  # the captured small host, its node directories removed
    shutil.rmtree(root / "sys/devices/system/node")
    policy = policies(
        tmp_path, [{"name": "pool", "source": "test", "hugepages": [{"size": "2MiB", "count": 16}]}]
    )
    desired, facts = audit(root, policy)
    assert facts.numa.available is False and desired.hugepages[0].per_node == {"0": 16}
    before = drift(desired, facts, "flat")
    assert before.applicable(), "the pool is to be applied, not skipped as unsupported"

    result = memory_apply(root, desired.model_dump(mode="json"))
    assert result["changed"] is True
    assert (root / "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages").read_text() == "16\n"
    desired, facts = audit(root, policy)
    after = drift(desired, facts, "flat")
    assert not after.drifted, [(c.name, f.message) for c, f in after.findings()]


def test_a_cgroup_v1_host_plans_applies_and_audits_only_what_v1_holds(tmp_path: Path) -> None:
    """Bug 5: a MemoryHigh planned for a v1 host was reported as drift on every audit."""
    root = copy_host("firecracker", tmp_path / "v1")
    batch = root / "sys/fs/cgroup/memory/batch"
    batch.mkdir()
    (batch / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # unlimited, as v1 shows it
    (batch / "memory.usage_in_bytes").write_text("1048576\n")
    limits = {"path": "/sys/fs/cgroup/memory/batch", "MemoryHigh": "256MiB", "MemoryMax": "512MiB"}
    policy = policies(tmp_path, [{"name": "batch", "source": "test", "cgroups": [limits]}])
    desired, facts = audit(root, policy)
    assert facts.platform.cgroup.memory_controller and facts.platform.cgroup.version == "hybrid"
    [group] = desired.cgroups
    assert group.limits == {"MemoryMax": 512 << 20}
    assert [s.knob for s in desired.skipped] == ["cgroup./sys/fs/cgroup/memory/batch.MemoryHigh"]

    memory_apply(root, desired.model_dump(mode="json"))
    assert (batch / "memory.limit_in_bytes").read_text() == f"{512 << 20}\n"
    desired, facts = audit(root, policy)
    result = drift(desired, facts, "v1")
    assert [(c.knob, f.kind.value) for c, f in result.findings()] == [
        ("cgroup./sys/fs/cgroup/memory/batch.MemoryHigh", "unsupported")
    ]
    assert result.applicable() == [], "nothing for tune to mend: the audit and apply agree"
