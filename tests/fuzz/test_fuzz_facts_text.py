"""Fuzzing facts: the captured hosts' facts (produced from their trees by the collector in-process), mutated
as data (a value replaced by a hostile one, a key dropped or added, a list nested deep) and as text (cut,
repeated, truncated), then audited and planned next to a good host: exit 0, 1 or 2, no traceback, bounded
time and memory, and the good host is still audited."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HOSTILE = st.one_of(
    st.sampled_from(
        [
            True,
            False,
            None,
            "",
            "5",
            "1e999",
            "-1",
            2**64,
            -(2**63) - 1,
            2**200,
            1.5,
            float("inf"),
            [],
            {},
            [[[[]]]],
        ]
    ),
    st.integers(),
    st.text(max_size=10),
    st.floats(),
    st.recursive(st.none() | st.integers(), lambda inner: st.lists(inner, max_size=3), max_leaves=40),
)


DEEP = "(a list nested 5000 deep)"


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data[:4]):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def facts_texts(draw: Any, captured: dict[str, dict[str, Any]]) -> str:
    facts = json.loads(json.dumps(captured[draw(st.sampled_from(sorted(captured)))]))
    paths = _paths(facts)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(paths))
        parent = facts
        try:
            for part in path[:-1]:
                parent = parent[part]
            operation = draw(st.sampled_from(["replace", "replace", "drop", "add", "deep"]))
            if operation == "replace":
                parent[path[-1]] = draw(HOSTILE)
            elif operation == "drop":
                del parent[path[-1]]
            elif operation == "add" and isinstance(parent, dict):
                parent[draw(st.text(max_size=6))] = draw(HOSTILE)
            elif operation == "deep":
                parent[path[-1]] = DEEP  # replaced in the text: json itself cannot write it
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    text = json.dumps(facts, allow_nan=True).replace(json.dumps(DEEP), "[" * 5000 + "]" * 5000)
    if draw(st.booleans()):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        end = draw(st.integers(min_value=at, max_value=min(len(text), at + 200)))
        text = draw(
            st.sampled_from(
                [
                    text[:at],  # truncated
                    text[:at] + text[end:],  # a span cut out
                    text[:end] + text[at:end] * 3 + text[end:],  # a span repeated
                    text[:at]
                    + draw(st.sampled_from(['"', "{", "]", "\\u0000", "\x00", "NaN", "9" * 50]))
                    + text[at:],
                ]
            )
        )
    return text


def test_mutated_facts_are_that_hosts_error(
    bounded: Callable[..., Any], captured_facts: dict[str, dict[str, Any]], examples: int
) -> None:
    with tempfile.TemporaryDirectory() as work:
        facts = Path(work)
        (facts / "good.json").write_text(json.dumps(captured_facts["small"]))
        bad = facts / "bad.json"

        @settings(
            max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        @given(text=facts_texts(captured_facts))
        def case(text: str) -> None:
            bad.write_text(text, encoding="utf-8", errors="surrogatepass")
            audited = bounded("audit", "--facts", facts, "--format", "json")
            report = json.loads(audited.stdout)
            assert "good" in {entry["host"] for entry in report["hosts"]}
            if audited.exit_code == 2:
                assert [entry["host"] for entry in report["errors"]] == ["bad"]
            bounded("plan", "--facts", bad, "--format", "json")

        case()
