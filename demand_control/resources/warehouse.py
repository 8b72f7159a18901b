"""The warehouse: one SQLAlchemy engine over a SQLite file (embedded default) or PostgreSQL (production).

Every table comes from `demand_control.schema.tables` and is created or upgraded by Alembic. Bulk writes take the
engine's fast path: COPY on PostgreSQL, executemany on SQLite.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from pandas.api.extensions import ExtensionDtype
from pandas._libs import lib
from pandas.core.dtypes.cast import maybe_box_native
from pandas.core.dtypes.dtypes import DatetimeTZDtype
from pandas.core.internals.construction import convert_object_array
from pydantic import Field
from sqlalchemy import ARRAY, JSON, Column, Date, Engine, Float, MetaData, PickleType, Select, Table, bindparam, create_engine, delete, event, func, select, text
from sqlalchemy.engine import Connection

from demand_control.infra import settings
from demand_control.schema.tables import metadata

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

_SQLITE_CHUNK = 5_000
_MIGRATED: set[str] = set()
# Alembic keeps its running migration in a module-level proxy, so two threads upgrading at once (sensors
# evaluated side by side) break each other (`KeyError: 'script'`); one upgrade at a time per process.
_MIGRATE_LOCK = threading.Lock()
# A COPY batch holds its rows as Arrow columns and as CSV text twice (Arrow's buffer, the bytes sent): at 1M
# rows of a forecast or a projection that was ~0.5 GB on top of the frame; 250k rows cost the same time.
_COPY_CHUNK = 250_000
# Below this many rows, keeping the key during the load is as fast as rebuilding it.
_REBUILD_KEY_ABOVE = 100_000


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
    # Imported on use: Alembic adds most of a second to every run's start and is needed once per process.
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(files("demand_control") / "schema" / "migrations"))
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
        """Create or upgrade every table to the newest migration: the deploy step (`demand-control warehouse
        migrate`, the demo). Everything else gets the schema through `ensure_schema`."""
        self.ensure_schema()

    def ensure_schema(self) -> None:
        """Upgrade to the newest migration once per database and process (the migrations cannot change while
        the process runs), one thread at a time. Reads and writes through this resource call it; code that
        goes to `engine` directly calls it first."""
        if self.url in _MIGRATED:
            return
        with _MIGRATE_LOCK:
            if self.url in _MIGRATED:  # another thread upgraded while this one waited
                return
            from alembic import command

            with self.engine.begin() as conn:
                cfg = alembic_config(self.url)
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
            _MIGRATED.add(self.url)

    def table(self, name: str) -> Table:
        return metadata.tables[name]

    def read(self, name: str, columns: Iterable[str] | None = None, where: Any = None) -> pd.DataFrame:
        self.ensure_schema()
        table = self.table(name)
        cols = [table.c[c] for c in columns] if columns else list(table.c)
        stmt = select(*cols)
        if where is not None:
            stmt = stmt.where(where)
        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                return read_sqlite(conn, stmt)
            return pd.read_sql(stmt, conn)

    def count(self, name: str, where: Any = None) -> int:
        self.ensure_schema()
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
        self.ensure_schema()
        table = self.table(name)
        with self.engine.begin() as conn:
            if where is None and conn.dialect.name == "postgresql":
                return replace_table_postgres(conn, table, frame)
            conn.execute(delete(table) if where is None else delete(table).where(where))
            return bulk_insert(conn, table, frame)

    def append_rows(self, name: str, frame: pd.DataFrame) -> int:
        self.ensure_schema()
        with self.engine.begin() as conn:
            return bulk_insert(conn, self.table(name), frame)

    def update_rows(self, name: str, frame: pd.DataFrame, key: str) -> int:
        """Set the frame's other columns on the stored rows whose `key` (a unique column) it names, in one
        transaction; every other column and row stays as stored. Far cheaper than reading those rows,
        changing a few columns and replacing them: nothing is read and only the named columns are written.
        Returns the number of rows updated (keys not stored update nothing)."""
        self.ensure_schema()
        table = self.table(name)
        require_known_columns(table, frame)
        if key not in frame.columns:
            raise ValueError(f"table {table.name}: cannot update by {key!r}, a column the frame does not have")
        others = [c for c in frame.columns if c != key]
        if frame.empty or not others:
            return 0
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                return _update_postgres(conn, table, frame, key, others)
            compiled = table.update().where(table.c[key] == bindparam("_key")).compile(dialect=conn.dialect, column_keys=others)
            values = driver_values(conn, table, frame)
            values["_key"] = values[key]
            rows = list(zip(*(values[name] for name in compiled.positiontup)))
            updated = 0
            for start in range(0, len(rows), _SQLITE_CHUNK):
                updated += conn.exec_driver_sql(str(compiled), rows[start : start + _SQLITE_CHUNK]).rowcount
            return updated



def warehouse_from_env() -> Warehouse:
    """The warehouse the environment configures, for code outside a run (the CLI, the gateway, the demo)."""
    return Warehouse(database_url=os.environ.get(settings.DATABASE_URL_ENV, ""), home=os.environ.get(settings.HOME_ENV, ""))

def bulk_insert(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    """Insert a frame through the engine's fastest path: COPY on PostgreSQL, executemany elsewhere."""
    if frame.empty:
        return 0
    require_known_columns(table, frame)
    if conn.dialect.name == "postgresql":
        copy_frame(conn, table, frame)
    elif _driver_insert_ok(table, frame):
        statement, rows = driver_rows(conn, table, frame)
        for start in range(0, len(rows), _SQLITE_CHUNK):
            conn.exec_driver_sql(statement, rows[start : start + _SQLITE_CHUNK])
    else:
        records = to_records(frame)
        for start in range(0, len(records), _SQLITE_CHUNK):
            conn.execute(table.insert(), records[start : start + _SQLITE_CHUNK])
    return len(frame)


