# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate the DesiredState that memory_apply takes (docs/desired-state.md). Pure: data in, data out.

The engine already validated the policy; this is the remote side's own guard, so that a bad or
hostile argument can name only allowlisted paths and well-formed values. Each kind checks its own section
(_kinds/<kind>.py validate); DesiredError is _kinds/check.py's.
"""

from __future__ import annotations

from ansible_collections.memtune.fleet.plugins.module_utils._contract import (
    DESIRED_SCHEMA_VERSION,
    SETTING_KINDS,
)
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import cgroup as _cgroup
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import cmdline as _cmdline
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import hugepages as _hugepages
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import settings as _settings
from ansible_collections.memtune.fleet.plugins.module_utils._kinds import sysctl as _sysctl
from ansible_collections.memtune.fleet.plugins.module_utils._kinds.check import require


def validate(desired):
    """DesiredState -> {"sysctl", "hugepages", "kernel_cmdline", "cgroups"} and one section per setting-files
    kind (thp, zswap); provenance dropped."""
    require(isinstance(desired, dict), "desired: expected a mapping")
    version = desired.get("schema_version")
    require(
        version == DESIRED_SCHEMA_VERSION,
        "desired.schema_version is %r; this memory_apply takes %d (use the engine "
        "and collection of the same memtune release)" % (version, DESIRED_SCHEMA_VERSION),
    )
    checked = {"sysctl": _sysctl.validate(desired.get("sysctl") or {})}
    for kind in SETTING_KINDS:
        checked[kind.kind] = _settings.validate(kind, desired.get(kind.kind) or {})
    checked["hugepages"] = _hugepages.validate(desired.get("hugepages") or [])
    checked["kernel_cmdline"] = _cmdline.validate(desired.get("kernel_cmdline") or [])
    checked["cgroups"] = _cgroup.validate(desired.get("cgroups") or [])
    return checked
