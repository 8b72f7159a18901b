"""The warehouse's schema check holds when threads reach it together, as the daemon's sensors do on their first
tick."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

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
        Column("detail", JSON), Column("float_flag", Boolean),
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
