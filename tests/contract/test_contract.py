"""Values the controller and the host must agree on: the host's copy is plugins/module_utils/_contract.py
(every other module_utils module imports it from there); each test checks it equals the controller's."""

from __future__ import annotations

from ansible_collections.memtune.fleet.plugins.module_utils import _contract
from ansible_collections.memtune.fleet.plugins.module_utils._boot import sysctl_files as _sysctl_files
from ansible_collections.memtune.fleet.plugins.module_utils._host import cgroup as _cgroup
from ansible_collections.memtune.fleet.plugins.module_utils._host import ledger as _ledger
from ansible_collections.memtune.fleet.plugins.module_utils._probe import collect as _collect
from memtune.audit import drift
from memtune.engine.kinds import KINDS
from memtune.engine.kinds import cgroup as cgroup_kind
from memtune.engine.kinds import sysctl as sysctl_kind
from memtune.engine.kinds import thp as thp_kind
from memtune.engine.kinds import zswap as zswap_kind
from memtune.engine.kinds._files import SettingFiles

# The host's file formats -> the controller's setting forms (engine/kinds/_files.py).
FORMS = {
    _contract.CHOICE: "choice",
    _contract.INTEGER: "int",
    _contract.PERCENT: "int",
    _contract.YES_NO: "bool",
}


def test_memtunes_sysctl_file_is_one_path() -> None:
    assert _sysctl_files.MEMTUNE_FILE == _contract.SYSCTL_FILE == drift.MEMTUNE_SYSCTL_FILE


def test_owned_paths() -> None:
    assert _ledger.LEDGER == _contract.LEDGER == _contract.STATE_DIR + "/ledger.json"


def test_the_limits_a_cgroup_v1_controller_holds() -> None:
    assert tuple(_cgroup.V1_FILES) == cgroup_kind.CGROUP_V1_LIMITS
    assert set(_cgroup.V2_FILES) == set(cgroup_kind.CGROUP_LIMITS)


def test_the_cgroup_limits_and_unit_names() -> None:
    assert _contract.CGROUP_LIMITS == cgroup_kind.CGROUP_LIMITS
    field = cgroup_kind.CgroupUnit.model_fields["unit"]
    pattern = next(m.pattern for m in field.metadata if hasattr(m, "pattern"))
    assert pattern == _contract.UNIT_NAME_PATTERN


def test_twin_knobs_are_the_catalogs_exclusive_pairs() -> None:
    catalog = {key: knob.exclusive_with for key, knob in sysctl_kind.SYSCTLS.items() if knob.exclusive_with}
    assert catalog == _contract.TWINS


def test_thp_directory() -> None:
    assert (
        _sysctl_files.THP_DIR
        == drift.THP_DIR
        == thp_kind.THP_DIR
        == _contract.THP_DIR
        == _contract.THP.directory
    )


def test_the_facts_schema_version_is_one_number() -> None:
    """Version 2 added the host ledger to the facts (issue 13), 3 the zswap section (issue 12): probe and
    controller bump together."""
    from memtune.facts import model as facts

    assert _collect.SCHEMA_VERSION == _contract.FACTS_SCHEMA_VERSION == facts.SCHEMA_VERSION == 4
    assert facts.HostFacts.model_fields["schema_version"].annotation.__args__ == (facts.SCHEMA_VERSION,)  # type: ignore[union-attr]


def test_thp_files() -> None:
    assert {setting.name: setting.file for setting in _contract.THP.settings} == thp_kind.THP_FILES
    choices = {setting.name for setting in _contract.THP.settings if setting.format == _contract.CHOICE}
    assert choices == set(thp_kind.THP_CHOICES)
    assert set(thp_kind.THP_FILES) == set(thp_kind.THP_CHOICES) | set(thp_kind.THP_INTEGERS)


def test_the_setting_files_kinds_are_the_controllers() -> None:
    """Every setting-files kind of either side is one of the other's (THP and zswap today): the same
    directory, the same settings in the same files, each in the same format (a percentage is an int the
    controller caps at 100)."""
    controllers = {kind.name: kind for kind in KINDS if isinstance(kind, SettingFiles)}
    assert [host.kind for host in _contract.SETTING_KINDS] == list(controllers)
    assert controllers["thp"] is thp_kind.KIND and controllers["zswap"] is zswap_kind.KIND
    for host in _contract.SETTING_KINDS:
        controller = controllers[host.kind]
        assert (host.kind, host.directory) == (controller.name, controller.directory)
        assert {s.name: (s.file, FORMS[s.format]) for s in host.settings} == {
            key: (setting.file, setting.form) for key, setting in controller.settings.items()
        }
        for setting in host.settings:
            if setting.format == _contract.PERCENT:
                assert controller.settings[setting.name].high == 100


def test_the_sysctl_keys_memtune_takes() -> None:
    """The probe's and memory_apply's check of a sysctl key is the pattern of the controller's ``merge:`` keys
    (the catalog's names match it)."""
    assert sysctl_kind.KIND.merge_pattern == _contract.SYSCTL_KEY_PATTERN
    assert all(_contract.SYSCTL_KEY.match(key) for key in sysctl_kind.SYSCTLS)