def require_known_columns(table: Table, frame: pd.DataFrame) -> None:
    """Refuse a frame with a column the table lacks, naming them."""
    unknown = [c for c in frame.columns if c not in table.c]
    if unknown:
        raise ValueError(f"table {table.name} has no column(s) {unknown}")


def _driver_insert_ok(table: Table, frame: pd.DataFrame) -> bool:
    """Whether a plain executemany of the frame's columns is the whole insert: no column the frame leaves
    out has a Python-side default SQLAlchemy would fill in."""
    given = set(frame.columns)
    return all(c.default is None and c.onupdate is None for c in table.c if c.key not in given)


def driver_rows(conn: Connection, table: Table, frame: pd.DataFrame) -> tuple[str, list[tuple]]:
    """The INSERT statement and the parameter tuples SQLAlchemy would bind for `to_records(frame)`, built
    column by column (`driver_values`). SQLAlchemy's own executemany builds and processes a dict per row,
    which is most of a bulk load's time on SQLite."""
    compiled = table.insert().compile(dialect=conn.dialect, column_keys=list(frame.columns))
    values = driver_values(conn, table, frame)
    rows = list(zip(*(values[key] for key in compiled.positiontup)))
    return str(compiled), rows


def driver_values(conn: Connection, table: Table, frame: pd.DataFrame) -> dict[str, list]:
    """Each column's values as SQLAlchemy would bind them for `to_records(frame)`: the same Python values
    (missing markers as None, numpy scalars boxed), through the same bind processors of the column types."""
    dialect = conn.dialect
    values: dict[str, list] = {}
    for name in frame.columns:
        series = frame[name]
        column_type = table.c[name].type
        process = column_type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None and isinstance(column_type, Float) and not column_type.asdecimal and series.dtype.kind == "f":
            process = None  # a float column's values are Python floats already: to_float returns them unchanged
        if process is not None and series.dtype != object:
            # Dates, timestamps, booleans: few distinct values (a load's computed_at is one), each boxed and
            # processed once instead of once per row.
            codes, uniques = pd.factorize(series)
            processed = np.empty(len(uniques) + 1, dtype=object)  # the last slot (code -1) is a missing value
            for i, value in enumerate(uniques.astype(object)):
                processed[i] = process(maybe_box_native(value))
            values[name] = processed[codes].tolist()
            continue
        column = _python_values(series)
        values[name] = [process(v) for v in column] if process is not None else column
    return values


