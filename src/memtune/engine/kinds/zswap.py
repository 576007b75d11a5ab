"""zswap, the compressed cache for swap pages (/sys/module/zswap/parameters): a kind of the setting-files
family. Parameters: https://docs.kernel.org/admin-guide/mm/zswap.html. ``compressor`` and ``zpool`` are
left out: which ones a host offers depends on the crypto and zpool modules it has loaded.
"""

from __future__ import annotations

from memtune.engine.kinds._files import Form, Setting, SettingFiles
from memtune.engine.knobs import Merge, Version

# The policy schema's description of each setting.
_DOCS = {
    "enabled": "Whether zswap caches swapped-out pages",
    "max_pool_percent": "The largest share of RAM the compressed pool may take, in percent",
    "accept_threshold_percent": "After the pool was full, the share of max_pool_percent below which zswap "
    "takes pages again",
    "shrinker_enabled": "Whether zswap writes cold compressed pages back to swap under memory pressure "
    "(since 6.8)",
}


# (file, format, first kernel, merge, highest value): zswap came in 3.11 with enabled and max_pool_percent;
# accept_threshold_percent in 5.6 ("mm/zswap.c: add allocation hysteresis if pool limit is hit");
# shrinker_enabled in 6.8. max_pool_percent is a ceiling on memory, yet a workload that asks for a larger
# pool needs it: max.
_ROWS: tuple[tuple[str, Form, Version, Merge, int], ...] = (
    ("enabled", "bool", (3, 11, 0), "agree", 0),
    ("max_pool_percent", "int", (3, 11, 0), "max", 100),
    ("accept_threshold_percent", "int", (5, 6, 0), "agree", 100),
    ("shrinker_enabled", "bool", (6, 8, 0), "agree", 0),
)


class Zswap(SettingFiles):
    name = "zswap"
    order = 60
    directory = "/sys/module/zswap/parameters"
    label = "zswap"
    absent = "this kernel has no zswap (/sys/module/zswap/parameters is missing)"
    model_name = "Zswap"
    baseline = ("enabled", "max_pool_percent", "accept_threshold_percent", "shrinker_enabled")
    # Every file may be missing (null in the facts).
    settings = {
        key: Setting(key, form, since, merge=merge, doc=_DOCS[key], high=high, optional=True)
        for key, form, since, merge, high in _ROWS
    }


KIND = Zswap()
