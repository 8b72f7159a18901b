"""The demand forecast the control arms plan with: the product's engine (`planning.forecasting.forecast_panel`
with the `forecast_settings` resource's defaults, as the `demand_forecast` asset runs it), refitted every
`every_weeks` weeks on the demand history known that Monday.

Customer demand (what was ordered, by promise week) is the same in every arm, so each refit is computed
once and shared by both control arms; between refits a plan uses the latest one, whose 26-week horizon
still covers the lead time and review period ahead (the projection starts at the plan's week).
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from demand_control.demand_assets.forecasts import KEY_SEPARATOR, accuracy_rows
from demand_control.resources.forecast import ForecastSettingsResource
from demand_control.twin.demand import World, weekly_history


def refit_days(world: World, every_weeks: int) -> list[int]:
    """Plan days (Mondays from day 0's week) on which the forecast is refitted."""
    offset = world.as_of.weekday()
    first = 0 if offset == 0 else 7 - offset
    mondays = list(range(first, world.days, 7))
    if first != 0:
        mondays = [0, *mondays]
    return mondays[:: max(1, every_weeks)]


def forecast_on(world: World, day: int) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """(demand_forecast rows, forecast_accuracy rows, seconds) from the history known before `day`'s week."""
    from demand_control.planning.forecasting import complete_buckets, forecast_panel

    settings = ForecastSettingsResource().engine_settings()
    history = weekly_history(world, day)
    keys = world.series.reset_index().rename(columns={"index": "series"})[["series", "sku", "location_id"]]
    history = history.merge(keys, on="series")
    history["unique_id"] = history["sku"].astype(str) + KEY_SEPARATOR + history["location_id"].astype(str)
    panel = pd.DataFrame({"unique_id": history["unique_id"], "ds": pd.to_datetime(history["period_start"]), "y": history["qty"].astype(float)})
    panel = complete_buckets(panel, settings.freq)
    started = time.perf_counter()
    result = forecast_panel(panel, settings)
    seconds = time.perf_counter() - started
    key_map = history[["unique_id", "sku", "location_id"]].drop_duplicates("unique_id")
    forecast = result.forecast.merge(key_map, on="unique_id", how="left").drop(columns=["unique_id"]).rename(columns={"ds": "period_start"})
    accuracy = accuracy_rows(result, key_map)
    return forecast, accuracy, seconds


def precompute(world: World, every_weeks: int, folder: Path, log=print) -> dict[int, Path]:  # noqa: ANN001
    """Every refit of the run, written to `folder` as Parquet; returns refit day -> file stem."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for day in refit_days(world, every_weeks):
        stem = folder / f"day_{day:04d}"
        if not (stem.with_suffix(".forecast.parquet")).exists():
            forecast, accuracy, seconds = forecast_on(world, day)
            forecast.to_parquet(stem.with_suffix(".forecast.parquet"), index=False)
            accuracy.to_parquet(stem.with_suffix(".accuracy.parquet"), index=False)
            log(f"forecast refit for day {day}: {forecast[['sku', 'location_id']].drop_duplicates().shape[0]} SKU-locations in {seconds:.1f} s")
        out[day] = stem
    return out


def load(stem: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(stem.with_suffix(".forecast.parquet")), pd.read_parquet(stem.with_suffix(".accuracy.parquet"))