def _update_postgres(conn: Connection, table: Table, frame: pd.DataFrame, key: str, others: list[str]) -> int:
    """`update_rows` on PostgreSQL: COPY the frame into a temporary table of those columns, then one UPDATE
    joined on the key."""
    staged = Table(f"_update_{table.name}", MetaData(), *[Column(c, table.c[c].type) for c in [key, *others]])
    columns = ", ".join(f'"{c}"' for c in [key, *others])
    conn.execute(text(f'CREATE TEMPORARY TABLE "{staged.name}" ON COMMIT DROP AS SELECT {columns} FROM "{table.name}" WITH NO DATA'))
    copy_frame(conn, staged, frame[[key, *others]])
    assignments = ", ".join(f'"{c}" = u."{c}"' for c in others)
    result = conn.execute(text(f'UPDATE "{table.name}" AS t SET {assignments} FROM "{staged.name}" AS u WHERE t."{key}" = u."{key}"'))
    return int(result.rowcount)


def read_sqlite(conn: Connection, stmt: Select) -> pd.DataFrame:
    """`pd.read_sql(stmt, conn)` on SQLite, value for value and dtype for dtype, without its per-value cost.

    SQLAlchemy runs every value of every row through its column type's result processor (text to date,
    integer to bool) and builds a Row per row; nearly all of a warehouse read's time. Here the driver's raw
    rows are taken from the cursor, each typed column is processed once per distinct value, and the columns
    go through the same pandas conversion `read_sql` applies to them."""
    result = conn.execute(stmt)
    try:
        raw = result.cursor.fetchall()
    finally:
        result.close()
    names = list(result.keys())
    if not raw:
        return pd.DataFrame(columns=names)  # what read_sql returns for no rows: object columns
    content = lib.to_object_array_tuples(raw).T
    dialect = conn.dialect
    columns = []
    for values, selected in zip(content, stmt.selected_columns):
        impl = selected.type.dialect_impl(dialect)
        process = impl.result_processor(dialect, None)
        if process is None:
            columns.append(values)
        elif isinstance(impl, (JSON, PickleType, ARRAY)):
            # Mutable results: every row gets its own object, as SQLAlchemy gives it.
            column = np.empty(len(values), dtype=object)
            for i, value in enumerate(values):
                column[i] = process(value)
            columns.append(column)
        else:
            codes, uniques = pd.factorize(values)
            processed = np.empty(len(uniques) + 1, dtype=object)  # the last slot (code -1) is NULL
            processed[:-1] = [process(v) for v in uniques]
            processed[-1] = process(None)
            columns.append(processed[codes])
    arrays = convert_object_array(columns, dtype=None, coerce_float=True, dtype_backend="numpy")
    frame = pd.DataFrame(dict(zip(range(len(names)), arrays)))
    frame.columns = names
    for i, dtype in enumerate(frame.dtypes):
        if isinstance(dtype, DatetimeTZDtype):  # read_sql's one date parse without parse_dates: tz-aware to UTC
            frame.isetitem(i, pd.to_datetime(frame.iloc[:, i], utc=True))
    return frame


_NATIVE_TYPES = frozenset({str, int, float, bool, type(None)})


