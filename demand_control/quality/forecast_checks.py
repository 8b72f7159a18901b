"""Validated forecasts: the gates a demand forecast passes before inventory planning may use it.

Blocking: every SKU-location that has demand history has a forecast for the full horizon; no value is NaN,
infinite or negative; the quantiles are ordered; and the backtest is not worse than the seasonal-naive
benchmark beyond the configured tolerance. Warning: series whose most recent backtest window is much worse
than the earlier ones (the forecast_degradation exception and the autonomy policy read the same list).
Each rule is a pure function over frames so tests can feed it a crafted bad forecast.

A run of some planning regions (a partition of the forecast assets) is judged on the rows it wrote: its DCs'
forecast, and the accuracy rolled up from its DCs' series; another region's state never blocks its plan. A
run over every region judges the whole table, as before regions existed.
"""

import dagster as dg
import numpy as np
import pandas as pd

from demand_control.demand_assets.regions import region_scope
from demand_control.planning.signal_exceptions import degraded_forecasts
from demand_control.planning.metrics import QUANTILE_COLUMNS
from demand_control.resources.forecast import ForecastSettingsResource
from demand_control.schema.asset_metadata import first_row_text, preview
from demand_control.resources.warehouse import Warehouse
from demand_control.schema import tables
from demand_control.services.forecast_regions import rolled_up_accuracy
from demand_control.services.regions import RegionScope

FORECAST_COMPLETE_CHECK = "forecast_complete"
FORECAST_VALUES_VALID_CHECK = "forecast_values_valid"
QUANTILES_ORDERED_CHECK = "quantiles_ordered"
ACCURACY_VS_BENCHMARK_CHECK = "accuracy_vs_seasonal_naive"
FORECAST_DEGRADED_CHECK = "forecast_degraded"

VALUE_COLUMNS = ("mean", *QUANTILE_COLUMNS)
KEY = ["sku", "location_id"]


def incomplete_series(forecast: pd.DataFrame, expected: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """SKU-locations of `expected` (sku, location_id) without exactly `horizon` distinct forecast buckets."""
    counts = forecast.groupby(KEY, observed=True)["period_start"].nunique().rename("buckets").reset_index()
    merged = expected[KEY].drop_duplicates().merge(counts, on=KEY, how="left")
    merged["buckets"] = merged["buckets"].fillna(0).astype(int)
    return merged[merged["buckets"] != horizon].reset_index(drop=True)


def invalid_values(forecast: pd.DataFrame) -> pd.DataFrame:
    """Rows with a NaN, infinite or negative mean or quantile, with the first offending column."""
    values = forecast[list(VALUE_COLUMNS)].to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values < 0)
    rows = bad.any(axis=1)
    out = forecast.loc[rows, [*KEY, "period_start"]].copy()
    out["column"] = np.asarray(VALUE_COLUMNS)[bad[rows].argmax(axis=1)] if rows.any() else []
    out["value"] = values[rows, bad[rows].argmax(axis=1)] if rows.any() else []
    return out.reset_index(drop=True)


def unordered_quantiles(forecast: pd.DataFrame) -> pd.DataFrame:
    """Rows where a quantile is below the one before it (q05 ≤ q10 ≤ … ≤ q95 must hold)."""
    q = forecast[list(QUANTILE_COLUMNS)].to_numpy(dtype=float)
    bad = (np.diff(q, axis=1) < -1e-9).any(axis=1)
    return forecast.loc[bad, [*KEY, "period_start", *QUANTILE_COLUMNS]].reset_index(drop=True)


def accuracy_vs_benchmark(accuracy: pd.DataFrame, tolerance: float) -> tuple[bool, float, float]:
    """(passed, overall backtest RMSSE, seasonal-naive RMSSE) from the `overall` accuracy row."""
    overall = accuracy[accuracy["scope"] == "overall"]
    if overall.empty:
        return True, float("nan"), float("nan")  # nothing was backtested (all series new or dead)
    ours, bench = float(overall["rmsse"].iloc[0]), float(overall["benchmark_rmsse"].iloc[0])
    if not np.isfinite(bench):
        return bool(np.isfinite(ours)), ours, bench
    return bool(np.isfinite(ours) and ours <= bench * (1.0 + tolerance)), ours, bench


def degraded_series(accuracy: pd.DataFrame, factor: float) -> pd.DataFrame:
    """Series whose recent-window RMSSE exceeds `factor` × their earlier RMSSE and the benchmark's: the same
    list the forecast_degradation exception and the autonomy policy read."""
    return degraded_forecasts(accuracy, factor)


def _region_rows(warehouse: Warehouse, name: str, region: RegionScope | None, columns: list[str] | None = None) -> pd.DataFrame:
    """The table's rows of the region's DCs (all rows for a whole-panel run)."""
    return warehouse.read(name, columns=columns, where=None if region is None else region.clause(tables.metadata.tables[name]))


