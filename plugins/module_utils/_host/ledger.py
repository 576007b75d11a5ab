# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ledger memtune keeps on a host (/var/lib/memtune/ledger.json): the original values from before its
first change, and the last generations (what each run set, when, and from which plan).

Layout (version 2; version 1 was the snapshot, /var/lib/memtune/snapshot.json, which becomes a ledger's
originals on the first run that writes):

- ``format``: ``memtune-ledger``; ``version``: 2; ``created``: when the first original was saved.
- ``runtime`` ({sysctl, hugepages, cgroups}, and one section per setting-files kind: thp, zswap) and
  ``files`` ({path: text or null}): the originals.
  A value is saved once, the first time memtune plans that knob, and never overwritten.
- ``dirs``: directories memtune created; ``owned``: kernel arguments and unit drop-ins memtune owns now.
- ``generations``: the last KEEP runs that changed what memtune manages, oldest first: ``id``, ``time``,
  ``action`` (apply, rollback-previous, rollback-original, migrated), ``plan`` ({hash, sources}),
  ``items`` (the names of every value it set, as the audit names them) and ``desired`` (what it set, as a
  DesiredState without provenance, so that ``rollback: previous`` can set it again).

Everything here is pure except load(), which reads the tree.
"""

from __future__ import annotations

import hashlib
import json
import time

from ansible_collections.memtune.fleet.plugins.module_utils import _contract
from ansible_collections.memtune.fleet.plugins.module_utils._host import persist as _persist
from ansible_collections.memtune.fleet.plugins.module_utils._host.cgroup import V2_FILES

LEDGER = _contract.LEDGER
FORMAT = "memtune-ledger"
VERSION = 2
KEEP = 10
POOL_PATH = "/sys/devices/system/node/node%d/hugepages/hugepages-%dkB/nr_hugepages"
THP_PATH = _contract.THP_DIR + "/"
# The setting-files kinds every version-2 ledger has a section for, set or not; a later kind is in a
# generation's desired state only when it sets something, so an older ledger's generations still match.
ALWAYS_LISTED = ("thp",)
SECTIONS = {"runtime": dict, "files": dict, "dirs": list, "owned": dict, "generations": list}


class LedgerError(ValueError):
    """A ledger file memtune cannot use: it names the file and says why. It is never replaced silently."""

    def __init__(self, path, reason):
        ValueError.__init__(self, "%s: %s" % (path, reason))
        self.path, self.reason = path, reason


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_ledger():
    ledger = _persist.new_snapshot()
    ledger.update(format=FORMAT, version=VERSION, next_id=1, generations=[])
    return ledger


def check(data, path):
    """-> the ledger ``data`` parsed from ``path``, or LedgerError saying what is wrong with it."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise LedgerError(path, 'not a memtune ledger (no "format": "%s")' % FORMAT)
    if data.get("version") != VERSION:
        raise LedgerError(
            path, "ledger version %r; this memtune reads version %d" % (data.get("version"), VERSION)
        )
    for name, kind in SECTIONS.items():
        if not isinstance(data.get(name), kind):
            raise LedgerError(path, "%r is missing or not a %s" % (name, kind.__name__))
    for section in ("sysctl", "thp", "hugepages", "cgroups"):
        if not isinstance(data["runtime"].get(section), dict):
            raise LedgerError(path, "runtime.%s is missing or not a mapping" % section)
    for kind in _contract.SETTING_KINDS:
        if not isinstance(data["runtime"].setdefault(kind.kind, {}), dict):
            raise LedgerError(path, "runtime.%s is not a mapping" % kind.kind)
    for section in ("hugepages", "cgroups"):
        if not all(isinstance(value, dict) for value in data["runtime"][section].values()):
            raise LedgerError(path, "runtime.%s holds a value that is not a mapping" % section)
    for index, generation in enumerate(data["generations"]):
        if (
            not isinstance(generation, dict)
            or not isinstance(generation.get("id"), int)
            or not isinstance(generation.get("items"), list)
            or not all(isinstance(item, str) for item in generation["items"])
            or not isinstance(generation.get("desired"), dict)
        ):
            raise LedgerError(path, "generations[%d] has no id, items (names) or desired state" % index)
    data.setdefault("owned", {}).setdefault("dropins", [])
    data["owned"].setdefault("kernel_cmdline", [])
    data.setdefault("next_id", 1 + max([g["id"] for g in data["generations"]] or [0]))
    return data


