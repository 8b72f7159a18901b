"""The data dictionary: every warehouse table and column with its PostgreSQL type, key, nullability, data
classification and comment, generated from `tables.py` (`demand-control warehouse dictionary` writes
docs/data_dictionary.md; a test fails when the committed file is stale). SQLite drops column comments, so
analysts on the embedded warehouse read them here (or in the Dagster UI's column schema)."""

from __future__ import annotations

from sqlalchemy import Column, Table
from sqlalchemy.dialects import postgresql

from demand_control.schema import tables

DICTIONARY_PATH = "docs/data_dictionary.md"
_POSTGRES = postgresql.dialect()


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _column_row(table: Table, column: Column) -> str:
    key = "PK" if column.primary_key else ""
    classification = tables.classification_of(table, column.name)
    described = f"**{classification}** · {column.comment}" if classification else (column.comment or "")
    kind = str(column.type.compile(dialect=_POSTGRES)).lower()
    return f"| `{column.name}` | {kind} | {key} | {'yes' if column.nullable and not column.primary_key else 'no'} | {_cell(described)} |"


def data_dictionary_markdown() -> str:
    """The dictionary as markdown: an index of the tables, then one section per table in declaration order."""
    declared = list(tables.metadata.tables.values())
    lines = [
        "# Data dictionary",
        "",
        "Every table of the warehouse (SQLite by default, PostgreSQL in production), generated from",
        "`demand_control/schema/tables.py` by `demand-control warehouse dictionary`: do not edit by hand. Types are",
        "PostgreSQL's; on PostgreSQL the same descriptions are the tables' and columns' `COMMENT`s (`\\d+ table` in psql),",
        "and the Dagster UI shows them as each asset's column schema. **personal** and **commercial** mark classified",
        "columns (personal data is redacted after the retention period).",
        "",
        f"{len(declared)} tables, {sum(len(t.columns) for t in declared)} columns.",
        "",
        "| table | what one row is |",
        "|---|---|",
        *(f"| [`{t.name}`](#{t.name}) | {_cell(t.comment or '')} |" for t in declared),
    ]
    for table in declared:
        lines += [
            "",
            f"## {table.name}",
            "",
            _cell(table.comment or ""),
            "",
            "| column | type | key | nullable | description |",
            "|---|---|---|---|---|",
            *(_column_row(table, column) for column in table.columns),
        ]
    return "\n".join(lines) + "\n"
