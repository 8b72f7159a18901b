"""The location_id indexes a region's run reads by survive a whole-table bulk replace on PostgreSQL (which
drops the key and the indexes for the COPY and rebuilds them)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import inspect

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
