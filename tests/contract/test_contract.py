"""Values the controller and the host must agree on, written once per side: each pair is equal."""

from __future__ import annotations

from ansible_collections.memtune.fleet.plugins.module_utils._boot import sysctl_files as _sysctl_files
from ansible_collections.memtune.fleet.plugins.module_utils._host import cgroup as _cgroup
from ansible_collections.memtune.fleet.plugins.module_utils._host import persist as _persist
from ansible_collections.memtune.fleet.plugins.module_utils._probe import collect as _collect
from memtune.audit import drift
from memtune.engine.kinds import cgroup as cgroup_kind
from memtune.engine.kinds import thp as thp_kind


def test_memtunes_sysctl_file_is_one_path() -> None:
    assert _sysctl_files.MEMTUNE_FILE == _persist.SYSCTL_FILE == drift.MEMTUNE_SYSCTL_FILE


def test_the_limits_a_cgroup_v1_controller_holds() -> None:
    assert tuple(_cgroup.V1_FILES) == cgroup_kind.CGROUP_V1_LIMITS
    assert set(_cgroup.V2_FILES) == set(cgroup_kind.CGROUP_LIMITS)


def test_thp_directory() -> None:
    assert _sysctl_files.THP_DIR == drift.THP_DIR == thp_kind.THP_DIR == _collect.THP_DIR


def test_the_facts_schema_version_is_one_number() -> None:
    """Version 2 added the host ledger to the facts (issue 13): probe and controller bump together."""
    from ansible_collections.memtune.fleet.plugins.module_utils._probe import collect as _collect
    from memtune.facts import model as facts

    assert _collect.SCHEMA_VERSION == facts.SCHEMA_VERSION == 2
    assert facts.HostFacts.model_fields["schema_version"].annotation.__args__ == (facts.SCHEMA_VERSION,)  # type: ignore[union-attr]


def test_thp_files() -> None:
    assert _collect.THP_FILES == thp_kind.THP_FILES
    assert set(_collect.THP_CHOICE_KNOBS) == set(thp_kind.THP_CHOICES)
    assert set(thp_kind.THP_FILES) == set(thp_kind.THP_CHOICES) | set(thp_kind.THP_INTEGERS)
