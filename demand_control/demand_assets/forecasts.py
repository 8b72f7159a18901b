"""Forecasts (group `forecasts`): the demand profile of every SKU-location, the demand forecast with its
quantiles, and the backtest that says how far to trust it.

Thin assets over `planning.forecasting`: they read the staged `demand_history`, fill missing buckets with
zero demand, call the engine and replace the tables analysts read. `demand_forecast` and
`forecast_accuracy` come from one engine run (the backtest that selects the models is the accuracy
record), so they are one multi-asset that cannot be split.
"""

from typing import TYPE_CHECKING

import dagster as dg
import numpy as np
import pandas as pd

from demand_control.schema import tables
from demand_control.schema.asset_metadata import TEAM_PLANNING, preview, table_schema_of
from demand_control.planning.metrics import QUANTILE_COLUMNS
from demand_control.planning.profile import profile_panel
from demand_control.resources.clock import PlanningClock
from demand_control.resources.forecast import ForecastSettingsResource
from demand_control.resources.warehouse import Warehouse

if TYPE_CHECKING:
    # The engine is imported where it runs: statsforecast takes seconds to import, and a run that never
    # forecasts (replan) should not pay for it.
    from demand_control.planning.forecasting import ForecastResult, ForecastSettings

FORECAST_KINDS = {"pandas", "statsforecast", "sqlalchemy"}
KEY_SEPARATOR = "\x1f"  # joins sku and location_id into the engine's unique_id; never part of a code


