"""Exception rules about the signals the plan stands on: demand above what the forecast allows (with the
CRM pipeline's surges), a degraded forecast, and a feed whose load was quarantined. Each is vectorised over
the whole panel; `planning.exceptions.detect_exceptions` runs them all."""

from __future__ import annotations

import numpy as np
import pandas as pd

from demand_control.planning.exception_frame import (
    PIPELINE_OPEN_STAGES,
    Z90_SPAN,
    ExceptionThresholds,
    PlanningInputs,
    exception_rows,
    projection_window,
    sku_location_entity,
)
from demand_control.planning.formatting import fmt_day, fmt_qty
from demand_control.planning.inventory_common import (
    SKU_LOCATION,
    as_datetime_column,
    require_columns,
)
from demand_control.planning.policy.schema import Tolerances
from demand_control.planning.vocabulary import EXCEPTION_COLUMNS


def _pipeline_by_sku_location(inputs: PlanningInputs, horizon_start: pd.Timestamp, horizon_end: pd.Timestamp) -> pd.DataFrame:
    """Probability-weighted open CRM pipeline expected within the horizon, placed at the DC of the
    customer's region that stocks the SKU (else the SKU's DC with the largest forecast)."""
    pipe = inputs.pipeline
    if pipe.empty:
        return pd.DataFrame(columns=[*SKU_LOCATION, "pipeline_weighted"])
    pipe = pipe[pipe["stage"].isin(PIPELINE_OPEN_STAGES)].copy()
    pipe["expected_date"] = as_datetime_column(pipe["expected_date"])
    pipe = pipe[(pipe["expected_date"] >= horizon_start) & (pipe["expected_date"] < horizon_end)]
    pipe["weighted"] = pipe["qty"].astype(float) * pipe["probability"].astype(float)
    pipe = pipe.merge(inputs.customer[["customer_id", "region"]].drop_duplicates("customer_id"), on="customer_id", how="left")
    volume = inputs.forecast_volume if inputs.forecast_volume is not None else inputs.forecast.groupby(SKU_LOCATION, as_index=False)["mean"].sum()
    stocked = volume.merge(inputs.location[["location_id", "region"]].drop_duplicates("location_id"), on="location_id", how="left")
    by_region = stocked.sort_values("mean", ascending=False, kind="mergesort").drop_duplicates(["sku", "region"])
    largest = stocked.sort_values("mean", ascending=False, kind="mergesort").drop_duplicates("sku")[["sku", "location_id"]]
    placed = pipe.merge(by_region[["sku", "region", "location_id"]], on=["sku", "region"], how="left")
    placed = placed.merge(largest.rename(columns={"location_id": "_fallback"}), on="sku", how="left")
    placed["location_id"] = placed["location_id"].fillna(placed["_fallback"])
    placed = placed.dropna(subset=["location_id"])
    return placed.groupby(SKU_LOCATION, as_index=False)["weighted"].sum().rename(columns={"weighted": "pipeline_weighted"})



def latest_weeks_before(history: pd.DataFrame, horizon_start: pd.Timestamp, weeks: int) -> pd.DataFrame:
    """The last `weeks` history rows before the horizon of every SKU-location (sku, location_id, qty,
    period_start), sorted by SKU-location then week: what sorting the whole history and taking each
    group's tail gives, found by sorting positions instead of the frame (a region's history is 10M rows at
    100k SKU-locations; a sorted copy of it was the decision stage's peak memory)."""
    period = as_datetime_column(history["period_start"])
    before = np.flatnonzero((period < horizon_start).to_numpy())
    if len(before) == 0:
        return pd.DataFrame({"sku": [], "location_id": [], "qty": history["qty"].iloc[0:0].to_numpy(), "period_start": period.iloc[0:0].array})
    sku = pd.factorize(np.asarray(history["sku"], dtype=object)[before], sort=True)[0]
    location = pd.factorize(np.asarray(history["location_id"], dtype=object)[before], sort=True)[0]
    order = np.lexsort((period.to_numpy()[before], location, sku))  # stable, like a mergesort on the three columns
    sku, location = sku[order], location[order]
    ends = np.flatnonzero(np.r_[(sku[1:] != sku[:-1]) | (location[1:] != location[:-1]), True])
    group_end = np.repeat(ends, np.diff(np.r_[-1, ends]))
    keep = before[order][np.arange(len(order)) > group_end - weeks]
    return pd.DataFrame({
        "sku": np.asarray(history["sku"], dtype=object)[keep],
        "location_id": np.asarray(history["location_id"], dtype=object)[keep],
        "qty": history["qty"].to_numpy()[keep],
        "period_start": period.array[keep],
    })



