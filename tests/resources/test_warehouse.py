"""The warehouse's schema check holds when threads reach it together, as the daemon's sensors do on their first
tick."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from demand_control.resources.warehouse import Warehouse


def test_threads_reaching_a_fresh_warehouse_at_once_all_find_the_schema(tmp_path) -> None:
    # Several fresh databases: one pair of threads does not always meet inside Alembic.
    for attempt in range(3):
        warehouse = Warehouse(home=str(tmp_path / f"attempt{attempt}"))
        start = threading.Barrier(4)

        def first_use(how: str) -> int:
            start.wait()
            if how == "migrate":
                warehouse.migrate()
                return 0
            return warehouse.count("inbox_events")

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(first_use, ["migrate", "count", "migrate", "count"]))
        assert results == [0, 0, 0, 0]



def test_bulk_insert_on_sqlite_stores_exactly_what_sqlalchemys_executemany_stores() -> None:
    """`bulk_insert` builds the driver's parameter rows column by column; the stored values (text of dates and
    timestamps, booleans as integers, NaN/NaT/NA as NULL, nullable integers, JSON) must be those of
    SQLAlchemy's own insert of `to_records(frame)`, row for row."""
    import datetime as dt

    import numpy as np
    import pandas as pd
    from sqlalchemy import JSON, Boolean, Column, Date, DateTime, Float, Integer, MetaData, String, Table, create_engine, text

    from demand_control.resources.warehouse import bulk_insert, to_records

    table = Table(
        "every_type", MetaData(), Column("id", Integer, primary_key=True), Column("name", String), Column("day", Date), Column("due", Date),
        Column("at", DateTime(timezone=True)), Column("qty", Float), Column("count", Integer), Column("flag", Boolean), Column("maybe", Boolean),
        Column("detail", JSON), Column("float_flag", Boolean), Column("mixed", String), Column("whole", Integer), Column("empty", Float),
        Column("text_id", String),
    )
    frame = pd.DataFrame({
        "name": ["SKU-1", None, "SKU-3"],
        "day": pd.to_datetime(["2026-11-23", None, "2026-12-07"]),
        "due": [dt.date(2026, 11, 23), None, dt.date(2026, 11, 23)],
        "at": pd.to_datetime(["2026-11-23 06:00:00.123456", None, "2026-11-23 06:00:00.123456"], utc=True),
        "float_flag": [1.0, np.nan, 0.0],
        "qty": [1.5, np.nan, -0.25],
        "count": pd.array([3, None, 5], dtype="Int64"),
        "flag": [True, False, True],
        "maybe": pd.array([True, None, False], dtype="boolean"),
        "detail": [{"a": 1}, None, [1, 2]],
        "mixed": pd.Series([np.int64(7), np.float64(0.5), "x"], dtype=object),  # numpy scalars the driver cannot bind
        "whole": np.array([1, 2, 3], dtype=np.int64),
        "empty": [np.nan, np.nan, np.nan],
        "text_id": ["a", np.nan, "c"],
    })
    stored = []
    for fast in (True, False):
        engine = create_engine("sqlite://")
        table.metadata.create_all(engine)
        with engine.begin() as conn:
            if fast:
                assert bulk_insert(conn, table, frame) == 3
            else:
                conn.execute(table.insert(), to_records(frame))
            stored.append(conn.execute(text("SELECT * FROM every_type ORDER BY id")).all())
    assert stored[0] == stored[1]
    assert [row[1] for row in stored[0]] == ["SKU-1", None, "SKU-3"]


def _every_type_table():  # noqa: ANN202
    from sqlalchemy import JSON, Boolean, Column, Date, DateTime, Float, Integer, MetaData, Numeric, String, Table, Text

    return Table(
        "every_type_read", MetaData(), Column("id", Integer, primary_key=True), Column("name", String), Column("note", Text),
        Column("day", Date), Column("at", DateTime(timezone=True)), Column("naive_at", DateTime), Column("qty", Float),
        Column("count", Integer), Column("flag", Boolean), Column("price", Numeric(12, 4)), Column("detail", JSON),
    )


