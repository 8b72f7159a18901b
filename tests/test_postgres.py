"""Production shape: the ingestion graph on a PostgreSQL-backed Dagster instance and a PostgreSQL
warehouse loaded with COPY."""

from __future__ import annotations

import dagster as dg
import pytest

from demand_control.contracts import FILE_DROP_OBJECTS
from demand_control.resources import Warehouse
from tests.test_ingestion import check_results, run_ingestion

pytestmark = pytest.mark.postgres


def test_ingestion_graph_on_postgres_instance_and_warehouse(make_postgres_database, file_drop, small_landscape_frames) -> None:
    dagster_db = make_postgres_database()
    warehouse_db = make_postgres_database()
    warehouse = Warehouse(database_url=warehouse_db["url"])
    overrides = {"storage": {"postgres": {"postgres_url": dagster_db["url"]}}}
    with dg.instance_for_test(overrides=overrides) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = run_ingestion(file_drop, warehouse, instance=instance)
        assert result.success
        assert all(check_results(result).values())
        stored = instance.get_run_by_id(result.run_id)
        assert stored is not None and stored.is_success
        for name in FILE_DROP_OBJECTS:
            assert warehouse.count(name) == len(small_landscape_frames[name]), name
            record = instance.get_latest_materialization_event(dg.AssetKey(name))
            assert record is not None
            assert record.asset_materialization.metadata["dagster/row_count"].value == len(small_landscape_frames[name])
