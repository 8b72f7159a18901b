"""The warehouse: one SQLAlchemy engine over a SQLite file (embedded default) or PostgreSQL (production).

Every table comes from `demand_control.tables` and is created or upgraded by Alembic. Bulk writes take the
engine's fast path: COPY on PostgreSQL, executemany on SQLite.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from alembic import command
from alembic.config import Config as AlembicConfig
from pydantic import Field
from sqlalchemy import Engine, Table, create_engine, delete, event, func, select
from sqlalchemy.engine import Connection

from demand_control import settings
from demand_control.tables import metadata

_SQLITE_CHUNK = 5_000


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine (and pool) per URL per process; small pools keep Postgres connections bounded."""
    if url.startswith("sqlite"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
            # WAL lets the Dagster UI's readers and a run's writer work side by side.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_size=5, max_overflow=5, pool_pre_ping=True)


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(files("demand_control") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts with pandas' missing markers (NaN, NaT, NA) turned into None for the DB driver."""
    clean = frame.astype(object).where(frame.notna(), None)
    return clean.to_dict("records")


class Warehouse(dg.ConfigurableResource):
    """The analyst-facing warehouse (SQLite file by default, PostgreSQL when a URL is configured)."""

    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the warehouse, e.g. postgresql+psycopg2://user@host/db. "
        "Empty: a SQLite file in the state folder.",
    )
    home: str = Field(default="", description="State folder; empty: DEMAND_CONTROL_HOME or .demand_control/.")

    @property
    def state_home(self) -> Path:
        return Path(self.home).resolve() if self.home else settings.state_home()

    @property
    def url(self) -> str:
        return self.database_url or settings.sqlite_url(self.state_home)

    @property
    def engine(self) -> Engine:
        return engine_for(self.url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        """Create or upgrade every table to the newest migration."""
        with self.engine.begin() as conn:
            cfg = alembic_config(self.url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def table(self, name: str) -> Table:
        return metadata.tables[name]

    def read(self, name: str, columns: Iterable[str] | None = None, where: Any = None) -> pd.DataFrame:
        table = self.table(name)
        cols = [table.c[c] for c in columns] if columns else list(table.c)
        stmt = select(*cols)
        if where is not None:
            stmt = stmt.where(where)
        with self.engine.connect() as conn:
            return pd.read_sql(stmt, conn)

    def count(self, name: str, where: Any = None) -> int:
        table = self.table(name)
        stmt = select(func.count()).select_from(table)
        if where is not None:
            stmt = stmt.where(where)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def replace_rows(self, name: str, frame: pd.DataFrame, where: Any = None) -> int:
        """Delete the rows in scope (all by default) and load `frame`, in one transaction.

        Readers see the old rows or the new ones, never a half-loaded table.
        """
        table = self.table(name)
        with self.engine.begin() as conn:
            conn.execute(delete(table) if where is None else delete(table).where(where))
            return bulk_insert(conn, table, frame)

    def append_rows(self, name: str, frame: pd.DataFrame) -> int:
        with self.engine.begin() as conn:
            return bulk_insert(conn, self.table(name), frame)


def bulk_insert(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    """Insert a frame through the engine's fastest path: COPY on PostgreSQL, executemany elsewhere."""
    if frame.empty:
        return 0
    unknown = [c for c in frame.columns if c not in table.c]
    if unknown:
        raise ValueError(f"table {table.name} has no column(s) {unknown}")
    if conn.dialect.name == "postgresql":
        copy_frame(conn, table, frame)
    else:
        records = to_records(frame)
        for start in range(0, len(records), _SQLITE_CHUNK):
            conn.execute(table.insert(), records[start : start + _SQLITE_CHUNK])
    return len(frame)


def copy_frame(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    """Stream a frame into PostgreSQL with COPY ... FROM STDIN (CSV: an unquoted empty field is NULL)."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, na_rep="")
    buffer.seek(0)
    column_list = ", ".join(f'"{c}"' for c in frame.columns)
    dbapi = conn.connection.dbapi_connection
    with dbapi.cursor() as cursor:
        cursor.copy_expert(f'COPY "{table.name}" ({column_list}) FROM STDIN WITH (FORMAT csv)', buffer)
