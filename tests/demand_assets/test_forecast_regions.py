"""Forecasts partitioned by planning region, on a sample distributor of 6 DCs in 5 regions (North holds two):
the whole-panel run (every partition, the forecast job's default) is the engine run over the whole history
that the unpartitioned assets made; a region's run reads only its DCs' history, forecasts it on its own and
replaces only its rows, and the panel's class and overall accuracy rows roll up exactly across regions; the
plan_region job runs one region from its forecast to its actions.

Every scenario starts from a copy of one ingested warehouse, forecast once on the whole panel."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from demand_control.definitions import build_definitions
from demand_control.demand_assets.forecasts import history_panel, series_categories
from demand_control.demand_assets.jobs import FORECAST_JOB_NAME
from demand_control.demand_assets.regions import PLAN_REGION_JOB_NAME, REGION_TAG
from demand_control.resources import FileDropSource, QualitySettings, Warehouse
from demand_control.resources.forecast import ForecastSettingsResource
from demand_control.sample import generate_landscape, write_landscape
from demand_control.services.forecast_regions import rolled_up_accuracy
from demand_control.services.regions import RegionScope
from tests.conftest import AS_OF
from tests.demand_assets.test_ingestion import run_ingestion

HORIZON = 13
REGIONS = ("North", "South", "East", "West", "Central")
FORECAST_SETTINGS = {"horizon": HORIZON, "n_jobs": 1}
FORECAST_CONFIG = {"resources": {"forecast_settings": {"config": FORECAST_SETTINGS}}}
FORECAST_ASSETS = [dg.AssetKey("demand_profile"), dg.AssetKey("demand_forecast"), dg.AssetKey("forecast_accuracy")]
PLAN_OPS = ("inventory_policy", "projected_inventory", "planning_exceptions", "allocation_scenarios", "recommended_actions")
FORECAST_KEYS = {
    "demand_profile": ["sku", "location_id"],
    "demand_forecast": ["sku", "location_id", "period_start"],
}
SUMMARY_METRICS = ["series", "points", "rmsse", "mase", "spl", "bias_pct", "bias_pct_raw", "cover80", "benchmark_rmsse",
                   "recent_rmsse", "earlier_rmsse", "actual_units", "bias_units", "bias_units_raw"]
BLOCKING_CHECKS = {"forecast_complete", "forecast_values_valid", "quantiles_ordered", "accuracy_vs_seasonal_naive"}


def _defs(warehouse: Warehouse, drop: Path | None = None) -> dg.Definitions:
    return build_definitions({"warehouse": warehouse, "signal_source": FileDropSource(folder=str(drop or "")), "quality_settings": QualitySettings()})


@pytest.fixture(scope="module")
def forecast_home(tmp_path_factory) -> Path:  # noqa: ANN001
    """A state folder with the staged tables of 20 SKUs at 6 DCs, forecast by the forecast job (every region)."""
    tmp = tmp_path_factory.mktemp("forecast_regions")
    frames = generate_landscape(skus=20, locations=6, weeks=110, seed=5, as_of=AS_OF)
    assert frames["location"].groupby("region")["location_id"].count().to_dict() == {"Central": 1, "East": 1, "North": 2, "South": 1, "West": 1}
    write_landscape(frames, tmp / "drop", "parquet")
    warehouse = Warehouse(home=str(tmp / "base"))
    instance = dg.DagsterInstance.ephemeral()
    assert run_ingestion(tmp / "drop", warehouse, instance=instance).success
    result = _defs(warehouse, tmp / "drop").resolve_job_def(FORECAST_JOB_NAME).execute_in_process(instance=instance, run_config=FORECAST_CONFIG)
    assert result.success
    # The whole panel is every region's partition, in one run.
    for key in FORECAST_ASSETS:
        assert instance.get_materialized_partitions(key) == set(REGIONS), key
    return tmp / "base"


def _copy(forecast_home: Path, tmp_path: Path, name: str) -> Warehouse:
    shutil.copytree(forecast_home, tmp_path / name)
    return Warehouse(home=str(tmp_path / name))


def _region_of(warehouse: Warehouse) -> pd.Series:
    return warehouse.read("location").set_index("location_id")["region"]


def _sorted(frame: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    return frame.sort_values(key).reset_index(drop=True)


def _forecast_regions(warehouse: Warehouse, instance: dg.DagsterInstance, regions: tuple[str, ...]) -> list[dg.ExecuteInProcessResult]:
    job = _defs(warehouse).resolve_job_def(PLAN_REGION_JOB_NAME)
    return [
        job.execute_in_process(instance=instance, partition_key=region, asset_selection=FORECAST_ASSETS, run_config=FORECAST_CONFIG, raise_on_error=False)
        for region in regions
    ]


def _engine_run(warehouse: Warehouse, region: RegionScope | None) -> pd.DataFrame:
    """What the unpartitioned asset computed: the engine over the (region's, or whole) staged history."""
    from demand_control.planning.forecasting import forecast_panel

    settings = ForecastSettingsResource(**FORECAST_SETTINGS).engine_settings()
    panel, keys = history_panel(warehouse, settings, region)
    result = forecast_panel(panel, settings, series_categories(warehouse, keys))
    forecast = result.forecast.merge(keys, on="unique_id").rename(columns={"ds": "period_start"})
    forecast["period_start"] = pd.to_datetime(forecast["period_start"]).dt.date
    return _sorted(forecast[["sku", "location_id", "period_start", "mean", "q10", "q90", "model"]], FORECAST_KEYS["demand_forecast"])


def _table_forecast(warehouse: Warehouse) -> pd.DataFrame:
    forecast = warehouse.read("demand_forecast", columns=["sku", "location_id", "period_start", "base_mean", "q10", "q90", "model"])
    forecast["period_start"] = pd.to_datetime(forecast["period_start"]).dt.date
    return _sorted(forecast.rename(columns={"base_mean": "mean"}), FORECAST_KEYS["demand_forecast"])


def test_the_whole_panel_run_is_the_unpartitioned_engine_run_and_its_summaries_roll_up(forecast_home, tmp_path) -> None:  # noqa: ANN001
    warehouse = _copy(forecast_home, tmp_path, "whole")
    pd.testing.assert_frame_equal(_table_forecast(warehouse), _engine_run(warehouse, None), check_dtype=False)
    # The class and overall rows the whole-panel run wrote are what the roll-up across regions computes from
    # its series rows: a plan forecast region by region reports the panel's accuracy the same way.
    accuracy = warehouse.read("forecast_accuracy")
    assert {"series", "segment", "class", "overall"} == set(accuracy["scope"])
    written = _sorted(accuracy[accuracy["scope"].isin(["class", "overall"])], ["scope", "subject"])
    rolled = _sorted(rolled_up_accuracy(accuracy), ["scope", "subject"])
    assert list(rolled["subject"]) == list(written["subject"])
    pd.testing.assert_frame_equal(rolled[SUMMARY_METRICS].astype(float), written[SUMMARY_METRICS].astype(float), rtol=1e-9, atol=1e-9)


def test_a_region_run_forecasts_its_own_history_and_replaces_only_its_rows(forecast_home, tmp_path) -> None:  # noqa: ANN001
    warehouse = _copy(forecast_home, tmp_path, "north")
    region = _region_of(warehouse)
    before = {name: _sorted(warehouse.read(name), key) for name, key in FORECAST_KEYS.items()}
    accuracy_before = warehouse.read("forecast_accuracy")
    # Spoil North's rows (a stale forecast the run must replace) and remove one of South's (the run must not
    # write South's rows back): a run that replaced the whole table, or read the whole panel, would show it.
    spoiled = before["demand_forecast"].assign(mean=np.where(before["demand_forecast"]["location_id"].map(region) == "North", -1.0, before["demand_forecast"]["mean"]))
    south = before["demand_forecast"]["location_id"].map(region) == "South"
    dropped = before["demand_forecast"][south].iloc[[0]]
    warehouse.replace_rows("demand_forecast", spoiled.drop(index=dropped.index))

    instance = dg.DagsterInstance.ephemeral()
    (result,) = _forecast_regions(warehouse, instance, ("North",))
    assert result.success
    assert {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} == {key.to_user_string() for key in FORECAST_ASSETS}
    assert all(e.partition == "North" for e in result.get_asset_materialization_events())
    assert result.dagster_run.tags[REGION_TAG] == "North"
    # The forecast checks judge the table after the region's rows were replaced, and pass.
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert BLOCKING_CHECKS <= set(checks) and all(checks[name] for name in BLOCKING_CHECKS), checks

    after = {name: _sorted(warehouse.read(name), key) for name, key in FORECAST_KEYS.items()}
    for name, key in FORECAST_KEYS.items():
        in_north = after[name]["location_id"].map(region) == "North"
        assert set(after[name].loc[in_north, "location_id"]) == set(region[region == "North"].index), name
        # Everything outside North is exactly as it was (South's removed row stays removed).
        expected_rest = before[name][before[name]["location_id"].map(region) != "North"]
        if name == "demand_forecast":
            expected_rest = expected_rest.drop(index=dropped.index)
        pd.testing.assert_frame_equal(after[name][~in_north].reset_index(drop=True), expected_rest.reset_index(drop=True), check_dtype=False, obj=name)
    # North was forecast from North's history alone: the engine over its two DCs gives these rows.
    north = RegionScope.of(warehouse, ["North"])
    table = _table_forecast(warehouse)
    pd.testing.assert_frame_equal(table[table["location_id"].isin(north.location_ids)].reset_index(drop=True), _engine_run(warehouse, north), check_dtype=False)

    accuracy = warehouse.read("forecast_accuracy")
    series = accuracy[accuracy["scope"] == "series"]
    old_series = accuracy_before[accuracy_before["scope"] == "series"]
    outside = lambda frame: _sorted(frame[frame["location_id"].map(region) != "North"], ["subject"]).reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(outside(series), outside(old_series), check_dtype=False)
    assert set(series["location_id"]) == set(old_series["location_id"])
    # North's selection has segment rows of its own; the whole panel's are still there for the other regions.
    segments = accuracy.loc[accuracy["scope"] == "segment", "subject"]
    assert segments.str.startswith("North/").any() and (~segments.str.contains("/")).any()
    # The panel's class and overall rows are rolled up again from every region's series rows.
    written = _sorted(accuracy[accuracy["scope"].isin(["class", "overall"])], ["scope", "subject"])
    rolled = _sorted(rolled_up_accuracy(accuracy), ["scope", "subject"])
    pd.testing.assert_frame_equal(rolled[SUMMARY_METRICS].astype(float), written[SUMMARY_METRICS].astype(float), rtol=1e-9, atol=1e-9)
    assert int(written.loc[written["scope"] == "overall", "series"].iloc[0]) == len(series)


def test_a_region_rerun_is_idempotent_and_a_backfill_covers_every_series(forecast_home, tmp_path) -> None:  # noqa: ANN001
    warehouse = _copy(forecast_home, tmp_path, "backfill")
    instance = dg.DagsterInstance.ephemeral()
    assert all(r.success for r in _forecast_regions(warehouse, instance, REGIONS))
    for key in FORECAST_ASSETS:
        assert instance.get_materialized_partitions(key) == set(REGIONS), key
    whole = _copy(forecast_home, tmp_path, "whole_again")
    # Every SKU-location of the whole panel has a profile and a full horizon; no row of a region is left twice.
    for name, key in FORECAST_KEYS.items():
        got, expected = warehouse.read(name, columns=key), whole.read(name, columns=key)
        pd.testing.assert_frame_equal(_sorted(got, key), _sorted(expected, key), check_dtype=False, obj=name)
    settled = {name: _sorted(warehouse.read(name), key) for name, key in {**FORECAST_KEYS, "forecast_accuracy": ["scope", "subject"]}.items()}
    assert all(r.success for r in _forecast_regions(warehouse, instance, ("South",)))
    for name, key in {**FORECAST_KEYS, "forecast_accuracy": ["scope", "subject"]}.items():
        pd.testing.assert_frame_equal(_sorted(warehouse.read(name), key), settled[name], check_dtype=False, obj=name)


def test_plan_region_runs_one_region_from_its_forecast_to_its_actions(forecast_home, tmp_path) -> None:  # noqa: ANN001
    warehouse = _copy(forecast_home, tmp_path, "plan_south")
    region = _region_of(warehouse)
    other_forecast = warehouse.read("demand_forecast")
    other_forecast = _sorted(other_forecast[other_forecast["location_id"].map(region) != "South"], FORECAST_KEYS["demand_forecast"])
    instance = dg.DagsterInstance.ephemeral()
    run_config = {"ops": {op: {"config": {"horizon_start": AS_OF.isoformat()}} for op in PLAN_OPS}, **FORECAST_CONFIG}
    result = _defs(warehouse).resolve_job_def(PLAN_REGION_JOB_NAME).execute_in_process(instance=instance, partition_key="South", run_config=run_config)
    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {key.to_user_string() for key in FORECAST_ASSETS} | set(PLAN_OPS) <= materialized
    chain = {key.to_user_string() for key in FORECAST_ASSETS} | set(PLAN_OPS)
    assert all(e.partition == "South" for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() in chain)
    assert result.dagster_run.tags[REGION_TAG] == "South"
    # The plan of South only: its DCs' policy and actions, the others' forecast untouched.
    assert set(warehouse.read("inventory_policy")["location_id"].map(region)) == {"South"}
    after = warehouse.read("demand_forecast")
    pd.testing.assert_frame_equal(
        _sorted(after[after["location_id"].map(region) != "South"], FORECAST_KEYS["demand_forecast"]), other_forecast, check_dtype=False
    )


def test_two_regions_rolling_accuracy_up_at_once_on_postgres_miss_neither(forecast_home, postgres_database) -> None:  # noqa: ANN001
    """North and South replace their backtest rows at the same time on PostgreSQL, three times over: the
    panel's class and overall rows always count both regions' new series rows (the roll-up of one never
    misses the other's fresh rows), and the other regions' rows stay as they were."""
    import threading

    from demand_control.services.forecast_regions import replace_region_accuracy

    source = Warehouse(home=str(forecast_home))
    target = Warehouse(database_url=str(postgres_database["url"]))
    target.migrate()
    target.append_rows("location", source.read("location"))
    accuracy = source.read("forecast_accuracy")
    target.append_rows("forecast_accuracy", accuracy)
    region = _region_of(source)
    series = accuracy[accuracy["scope"] == "series"]

    for attempt in range(1, 4):
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def write(name: str, attempt: int = attempt, barrier: threading.Barrier = barrier) -> None:
            try:
                scope = RegionScope.of(target, [name])
                own = series[series["location_id"].map(region) == name]
                # A recognisable new backtest: every series' RMSSE scaled by the attempt number.
                fresh = own.assign(rmsse=own["rmsse"] * (1 + attempt), computed_at=pd.Timestamp("2026-11-23 09:00", tz="UTC"))
                barrier.wait(timeout=60)
                replace_region_accuracy(target, scope, fresh)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(name,)) for name in ("North", "South")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        now = target.read("forecast_accuracy")
        now_series = now[now["scope"] == "series"]
        assert len(now_series) == len(series)
        changed = now_series["location_id"].map(region).isin(["North", "South"])
        expected = series.set_index("subject")["rmsse"] * np.where(series["location_id"].map(region).isin(["North", "South"]), 1 + attempt, 1)
        got = now_series.set_index("subject")["rmsse"]
        assert np.allclose(got.sort_index(), expected.sort_index(), equal_nan=True)
        assert changed.sum() > 0
        overall = now[now["scope"] == "overall"].iloc[0]
        assert overall["series"] == len(series)
        assert np.isclose(overall["rmsse"], expected.mean())
