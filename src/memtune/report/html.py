"""The fleet report as one self-contained HTML page (inline CSS and JavaScript, no network): a summary
line, a host-by-knob heat map coloured by finding kind with a text label in every cell, hosts grouped by
inventory group, sortable, filterable and paged in the browser, and each host's knobs (desired value,
provenance, runtime, boot value and its source, NUMA node rows) and memory picture.

The data travels as one JSON document in a ``<script type="application/json">`` element, its repeated
strings interned in one table (``page_data``), so 10,000 hosts stay a few megabytes; the page renders only
the rows in view. A kind the page does not know is shown with its own name and a neutral colour."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

from memtune.report import Assembly, HostResult, summary_line

PAGE_VERSION = 1
_ASSETS = resources.files("memtune.report") / "assets"
_MARKER = re.compile(r"@(TITLE|KIND|CSS|DATA|SCRIPT)@")


def fragment(result: HostResult) -> dict[str, Any]:
    """The host as the page's plain data: checks as rows, strings not yet interned."""
    checks = []
    for check in result.checks:
        origin = check.provenance
        checks.append(
            {
                "knob": check.knob,
                "node": check.node,
                "desired": check.desired,
                "runtime": check.runtime,
                "boot": check.boot,
                "boot_source": check.boot_source,
                "provenance": None
                if origin is None
                else (origin.file, origin.line, origin.rule, origin.layer, origin.source),
                "findings": [(f.kind.value, f.message, f.mendable) for f in check.findings],
            }
        )
    memory = result.memory.model_dump(mode="json") if result.memory is not None else None
    return {"host": result.host, "groups": result.groups, "checks": checks, "memory": memory}


class _Strings:
    """Each distinct string once, referred to by its index."""

    def __init__(self) -> None:
        self.table: list[str] = []
        self._index: dict[str, int] = {}

    def __call__(self, text: str | None) -> int | None:
        if text is None:
            return None
        found = self._index.get(text)
        if found is None:
            found = self._index[text] = len(self.table)
            self.table.append(text)
        return found


def page_data(report: Assembly, title: str = "memtune fleet report") -> dict[str, Any]:
    """What the page's script reads: hosts with checks as ``[knob, node, desired, runtime, boot,
    boot_source, provenance, findings]`` rows whose strings are indexes into ``strings``, provenances
    ``[file, line, rule, layer, source]`` likewise shared in ``provenances``."""
    strings = _Strings()
    provenances: list[list[Any]] = []
    seen: dict[tuple[Any, ...], int] = {}

    def provenance(origin: tuple[Any, ...] | None) -> int | None:
        if origin is None:
            return None
        key = tuple(origin)
        if key not in seen:
            seen[key] = len(provenances)
            file, line, rule, layer, source = key
            provenances.append([strings(file), line, strings(rule), strings(layer), strings(source)])
        return seen[key]

    hosts = []
    for host in report.fragments:
        rows = [
            [
                strings(check["knob"]),
                check["node"],
                check["desired"],
                check["runtime"],
                check["boot"],
                strings(check["boot_source"]),
                provenance(check["provenance"]),
                [[strings(kind), strings(text), mendable] for kind, text, mendable in check["findings"]],
            ]
            for check in host["checks"]
        ]
        hosts.append([host["host"], [strings(group) for group in host["groups"]], rows, host["memory"]])
    return {
        "page_version": PAGE_VERSION,
        "title": title,
        "summary": report.summary.model_dump(mode="json"),
        "summary_line": summary_line(report.summary, report.baseline),
        "baseline": report.baseline,
        "strings": strings.table,
        "provenances": provenances,
        "hosts": hosts,
        "errors": [error.model_dump(mode="json") for error in report.errors],
        "moved": [move.model_dump(mode="json") for move in report.moved],
    }


def script_json(data: Any) -> str:
    """``data`` as JSON that cannot end its ``<script>`` element early (``<`` written as ``\\u003c``)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c")


def page(kind: str, title: str, data: Any) -> str:
    """The self-contained page for ``kind`` (``fleet`` or ``rollout``): its template with the shared CSS,
    the page's script and ``data`` inlined."""
    template = (_ASSETS / "page.html").read_text(encoding="utf-8")
    css = (_ASSETS / "page.css").read_text(encoding="utf-8")
    common = (_ASSETS / "common.js").read_text(encoding="utf-8")
    script = (_ASSETS / f"{kind}.js").read_text(encoding="utf-8")
    parts = {
        "TITLE": _escape(title),
        "KIND": kind,
        "CSS": css,
        "DATA": script_json(data),
        "SCRIPT": common + "\n" + script,
    }
    # One pass: what a part brings (a host named @DATA@) is never taken for a marker.
    return _MARKER.sub(lambda match: parts[match[1]], template)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def assemble(report: Assembly) -> str:
    return page("fleet", "memtune fleet report", page_data(report))
