"""The inventory group end to end on the embedded warehouse: ingest, forecast, then set the policy and project
the available balance; the tables obey the formulas they document."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd

from demand_control.definitions import build_definitions
from demand_control.demand_assets.jobs import FORECAST_JOB_NAME, INVENTORY_JOB_NAME
from demand_control.resources import FileDropSource, QualitySettings, Warehouse
from tests.conftest import AS_OF
from tests.demand_assets.test_ingestion import run_ingestion

HORIZON = 13


def test_inventory_policy_and_projection(tmp_path, file_drop, small_landscape_frames) -> None:
    warehouse = Warehouse(home=str(tmp_path / "state"))
    instance = dg.DagsterInstance.ephemeral()
    assert run_ingestion(file_drop, warehouse, instance=instance).success
    defs = build_definitions(
        {"warehouse": warehouse, "signal_source": FileDropSource(folder=str(file_drop)), "quality_settings": QualitySettings()}
    )
    forecast_config = {"resources": {"forecast_settings": {"config": {"horizon": HORIZON, "n_jobs": 1}}}}
    assert defs.resolve_job_def(FORECAST_JOB_NAME).execute_in_process(instance=instance, run_config=forecast_config).success
    ops = {"inventory_policy": {"config": {"horizon_start": AS_OF.isoformat()}},
           "projected_inventory": {"config": {"horizon_start": AS_OF.isoformat()}}}
    result = defs.resolve_job_def(INVENTORY_JOB_NAME).execute_in_process(instance=instance, run_config={"ops": ops})
    assert result.success

    series = small_landscape_frames["inventory_position"][["sku", "location_id"]].drop_duplicates()
    policy = warehouse.read("inventory_policy")
    assert len(policy) == len(series)
    assert (policy["safety_stock"] >= 0).all()
    assert (policy["reorder_point"] >= policy["safety_stock"] - 1e-9).all()
    assert (policy["order_up_to"] >= policy["reorder_point"] - 1e-9).all()
    assert set(policy["method"]) <= {"normal", "lead_time_quantile"}
    intermittent = policy["demand_class"].isin(["intermittent", "lumpy"])
    assert (policy.loc[intermittent, "method"] == "lead_time_quantile").all()
    assert set(policy["tier"]) <= {"strategic", "key", "standard"}

    projection = warehouse.read("projected_inventory").sort_values(["sku", "location_id", "period_start"])
    assert len(projection) == len(series) * HORIZON
    np.testing.assert_allclose(projection["closing"], projection["opening"] + projection["receipts"] - projection["demand"], atol=1e-6)
    np.testing.assert_allclose(projection["demand"], np.maximum(projection["forecast"], projection["committed"]), atol=1e-6)
    nxt = projection.groupby(["sku", "location_id"])["opening"].shift(-1)
    carried = nxt.notna()
    np.testing.assert_allclose(nxt[carried], projection.loc[carried, "closing"], atol=1e-6)
    assert (projection["stockout"] == (projection["closing"] < 0)).all()

    stock = small_landscape_frames["inventory_position"].set_index(["sku", "location_id"])
    first = projection[projection["bucket"] == 0].set_index(["sku", "location_id"])
    expected = stock["on_hand"] - stock["allocated"]
    pd.testing.assert_series_equal(first["opening"].sort_index(), expected.reindex(first.index).sort_index(),
                                   check_names=False, atol=1e-6)
    events = {e.asset_key.to_user_string(): e for e in result.get_asset_materialization_events()}
    assert events["projected_inventory"].materialization.metadata["dagster/row_count"].value == len(projection)
