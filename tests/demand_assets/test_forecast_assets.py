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
    # Segments (the series selected and bias-checked together) have rows of their own since issue 14.
    assert set(accuracy["scope"]) == {"series", "segment", "class", "overall"}
    overall = accuracy[accuracy["scope"] == "overall"].iloc[0]
    assert overall["rmsse"] <= overall["benchmark_rmsse"]
    segments = accuracy[accuracy["scope"] == "segment"]
    assert segments["bias_factor"].between(0.8, 1.2).all() and segments["bias_systematic"].notna().all()
    corrected = segments[segments["bias_systematic"].astype(bool)]
    assert (corrected["bias_pct"].abs() <= corrected["bias_pct_raw"].abs() + 1e-9).all()
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"demand_profile", "demand_forecast", "forecast_accuracy"}
    # The pipeline signal is off by default: its column is there, and zero.
    assert (forecast["pipeline_qty"] == 0).all() and np.allclose(forecast["mean"], forecast["base_mean"])
    assert set(profile["seasonal_source"].fillna("")) <= {"", "own", "category", "class", "panel"}
    assert profile["category"].notna().all()


def test_pipeline_signal_adjusts_the_forecast_in_its_own_column_capped(tmp_path, file_drop, small_landscape_frames) -> None:
    warehouse = Warehouse(home=str(tmp_path / "state"))
    instance = dg.DagsterInstance.ephemeral()
    assert run_ingestion(file_drop, warehouse, instance=instance).success
    defs = build_definitions(
        {"warehouse": warehouse, "signal_source": FileDropSource(folder=str(file_drop)), "quality_settings": QualitySettings()}
    )
    config = {"horizon": 13, "n_jobs": 1, "pipeline_signal": True, "pipeline_max_uplift": 0.5}
    result = defs.resolve_job_def(FORECAST_JOB_NAME).execute_in_process(
        instance=instance, raise_on_error=False, run_config={"resources": {"forecast_settings": {"config": config}}}
    )
    assert result.success
    forecast = warehouse.read("demand_forecast")
    adjusted = forecast[forecast["pipeline_qty"] > 0]
    assert len(adjusted) > 0
    assert np.allclose(forecast["mean"], forecast["base_mean"] + forecast["pipeline_qty"])
    assert (forecast["pipeline_qty"] <= 0.5 * forecast["base_mean"] + 1e-9).all()
    # Only open opportunities within the horizon count.
    pipeline = small_landscape_frames["pipeline_opportunity"]
    open_pipe = pipeline[pipeline["stage"].isin(["prospecting", "qualification", "proposal", "negotiation"])]
    assert set(adjusted["sku"]) <= set(open_pipe["sku"])
