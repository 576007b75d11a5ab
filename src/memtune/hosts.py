"""Saved facts and per-host variables for offline planning (the CLI's inputs)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from memtune.errors import PolicyError
from memtune.facts import FactsError, HostFacts, parse_facts
from memtune.policy import Policy
from memtune.policy_load import policy_from_data
from memtune.yaml_source import load_yaml


class HostVars(BaseModel):
    """The inventory variables memtune reads for one host (the action plugin passes the same)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    memtune_inputs: dict[str, Any] = {}
    memtune_workloads: list[str] | None = None
    group_names: list[str] = []
    memtune_group_policies: list[dict[str, Any]] = []
    memtune_host_policy: dict[str, Any] | None = None

    def inline_policies(self, source: str, host: str | None = None) -> list[Policy]:
        """The inline group and host policies; ``layer`` and ``name`` (default: ``host``) may be left
        out of them."""
        policies = [
            policy_from_data(
                data,
                f"{source}.memtune_group_policies[{index}]",
                defaults={"layer": "group", "name": f"inline-{index}"},
            )
            for index, data in enumerate(self.memtune_group_policies)
        ]
        if self.memtune_host_policy is not None:
            policies.append(
                policy_from_data(
                    self.memtune_host_policy,
                    f"{source}.memtune_host_policy",
                    defaults={"layer": "host", "name": host or "inline"},
                )
            )
        return policies


# ansible-core 2.19's fact cache names each host's entry s<schema>_<host> and wraps it in
# {"__payload__": "<the facts as JSON text>"}.
_CACHE_KEY = re.compile(r"s\d+_(?P<host>.+)")
_CACHE_PAYLOAD = "__payload__"


def _host_name(file: Path) -> str:
    if file.suffix == ".json":
        return file.stem
    cached = _CACHE_KEY.fullmatch(file.name)
    return cached["host"] if cached else file.name


def facts_files(path: Path) -> dict[str, Path]:
    """Host name -> facts file: ``NAME.json`` files, or the files of an Ansible jsonfile fact cache (named
    after the host, dots and all; ansible-core 2.19 and later put ``s<N>_`` before the name). Hidden files
    are ignored."""
    if not path.exists():
        raise FactsError(f"{path}: no such file or directory")
    if path.is_file():
        return {_host_name(path): path}
    found: dict[str, Path] = {}
    for file in sorted(path.iterdir(), key=lambda item: item.name):
        if file.name.startswith(".") or not file.is_file():
            continue
        found[_host_name(file)] = file
    if not found:
        raise FactsError(f"{path}: no facts files (*.json or a jsonfile fact cache)")
    return found


def load_host_facts(file: Path) -> HostFacts:
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise FactsError(f"{file}: cannot read: {exc.strerror}") from None
    try:  # the common case, bare facts, in one pass; anything else gets parse_facts' checks and messages
        return HostFacts.model_validate_json(raw)
    except ValidationError:
        pass
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise FactsError(f"{file}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from None
    except UnicodeDecodeError:
        raise FactsError(f"{file}: not UTF-8 JSON") from None
    if isinstance(data, dict) and isinstance(data.get(_CACHE_PAYLOAD), str):
        try:
            data = json.loads(data[_CACHE_PAYLOAD])
        except json.JSONDecodeError as exc:
            raise FactsError(f"{file}: {_CACHE_PAYLOAD}: not JSON: {exc.msg}") from None
    return parse_facts(data, str(file))


def load_vars(path: Path) -> dict[str, HostVars]:
    """A YAML or JSON mapping of host name to its variables."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read: {getattr(exc, 'strerror', None) or exc}", str(path)) from None
    data, marks = load_yaml(text, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PolicyError("expected a mapping of host name to variables", str(path), 1, 1)
    result: dict[str, HostVars] = {}
    for host, values in data.items():
        try:
            result[str(host)] = HostVars.model_validate(values or {})
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            loc = (host, *error["loc"])
            _marked, (line, column) = marks.locate(loc)
            where = ".".join(str(part) for part in loc)
            message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
            raise PolicyError(f"{where}: {message}", str(path), line, column) from None
    return result
