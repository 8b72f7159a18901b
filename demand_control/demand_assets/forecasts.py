"""Forecasts (group `forecasts`): the demand profile of every SKU-location, the demand forecast with its
quantiles, and the backtest that says how far to trust it.

Thin assets over `planning.forecasting`: they read the staged `demand_history` (and each SKU's product
category, which seasonality and launch profiles are pooled in), fill missing buckets with zero demand, call
the engine and replace the tables analysts read. `demand_forecast` and `forecast_accuracy` come from one
engine run (the backtest that selects the models is the accuracy record), so they are one multi-asset that
cannot be split. The CRM pipeline adjusts the forecast only when the forecast settings switch it on; its
units are always a column of their own (`pipeline_qty`) beside the statistical forecast (`base_mean`).

Both are partitioned by planning region, like the decision assets downstream. A run over every region (the
jobs' default) forecasts the whole panel in one engine run, exactly as before regions existed. A run over
some regions forecasts each of them apart: it reads only its DCs' history (`location_id IN (...)`, on an
index), pools seasonality, quantile calibration, model selection and launch analogues within the region,
and replaces only its DCs' rows; the panel's class and overall accuracy rows are rolled up again from every
region's series rows (`services.forecast_regions`).
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg
import numpy as np
import pandas as pd

from demand_control.demand_assets.regions import PLANNING_REGIONS, region_metadata, region_scope
from demand_control.infra.memory import release_freed_memory
from demand_control.schema import tables
from demand_control.schema.asset_metadata import TEAM_PLANNING, preview, table_schema_of
from demand_control.planning.metrics import QUANTILE_COLUMNS
from demand_control.resources.clock import PlanningClock
from demand_control.resources.forecast import ForecastSettingsResource
from demand_control.resources.warehouse import Warehouse
from demand_control.services.forecast_regions import replace_region_accuracy
from demand_control.services.regions import RegionScope, read_compact

if TYPE_CHECKING:
    # The engine is imported where it runs: statsforecast takes seconds to import, and a run that never
    # forecasts (replan) should not pay for it.
    from demand_control.planning.forecasting import ForecastResult, ForecastSettings

FORECAST_KINDS = {"pandas", "statsforecast", "sqlalchemy"}
KEY_SEPARATOR = "\x1f"  # joins sku and location_id into the engine's unique_id; never part of a code


def history_panel(
    warehouse: Warehouse, settings: "ForecastSettings", region: RegionScope | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The staged demand history (of the region's DCs, or all) as the engine's long panel (missing buckets
    filled with zero), and the `unique_id → sku, location_id` key map. A region without history (no DC yet,
    or none that sold) has an empty panel: nothing to forecast, not a failure."""
    columns = ["sku", "location_id", "period_start", "qty"]
    if region is None:
        history = warehouse.read("demand_history", columns=columns)
    else:
        # A region of 100k SKU-locations has 10M history rows: read in chunks, equal codes and dates shared.
        history = read_compact(warehouse, "demand_history", columns=columns, where=region.clause(tables.STAGED["demand_history"]))
    if history.empty and region is None:
        raise dg.Failure(description="demand_history is empty: materialize the staged demand_history first")
    if history.empty:
        return pd.DataFrame(columns=["unique_id", "ds", "y"]), pd.DataFrame(columns=["unique_id", "sku", "location_id"])
    history["unique_id"] = series_keys(history["sku"], history["location_id"])
    panel = pd.DataFrame(
        {"unique_id": history["unique_id"], "ds": pd.to_datetime(history["period_start"]), "y": history["qty"].astype(float)}
    )
    del history["period_start"], history["qty"]
    from demand_control.planning.forecasting import complete_buckets

    panel = complete_buckets(panel, settings.freq)
    keys = history[["unique_id", "sku", "location_id"]].drop_duplicates("unique_id")
    return panel, keys


def series_keys(sku: pd.Series, location_id: pd.Series) -> pd.Series:
    """Each row's engine `unique_id` (`sku KEY_SEPARATOR location_id`), one shared string per series: concatenating
    row by row makes a fresh string for each of a region's 10M history rows (~0.8 GB at 100k SKU-locations)."""
    sku_codes, skus = pd.factorize(sku.astype(str))
    location_codes, locations = pd.factorize(location_id.astype(str))
    width = max(len(locations), 1)
    series_codes, series = pd.factorize(sku_codes.astype(np.int64) * width + location_codes)
    labels = np.array([f"{skus[code // width]}{KEY_SEPARATOR}{locations[code % width]}" for code in series], dtype=object)
    return pd.Series(labels[series_codes], index=sku.index, name="unique_id", dtype=object)