def demand_spikes(
    inputs: PlanningInputs, ctx: pd.DataFrame, orders: pd.DataFrame, horizon_start: pd.Timestamp, thresholds: ExceptionThresholds,
    tolerances: Tolerances | None = None,
) -> pd.DataFrame:
    """demand_spike from any of three signals, each against the forecast + k·σ (σ from the forecast's 80%
    interval): the last completed bucket's demand; open orders committed in a bucket of the protection
    window; the probability-weighted CRM pipeline over the horizon beyond a share of the horizon's forecast.
    A spike the tolerances call too small to act on — recent demand above the limit for fewer weeks in a row
    than `demand_spike_min_weeks` and no other signal, or fewer excess units than the minimum — is recorded
    with its `suppressed_reason`."""
    tolerances = tolerances or Tolerances()
    k = thresholds.demand_spike_k_sigma
    fc = inputs.forecast[[*SKU_LOCATION, "period_start", "mean", "q10", "q90"]].copy()  # only what is read below
    fc["period_start"] = as_datetime_column(fc["period_start"])
    fc["sigma"] = (fc["q90"].astype(float) - fc["q10"].astype(float)).clip(lower=0) / Z90_SPAN
    first = fc.sort_values([*SKU_LOCATION, "period_start"], kind="mergesort").drop_duplicates(SKU_LOCATION)
    level = first[[*SKU_LOCATION, "mean", "sigma"]].rename(columns={"mean": "forecast_level", "sigma": "forecast_sigma"})
    signals = ctx[SKU_LOCATION].merge(level, on=SKU_LOCATION, how="inner")
    signals["limit"] = signals["forecast_level"] + k * signals["forecast_sigma"]

    hist = inputs.demand_history
    if not hist.empty:
        latest = latest_weeks_before(hist, horizon_start, tolerances.demand_spike_min_weeks)
        last = latest.drop_duplicates(SKU_LOCATION, keep="last")
        signals = signals.merge(last[[*SKU_LOCATION, "qty", "period_start"]].rename(columns={"qty": "recent_demand", "period_start": "recent_week"}), on=SKU_LOCATION, how="left")
        # How many of the latest weeks in a row ran above the limit (a one-week blip is not a new level).
        tail = latest.merge(signals[[*SKU_LOCATION, "limit"]], on=SKU_LOCATION)
        above = tail.assign(_above=tail["qty"].astype(float) > tail["limit"]).groupby(SKU_LOCATION, as_index=False)["_above"].sum()
        signals = signals.merge(above.rename(columns={"_above": "weeks_above"}), on=SKU_LOCATION, how="left")
    else:
        signals["recent_demand"], signals["recent_week"], signals["weeks_above"] = np.nan, pd.NaT, 0
    signals["weeks_above"] = pd.to_numeric(signals["weeks_above"], errors="coerce").fillna(0)
    proj = projection_window(inputs.projection, ctx, horizon_start)
    peak = proj.sort_values("committed", ascending=False, kind="mergesort").drop_duplicates(SKU_LOCATION)
    peak = peak[[*SKU_LOCATION, "committed", "forecast", "period_start"]].rename(
        columns={"committed": "peak_orders", "forecast": "peak_forecast", "period_start": "peak_week"}
    )
    signals = signals.merge(peak, on=SKU_LOCATION, how="left")
    horizon_end = fc["period_start"].max() + pd.Timedelta(days=7) if not fc.empty else horizon_start
    total = fc.groupby(SKU_LOCATION, as_index=False)["mean"].sum().rename(columns={"mean": "horizon_forecast"})
    signals = signals.merge(total, on=SKU_LOCATION, how="left").merge(
        _pipeline_by_sku_location(inputs, horizon_start, horizon_end), on=SKU_LOCATION, how="left"
    )
    signals["pipeline_weighted"] = pd.to_numeric(signals["pipeline_weighted"], errors="coerce").fillna(0.0)

    recent = signals["recent_demand"].fillna(-np.inf) > signals["limit"]
    # Orders only spike when they exceed the bucket's own forecast by k·σ: a big but forecast order is normal.
    order_limit = signals["peak_forecast"].fillna(0) + k * signals["forecast_sigma"]
    orders_spike = (signals["peak_orders"].fillna(0) > order_limit) & (signals["peak_orders"].fillna(0) > 0)
    pipeline_spike = (signals["pipeline_weighted"] > thresholds.pipeline_surge_share * signals["horizon_forecast"].fillna(0)) & (signals["pipeline_weighted"] > 0)
    hits = signals[recent | orders_spike | pipeline_spike].copy()
    if hits.empty:
        return pd.DataFrame(columns=list(EXCEPTION_COLUMNS))
    hits["recent_spike"], hits["orders_spike"], hits["pipeline_spike"] = recent[hits.index], orders_spike[hits.index], pipeline_spike[hits.index]
    excess_recent = np.where(hits["recent_spike"], hits["recent_demand"] - hits["forecast_level"], 0.0)
    excess_orders = np.where(hits["orders_spike"], hits["peak_orders"] - hits["peak_forecast"], 0.0)
    excess_pipe = np.where(hits["pipeline_spike"], hits["pipeline_weighted"] - thresholds.pipeline_surge_share * hits["horizon_forecast"].fillna(0), 0.0)
    hits["units_at_risk"] = np.maximum.reduce([excess_recent, excess_orders, excess_pipe])
    brief = hits["recent_spike"] & ~hits["orders_spike"] & ~hits["pipeline_spike"] & (hits["weeks_above"] < tolerances.demand_spike_min_weeks)
    small = hits["units_at_risk"] < np.maximum(tolerances.demand_spike_min_units, tolerances.demand_spike_min_share * hits["forecast_level"])
    hits["suppressed_reason"] = np.where(
        small, "fewer units above forecast than the policy's minimum (" + fmt_qty(hits["units_at_risk"]) + ")",
        np.where(brief, "one week above forecast + kσ, not yet a new level", None),
    )
    hits = hits.merge(ctx, on=SKU_LOCATION, how="left")
    hits["money_at_risk"] = hits["units_at_risk"] * hits["margin"]
    hits["window_start"] = horizon_start.date()
    hits["customer_tier"] = hits["tier"]
    parts = [
        np.where(hits["recent_spike"], "demand of " + fmt_qty(hits["recent_demand"]) + " in the week of " + fmt_day(hits["recent_week"]), ""),
        np.where(hits["orders_spike"], "orders of " + fmt_qty(hits["peak_orders"]) + " due the week of " + fmt_day(hits["peak_week"]), ""),
        np.where(hits["pipeline_spike"], "CRM pipeline of " + fmt_qty(hits["pipeline_weighted"]) + " (probability-weighted) vs horizon forecast " + fmt_qty(hits["horizon_forecast"]), ""),
    ]
    joined = pd.Series(["; ".join(p for p in triple if p) for triple in zip(*parts)], index=hits.index)
    sentence = (
        hits["sku"] + " at " + hits["location_id"] + ": " + joined + " — beyond forecast " + fmt_qty(hits["forecast_level"])
        + "/wk + " + f"{k:g}" + "σ (σ " + fmt_qty(hits["forecast_sigma"]) + "); " + fmt_qty(hits["units_at_risk"]) + " units above plan."
    )
    trigger = hits[["recent_demand", "recent_week", "peak_orders", "peak_week", "pipeline_weighted", "horizon_forecast", "forecast_level", "forecast_sigma", "recent_spike", "orders_spike", "pipeline_spike"]].assign(k_sigma=k)
    return exception_rows(hits, "demand_spike", sku_location_entity(hits), trigger, sentence)


