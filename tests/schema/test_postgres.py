"""Production shape: the ingestion, forecast and decision graphs on a PostgreSQL-backed Dagster instance
and a PostgreSQL warehouse loaded with COPY."""

from __future__ import annotations

import dagster as dg
import pytest

from demand_control.schema.contracts import FILE_DROP_OBJECTS
from demand_control.definitions import build_definitions
from demand_control.demand_assets.jobs import DECISION_JOB_NAME, FORECAST_JOB_NAME
from demand_control.resources import FileDropSource, QualitySettings, Warehouse
from tests.conftest import AS_OF
from tests.demand_assets.test_decision_assets import PLAN_OPS
from tests.demand_assets.test_ingestion import check_results, run_ingestion
from tests.schema.test_queries import example_queries, run_queries

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

        # The decision chain on the same PostgreSQL warehouse: COPY carries the JSON, timestamps and nullable
        # integers of the exception lifecycle, and a second run finds every exception again.
        defs = build_definitions({"warehouse": warehouse, "signal_source": FileDropSource(folder=str(file_drop)), "quality_settings": QualitySettings()})
        forecast_config = {"resources": {"forecast_settings": {"config": {"horizon": 13, "n_jobs": 1}}}}
        assert defs.resolve_job_def(FORECAST_JOB_NAME).execute_in_process(instance=instance, run_config=forecast_config).success
        ops = {op: {"config": {"horizon_start": AS_OF.isoformat()}} for op in PLAN_OPS}
        plan = defs.resolve_job_def(DECISION_JOB_NAME)
        assert plan.execute_in_process(instance=instance, run_config={"ops": ops}).success
        assert warehouse.read("exception_lifecycle")["occurrence"].eq(1).all()
        # The second plan counts the first one's auto-approved orders (in the outbox) as planned receipts;
        # from then on the data is unchanged and a re-run changes nothing.
        assert plan.execute_in_process(instance=instance, run_config={"ops": ops}).success
        first = warehouse.read("exception_lifecycle")
        assert len(first) > 0
        assert plan.execute_in_process(instance=instance, run_config={"ops": ops}).success
        second = warehouse.read("exception_lifecycle")
        assert len(second) == len(first) and set(second["last_change"]) <= {"unchanged", "untouched"}
        assert warehouse.count("recommended_actions") > 0 and warehouse.count("coordination_kpis") > 0
        # The analysts' example queries run unchanged on PostgreSQL (no event replan here: replan_log is empty).
        answers = run_queries(warehouse, example_queries())
        assert all(len(frame) > 0 for name, frame in answers.items() if name != "latest_event_replans"), {n: len(f) for n, f in answers.items()}


def test_copy_round_trips_awkward_values_and_a_bad_replace_keeps_old_rows(postgres_database) -> None:
    from datetime import UTC, date, datetime

    import pandas as pd
    import sqlalchemy

    warehouse = Warehouse(database_url=postgres_database["url"])
    warehouse.migrate()
    loaded_at = datetime(2026, 11, 27, 3, 4, 5, 123456, tzinfo=UTC)
    products = pd.DataFrame(
        {
            "sku": ["A,1", 'B"2', "C\n3"],
            "description": ["comma, inside", 'quote " inside', "newline\ninside"],
            "category": ["x", "x", "y"],
            "unit": ["each", "kg", "l"],
            "unit_cost": [1.5, 0.1, 3.0],
            "unit_price": [2.0, 0.2, 4.0],
            "substitute_skus": [None, "A,1", None],
            "active": [True, False, True],
            "source_system": "file_drop",
            "loaded_at": loaded_at,
        }
    )
    assert warehouse.replace_rows("product", products) == 3
    back = warehouse.read("product").sort_values("sku").reset_index(drop=True)
    assert back["sku"].tolist() == ["A,1", 'B"2', "C\n3"]
    assert back["description"].tolist() == products["description"].tolist()
    assert back["substitute_skus"].isna().tolist() == [True, False, True]
    assert back["active"].tolist() == [True, False, True]
    assert set(back["loaded_at"]) == {loaded_at}

    history = pd.DataFrame(
        {
            "sku": pd.Categorical(["A,1"] * 75_000 + ['B"2'] * 75_000),
            "location_id": "DC-01",
            "period_start": list(pd.date_range("1900-01-01", periods=75_000, freq="D")) * 2,
            "qty": 1.0,
            "source_system": "file_drop",
            "loaded_at": loaded_at,
        }
    )
    assert warehouse.replace_rows("demand_history", history) == 150_000
    with warehouse.engine.connect() as conn:
        first = conn.execute(sqlalchemy.text("select min(period_start) from demand_history")).scalar_one()
    assert first == date(1900, 1, 1)
    duplicated = pd.concat([history, history.iloc[[0]]], ignore_index=True)
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        warehouse.replace_rows("demand_history", duplicated)
    assert warehouse.count("demand_history") == 150_000, "a failed replace keeps the previous rows"
