"""Great Expectations suites generated from the object contracts.

`build_suite` turns one `Contract` into the `ExpectationSuite` that *is* the rule set of that object: every
expectation is derived from a `Column` declaration, nothing is written per object. Each expectation carries
`meta={"rule": ..., "column": ...}` so a failure can be reported (and rows quarantined) under a stable rule
name:

=================  ===========================================================================
rule               expectation
=================  ===========================================================================
column_exists      ExpectColumnToExist, every business column
not_null           ExpectColumnValuesToNotBeNull, required columns
min_value          ExpectColumnValuesToBeBetween(min_value=...), numeric columns with a minimum
max_value          ExpectColumnValuesToBeBetween(max_value=...), numeric columns with a maximum
allowed_values     ExpectColumnValuesToBeInSet(allowed), columns with an allowed set
unique_key         ExpectColumnValuesToBeUnique / ExpectCompoundColumnsToBeUnique on the key
references:<o.c>   ExpectColumnValuesToBeInSet(references["o.c"]), when that set is provided
plausible_date     ExpectColumnValuesToBeBetween(EARLIEST_PLAUSIBLE_DATE, today or today+MAX_FUTURE_DAYS)
=================  ===========================================================================

Rules Great Expectations has no expectation for (items of a ";"-separated `list_of` column) are declared
by `list_rules` and evaluated in pandas by `validation.py` under the rule name `references:<o.c>`.

Great Expectations takes seconds to import, so it is imported lazily: importing this module is cheap.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from demand_control.schema.contracts import EARLIEST_PLAUSIBLE_DATE, MAX_FUTURE_DAYS, Column, Contract

if TYPE_CHECKING:  # pragma: no cover - typing only
    import great_expectations as gx

# Stable rule names (also used by the quarantine table and the Dagster checks).
COLUMN_EXISTS = "column_exists"
NOT_NULL = "not_null"
MIN_VALUE = "min_value"
MAX_VALUE = "max_value"
ALLOWED_VALUES = "allowed_values"
UNIQUE_KEY = "unique_key"
PLAUSIBLE_DATE = "plausible_date"
REFERENCES_PREFIX = "references:"
TYPE_PREFIX = "type:"

# Rules that judge a whole table rather than single rows: a failure cannot be quarantined row by row.
TABLE_RULES = frozenset({COLUMN_EXISTS})


def references_rule(target: str) -> str:
    return f"{REFERENCES_PREFIX}{target}"


def type_rule(kind: str) -> str:
    return f"{TYPE_PREFIX}{kind}"


def key_label(contract: Contract) -> str:
    """The `column` value reported for key rules: the key columns joined by '|'."""
    return "|".join(contract.key)


def import_gx() -> Any:
    """Import Great Expectations with its analytics switched off (the env var is read at import/context time)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx_module

    return gx_module


def plausible_date_bounds(column: Column, today: date) -> tuple[Any, Any]:
    """(earliest, latest) plausible value of a date or datetime column, typed like the column's values."""
    if isinstance(today, datetime):
        today = today.date()
    latest = today if column.not_in_future else today + timedelta(days=MAX_FUTURE_DAYS)
    if column.type == "datetime":
        return (
            datetime.combine(EARLIEST_PLAUSIBLE_DATE, time.min, tzinfo=UTC),
            datetime.combine(latest, time.max, tzinfo=UTC),
        )
    return EARLIEST_PLAUSIBLE_DATE, latest


@dataclass(frozen=True)
class ListRule:
    """A ';'-separated list column whose every item must exist in a referenced "object.column"."""

    column: str
    target: str

    @property
    def rule(self) -> str:
        return references_rule(self.target)


def list_rules(contract: Contract) -> list[ListRule]:
    return [ListRule(c.name, c.list_of) for c in contract.columns if c.list_of]


def build_suite(
    contract: Contract,
    references: Mapping[str, Collection[str]],
    *,
    today: date,
) -> gx.ExpectationSuite:
    """The expectation suite of one contract.

    `references` maps "object.column" to the values that currently exist there; a reference rule whose set
    is not provided is left out (e.g. the referenced object has never been staged). `today` anchors the
    plausible-date window and is passed in so the suite never reads the clock.
    """
    gx_module = import_gx()
    gxe = gx_module.expectations

    expectations: list[Any] = []

    def add(expectation_cls: Any, rule: str, label: str, **kwargs: Any) -> None:
        expectations.append(expectation_cls(**kwargs, meta={"rule": rule, "column": label}))

    for col in contract.columns:
        add(gxe.ExpectColumnToExist, COLUMN_EXISTS, col.name, column=col.name)

    for col in contract.columns:
        if col.required:
            add(gxe.ExpectColumnValuesToNotBeNull, NOT_NULL, col.name, column=col.name)
        if col.type in ("integer", "float"):
            if col.min_value is not None:
                add(gxe.ExpectColumnValuesToBeBetween, MIN_VALUE, col.name, column=col.name, min_value=col.min_value)
            if col.max_value is not None:
                add(gxe.ExpectColumnValuesToBeBetween, MAX_VALUE, col.name, column=col.name, max_value=col.max_value)
        if col.allowed:
            add(gxe.ExpectColumnValuesToBeInSet, ALLOWED_VALUES, col.name, column=col.name, value_set=list(col.allowed))
        if col.references and col.references in references:
            value_set = sorted({str(v) for v in references[col.references] if v is not None})
            add(
                gxe.ExpectColumnValuesToBeInSet,
                references_rule(col.references),
                col.name,
                column=col.name,
                value_set=value_set,
            )
        if col.type in ("date", "datetime"):
            earliest, latest = plausible_date_bounds(col, today)
            add(
                gxe.ExpectColumnValuesToBeBetween,
                PLAUSIBLE_DATE,
                col.name,
                column=col.name,
                min_value=earliest,
                max_value=latest,
            )

    if len(contract.key) == 1:
        add(gxe.ExpectColumnValuesToBeUnique, UNIQUE_KEY, key_label(contract), column=contract.key[0])
    else:
        add(
            gxe.ExpectCompoundColumnsToBeUnique,
            UNIQUE_KEY,
            key_label(contract),
            column_list=list(contract.key),
            ignore_row_if="never",
        )

    # Expectations are handed to the constructor: `ExpectationSuite.add_expectation` looks the suite up in
    # the current Data Context's store (and fails without one), which a throw-away suite does not need.
    suite = gx_module.ExpectationSuite(
        name=f"{contract.name}_contract",
        expectations=expectations,
        meta={"object": contract.name, "today": today.isoformat()},
    )
    if len(suite.expectations) != len(expectations):  # the constructor only logs invalid ones
        raise ValueError(f"contract {contract.name}: GX rejected some generated expectations")
    return suite