def degraded_forecasts(accuracy: pd.DataFrame, ratio: float) -> pd.DataFrame:
    """Series whose most recent backtest window is worse than `ratio` × their earlier windows and worse than
    the seasonal-naive benchmark: sku, location_id, demand_class, recent_rmsse, earlier_rmsse, benchmark_rmsse.
    The forecast_degraded check, this exception and the autonomy policy read the same list."""
    if accuracy.empty:
        return pd.DataFrame(columns=[*SKU_LOCATION, "demand_class", "recent_rmsse", "earlier_rmsse", "benchmark_rmsse"])
    series = accuracy[accuracy["scope"] == "series"]
    bad = (series["recent_rmsse"] > ratio * series["earlier_rmsse"]) & (series["recent_rmsse"] > series["benchmark_rmsse"])
    cols = [*SKU_LOCATION, "demand_class", "recent_rmsse", "earlier_rmsse", "benchmark_rmsse"]
    return series.loc[bad.fillna(False), cols].sort_values("recent_rmsse", ascending=False).reset_index(drop=True)


def forecast_value_share(projection: pd.DataFrame, ctx: pd.DataFrame) -> pd.DataFrame:
    """Per SKU-location the share of the horizon's forecast value (forecast units × unit price) held by the
    SKU-locations worth more than it: sku, location_id, value, share_before. ABC by value: class A is where
    share_before < 0.8."""
    units = projection.groupby(SKU_LOCATION, as_index=False)["forecast"].sum()
    value = units.merge(ctx[[*SKU_LOCATION, "unit_price"]], on=SKU_LOCATION, how="left")
    value["value"] = value["forecast"].astype(float) * value["unit_price"].astype(float).fillna(0.0)
    return value_shares(value[[*SKU_LOCATION, "value"]])


