"""The fleet report as JSON: ``FleetReport``'s serialization (``schemas/report.schema.json``), joined from
each host's JSON text so that worker processes can serialize their own hosts."""

from __future__ import annotations

import json

from memtune.report import SCHEMA_VERSION, Assembly, HostResult


def fragment(result: HostResult) -> str:
    return result.model_dump_json()


def _list(items: list[str]) -> str:
    return "[" + ",".join(items) + "]"


def assemble(report: Assembly) -> str:
    return (
        f'{{"schema_version":{SCHEMA_VERSION}'
        f',"summary":{report.summary.model_dump_json()}'
        f',"hosts":{_list(report.fragments)}'
        f',"errors":{_list([error.model_dump_json() for error in report.errors])}'
        f',"moved":{_list([move.model_dump_json() for move in report.moved])}'
        f',"baseline":{json.dumps(report.baseline)}' + "}\n"
    )
