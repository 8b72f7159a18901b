"""SQL statements every warehouse writer shares, in the dialect of the connection at hand (PostgreSQL or SQLite).

No Dagster import: the gateway writes through these too.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert


def insert_ignoring_conflicts(bind: Connection | Engine | str, table: Table, index_elements: Sequence[str] | None = None) -> Insert:
    """`INSERT … ON CONFLICT DO NOTHING` into `table` for `bind` (a connection, an engine or a dialect name):
    the idempotent write of every "record once" step (a notice, a decision, an escalation step). Add
    `.values(...)`; `index_elements` names the unique key whose conflict is expected (without it, any
    conflict is ignored). Both PostgreSQL and SQLite report a skipped row as rowcount 0."""
    name = bind if isinstance(bind, str) else bind.dialect.name
    dialect = postgresql if name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=index_elements)