def value_shares(values: pd.DataFrame) -> pd.DataFrame:
    """`values` (sku, location_id, value) with share_before: the share of the total value held by the
    SKU-locations worth more (ties ordered by sku, location_id)."""
    value = values.sort_values(["value", *SKU_LOCATION], ascending=[False, True, True], kind="mergesort").copy()
    total = float(value["value"].sum())
    value["share_before"] = (value["value"].cumsum() - value["value"]) / total if total > 0 else 0.0
    return value[[*SKU_LOCATION, "value", "share_before"]]


def forecast_degradation(
    inputs: PlanningInputs, ctx: pd.DataFrame, ratio: float, horizon_start: pd.Timestamp, tolerances: Tolerances | None = None
) -> pd.DataFrame:
    """forecast_degradation: see `degraded_forecasts`. Money at risk: none directly; the consequence is that
    actions on the item stop being auto-approved. Outside class A (the tolerance
    `forecast_degradation_value_share`) the case is recorded with its `suppressed_reason`."""
    tolerances = tolerances or Tolerances()
    hits = degraded_forecasts(inputs.accuracy, ratio)
    if hits.empty:
        return pd.DataFrame(columns=list(EXCEPTION_COLUMNS))
    hits = hits.merge(ctx, on=SKU_LOCATION, how="left")
    shares = inputs.value_shares if inputs.value_shares is not None else forecast_value_share(inputs.projection, ctx)
    hits = hits.merge(shares[[*SKU_LOCATION, "share_before"]], on=SKU_LOCATION, how="left")
    minor = hits["share_before"].astype(float).fillna(1.0) >= tolerances.forecast_degradation_value_share
    hits["suppressed_reason"] = np.where(
        minor, "outside the SKU-locations making up " + f"{100 * tolerances.forecast_degradation_value_share:g}"
        + "% of forecast value: recorded; its actions stay within the autonomy limits", None,
    )
    hits["units_at_risk"], hits["money_at_risk"] = 0.0, 0.0
    hits["window_start"] = horizon_start.date()
    hits["customer_tier"] = hits["tier"]
    sentence = (
        hits["sku"] + " at " + hits["location_id"] + ": forecast error in the latest backtest window RMSSE "
        + hits["recent_rmsse"].map("{:.2f}".format) + " vs " + hits["earlier_rmsse"].map("{:.2f}".format)
        + " before and " + hits["benchmark_rmsse"].map("{:.2f}".format) + " for seasonal naive (" + hits["demand_class"].astype(str) + " demand); review the forecast."
    )
    trigger = hits[["demand_class", "recent_rmsse", "earlier_rmsse", "benchmark_rmsse"]].assign(ratio=ratio)
    return exception_rows(hits, "forecast_degradation", sku_location_entity(hits), trigger, sentence)


def feed_exceptions(feeds: pd.DataFrame, quarantine_share: float, horizon_start: pd.Timestamp) -> pd.DataFrame:
    """stale_feed (a feed older than its contract's freshness window) and data_quality (a load that was
    rejected, or quarantined more than `quarantine_share` of its rows), one per canonical object."""
    if feeds.empty:
        return pd.DataFrame(columns=list(EXCEPTION_COLUMNS))
    require_columns(feeds, ["object", "age_hours", "freshness_hours", "rows_extracted", "rows_quarantined", "status"], "feeds")
    f = feeds.copy()
    f["units_at_risk"], f["money_at_risk"] = 0.0, 0.0
    f["window_start"] = horizon_start.date()
    stale = f[f["age_hours"].astype(float) > f["freshness_hours"].astype(float)]
    stale_sentence = (
        "Feed " + stale["object"] + " last refreshed " + fmt_qty(stale["age_hours"]) + " h ago, beyond its "
        + fmt_qty(stale["freshness_hours"]) + " h freshness window: plans that read it fall back to human review."
    )
    out = [exception_rows(stale, "stale_feed", stale["object"], stale[["object", "age_hours", "freshness_hours"]], stale_sentence)] if not stale.empty else []
    rows = f["rows_extracted"].astype(float).where(f["rows_extracted"].astype(float) > 0)
    f["quarantine_share"] = (f["rows_quarantined"].astype(float).fillna(0) / rows).fillna(0.0)
    bad = f[(f["status"] == "rejected") | (f["quarantine_share"] > quarantine_share)]
    if not bad.empty:
        sentence = (
            "Feed " + bad["object"] + ": " + np.where(bad["status"] == "rejected", "the latest load was rejected; ", "")
            + fmt_qty(bad["rows_quarantined"].fillna(0)) + " of " + fmt_qty(bad["rows_extracted"]) + " rows quarantined ("
            + (100 * bad["quarantine_share"]).map("{:.1f}".format) + "%, limit " + f"{100 * quarantine_share:g}" + "%): fix the source data."
        )
        out.append(exception_rows(bad, "data_quality", bad["object"], bad[["object", "status", "rows_extracted", "rows_quarantined", "quarantine_share"]], sentence))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=list(EXCEPTION_COLUMNS))
