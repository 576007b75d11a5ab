# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The values the host and the controller must agree on, written once on the host side.

Every other module_utils module imports these from here; tests/contract/test_contract.py checks that each
equals the controller's copy (docs/architecture.md, "The contract", lists them). Pure data, plus the one
function both sides call (rollback_choice).
"""

from __future__ import annotations

import re
from collections import namedtuple

# ansible_facts.memtune's schema_version (4: workload instances, issue 18; 3: zswap, issue 12) and the
# DesiredState's.
FACTS_SCHEMA_VERSION = 4
DESIRED_SCHEMA_VERSION = 1

# The sysctl keys memtune reads and writes (the controller's catalog names only such keys).
SYSCTL_KEY_PATTERN = r"(vm|kernel)(\.[a-z0-9_]+)+"
SYSCTL_KEY = re.compile("^" + SYSCTL_KEY_PATTERN + "$")

# The files and directories memtune owns on a host.
SYSCTL_FILE = "/etc/sysctl.d/90-memtune.conf"
BOOT_CONF = "/etc/memtune/boot-tmpfiles.conf"
SYSTEMD_DIR = "/etc/systemd/system"
BOOT_UNIT = SYSTEMD_DIR + "/memtune-boot.service"
BOOT_UNIT_LINK = SYSTEMD_DIR + "/sysinit.target.wants/memtune-boot.service"
DROPIN_NAME = "50-memtune.conf"  # a unit's drop-in: SYSTEMD_DIR/<unit>.d/DROPIN_NAME
STATE_DIR = "/var/lib/memtune"
LEDGER = STATE_DIR + "/ledger.json"
SNAPSHOT = STATE_DIR + "/snapshot.json"  # the version-1 ledger, migrated on the first run that writes
LOCK_FILE = "/run/lock/memtune.lock"

# The sysctl.d directories systemd-sysctl reads, highest precedence first (sysctl.d(5)).
SYSCTL_DIRS = (
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
)

# cgroup limits a policy may set (systemd.resource-control(5) names), and the units they may name.
CGROUP_LIMITS = ("MemoryMin", "MemoryLow", "MemoryHigh", "MemoryMax", "MemorySwapMax")
UNIT_NAME_PATTERN = r"^[A-Za-z0-9:_.@\\-]+\.(service|slice|scope)$"

# Writing one knob of a pair zeroes the other, and the *_bytes knobs refuse 0: a rollback writes back the
# one of the pair that was set, never the zero (vm.rst). The catalog's ``exclusive_with``.
TWINS = {
    "vm.dirty_bytes": "vm.dirty_ratio",
    "vm.dirty_ratio": "vm.dirty_bytes",
    "vm.dirty_background_bytes": "vm.dirty_background_ratio",
    "vm.dirty_background_ratio": "vm.dirty_background_bytes",
    "vm.overcommit_kbytes": "vm.overcommit_ratio",
    "vm.overcommit_ratio": "vm.overcommit_kbytes",
}

# O(rollback) of memory_apply and of the tune action.
ROLLBACK_OFF = ("false", "no", "off", "0", "none", "")
ROLLBACK_CHOICES = {"original": ("true", "yes", "on", "1", "original"), "previous": ("previous",)}


class RollbackError(ValueError):
    """O(rollback) is none of the spellings; the message is the one both sides show."""


def rollback_choice(value):
    """O(rollback) -> None, "original" or "previous"; true is "original", as in earlier releases.
    memory_apply and the tune action both call this one function."""
    text = str(value).strip().lower()
    if text in ROLLBACK_OFF:
        return None
    for choice, spellings in ROLLBACK_CHOICES.items():
        if text in spellings:
            return choice
    raise RollbackError("rollback: %r is not one of original, previous (true means original)" % (value,))


# The setting-files family: a kind that is a directory of kernel files, one setting per file, each in
# one of these formats.
CHOICE = "choice"  # "always [madvise] never": the bracketed word is the value, every word a choice
INTEGER = "integer"  # one integer >= 0
PERCENT = "percent"  # one integer 0..100
YES_NO = "yes_no"  # Y or N (a module's bool parameter; it also accepts 1 and 0)
FORMATS = (CHOICE, INTEGER, PERCENT, YES_NO)

# ``name``: the key in facts, desired state, ledger and check names (<kind>.<name>); ``file``: below
# the directory.
Setting = namedtuple("Setting", "name file format")
# ``kind``: the facts/desired section; ``directory``; ``present_when``: the file whose absence means the
# kernel has no such kind ("" : the directory itself); ``settings``: in facts order.
SettingFiles = namedtuple("SettingFiles", "kind directory present_when settings doc")

THP = SettingFiles(
    kind="thp",
    directory="/sys/kernel/mm/transparent_hugepage",
    present_when="enabled",
    settings=(
        Setting("enabled", "enabled", CHOICE),
        Setting("defrag", "defrag", CHOICE),
        Setting("shmem_enabled", "shmem_enabled", CHOICE),
        Setting("khugepaged_defrag", "khugepaged/defrag", INTEGER),
        Setting("khugepaged_max_ptes_none", "khugepaged/max_ptes_none", INTEGER),
    ),
    doc="https://docs.kernel.org/admin-guide/mm/transhuge.html",
)
# compressor and zpool are left out: which ones a kernel takes depends on the crypto modules loaded.
ZSWAP = SettingFiles(
    kind="zswap",
    directory="/sys/module/zswap/parameters",
    present_when="",
    settings=(
        Setting("enabled", "enabled", YES_NO),
        Setting("max_pool_percent", "max_pool_percent", PERCENT),
        Setting("accept_threshold_percent", "accept_threshold_percent", PERCENT),  # since 5.6
        Setting("shrinker_enabled", "shrinker_enabled", YES_NO),  # since 6.8
    ),
    doc="https://docs.kernel.org/admin-guide/mm/zswap.html",
)
# Every setting-files kind, in the order memory_apply plans, reports and writes the boot file.
SETTING_KINDS = (THP, ZSWAP)

THP_DIR = THP.directory