def parse(text, path):
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than the stack
        raise LedgerError(path, "not valid JSON (%s)" % exc) from None
    return check(data, path)


def _sysctl_file_values(text):
    values = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith(("#", ";")):
            values[key.strip()] = value.strip()
    return values


def migrate(snapshot, tree):
    """A version-1 snapshot -> a ledger whose originals are the snapshot's, and one generation
    (``migrated``) with what memtune's files on the host set now, so dropped knobs are found."""
    ledger = new_ledger()
    ledger["created"] = snapshot.get("created") or ledger["created"]
    ledger["files"].update(snapshot.get("files") or {})
    ledger["dirs"] = list(snapshot.get("dirs") or [])
    ledger["owned"].update(snapshot.get("owned") or {})
    for section, values in (snapshot.get("runtime") or {}).items():
        ledger["runtime"].setdefault(section, {}).update(values or {})
    desired = {
        "schema_version": 1,
        "sysctl": {},
        "thp": {},
        "hugepages": [],
        "kernel_cmdline": [],
        "cgroups": [],
    }
    for key, value in sorted(_sysctl_file_values(tree.read(_contract.SYSCTL_FILE, optional=True)).items()):
        desired["sysctl"][key] = {"value": int(value) if value.lstrip("-").isdigit() else value}
    pools = {}
    for line in (tree.read(_contract.BOOT_CONF, optional=True) or "").splitlines():
        fields = line.split(None, 6)
        if len(fields) != 7 or fields[0] != "w":
            continue
        if fields[1].startswith(THP_PATH):
            desired["thp"][fields[1][len(THP_PATH) :]] = {"value": fields[6].strip()}
        parts = fields[1].split("/")
        if fields[1].endswith("/nr_hugepages") and len(parts) == 8 and fields[6].strip().isdigit():
            size = int(parts[6][len("hugepages-") : -len("kB")])
            pools.setdefault(size, {})[parts[5][len("node") :]] = int(fields[6])
    for size in sorted(pools):
        desired["hugepages"].append(
            {"size_kb": size, "per_node": pools[size], "boot": False, "required": False}
        )
    desired["kernel_cmdline"] = [{"arg": arg} for arg in ledger["owned"]["kernel_cmdline"]]
    for unit in sorted(ledger["owned"]["dropins"]):
        text = (
            tree.read("%s/%s.d/%s" % (_contract.SYSTEMD_DIR, unit, _contract.DROPIN_NAME), optional=True)
            or ""
        )
        limits = {}
        for line in text.splitlines():
            name, sep, value = line.strip().partition("=")
            if sep and name in V2_FILES:
                limits[name] = int(value) if value.strip().isdigit() else value.strip()
        if limits:
            desired["cgroups"].append({"unit": unit, "limits": limits, "force": True})
    generation = {"desired": desired, "plan": {"hash": None, "sources": [_contract.SNAPSHOT]}}
    append(ledger, generation, "migrated")
    return ledger


def load(tree):
    """-> (ledger or None, True when it was migrated from a version-1 snapshot). Raises LedgerError."""
    text = tree.read(LEDGER, optional=True)
    if text is not None:
        return parse(text, LEDGER), False
    text = tree.read(_contract.SNAPSHOT, optional=True)
    if text is None:
        return None, False
    try:
        snapshot = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise LedgerError(_contract.SNAPSHOT, "not valid JSON (%s)" % exc) from None
    if not isinstance(snapshot, dict) or snapshot.get("version") != 1:
        raise LedgerError(_contract.SNAPSHOT, "not a memtune snapshot of version 1")
    return migrate(snapshot, tree), True