def _python_values(series: pd.Series) -> list:
    """The column as `to_records` gives it to the driver: Python values, missing markers as None, numpy
    scalars boxed. Built from one `tolist` per column: boxing value by value is most of a bulk load."""
    missing = series.isna().to_numpy()
    if series.dtype.kind in "biuf":
        # tolist gives the Python int/float/bool astype(object) gives; only the NaNs need replacing.
        column = series.to_numpy().tolist()
        if missing.any():
            column = [None if gone else value for value, gone in zip(column, missing)]
        return column
    column = series.astype(object).where(~missing, None).tolist()
    if (series.dtype == object or isinstance(series.dtype, ExtensionDtype)) and not set(map(type, column)) <= _NATIVE_TYPES:
        column = [maybe_box_native(v) for v in column]
    return column


def replace_table_postgres(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    """Replace a whole table the way bulk loads are fast on PostgreSQL: truncate, drop the primary key and
    the indexes, COPY, rebuild them once. All inside the caller's transaction, so a duplicate key rolls
    everything back and the old rows stay."""
    conn.execute(text(f'TRUNCATE "{table.name}"'))
    if len(frame) <= _REBUILD_KEY_ABOVE:
        return bulk_insert(conn, table, frame)
    with keys_rebuilt_after(conn, table):
        return bulk_insert(conn, table, frame)


@contextmanager
def keys_rebuilt_after(conn: Connection, table: Table) -> Iterator[None]:
    """Drop a PostgreSQL table's primary key and indexes, let the caller COPY into it (in one go or chunk by
    chunk), and build them once at the end: far faster than maintaining them row by row. Inside the caller's
    transaction, so a duplicate key rolls the load back."""
    pk = table.primary_key
    has_key = pk is not None and len(pk.columns) > 0
    if has_key:
        conn.execute(text(f'ALTER TABLE "{table.name}" DROP CONSTRAINT "{pk.name}"'))
    for index in table.indexes:
        index.drop(conn)
    yield
    if has_key:
        columns = ", ".join(f'"{c.name}"' for c in pk.columns)
        conn.execute(text(f'ALTER TABLE "{table.name}" ADD CONSTRAINT "{pk.name}" PRIMARY KEY ({columns})'))
    for index in table.indexes:
        index.create(conn)


def copy_frame(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    """Stream a frame into PostgreSQL with COPY ... FROM STDIN, in CSV chunks Arrow writes.

    Arrow's CSV writer is several times faster than pandas'; an unquoted empty field is NULL.
    """
    column_list = ", ".join(f'"{c}"' for c in frame.columns)
    statement = f'COPY "{table.name}" ({column_list}) FROM STDIN WITH (FORMAT csv)'
    dbapi = conn.connection.dbapi_connection
    with dbapi.cursor() as cursor:
        for start in range(0, len(frame), _COPY_CHUNK):
            batch = _arrow_for_copy(frame.iloc[start : start + _COPY_CHUNK], table)
            sink = pa.BufferOutputStream()
            pacsv.write_csv(batch, sink, write_options=pacsv.WriteOptions(include_header=False))
            cursor.copy_expert(statement, io.BytesIO(sink.getvalue().to_pybytes()))


def _arrow_for_copy(frame: pd.DataFrame, table: Table) -> pa.Table:
    """Arrow columns whose CSV text PostgreSQL reads back exactly: dates as dates, timestamps pre-formatted."""
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    columns = []
    for name in arrow.column_names:
        column = arrow[name]
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if isinstance(table.c[name].type, Date) and pa.types.is_timestamp(column.type):
            column = column.cast(pa.timestamp("s", tz=column.type.tz)).cast(pa.date32())
        elif pa.types.is_timestamp(column.type):
            # Formatting every timestamp is Arrow's slow path; format each distinct value once instead.
            encoded = column.dictionary_encode().combine_chunks()
            text_values = pa.array(
                [None if v is None else v.isoformat() for v in encoded.dictionary.to_pylist()], type=pa.string()
            )
            column = pa.DictionaryArray.from_arrays(encoded.indices, text_values).cast(pa.string())
        columns.append(column)
    return pa.table(columns, names=arrow.column_names)