def series_categories(warehouse: Warehouse, keys: pd.DataFrame) -> pd.Series:
    """Each series' product category (`unique_id → category`; empty where the product is unknown)."""
    products = warehouse.read("product", columns=["sku", "category"]).drop_duplicates("sku")
    category = keys[["unique_id", "sku"]].merge(products, on="sku", how="left")
    return pd.Series(category["category"].fillna("").astype(str).to_numpy(), index=category["unique_id"].to_numpy())


def forecast_regions(context: dg.AssetExecutionContext, warehouse: Warehouse) -> list[RegionScope | None]:
    """What the run forecasts apart: [None] (the whole panel, one engine run) when it covers every region or
    has no partition, else each of its regions on its own. One region at a time so a region's forecast never
    depends on which other regions shared its run."""
    scope = region_scope(context, warehouse)
    if scope is None:
        return [None]
    return [RegionScope.of(warehouse, [region]) for region in scope.regions]


def scope_where(table_name: str, region: RegionScope | None):  # noqa: ANN201 - a SQLAlchemy clause or None
    return None if region is None else region.clause(tables.metadata.tables[table_name])


def _split_key(frame: pd.DataFrame, keys: pd.DataFrame) -> pd.DataFrame:
    out = frame.merge(keys, on="unique_id", how="left").drop(columns=["unique_id"])
    first = ["sku", "location_id"]
    return out[first + [c for c in out.columns if c not in first]]


@dg.asset(
    name="demand_profile",
    group_name="forecasts",
    deps=["demand_history"],
    partitions_def=PLANNING_REGIONS,
    owners=[TEAM_PLANNING],
    kinds=FORECAST_KINDS,
    description="Demand profile per SKU-location (history, ADI, CV², Syntetos-Boylan class, seasonality, new and dead flags) and the forecast route it sets.",
    metadata={"dagster/column_schema": table_schema_of(tables.demand_profile), "dagster/table_name": "demand_profile"},
)
def demand_profile(
    context: dg.AssetExecutionContext, warehouse: Warehouse, forecast_settings: ForecastSettingsResource, clock: PlanningClock
) -> dg.MaterializeResult:
    settings = forecast_settings.engine_settings()
    from demand_control.planning.forecasting import profile_routes

    columns = [c.name for c in tables.demand_profile.columns if c.name not in ("sku", "location_id")]
    regions = forecast_regions(context, warehouse)
    profiles, written, count = [], [], 0
    for region in regions:
        panel, keys = history_panel(warehouse, settings, region)
        if keys.empty:
            context.log.warning(f"no demand history at the DCs of {region.name}: their profile rows are cleared")
            count += warehouse.replace_rows("demand_profile", pd.DataFrame(columns=["sku", "location_id"]), where=scope_where("demand_profile", region))
            continue
        profile = profile_routes(panel, settings, series_categories(warehouse, keys))
        profile["computed_at"] = clock.now()
        rows = _split_key(profile[["unique_id", *columns]], keys)
        rows["adi"] = rows["adi"].replace(np.inf, np.finfo(float).max)
        count += warehouse.replace_rows("demand_profile", rows, where=scope_where("demand_profile", region))
        profiles.append(profile)
        written.append(rows)
    profile = pd.concat(profiles, ignore_index=True) if profiles else pd.DataFrame(columns=["route", "demand_class", "seasonal", "seasonal_source"])
    rows = pd.concat(written, ignore_index=True) if written else pd.DataFrame(columns=["sku", "location_id", "computed_at"])
    mix = profile.groupby(["route"]).size().rename("series").reset_index()
    seasonal = profile.groupby("seasonal_source").size().rename("series").reset_index()
    context.log.info(f"profiled {count} SKU-locations: " + ", ".join(f"{r.route} {r.series}" for r in mix.itertuples()))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": count,
            **_regions_metadata(regions),
            "routes": preview(mix, rows=20),
            "classes": preview(profile.groupby("demand_class").size().rename("series").reset_index(), rows=10),
            "seasonal_series": int(profile["seasonal"].sum()),
            "seasonality_source": preview(seasonal, rows=10),
            "preview": preview(rows.drop(columns=["computed_at"])),
        }
    )