def history_panel(warehouse: Warehouse, settings: "ForecastSettings") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The staged demand history as the engine's long panel (missing buckets filled with zero), and the
    `unique_id → sku, location_id` key map."""
    history = warehouse.read("demand_history", columns=["sku", "location_id", "period_start", "qty"])
    if history.empty:
        raise dg.Failure(description="demand_history is empty: materialize the staged demand_history first")
    history["unique_id"] = history["sku"].astype(str) + KEY_SEPARATOR + history["location_id"].astype(str)
    panel = pd.DataFrame(
        {"unique_id": history["unique_id"], "ds": pd.to_datetime(history["period_start"]), "y": history["qty"].astype(float)}
    )
    from demand_control.planning.forecasting import complete_buckets

    panel = complete_buckets(panel, settings.freq)
    keys = history[["unique_id", "sku", "location_id"]].drop_duplicates("unique_id")
    return panel, keys


def _split_key(frame: pd.DataFrame, keys: pd.DataFrame) -> pd.DataFrame:
    out = frame.merge(keys, on="unique_id", how="left").drop(columns=["unique_id"])
    first = ["sku", "location_id"]
    return out[first + [c for c in out.columns if c not in first]]


@dg.asset(
    name="demand_profile",
    group_name="forecasts",
    deps=["demand_history"],
    owners=[TEAM_PLANNING],
    kinds=FORECAST_KINDS,
    description="Demand profile per SKU-location (history, ADI, CV², Syntetos-Boylan class, seasonality, new and dead flags) and the forecast route it sets.",
    metadata={"dagster/column_schema": table_schema_of(tables.demand_profile), "dagster/table_name": "demand_profile"},
)
def demand_profile(
    context: dg.AssetExecutionContext, warehouse: Warehouse, forecast_settings: ForecastSettingsResource, clock: PlanningClock
) -> dg.MaterializeResult:
    settings = forecast_settings.engine_settings()
    panel, keys = history_panel(warehouse, settings)
    profile = profile_panel(panel, settings.profile_settings())
    from demand_control.planning.forecasting import route_series

    profile["route"] = route_series(profile, settings)
    profile["computed_at"] = clock.now()
    rows = _split_key(profile, keys)
    rows["adi"] = rows["adi"].replace(np.inf, np.finfo(float).max)
    count = warehouse.replace_rows("demand_profile", rows)
    mix = profile.groupby(["route"]).size().rename("series").reset_index()
    context.log.info(f"profiled {count} SKU-locations: " + ", ".join(f"{r.route} {r.series}" for r in mix.itertuples()))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": count,
            "routes": preview(mix, rows=20),
            "classes": preview(profile.groupby("demand_class").size().rename("series").reset_index(), rows=10),
            "preview": preview(rows.drop(columns=["computed_at"])),
        }
    )


def accuracy_rows(result: "ForecastResult", keys: pd.DataFrame) -> pd.DataFrame:
    """forecast_accuracy rows: one per backtested series, one per demand class and one overall."""
    per = result.backtest
    if per.empty:
        return pd.DataFrame(columns=[c.name for c in tables.forecast_accuracy.columns if c.name != "computed_at"])
    series = _split_key(per, keys)
    series_rows = pd.DataFrame(
        {
            "scope": "series",
            "subject": series["sku"].astype(str) + "|" + series["location_id"].astype(str),
            "sku": series["sku"],
            "location_id": series["location_id"],
            "demand_class": series["demand_class"],
            "series": 1,
            "points": series["points"].astype(int),
            "rmsse": series["rmsse"],
            "mase": series["mase"],
            "spl": series["spl"],
            "bias_pct": 100.0 * series["bias"] / series["abs_actual"].where(series["abs_actual"] > 0),
            "cover80": series["covered80"] / series["points"],
            "benchmark_rmsse": series["benchmark_rmsse"],
            "recent_rmsse": series["recent_rmsse"],
            "earlier_rmsse": series["earlier_rmsse"],
        }
    )

    def summary(frame: pd.DataFrame, scope: str, subject: str, demand_class: str | None) -> dict:
        abs_actual = frame["abs_actual"].sum()
        return {
            "scope": scope,
            "subject": subject,
            "sku": None,
            "location_id": None,
            "demand_class": demand_class,
            "series": len(frame),
            "points": int(frame["points"].sum()),
            "rmsse": frame["rmsse"].mean(),
            "mase": frame["mase"].mean(),
            "spl": frame["spl"].mean(),
            "bias_pct": 100.0 * frame["bias"].sum() / abs_actual if abs_actual else None,
            "cover80": frame["covered80"].sum() / frame["points"].sum(),
            "benchmark_rmsse": frame["benchmark_rmsse"].mean(),
            "recent_rmsse": frame["recent_rmsse"].mean(),
            "earlier_rmsse": frame["earlier_rmsse"].mean(),
        }

    summaries = [summary(g, "class", str(c), str(c)) for c, g in per.groupby("demand_class", sort=True)]
    summaries.append(summary(per, "overall", "all", None))
    out = pd.concat([series_rows, pd.DataFrame(summaries)], ignore_index=True)
    numeric = ["rmsse", "mase", "spl", "bias_pct", "cover80", "benchmark_rmsse", "recent_rmsse", "earlier_rmsse"]
    out[numeric] = out[numeric].astype(float).replace([np.inf, -np.inf], np.nan)
    return out


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "demand_forecast",
            group_name="forecasts",
            deps=["demand_profile", "demand_history"],
            owners=[TEAM_PLANNING],
            kinds=FORECAST_KINDS,
            description="Demand forecast per SKU-location and bucket over the horizon: mean, quantiles q05-q95, the model selected and the demand class.",
            metadata={"dagster/column_schema": table_schema_of(tables.demand_forecast), "dagster/table_name": "demand_forecast"},
        ),
        dg.AssetSpec(
            "forecast_accuracy",
            group_name="forecasts",
            deps=["demand_profile", "demand_history"],
            owners=[TEAM_PLANNING],
            kinds=FORECAST_KINDS,
            description="Rolling-origin backtest of the demand forecast per SKU-location, per demand class and overall: RMSSE, MASE, SPL, bias, 80% coverage.",
            metadata={"dagster/column_schema": table_schema_of(tables.forecast_accuracy), "dagster/table_name": "forecast_accuracy"},
        ),
    ],
    can_subset=False,
)
def demand_forecast(
    context: dg.AssetExecutionContext, warehouse: Warehouse, forecast_settings: ForecastSettingsResource, clock: PlanningClock
):
    settings = forecast_settings.engine_settings()
    panel, keys = history_panel(warehouse, settings)
    from demand_control.planning.forecasting import forecast_panel

    result = forecast_panel(panel, settings)
    now = pd.Timestamp(clock.now())

    forecast = _split_key(result.forecast, keys).rename(columns={"ds": "period_start"})
    forecast["created_at"] = now
    count = warehouse.replace_rows("demand_forecast", forecast)
    accuracy = accuracy_rows(result, keys).assign(computed_at=now)
    accuracy_count = warehouse.replace_rows("forecast_accuracy", accuracy)
    context.log.info(
        f"forecast {result.forecast['unique_id'].nunique()} SKU-locations x {settings.horizon} {settings.freq} buckets "
        f"in {result.timings.get('total_s', 0):.1f} s"
    )
    overall = accuracy[accuracy["scope"] == "overall"]
    yield dg.MaterializeResult(
        asset_key="demand_forecast",
        metadata={
            "dagster/row_count": count,
            "series": int(result.forecast["unique_id"].nunique()),
            "horizon": settings.horizon,
            "bucket": settings.freq,
            "cluster": settings.cluster_address or "local",
            "seconds": round(result.timings.get("total_s", 0.0), 2),
            "models": preview(result.profile["model"].value_counts().rename("series").reset_index(), rows=15),
            "preview": preview(forecast[["sku", "location_id", "period_start", "mean", *QUANTILE_COLUMNS, "model"]]),
        },
    )
    yield dg.MaterializeResult(
        asset_key="forecast_accuracy",
        metadata={
            "dagster/row_count": accuracy_count,
            "overall_rmsse": float(overall["rmsse"].iloc[0]) if len(overall) else float("nan"),
            "benchmark_rmsse": float(overall["benchmark_rmsse"].iloc[0]) if len(overall) else float("nan"),
            "selection": preview(result.selection.drop(columns=["candidates"], errors="ignore"), rows=10),
            "by_class": preview(accuracy[accuracy["scope"] != "series"].drop(columns=["sku", "location_id", "computed_at"]), rows=10),
        },
    )


forecast_assets = [demand_profile, demand_forecast]

defs = dg.Definitions(assets=forecast_assets)
