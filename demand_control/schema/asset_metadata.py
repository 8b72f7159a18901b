"""Dagster metadata built from the contracts: table schemas, previews, row counts."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
from sqlalchemy import Boolean, Date, DateTime, Float, Integer, Table

from demand_control.schema.contracts import Column, Contract

TEAM_DATA_ENG = "team:data-eng"
TEAM_PLANNING = "team:planning"


def _constraints(col: Column, contract: Contract) -> dg.TableColumnConstraints:
    other: list[str] = []
    if col.allowed:
        other.append("one of " + ", ".join(col.allowed))
    if col.min_value is not None:
        other.append(f">= {col.min_value:g}")
    if col.max_value is not None:
        other.append(f"<= {col.max_value:g}")
    if col.references:
        other.append(f"references {col.references}")
    if col.list_of:
        other.append(f"';'-list of {col.list_of}")
    if col.not_in_future:
        other.append("not in the future")
    return dg.TableColumnConstraints(
        nullable=not col.required and col.name not in contract.key,
        unique=contract.key == (col.name,),
        other=other,
    )


def _classified(table_name: str, column_name: str, description: str, classification: str | None = None) -> dict:
    """The column's description and tags with its data classification (personal, commercial), if any:
    `classification` when given (a raw extract's column carries its staged object's), else the table's."""
    from demand_control.schema.tables import CLASSIFICATION

    classification = classification or CLASSIFICATION.get((table_name, column_name))
    if classification is None:
        return {"description": description}
    return {"description": f"[{classification} data] {description}", "tags": {"classification": classification}}


def table_schema(contract: Contract) -> dg.TableSchema:
    """The staged table's schema as Dagster shows it, from the contract."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=col.name,
                type=col.type,
                constraints=_constraints(col, contract),
                **_classified(contract.name, col.name, col.description),
            )
            for col in contract.all_columns
        ],
        constraints=dg.TableConstraints(other=[f"primary key ({', '.join(contract.key)})"]),
    )


def raw_schema(contract: Contract) -> dg.TableSchema:
    """The raw extract's schema as Dagster shows it: the raw table's own columns and comments (load_id,
    row_number, change, then every contract column as delivered text)."""
    from demand_control.schema.tables import RAW

    return table_schema_of(RAW[contract.name])


def table_schema_of(table: Table) -> dg.TableSchema:
    """A warehouse table's columns, types and comments as the Dagster UI shows them."""

    def kind(column) -> str:  # noqa: ANN001
        t = column.type
        for sql, name in ((Boolean, "boolean"), (Integer, "integer"), (Float, "float"), (DateTime, "datetime"), (Date, "date")):
            if isinstance(t, sql):
                return name
        return "string"

    key = [c.name for c in table.primary_key.columns]
    return dg.TableSchema(
        columns=[
            dg.TableColumn(c.name, kind(c), constraints=dg.TableColumnConstraints(nullable=c.nullable),
                           **_classified(table.name, c.name, c.comment or "", c.info.get("classification")))
            for c in table.columns
        ],
        constraints=dg.TableConstraints(other=[f"primary key ({', '.join(key)})"] if key else []),
    )


def preview(frame: pd.DataFrame, rows: int = 5) -> dg.MarkdownMetadataValue:
    if frame.empty:
        return dg.MetadataValue.md("_no rows_")
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False))


def first_row_text(frame: pd.DataFrame) -> str:
    """The first row as `column=value, …`: the example a failed check's description names."""
    return ", ".join(f"{k}={v}" for k, v in frame.iloc[0].to_dict().items())


def classification_markdown() -> str:
    """The classified columns as the README's data-classification table (generated, so it cannot drift)."""
    from demand_control.schema.tables import CLASSIFICATION

    rows = ["| Table | Column | Classification |", "|---|---|---|"]
    rows += [f"| `{table}` | `{column}` | {classification} |" for (table, column), classification in sorted(CLASSIFICATION.items())]
    return "\n".join(rows)


def plot_metadata(figures: dict[str, int | float]) -> dict[str, dg.MetadataValue]:
    """Plain numbers as Dagster numeric metadata (int or float), which the asset's Plots tab charts run over
    run; a figure with nothing to measure (NaN) is left out rather than plotted as a gap of text."""
    out: dict[str, dg.MetadataValue] = {}
    for name, value in figures.items():
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            out[name] = dg.MetadataValue.int(int(value))
        elif value is not None and np.isfinite(value):
            out[name] = dg.MetadataValue.float(float(value))
    return out