def _regions_metadata(regions: list[RegionScope | None]) -> dict[str, object]:
    if regions == [None]:
        return {}
    return region_metadata(RegionScope(tuple(r for s in regions for r in s.regions), tuple(l for s in regions for l in s.location_ids)))


def accuracy_rows(result: "ForecastResult", keys: pd.DataFrame) -> pd.DataFrame:
    """forecast_accuracy rows: one per backtested series, one per segment (the series selected and bias-checked
    together), one per demand class and one overall; bias before and after the segment's correction."""
    per = result.backtest
    if per.empty:
        return pd.DataFrame(columns=[c.name for c in tables.forecast_accuracy.columns if c.name != "computed_at"])
    factor = per["bias_factor"].astype(float).fillna(1.0).replace(0.0, 1.0)
    # Demand is never negative, so Σ actual = Σ |actual|; the forecast before the correction is the
    # corrected one divided by its factor.
    per = per.assign(bias_raw=(per["bias"] + per["abs_actual"]) / factor - per["abs_actual"])
    series = _split_key(per, keys)
    abs_actual = series["abs_actual"].where(series["abs_actual"] > 0)
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
            "bias_pct": 100.0 * series["bias"] / abs_actual,
            "cover80": series["covered80"] / series["points"],
            "benchmark_rmsse": series["benchmark_rmsse"],
            "recent_rmsse": series["recent_rmsse"],
            "earlier_rmsse": series["earlier_rmsse"],
            "route": series["route"],
            "bias_pct_raw": 100.0 * series["bias_raw"] / abs_actual,
            "bias_factor": series["bias_factor"],
            "bias_systematic": None,
            "actual_units": series["abs_actual"],
            "bias_units": series["bias"],
            "bias_units_raw": series["bias_raw"],
        }
    )

    def summary(frame: pd.DataFrame, scope: str, subject: str, demand_class: str | None, **extra: object) -> dict:
        total = frame["abs_actual"].sum()
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
            "bias_pct": 100.0 * frame["bias"].sum() / total if total else None,
            "cover80": frame["covered80"].sum() / frame["points"].sum(),
            "benchmark_rmsse": frame["benchmark_rmsse"].mean(),
            "recent_rmsse": frame["recent_rmsse"].mean(),
            "earlier_rmsse": frame["earlier_rmsse"].mean(),
            "route": None,
            "bias_pct_raw": 100.0 * frame["bias_raw"].sum() / total if total else None,
            "bias_factor": None,
            "bias_systematic": None,
            "actual_units": total,
            "bias_units": frame["bias"].sum(),
            "bias_units_raw": frame["bias_raw"].sum(),
            **extra,
        }

    summaries = []
    for seg in result.selection.to_dict("records") if "segment" in result.selection else []:
        frame = per[per["segment"] == seg["segment"]]
        if len(frame):
            summaries.append(summary(frame, "segment", seg["segment"], seg["demand_class"], route=seg["route"],
                                     bias_factor=seg["bias_factor"], bias_systematic=bool(seg["bias_systematic"])))
    summaries += [summary(g, "class", str(c), str(c)) for c, g in per.groupby("demand_class", sort=True)]
    summaries.append(summary(per, "overall", "all", None))
    out = pd.concat([series_rows, pd.DataFrame(summaries)], ignore_index=True)
    numeric = ["rmsse", "mase", "spl", "bias_pct", "cover80", "benchmark_rmsse", "recent_rmsse", "earlier_rmsse",
               "bias_pct_raw", "bias_factor", "actual_units", "bias_units", "bias_units_raw"]
    out[numeric] = out[numeric].astype(float).replace([np.inf, -np.inf], np.nan)
    out["bias_systematic"] = out["bias_systematic"].astype(object)
    return out