def _region_accuracy(warehouse: Warehouse, region: RegionScope | None) -> pd.DataFrame:
    """forecast_accuracy as the check judges it: the whole table, or the region's series with their own
    class and overall roll-up."""
    if region is None:
        return warehouse.read("forecast_accuracy")
    series = _region_rows(warehouse, "forecast_accuracy", region)
    series = series[series["scope"] == "series"]
    return pd.concat([series, rolled_up_accuracy(series)], ignore_index=True)


def _region_metadata(region: RegionScope | None) -> dict[str, object]:
    return {} if region is None else {"region": region.name}


@dg.asset_check(
    asset="demand_forecast",
    name=FORECAST_COMPLETE_CHECK,
    blocking=True,
    description="Every SKU-location with demand history has a forecast for every bucket of the horizon.",
)
def forecast_complete(
    context: dg.AssetCheckExecutionContext, warehouse: Warehouse, forecast_settings: ForecastSettingsResource
) -> dg.AssetCheckResult:
    region = region_scope(context, warehouse)
    forecast = _region_rows(warehouse, "demand_forecast", region, [*KEY, "period_start"])
    expected = _region_rows(warehouse, "demand_profile", region, KEY)
    missing = incomplete_series(forecast, expected, forecast_settings.horizon)
    return dg.AssetCheckResult(
        passed=missing.empty,
        description=None if missing.empty else f"{len(missing)} SKU-locations lack a full {forecast_settings.horizon}-bucket "
        f"horizon, e.g. {first_row_text(missing)}",
        metadata={"series_expected": len(expected), "series_incomplete": len(missing), "incomplete": preview(missing, rows=20), **_region_metadata(region)},
    )


@dg.asset_check(
    asset="demand_forecast",
    name=FORECAST_VALUES_VALID_CHECK,
    blocking=True,
    description="No forecast mean or quantile is NaN, infinite or negative.",
)
def forecast_values_valid(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
    region = region_scope(context, warehouse)
    bad = invalid_values(_region_rows(warehouse, "demand_forecast", region))
    return dg.AssetCheckResult(
        passed=bad.empty,
        description=None if bad.empty else f"{len(bad)} forecast rows hold NaN, infinite or negative values, e.g. {first_row_text(bad)}",
        metadata={"rows_invalid": len(bad), "invalid": preview(bad, rows=20), **_region_metadata(region)},
    )


@dg.asset_check(
    asset="demand_forecast",
    name=QUANTILES_ORDERED_CHECK,
    blocking=True,
    description="Forecast quantiles are ordered: q05 ≤ q10 ≤ q25 ≤ q50 ≤ q75 ≤ q90 ≤ q95 in every bucket.",
)
def quantiles_ordered(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
    region = region_scope(context, warehouse)
    bad = unordered_quantiles(_region_rows(warehouse, "demand_forecast", region))
    return dg.AssetCheckResult(
        passed=bad.empty,
        description=None if bad.empty else f"{len(bad)} forecast rows have crossing quantiles, e.g. {first_row_text(bad)}",
        metadata={"rows_unordered": len(bad), "unordered": preview(bad, rows=20), **_region_metadata(region)},
    )


@dg.asset_check(
    asset="forecast_accuracy",
    name=ACCURACY_VS_BENCHMARK_CHECK,
    blocking=True,
    description="Backtest RMSSE over all series is not worse than the seasonal-naive benchmark beyond the configured tolerance.",
)
def accuracy_vs_seasonal_naive(
    context: dg.AssetCheckExecutionContext, warehouse: Warehouse, forecast_settings: ForecastSettingsResource
) -> dg.AssetCheckResult:
    tolerance = forecast_settings.benchmark_tolerance
    region = region_scope(context, warehouse)
    passed, ours, bench = accuracy_vs_benchmark(_region_accuracy(warehouse, region), tolerance)
    return dg.AssetCheckResult(
        passed=passed,
        description=None if passed else f"backtest RMSSE {ours:.3f} is worse than seasonal naive {bench:.3f} "
        f"by more than {tolerance:.0%}",
        metadata={"rmsse": ours, "seasonal_naive_rmsse": bench, "tolerance": tolerance, **_region_metadata(region)},
    )


@dg.asset_check(
    asset="forecast_accuracy",
    name=FORECAST_DEGRADED_CHECK,
    blocking=False,
    description="Lists SKU-locations whose most recent backtest window is much worse than before and than seasonal naive.",
)
def forecast_degraded(
    context: dg.AssetCheckExecutionContext, warehouse: Warehouse, forecast_settings: ForecastSettingsResource
) -> dg.AssetCheckResult:
    region = region_scope(context, warehouse)
    degraded = degraded_series(_region_accuracy(warehouse, region), forecast_settings.degradation_factor)
    return dg.AssetCheckResult(
        passed=degraded.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=None if degraded.empty else f"{len(degraded)} SKU-locations' recent accuracy degraded, worst {first_row_text(degraded)}",
        metadata={
            "series_degraded": len(degraded),
            "degradation_factor": forecast_settings.degradation_factor,
            "degraded": preview(degraded, rows=50),
            **_region_metadata(region),
        },
    )


forecast_checks = [forecast_complete, forecast_values_valid, quantiles_ordered, accuracy_vs_seasonal_naive, forecast_degraded]