def test_read_sqlite_returns_what_read_sql_returns_for_every_column_type() -> None:
    """`read_sqlite` skips SQLAlchemy's per-value result processing; the frame must still equal
    `pd.read_sql` of the same select: the same dtypes and values, NULLs included, whole columns of NULL,
    a where clause with a bound date, and no rows at all."""
    import datetime as dt
    from decimal import Decimal

    import pandas as pd
    from sqlalchemy import create_engine, select

    from demand_control.resources.warehouse import read_sqlite

    table = _every_type_table()
    utc = dt.timezone.utc
    rows = [
        {"id": 1, "name": "SKU-1", "note": "x", "day": dt.date(2026, 11, 23), "at": dt.datetime(2026, 11, 23, 6, 0, 0, 123456, tzinfo=utc),
         "naive_at": dt.datetime(2026, 11, 23, 6), "qty": 1.5, "count": 3, "flag": True, "price": Decimal("1.2500"), "detail": {"a": 1}},
        {"id": 2, "name": None, "note": None, "day": None, "at": None, "naive_at": None, "qty": None, "count": None, "flag": None,
         "price": None, "detail": None},
        {"id": 3, "name": "SKU-3", "note": "y", "day": dt.date(2026, 12, 7), "at": dt.datetime(2026, 11, 23, 6, 0, 0, 123456, tzinfo=utc),
         "naive_at": dt.datetime(2026, 12, 7, 18, 30), "qty": -0.25, "count": 5, "flag": False, "price": Decimal("3"), "detail": [1, 2]},
        {"id": 4, "name": "SKU-1", "note": "x", "day": dt.date(2026, 11, 23), "at": dt.datetime(2026, 12, 1, tzinfo=utc),
         "naive_at": dt.datetime(2026, 11, 23, 6), "qty": 2.0, "count": 3, "flag": True, "price": Decimal("1.2500"), "detail": {"a": 1}},
    ]
    engine = create_engine("sqlite://")
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    statements = [
        select(table).order_by(table.c.id),
        select(table.c.day, table.c.flag, table.c.price).where(table.c.day >= dt.date(2026, 11, 24)),
        select(table).where(table.c.id == 2),  # every typed column NULL
        select(table).where(table.c.id > 99),  # no rows
        select(table.c.name, table.c.at).where(table.c.name.in_(["SKU-1", "SKU-9"])),
    ]
    with engine.connect() as conn:
        for stmt in statements:
            expected = pd.read_sql(stmt, conn)
            got = read_sqlite(conn, stmt)
            pd.testing.assert_frame_equal(got, expected, check_exact=True)
            for name in expected.columns:  # object columns: the same Python types, not just equal values
                assert [type(v) for v in got[name]] == [type(v) for v in expected[name]], name
    first = read_sqlite(engine.connect(), statements[0])
    assert first["detail"][0] is not first["detail"][3]  # JSON values are not shared between rows


def test_warehouse_read_on_sqlite_equals_read_sql_on_every_schema_table(tmp_path) -> None:
    """Through the resource, on every table of the real schema with a date, timestamp or boolean column: rows
    written by `append_rows` (one with NULL in every nullable column) read back as `pd.read_sql` reads them."""
    import datetime as dt

    import pandas as pd
    from sqlalchemy import Boolean, Date, DateTime, Float, Integer, select

    from demand_control.schema.tables import metadata

    def sample(column, row: int):  # noqa: ANN001, ANN202
        if row == 1 and column.nullable and not column.primary_key:
            return None
        kind = column.type
        if isinstance(kind, Boolean):
            return row % 2 == 0
        if isinstance(kind, DateTime):
            return pd.Timestamp("2026-11-23 06:00:00.25", tz="UTC") + pd.Timedelta(hours=row)
        if isinstance(kind, Date):
            return dt.date(2026, 11, 23) + dt.timedelta(days=row)
        if isinstance(kind, Integer):
            return row
        if isinstance(kind, Float):
            return row + 0.5
        return f"v{row}"

    warehouse = Warehouse(home=str(tmp_path))
    checked = 0
    for name, table in metadata.tables.items():
        if table.foreign_keys or not any(isinstance(c.type, (Boolean, Date, DateTime)) for c in table.c):
            continue
        frame = pd.DataFrame([{c.name: sample(c, row) for c in table.c} for row in range(3)])
        warehouse.append_rows(name, frame)
        with warehouse.engine.connect() as conn:
            expected = pd.read_sql(select(table), conn)
        assert len(expected) == 3
        pd.testing.assert_frame_equal(warehouse.read(name), expected, check_exact=True)
        checked += 1
    assert checked > 10