def pipeline_adjusted(
    warehouse: Warehouse, forecast: pd.DataFrame, forecast_settings: ForecastSettingsResource
) -> pd.DataFrame:
    """`forecast` with `base_mean` and `pipeline_qty`; the open CRM pipeline read only when the signal is on."""
    from demand_control.planning.pipeline_signal import PipelineSettings, apply_pipeline

    settings = PipelineSettings(
        enabled=forecast_settings.pipeline_signal,
        max_uplift=forecast_settings.pipeline_max_uplift,
        bucket_days={"D": 1, "MS": 31}.get(forecast_settings.freq, 7),
    )
    empty = pd.DataFrame()
    if not settings.enabled:
        return apply_pipeline(forecast, empty, empty, empty, settings)
    return apply_pipeline(
        forecast,
        warehouse.read("pipeline_opportunity"),
        warehouse.read("customer", columns=["customer_id", "region"]),
        warehouse.read("location", columns=["location_id", "region"]),
        settings,
    )


@dataclass(frozen=True)
class ScopeForecast:
    """One engine run over a region (or the whole panel) and what it wrote: the engine's result (None when
    the scope has no history), the forecast rows, the accuracy rows written and the row counts."""

    result: "ForecastResult | None"
    forecast: pd.DataFrame
    accuracy: pd.DataFrame
    forecast_rows: int
    accuracy_rows: int


