"""Transparent hugepages (/sys/kernel/mm/transparent_hugepage): a kind of the setting-files family. Choices
and ranges: https://docs.kernel.org/admin-guide/mm/transhuge.html.

Besides memtune's boot unit, an active TuneD profile writes ``enabled``/``defrag`` at boot (after memtune,
so its value lasts), and ``transparent_hugepage=`` on the kernel command line sets ``enabled``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memtune.engine.kinds._files import Setting, SettingFiles
from memtune.engine.knobs import Version

if TYPE_CHECKING:
    from memtune.facts.model import HostFacts

THP_DIR = "/sys/kernel/mm/transparent_hugepage"
_EVERY: Version = (2, 6, 38)
# Choice -> first kernel offering it (defer: 4.6, defer+madvise: 4.11; shmem_enabled: 4.8).
THP_CHOICES: dict[str, dict[str, Version]] = {
    "enabled": {"always": _EVERY, "madvise": _EVERY, "never": _EVERY},
    "defrag": {
        "always": _EVERY,
        "defer": (4, 6, 0),
        "defer+madvise": (4, 11, 0),
        "madvise": _EVERY,
        "never": _EVERY,
    },
    "shmem_enabled": {
        choice: (4, 8, 0) for choice in ("always", "within_size", "advise", "never", "deny", "force")
    },
}


class Thp(SettingFiles):
    name = "thp"
    order = 20
    directory = THP_DIR
    label = "THP"
    absent = "this kernel has no transparent hugepages"
    model_name = "Thp"
    baseline = ("enabled", "defrag")
    # Every setting is a mode: two workloads wanting different values are a conflict. The integer ones:
    # khugepaged/defrag is 0 or 1; max_ptes_none is 0..HPAGE_PMD_NR - 1, 511 with 4 KiB pages (transhuge.rst
    # "khugepaged will be automatically started..."; a kernel with larger base pages has a larger bound,
    # which the kernel itself enforces on write). Facts of probes before issue 17 lack the last three.
    settings = {
        "enabled": Setting("enabled", "choice", _EVERY, choices=THP_CHOICES["enabled"]),
        "defrag": Setting("defrag", "choice", _EVERY, choices=THP_CHOICES["defrag"]),
        "shmem_enabled": Setting(
            "shmem_enabled",
            "choice",
            (4, 8, 0),
            doc="THP for tmpfs and shared memory (shmem_enabled, since 4.8)",
            choices=THP_CHOICES["shmem_enabled"],
            optional=True,
            older_probes=True,
        ),
        "khugepaged_defrag": Setting(
            "khugepaged/defrag",
            "int",
            _EVERY,
            doc="khugepaged/defrag: 1 lets khugepaged compact memory to collapse pages",
            low=0,
            high=1,
            older_probes=True,
        ),
        "khugepaged_max_ptes_none": Setting(
            "khugepaged/max_ptes_none",
            "int",
            _EVERY,
            doc="khugepaged/max_ptes_none: unmapped pages khugepaged may fill when collapsing",
            low=0,
            high=511,
            older_probes=True,
        ),
    }

    def at_boot(self, facts: HostFacts, key: str) -> tuple[str | None, str | None]:
        """An active TuneD profile, else memtune's boot unit, else the running kernel's command line for
        ``enabled``."""
        if (tuned := tuned_thp(facts, key)) is not None:
            return tuned
        boot, source = super().at_boot(facts, key)
        if boot is None and key == "enabled":
            for arg in (facts.kernel.cmdline or "").split():
                if arg.startswith("transparent_hugepage="):
                    boot, source = arg.partition("=")[2], "kernel command line"
        return boot, source

    def boot_mendable(self, facts: HostFacts, key: str) -> bool:
        return tuned_thp(facts, key) is None


def tuned_thp(facts: HostFacts, name: str) -> tuple[str, str] | None:
    """(value, source) of the active TuneD profile's last write of THP ``name``: TuneD starts after
    memtune's boot unit, so its value is the one that lasts."""
    writes = [w for w in (facts.tuned.thp if facts.tuned else []) if w.knob == name]
    if not writes:
        return None
    profiles = " ".join(facts.tuned.profiles) if facts.tuned else ""
    return writes[-1].value, f"{writes[-1].path}:{writes[-1].line} (TuneD profile {profiles})"


KIND = Thp()
# The THP settings memtune manages -> their file below THP_DIR (the host side's copy is the THP declaration
# in plugins/module_utils/_contract.py; tests/contract/test_contract.py keeps them equal).
THP_FILES: dict[str, str] = {key: setting.file for key, setting in Thp.settings.items()}
THP_INTEGERS = {key for key, setting in Thp.settings.items() if setting.form == "int"}