def _update_rows_case(warehouse: Warehouse) -> None:
    """Cases ranked in place: the named columns of the named rows change (booleans, timestamps, numbers,
    NULLs), every other column and row stays, a key not stored updates nothing."""
    import pandas as pd

    from sqlalchemy import Boolean, Date, DateTime, Float, Integer

    warehouse.migrate()

    def filler(column):  # noqa: ANN001, ANN202
        kind = column.type
        if isinstance(kind, Boolean):
            return False
        if isinstance(kind, DateTime):
            return pd.Timestamp("2026-11-23 06:00", tz="UTC")
        if isinstance(kind, Date):
            return pd.Timestamp("2026-11-23").date()
        if isinstance(kind, (Integer, Float)):
            return 1
        return "v"

    table = warehouse.table("exception_lifecycle")
    stored = pd.DataFrame([{c.name: filler(c) for c in table.c if not c.nullable} for _ in range(3)]).assign(
        exception_key=["a", "b", "c"], sku=["S1", "S2", "S3"], money_at_risk=[10.0, 20.0, 30.0], cause_key=[None, "x", None],
        for_person=[False, True, False], priority=[3, 2, 1],
    )
    warehouse.append_rows("exception_lifecycle", stored)
    before = warehouse.read("exception_lifecycle").set_index("exception_key").sort_index()
    ranked = pd.DataFrame({
        "exception_key": ["c", "a", "zzz"], "cause_key": ["b", None, "q"], "for_person": [True, False, True],
        "expected_loss": [300.0, float("nan"), 1.0], "act_by": [pd.Timestamp("2026-11-25 12:30", tz="UTC"), pd.NaT, pd.NaT],
        "priority": [1, 2, 9],
    })
    assert warehouse.update_rows("exception_lifecycle", ranked, key="exception_key") == 2
    after = warehouse.read("exception_lifecycle").set_index("exception_key").sort_index()
    assert sorted(after.index) == ["a", "b", "c"]
    for column in before.columns:  # row b as stored, column by column (dtypes follow the other rows)
        was, now = before.loc["b", column], after.loc["b", column]
        assert (pd.isna(was) and pd.isna(now)) or was == now, column
    assert after.loc["c", "cause_key"] == "b" and bool(after.loc["c", "for_person"]) and after.loc["c", "priority"] == 1
    assert after.loc["c", "expected_loss"] == 300.0
    assert pd.Timestamp(after.loc["c", "act_by"]).strftime("%Y-%m-%d %H:%M") == "2026-11-25 12:30"
    assert after.loc["a", "cause_key"] is None and not bool(after.loc["a", "for_person"]) and after.loc["a", "priority"] == 2
    assert pd.isna(after.loc["a", "expected_loss"]) and pd.isna(after.loc["a", "act_by"])
    untouched = [c for c in before.columns if c not in ranked.columns]
    pd.testing.assert_frame_equal(after[untouched], before[untouched])
    with pytest.raises(ValueError, match="no_such_column"):
        warehouse.update_rows("exception_lifecycle", ranked.assign(no_such_column=1), key="exception_key")


def test_update_rows_on_sqlite_changes_only_the_named_columns_of_the_named_rows(tmp_path) -> None:
    _update_rows_case(Warehouse(home=str(tmp_path)))


def test_update_rows_on_postgres_changes_only_the_named_columns_of_the_named_rows(postgres_database) -> None:
    _update_rows_case(Warehouse(database_url=postgres_database["url"]))
