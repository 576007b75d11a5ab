"""docs/bad-input.md stays true: every row of its table names a test that exists, and its exit codes are
the ones the code uses."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from memtune.cli.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OUTPUT, EXIT_PIPE
from memtune.cli.options import EXIT_INVALID

HERE = Path(__file__).resolve().parent
DOC = HERE.parents[2] / "docs" / "bad-input.md"


def _rows(text: str) -> list[list[str]]:
    table = text.split("## The table", 1)[1]
    rows = [
        re.split(r"(?<!\\)\|", line.strip())[1:-1] for line in table.splitlines() if line.startswith("| ")
    ]
    cells = [[cell.strip() for cell in row] for row in rows[1:]]  # without the header
    return [row for row in cells if row[0] != "---"]


def test_every_row_names_a_test_that_exists() -> None:
    rows = _rows(DOC.read_text())
    assert len(rows) >= 25
    for row in rows:
        reference = row[-1].strip("`")
        file, _, name = reference.partition("::")
        source = HERE / file
        assert source.is_file(), reference
        functions = {
            node.name for node in ast.walk(ast.parse(source.read_text())) if isinstance(node, ast.FunctionDef)
        }
        assert name in functions, reference


def test_exit_codes_are_the_codes_the_code_uses() -> None:
    text = DOC.read_text()
    codes = dict(re.findall(r"^\| (\d+) \| ([^|]+)", text, flags=re.MULTILINE))
    assert set(codes) == {
        "0",
        "1",
        "2",
        str(EXIT_INTERNAL),
        str(EXIT_OUTPUT),
        str(EXIT_INTERRUPTED),
        str(EXIT_PIPE),
    }
    assert codes[str(EXIT_INVALID)].startswith("bad input")
    assert codes[str(EXIT_INTERNAL)].startswith("internal error")
    for row in _rows(text):
        assert row[3] in {
            "0",
            str(EXIT_INVALID),
            str(EXIT_INTERNAL),
            str(EXIT_OUTPUT),
            str(EXIT_INTERRUPTED),
            str(EXIT_PIPE),
            "task failed",
            "as the command",
            "—",
        }, row
