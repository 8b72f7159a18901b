"""The location_id indexes a region's run reads by survive a whole-table bulk replace on PostgreSQL (which
drops the key and the indexes for the COPY and rebuilds them), and a load COPYed chunk by chunk between
dropping and rebuilding them (the 1M benchmark's staging) ends with them, or not at all."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from demand_control.resources import warehouse as warehouse_module
from demand_control.resources.warehouse import Warehouse


def test_a_bulk_replace_rebuilds_the_region_index(postgres_database, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(warehouse_module, "_REBUILD_KEY_ABOVE", 1)  # take the rebuild path with a few rows
    warehouse = Warehouse(database_url=str(postgres_database["url"]))
    rows = pd.DataFrame({
        "sku": ["A", "A", "B"], "location_id": ["N1", "S1", "N1"], "region": ["North", "South", "North"],
        "surplus": [1.0, 0.0, 2.0], "shortfall": [0.0, 3.0, 0.0], "forecast_value": [1.0, 2.0, 3.0],
        "computed_at": pd.Timestamp("2026-11-23 09:00", tz="UTC"),
    })
    assert warehouse.replace_rows("sku_location_balance", rows) == 3
    assert warehouse.replace_rows("sku_location_balance", rows) == 3  # the rebuilt key still refuses nothing twice
    inspector = inspect(warehouse.engine)
    assert {i["name"] for i in inspector.get_indexes("sku_location_balance")} == {"ix_sku_location_balance_region"}
    assert inspector.get_pk_constraint("sku_location_balance")["constrained_columns"] == ["sku", "location_id"]
    assert warehouse.count("sku_location_balance") == 3


def _balance(skus: list[str]) -> pd.DataFrame:
    return pd.DataFrame({
        "sku": skus, "location_id": "N1", "region": "North", "surplus": 1.0, "shortfall": 0.0, "forecast_value": 2.0,
        "computed_at": pd.Timestamp("2026-11-23 09:00", tz="UTC"),
    })


def test_a_load_copied_chunk_by_chunk_gets_its_key_and_indexes_back_once(postgres_database) -> None:  # noqa: ANN001
    warehouse = Warehouse(database_url=str(postgres_database["url"]))
    warehouse.ensure_schema()
    table = warehouse.table("sku_location_balance")
    with warehouse.engine.begin() as conn:
        with warehouse_module.keys_rebuilt_after(conn, table):
            assert inspect(conn).get_indexes("sku_location_balance") == []  # nothing maintained during the COPYs
            for chunk in (["A", "B"], ["C"]):
                warehouse_module.bulk_insert(conn, table, _balance(chunk))
    inspector = inspect(warehouse.engine)
    assert {i["name"] for i in inspector.get_indexes("sku_location_balance")} == {"ix_sku_location_balance_region"}
    assert inspector.get_pk_constraint("sku_location_balance")["constrained_columns"] == ["sku", "location_id"]
    assert sorted(warehouse.read("sku_location_balance")["sku"]) == ["A", "B", "C"]


def test_a_key_two_chunks_both_hold_rolls_the_whole_chunked_load_back(postgres_database) -> None:  # noqa: ANN001
    warehouse = Warehouse(database_url=str(postgres_database["url"]))
    warehouse.replace_rows("sku_location_balance", _balance(["OLD"]))
    table = warehouse.table("sku_location_balance")
    with pytest.raises(IntegrityError, match="is duplicated"), warehouse.engine.begin() as conn:
        with warehouse_module.keys_rebuilt_after(conn, table):
            for chunk in (["A", "B"], ["B"]):
                warehouse_module.bulk_insert(conn, table, _balance(chunk))
    assert list(warehouse.read("sku_location_balance")["sku"]) == ["OLD"]
    assert inspect(warehouse.engine).get_pk_constraint("sku_location_balance")["constrained_columns"] == ["sku", "location_id"]