def forecast_scope(
    warehouse: Warehouse, settings: "ForecastSettings", forecast_settings: ForecastSettingsResource, region: RegionScope | None, now: pd.Timestamp
) -> ScopeForecast:
    """Forecast one region (or the whole panel, `region` None) with the engine and replace its rows of
    `demand_forecast` and `forecast_accuracy`: what a partition run of `demand_forecast` does per region,
    and what benchmarks/regions.py runs in each region's worker. A region without history clears its rows."""
    from demand_control.planning.forecasting import forecast_panel

    panel, keys = history_panel(warehouse, settings, region)
    if keys.empty:
        result, forecast = None, pd.DataFrame(columns=["sku", "location_id", "period_start"])
        accuracy = pd.DataFrame(columns=[c.name for c in tables.forecast_accuracy.columns])
    else:
        result = forecast_panel(panel, settings, series_categories(warehouse, keys))
        del panel  # the region's long panel is the largest frame of the run: free it before the writes
        release_freed_memory()
        forecast = _split_key(result.forecast, keys).rename(columns={"ds": "period_start"})
        forecast = pipeline_adjusted(warehouse, forecast, forecast_settings)
        forecast["created_at"] = now
        accuracy = accuracy_rows(result, keys).assign(computed_at=now)
    forecast_rows = warehouse.replace_rows("demand_forecast", forecast, where=scope_where("demand_forecast", region))
    if region is None:
        accuracy_rows_written = warehouse.replace_rows("forecast_accuracy", accuracy)
    else:
        accuracy = replace_region_accuracy(warehouse, region, accuracy)
        accuracy_rows_written = len(accuracy)
    release_freed_memory()  # the writes' batches: the policy reads the forecast back next
    return ScopeForecast(result, forecast, accuracy, forecast_rows, accuracy_rows_written)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "demand_forecast",
            group_name="forecasts",
            deps=["demand_profile", "demand_history"],
            owners=[TEAM_PLANNING],
            kinds=FORECAST_KINDS,
            description="Demand forecast per SKU-location and bucket over the horizon: mean, quantiles q05-q95, the statistical forecast and the CRM pipeline added to it, the model selected and the demand class.",
            metadata={"dagster/column_schema": table_schema_of(tables.demand_forecast), "dagster/table_name": "demand_forecast"},
        ),
        dg.AssetSpec(
            "forecast_accuracy",
            group_name="forecasts",
            deps=["demand_profile", "demand_history"],
            owners=[TEAM_PLANNING],
            kinds=FORECAST_KINDS,
            description="Rolling-origin backtest of the demand forecast per SKU-location, per segment, per demand class and overall: RMSSE, MASE, SPL, bias before and after its correction, 80% coverage.",
            metadata={"dagster/column_schema": table_schema_of(tables.forecast_accuracy), "dagster/table_name": "forecast_accuracy"},
        ),
    ],
    can_subset=False,
    partitions_def=PLANNING_REGIONS,
)
def demand_forecast(
    context: dg.AssetExecutionContext, warehouse: Warehouse, forecast_settings: ForecastSettingsResource, clock: PlanningClock
):
    settings = forecast_settings.engine_settings()
    now = pd.Timestamp(clock.now())
    regions = forecast_regions(context, warehouse)
    results, forecasts, accuracies, count, accuracy_count = [], [], [], 0, 0
    for region in regions:
        run = forecast_scope(warehouse, settings, forecast_settings, region, now)
        if run.result is None:
            context.log.warning(f"no demand history at the DCs of {region.name}: their forecast and accuracy rows are cleared")
        else:
            context.log.info(
                f"forecast {run.result.forecast['unique_id'].nunique()} SKU-locations"
                f"{'' if region is None else ' of ' + region.name} x {settings.horizon} {settings.freq} buckets "
                f"in {run.result.timings.get('total_s', 0):.1f} s"
            )
            results.append((region, run.result))
        forecast, accuracy = run.forecast, run.accuracy
        count += run.forecast_rows
        accuracy_count += run.accuracy_rows
        forecasts.append(forecast)
        accuracies.append(accuracy)

    forecast = pd.concat(forecasts, ignore_index=True) if forecasts else pd.DataFrame()
    # The panel's class and overall rows: the whole panel's run wrote them, a region's run rolled them up
    # again after its own rows (the last region's roll-up is the current one).
    accuracy = accuracies[-1] if regions == [None] else _panel_summary(accuracies)
    overall = accuracy[accuracy["scope"] == "overall"]
    profile = _concat_by_region(results, lambda r: r.profile)
    yield dg.MaterializeResult(
        asset_key="demand_forecast",
        metadata={
            "dagster/row_count": count,
            **_regions_metadata(regions),
            "series": sum(int(r.forecast["unique_id"].nunique()) for _, r in results),
            "horizon": settings.horizon,
            "bucket": settings.freq,
            "cluster": settings.cluster_address or "local",
            "seconds": round(sum(r.timings.get("total_s", 0.0) for _, r in results), 2),
            "models": preview(profile["model"].value_counts().rename("series").reset_index(), rows=15) if len(profile) else "none",
            "routes": preview(profile.groupby(["route", "band"]).size().rename("series").reset_index(), rows=15) if len(profile) else "none",
            "seasonal_series": int(profile["seasonal"].sum()) if len(profile) else 0,
            "pipeline_signal": "on" if forecast_settings.pipeline_signal else "off",
            "pipeline_units_added": float(forecast["pipeline_qty"].sum()) if "pipeline_qty" in forecast else 0.0,
            "preview": preview(forecast[["sku", "location_id", "period_start", "mean", "base_mean", "pipeline_qty", *QUANTILE_COLUMNS, "model"]])
            if "model" in forecast else "none",
        },
    )
    selection = _concat_by_region(results, lambda r: r.selection)
    yield dg.MaterializeResult(
        asset_key="forecast_accuracy",
        metadata={
            "dagster/row_count": accuracy_count,
            **_regions_metadata(regions),
            "overall_rmsse": float(overall["rmsse"].iloc[0]) if len(overall) else float("nan"),
            "benchmark_rmsse": float(overall["benchmark_rmsse"].iloc[0]) if len(overall) else float("nan"),
            "selection": preview(selection.drop(columns=["candidates", "window_bias_pct"], errors="ignore"), rows=15),
            "seasonality": preview(_concat_by_region(results, lambda r: r.seasonality), rows=30),
            "by_class": preview(accuracy[accuracy["scope"] != "series"].drop(columns=["sku", "location_id", "computed_at"]), rows=10),
        },
    )


def _concat_by_region(results: list, part) -> pd.DataFrame:  # noqa: ANN001 - (region, ForecastResult) pairs, a getter
    """One of the engine's result frames over the run's regions (with a `region` column when there are regions)."""
    frames = [part(result) if region is None else part(result).assign(region=region.name) for region, result in results]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _panel_summary(accuracies: list[pd.DataFrame]) -> pd.DataFrame:
    """The region runs' own rows and the last roll-up of the panel's class and overall rows."""
    rolled = accuracies[-1][accuracies[-1]["scope"].isin(["class", "overall"])]
    own = [a[~a["scope"].isin(["class", "overall"])] for a in accuracies]
    return pd.concat([*own, rolled], ignore_index=True)


forecast_assets = [demand_profile, demand_forecast]

defs = dg.Definitions(assets=forecast_assets)
