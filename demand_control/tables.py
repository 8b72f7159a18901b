"""Every warehouse table, declared once as SQLAlchemy Core metadata.

Staged tables are generated from `contracts.py`; raw extracts keep the delivered text; operational tables
(feed loads, quarantine) record what each load did. Alembic migrations in `migrations/` are checked against
this metadata by a test, so the DDL cannot drift from the contracts.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeEngine

from demand_control import contracts
from demand_control.contracts import Contract

# A naming convention keeps constraint names identical on SQLite and PostgreSQL, which Alembic needs.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_SQL_TYPES: dict[str, type[TypeEngine]] = {
    "string": String,
    "integer": Integer,
    "float": Float,
    "boolean": Boolean,
    "date": Date,
    "datetime": DateTime,
    "json": Text,
}


def _sql_type(kind: str) -> TypeEngine:
    if kind == "datetime":
        return DateTime(timezone=True)
    return _SQL_TYPES[kind]()


def _staged_table(contract: Contract) -> Table:
    columns = [
        Column(
            col.name,
            _sql_type(col.type),
            primary_key=col.name in contract.key,
            nullable=not col.required and col.name not in contract.key,
            comment=col.description,
        )
        for col in contract.all_columns
    ]
    return Table(contract.name, metadata, *columns, comment=contract.description)


def raw_table_name(object_name: str) -> str:
    return f"raw_{object_name}"


def _raw_table(contract: Contract) -> Table:
    columns = [
        Column("load_id", Integer, nullable=False, comment="feed_load row this extract belongs to."),
        Column("row_number", Integer, nullable=False, comment="Position of the row in the delivered file (1-based)."),
        Column(
            "change",
            String(8),
            nullable=False,
            server_default="upsert",
            comment="upsert: the row as the source holds it now; remove: the source no longer holds it as open.",
        ),
    ]
    columns += [
        Column(col.name, Text, nullable=True, comment=f"As delivered: {col.description}") for col in contract.columns
    ]
    return Table(
        raw_table_name(contract.name),
        metadata,
        *columns,
        comment=f"Latest raw extract of {contract.name}, as delivered (text), before validation.",
    )


STAGED: dict[str, Table] = {name: _staged_table(c) for name, c in contracts.CONTRACTS.items()}
RAW: dict[str, Table] = {
    name: _raw_table(c) for name, c in contracts.CONTRACTS.items() if c.file_drop
}

feed_load = Table(
    "feed_load",
    metadata,
    Column("load_id", Integer, primary_key=True, autoincrement=True, comment="Load number."),
    Column("object", String(64), nullable=False, index=True, comment="Canonical object loaded."),
    Column("source_system", String(32), nullable=False, comment="System the feed came from."),
    Column("source_uri", Text, nullable=False, comment="File or endpoint the feed was read from."),
    Column("source_modified_at", DateTime(timezone=True), comment="When the source last changed the feed."),
    Column("extracted_at", DateTime(timezone=True), nullable=False, comment="When the raw extract was taken."),
    Column("rows_extracted", Integer, nullable=False, comment="Rows in the delivered feed."),
    Column(
        "mode",
        String(16),
        nullable=False,
        server_default="snapshot",
        comment="snapshot: the feed is the whole object; incremental: only what changed since the cursor.",
    ),
    Column("cursor", Text, comment="Source high-water mark after this extract (e.g. Tryton last_modified_at)."),
    Column("rows_removed", Integer, nullable=False, server_default="0", comment="Rows the source reported gone."),
    Column("columns_found", Text, nullable=False, comment="Columns the feed delivered, comma-separated."),
    Column("staged_at", DateTime(timezone=True), comment="When validation and staging finished."),
    Column("rows_staged", Integer, comment="Rows that passed every rule and were staged."),
    Column("rows_quarantined", Integer, comment="Rows held back in quarantine."),
    Column("structural_errors", Text, comment="Feed-level problems that blocked the load, one per line."),
    Column("status", String(16), nullable=False, comment="extracted, staged or rejected."),
    comment="One row per feed extract: where it came from, how fresh it is and what validation did with it.",
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("quarantine_id", Integer, primary_key=True, autoincrement=True, comment="Row number."),
    Column("load_id", Integer, nullable=False, index=True, comment="feed_load row that delivered the bad row."),
    Column("object", String(64), nullable=False, index=True, comment="Canonical object of the bad row."),
    Column("key", Text, nullable=False, comment="Key of the bad row, key columns joined by '|'."),
    Column("rule", String(128), nullable=False, comment="Rule the row broke (e.g. min_value, references:product.sku)."),
    Column("column", String(64), nullable=False, comment="Column holding the offending value."),
    Column("offending_value", Text, comment="The value that broke the rule, as text."),
    Column("loaded_at", DateTime(timezone=True), nullable=False, comment="When the row was quarantined."),
    comment="Rows held back from staged tables, with the rule they broke; the good rows of the feed went on.",
)