def to_desired(want):
    """A validated want (memory_apply's _apply_desired.validate) -> a DesiredState dict, no provenance."""
    desired = {
        "schema_version": 1,
        "sysctl": {key: {"value": want["sysctl"][key]} for key in sorted(want["sysctl"])},
        "hugepages": [
            {
                "size_kb": pool["size_kb"],
                "per_node": {str(node): pool["per_node"][node] for node in sorted(pool["per_node"])},
                "boot": pool["boot"],
                "required": pool["required"],
            }
            for pool in want["hugepages"]
        ],
        "kernel_cmdline": [{"arg": arg} for arg in want["kernel_cmdline"]],
        "cgroups": [
            dict(
                {"unit": entry["unit"]} if entry["unit"] else {"path": entry["path"]},
                limits=dict(entry["limits"]),
                force=entry["force"],
            )
            for entry in want["cgroups"]
        ],
    }
    for kind in _contract.SETTING_KINDS:
        values = want.get(kind.kind) or {}
        if values or kind.kind in ALWAYS_LISTED:
            desired[kind.kind] = {name: {"value": values[name]} for name in sorted(values)}
    return desired


def items(desired):
    """The names of every value a DesiredState dict sets, as the audit names its checks
    (memtune.audit.drift.planned_items is the controller's copy; a test keeps the two equal)."""
    names = ["%s" % key for key in desired.get("sysctl") or {}]
    for kind in _contract.SETTING_KINDS:
        names += ["%s.%s" % (kind.kind, name) for name in desired.get(kind.kind) or {}]
    for pool in desired.get("hugepages") or []:
        names += ["hugepages.%dkB[node%s]" % (pool["size_kb"], node) for node in pool["per_node"]]
    names += ["cmdline.%s" % entry["arg"] for entry in desired.get("kernel_cmdline") or []]
    for entry in desired.get("cgroups") or []:
        target = entry.get("unit") or entry.get("path")
        names += ["cgroup.%s.%s" % (target, name) for name in entry["limits"]]
    return sorted(set(names))


def identity(desired, raw):
    """{hash, sources}: a hash of what is set, and the policy files and rules the plan's provenance names."""
    text = json.dumps(desired, sort_keys=True, separators=(",", ":"))
    sources = set()

    def walk(value):
        if isinstance(value, dict):
            provenance = value.get("provenance")
            if isinstance(provenance, dict) and provenance.get("file"):
                sources.add("%s:%s" % (provenance["file"], provenance.get("rule", "")))
            for child in value.values():
                walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    walk(raw)
    return {
        "hash": "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16],
        "sources": sorted(sources)[:50],
    }


def latest(ledger):
    return ledger["generations"][-1] if ledger and ledger["generations"] else None


def previous(ledger):
    return ledger["generations"][-2] if ledger and len(ledger["generations"]) > 1 else None


def append(ledger, generation, action):
    """Add ``generation`` ({desired, plan}) as the newest, keeping the last KEEP."""
    entry = dict(
        generation, id=ledger["next_id"], time=now(), action=action, items=items(generation["desired"])
    )
    ledger["next_id"] += 1
    ledger["generations"] = (ledger["generations"] + [entry])[-KEEP:]
    return entry


def same_set(generation, desired):
    return generation is not None and generation.get("desired") == desired


def summary(ledger):
    """What the probe reports: small (no values), enough for the audit to find what memtune still manages."""
    originals = ["%s" % key for key in ledger["runtime"]["sysctl"]]
    for kind in _contract.SETTING_KINDS:
        originals += ["%s.%s" % (kind.kind, name) for name in ledger["runtime"].get(kind.kind) or {}]
    for size, nodes in ledger["runtime"]["hugepages"].items():
        originals += ["hugepages.%skB[node%s]" % (size, node) for node in nodes]
    for target, limits in ledger["runtime"]["cgroups"].items():
        originals += ["cgroup.%s.%s" % (target, name) for name in (limits or {})]
    return {
        "path": LEDGER,
        "error": None,
        "originals": sorted(originals),
        "generations": [
            {
                "id": g["id"],
                "time": g.get("time"),
                "action": g.get("action", "apply"),
                "plan_hash": (g.get("plan") or {}).get("hash"),
                "items": list(g["items"]),
            }
            for g in ledger["generations"]
        ],
    }
