"""Class 8 of issue 14: the policy JSON Schema names the knobs, so an editor flags ``vm.swapiness`` as it
is typed; the published file is what ``memtune schema`` prints."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from memtune.engine.kinds.sysctl import SYSCTLS

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def schema(cli: Callable[..., Any]) -> dict[str, Any]:
    result = cli("schema")
    assert result.exit_code == 0
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_published_policy_schema_is_current(schema: dict[str, Any]) -> None:
    assert json.loads((REPO / "schemas" / "policy.schema.json").read_text()) == schema, (
        "regenerate: memtune schema > schemas/policy.schema.json"
    )


def test_schema_flags_a_misspelt_knob(schema: dict[str, Any]) -> None:
    policy = {"layer": "baseline", "name": "b", "rules": [{"name": "r", "sysctl": {"vm.swapiness": 10}}]}
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(policy))
    assert errors and any("vm.swapiness" in error.message for error in errors)
    policy["rules"][0]["sysctl"] = {"vm.swappiness": 10}
    assert not list(jsonschema.Draft202012Validator(schema).iter_errors(policy))


def test_schema_names_every_knob_of_the_catalog(schema: dict[str, Any]) -> None:
    names = schema["$defs"]["Rule"]["properties"]["sysctl"]["propertyNames"]["enum"]
    assert names == sorted(SYSCTLS)


@pytest.mark.parametrize("file", sorted((REPO / "policies").glob("*.yml")), ids=lambda path: path.name)
def test_bundled_policies_pass_the_schema(schema: dict[str, Any], file: Path) -> None:
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(file.read_text()))
