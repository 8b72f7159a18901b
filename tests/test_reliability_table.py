"""The README's promise table ("## Reliability: the 21 promises and the tests that hold them") stays true:
every promise of RELIABILITY.md, 1 to 21, has one row; every row names at least one test; every test it
names exists. A row marked "(pending merge)" is allowed (the test that closes its gap is on another
branch) but must still name the tests that already hold part of it.

Names are resolved in the source (a module-level `def test_…`, or `Class::method`), not by collecting the
suite: the check runs in milliseconds and needs no fixture."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Reliability: the 21 promises and the tests that hold them"
PROMISES = range(1, 22)
NODE_ID = re.compile(r"`(tests/[^`\s]+\.py::[^`\s]+)`")


def section(readme: str) -> str:
    start = readme.find("\n" + SECTION + "\n")
    assert start >= 0, f"README.md has no section {SECTION!r}"
    body = readme[start + len(SECTION) + 2:]
    end = body.find("\n## ")
    return body if end < 0 else body[:end]


def table_rows(text: str) -> dict[int, str]:
    """Promise number → the row's "held by" cell, for every data row of the section's table."""
    rows: dict[int, str] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.lstrip().startswith("|") or len(cells) < 3 or not cells[0].isdigit():
            continue  # prose, the header row or the separator
        number = int(cells[0])
        assert number not in rows, f"promise {number} has two rows"
        rows[number] = cells[-1]
    return rows


@cache
def defined_names(path: Path) -> frozenset[str]:
    """`name` for each module-level function and `Class::method` for each method of a module-level class."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.update(f"{node.name}::{item.name}" for item in node.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)))
    return frozenset(names)


def missing(node_id: str) -> str | None:
    """Why `node_id` names no test, or None when it does."""
    file, _, name = node_id.partition("::")
    path = ROOT / file
    if not path.is_file():
        return f"{node_id}: no file {file}"
    name = name.split("[", 1)[0]  # a parametrised case names its function
    if not name.rsplit("::", 1)[-1].startswith("test"):
        return f"{node_id}: {name} is not a test"
    if name not in defined_names(path):
        return f"{node_id}: {file} defines no {name}"
    return None


@pytest.fixture(scope="module")
def rows() -> dict[int, str]:
    return table_rows(section((ROOT / "README.md").read_text()))


def test_every_promise_has_one_row(rows: dict[int, str]) -> None:
    assert sorted(set(PROMISES) - set(rows)) == [], "promises without a row"
    assert sorted(set(rows) - set(PROMISES)) == [], "rows for promises RELIABILITY.md does not have"


@pytest.mark.parametrize("promise", PROMISES)
def test_every_row_names_tests_that_exist(rows: dict[int, str], promise: int) -> None:
    named = NODE_ID.findall(rows.get(promise, ""))
    assert named, f"promise {promise} names no test" + (" (pending merge rows too)" if "(pending merge)" in rows.get(promise, "") else "")
    problems = [why for why in map(missing, named) if why]
    assert problems == [], f"promise {promise}: " + "; ".join(problems)


def test_the_checks_catch_a_missing_row_an_empty_row_and_a_test_that_does_not_exist() -> None:
    text = "\n".join([
        "| # | Promise | Held by |", "|---|---|---|",
        "| 1 | signed | `tests/test_reliability_table.py::test_every_promise_has_one_row` |",
        "| 2 | durable | (pending merge) |",
        "| 3 | idempotent | `tests/test_reliability_table.py::test_no_such_thing` `tests/nowhere.py::test_x` |",
    ])
    rows = table_rows(text)
    assert sorted(rows) == [1, 2, 3] and not set(PROMISES) <= set(rows)
    assert NODE_ID.findall(rows[2]) == []
    assert [missing(n) for n in NODE_ID.findall(rows[1])] == [None]
    assert [bool(missing(n)) for n in NODE_ID.findall(rows[3])] == [True, True]
    assert missing("tests/services/test_approvals.py::test_concurrent_approvals_give_one_decision_sqlite[x]") is None
    with pytest.raises(AssertionError, match="two rows"):
        table_rows(text + "\n| 1 | again | `tests/test_reliability_table.py::test_every_promise_has_one_row` |")
