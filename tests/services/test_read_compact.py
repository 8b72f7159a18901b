"""A region's compact read (`services.regions.read_compact`: chunk by chunk, equal text and dates sharing
one object) returns exactly the frame a plain `Warehouse.read` does, on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from demand_control.resources.warehouse import Warehouse
from demand_control.schema import tables
from demand_control.services.regions import RegionScope, read_compact, shared_values

NOW = pd.Timestamp("2026-11-23 09:00", tz="UTC")


def _staged(warehouse: Warehouse, frames: dict[str, pd.DataFrame]) -> None:
    warehouse.migrate()
    for name in ("location", "demand_history", "customer_order_line", "purchase_order_line"):
        warehouse.replace_rows(name, frames[name].assign(source_system="test", loaded_at=NOW))


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse(request, tmp_path) -> Warehouse:  # noqa: ANN001
    if request.param == "sqlite":
        return Warehouse(home=str(tmp_path / "state"))
    return Warehouse(database_url=str(request.getfixturevalue("postgres_database")["url"]))


@pytest.mark.parametrize("name", ["demand_history", "customer_order_line", "purchase_order_line"])
def test_a_compact_read_in_small_chunks_equals_the_plain_read(warehouse, small_landscape_frames, name) -> None:  # noqa: ANN001
    _staged(warehouse, small_landscape_frames)
    region = RegionScope.of(warehouse, [str(small_landscape_frames["location"]["region"].iloc[0])])
    where = region.clause(tables.metadata.tables[name])
    plain = warehouse.read(name, where=where)
    compact = read_compact(warehouse, name, where=where, chunk_rows=7)  # many chunks, one ragged
    assert len(plain) > 7 * 3
    pd.testing.assert_frame_equal(compact, plain)
    text = compact.select_dtypes(object).columns[0]
    assert compact[text].map(id).nunique() == compact[text].nunique()  # one object per distinct value


def test_a_compact_read_of_no_rows_has_the_plain_reads_columns(warehouse, small_landscape_frames) -> None:  # noqa: ANN001
    _staged(warehouse, small_landscape_frames)
    where = tables.metadata.tables["demand_history"].c.location_id == "no such DC"
    compact = read_compact(warehouse, "demand_history", columns=["sku", "period_start", "qty"], where=where)
    assert compact.empty
    assert list(compact.columns) == ["sku", "period_start", "qty"]


def test_shared_values_keeps_missing_values_and_leaves_columns_of_other_values_alone() -> None:
    shared: dict = {}
    first = shared_values(pd.Series(["DC-01", None, "DC-02"], dtype=object), shared)
    second = shared_values(pd.Series(["".join(["DC-", "01"]), "DC-02"], dtype=object), shared)
    assert first.iloc[1] is None
    assert second.iloc[0] is first.iloc[0] and second.iloc[1] is first.iloc[2]
    days = [shared_values(pd.Series([dt.date(2026, 1, 5)], dtype=object), shared).iloc[0] for _ in range(2)]
    assert days[0] is days[1]
    mixed = shared_values(pd.Series([1, True, "x"], dtype=object), shared)  # 1 and True hash alike
    assert mixed.iloc[1] is True and type(mixed.iloc[0]) is int
