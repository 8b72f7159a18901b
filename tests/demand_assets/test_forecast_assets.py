"""The forecasts group end to end on the embedded warehouse: ingest a small landscape, profile, forecast
and backtest it, and every blocking check passes on the result."""

from __future__ import annotations

import dagster as dg
import numpy as np

from demand_control.definitions import build_definitions
from demand_control.demand_assets.jobs import FORECAST_JOB_NAME
from demand_control.planning.metrics import QUANTILE_COLUMNS
from demand_control.resources import FileDropSource, QualitySettings, Warehouse
from tests.demand_assets.test_ingestion import run_ingestion


def test_forecast_job_writes_validated_tables(tmp_path, file_drop, small_landscape_frames) -> None:
    warehouse = Warehouse(home=str(tmp_path / "state"))
    instance = dg.DagsterInstance.ephemeral()
    assert run_ingestion(file_drop, warehouse, instance=instance).success
    horizon = 13
    defs = build_definitions(
        {
            "warehouse": warehouse,
            "signal_source": FileDropSource(folder=str(file_drop)),
            "quality_settings": QualitySettings(),
        }
    )
    run_config = {"resources": {"forecast_settings": {"config": {"horizon": horizon, "n_jobs": 1}}}}
    job = defs.resolve_job_def(FORECAST_JOB_NAME)
    result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=run_config)
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert {"forecast_complete", "forecast_values_valid", "quantiles_ordered", "accuracy_vs_seasonal_naive"} <= set(checks)
    blocking = {k: v for k, v in checks.items() if k != "forecast_degraded"}
    assert all(blocking.values()), checks

    history = small_landscape_frames["demand_history"]
    series = history.groupby(["sku", "location_id"], observed=True).ngroups
    profile = warehouse.read("demand_profile")
    assert len(profile) == series
    assert set(profile["demand_class"]) <= {"smooth", "erratic", "intermittent", "lumpy"}
    forecast = warehouse.read("demand_forecast")
    assert len(forecast) == series * horizon
    values = forecast[["mean", *QUANTILE_COLUMNS]].to_numpy()
    assert np.isfinite(values).all() and (values >= 0).all()
    assert forecast["period_start"].min() > history["period_start"].max().date()
    accuracy = warehouse.read("forecast_accuracy")
    assert set(accuracy["scope"]) == {"series", "class", "overall"}
    overall = accuracy[accuracy["scope"] == "overall"].iloc[0]
    assert overall["rmsse"] <= overall["benchmark_rmsse"]
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"demand_profile", "demand_forecast", "forecast_accuracy"}
