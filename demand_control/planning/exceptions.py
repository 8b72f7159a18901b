"""Planning exceptions: the conditions of DOMAIN.md's taxonomy that a planner must act on, detected over the
whole panel at once from the projection, the policy, the open orders and purchase lines, the CRM pipeline,
the backtest and the feed loads.

Every exception carries a stable key (type and entity, so a re-run finds the same exception again), the
values that triggered it, one sentence a planner reads without opening a table, the money at risk (lost
margin for shortages, stock value for excess) and the customer orders it affects. Severity, owner and SLA
come from the policy (`planning.policy`); the lifecycle from `planning.lifecycle`. Vectorised: merges,
grouped cumulative sums and string operations over columns, never a loop over SKU-locations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from demand_control.planning.inventory_common import (
    SCHEDULED_PO_STATUSES,
    SKU_LOCATION,
    as_datetime_column,
    as_timestamp,
    require_columns,
)
from demand_control.planning.formatting import fmt_day, fmt_money, fmt_qty, json_rows
from demand_control.planning.order_supply import dated_receipts, open_orders, order_lines_at_risk
from demand_control.planning.policy.schema import Tolerances
from demand_control.planning.projection import inventory_position
from demand_control.planning.vocabulary import EXCEPTION_COLUMNS, TIER_RANK

RANK_TIER = {v: k for k, v in TIER_RANK.items()}
# (q90 − q10) of a normal distribution spans 2 × 1.2816 standard deviations.
Z90_SPAN = 2 * 1.2815515655446004
PO_SCHEDULED = SCHEDULED_PO_STATUSES
PIPELINE_OPEN_STAGES = ("prospecting", "qualification", "proposal", "negotiation")


@dataclass(frozen=True)
class ExceptionThresholds:
    """The knobs of each rule; the policy file sets them (`thresholds:`), these are its defaults."""

    below_safety_stock_consecutive_buckets: int = 2
    demand_spike_k_sigma: float = 3.0
    pipeline_surge_share: float = 0.5
    excess_days_of_cover: float = 120.0
    data_quality_quarantine_share: float = 0.02
    forecast_degradation_ratio: float = 1.3
    review_period_days: float = 7.0
    default_lead_time_days: float = 14.0  # SKU-locations without a sourcing lane

    def __post_init__(self) -> None:
        if self.below_safety_stock_consecutive_buckets < 1:
            raise ValueError(f"below_safety_stock_consecutive_buckets must be ≥ 1, got {self.below_safety_stock_consecutive_buckets}")
        for name in ("demand_spike_k_sigma", "pipeline_surge_share", "excess_days_of_cover", "forecast_degradation_ratio"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass
class PlanningInputs:
    """Everything the exception rules read. Frames are the warehouse tables of the same name; `feeds` is
    one row per canonical object: object, age_hours, freshness_hours, rows_extracted, rows_quarantined,
    status (see `feed_health`). Empty frames are fine: a rule without its inputs fires nothing."""

    projection: pd.DataFrame
    policy: pd.DataFrame
    product: pd.DataFrame
    location: pd.DataFrame
    customer: pd.DataFrame
    order_lines: pd.DataFrame
    purchase_lines: pd.DataFrame
    forecast: pd.DataFrame
    demand_history: pd.DataFrame = field(default_factory=pd.DataFrame)
    pipeline: pd.DataFrame = field(default_factory=pd.DataFrame)
    supplier: pd.DataFrame = field(default_factory=pd.DataFrame)
    accuracy: pd.DataFrame = field(default_factory=pd.DataFrame)
    feeds: pd.DataFrame = field(default_factory=pd.DataFrame)


def sku_location_context(inputs: PlanningInputs, thresholds: ExceptionThresholds) -> pd.DataFrame:
    """Per SKU-location: category, region, primary supplier, policy tier, lead time, safety stock, order-up-
    to, unit cost and price, margin per unit, and the protection window (lead time + review period)."""
    keys = inputs.projection[SKU_LOCATION].drop_duplicates()
    policy_cols = [c for c in ("supplier_id", "lead_time_days", "safety_stock", "reorder_point", "order_up_to", "order_quantity", "tier", "moq", "pack_size") if c in inputs.policy]
    ctx = keys.merge(inputs.policy[[*SKU_LOCATION, *policy_cols]].drop_duplicates(SKU_LOCATION), on=SKU_LOCATION, how="left")
    for col in ("supplier_id", "tier"):
        if col not in ctx:
            ctx[col] = None
    for col in ("lead_time_days", "safety_stock", "reorder_point", "order_up_to", "order_quantity", "moq", "pack_size"):
        if col not in ctx:
            ctx[col] = np.nan
    product_cols = ["sku", "category", "unit_cost", "unit_price", *(["active"] if "active" in inputs.product else [])]
    product = inputs.product[product_cols].drop_duplicates("sku") if not inputs.product.empty else pd.DataFrame(columns=product_cols)
    ctx = ctx.merge(product, on="sku", how="left")
    ctx["active"] = ctx["active"].astype("boolean").fillna(True).astype(bool) if "active" in ctx else True
    location = inputs.location[["location_id", "region"]].drop_duplicates("location_id") if not inputs.location.empty else pd.DataFrame(columns=["location_id", "region"])
    ctx = ctx.merge(location, on="location_id", how="left")
    ctx["unit_cost"] = ctx["unit_cost"].astype(float).fillna(0.0)
    ctx["unit_price"] = ctx["unit_price"].astype(float).fillna(ctx["unit_cost"])
    # Lost margin is what a short unit costs; a product sold at or below cost still loses its price's worth
    # of revenue to the customer relationship, so fall back to a tenth of the price rather than zero.
    ctx["margin"] = np.where(ctx["unit_price"] > ctx["unit_cost"], ctx["unit_price"] - ctx["unit_cost"], 0.1 * ctx["unit_price"])
    ctx["lead_time_days"] = ctx["lead_time_days"].astype(float)
    ctx["window_days"] = ctx["lead_time_days"].fillna(thresholds.default_lead_time_days) + thresholds.review_period_days
    return ctx.reset_index(drop=True)


def _affected(orders: pd.DataFrame, hits: pd.DataFrame, until_column: str) -> pd.DataFrame:
    """Per hit SKU-location: the open order lines promised before `hits[until_column]` (the date the
    shortage or the late receipt bites until), as a JSON list, their count and the strictest tier."""
    base = hits[[*SKU_LOCATION, until_column]].drop_duplicates(SKU_LOCATION)
    if orders.empty or base.empty:
        return base.assign(affected_orders="[]", affected_order_count=0, affected_tier=None)[[*SKU_LOCATION, "affected_orders", "affected_order_count", "affected_tier"]]
    lines = orders.merge(base, on=SKU_LOCATION, how="inner")
    lines = lines[lines["promise_date"] < pd.to_datetime(lines[until_column])]
    lines = lines.sort_values([*SKU_LOCATION, "promise_date", "order_id", "line_no"], kind="mergesort")
    lines["_json"] = json_rows(lines[["order_id", "line_no", "customer_id", "qty_open", "promise_date", "tier"]])
    lines["_rank"] = lines["tier"].map(TIER_RANK).fillna(len(TIER_RANK))
    grouped = lines.groupby(SKU_LOCATION, sort=False).agg(
        affected_orders=("_json", lambda s: "[" + ",".join(s) + "]"),
        affected_order_count=("_json", "size"),
        _rank=("_rank", "min"),
    ).reset_index()
    grouped["affected_tier"] = grouped["_rank"].map(RANK_TIER)
    out = base[SKU_LOCATION].merge(grouped.drop(columns="_rank"), on=SKU_LOCATION, how="left")
    out["affected_orders"] = out["affected_orders"].fillna("[]")
    out["affected_order_count"] = out["affected_order_count"].fillna(0).astype(int)
    return out


def _finish(frame: pd.DataFrame, exception_type: str, entity: pd.Series, trigger: pd.DataFrame, sentence: pd.Series) -> pd.DataFrame:
    """Common columns: key, type, entity, the JSON of the triggering values, defaults for the rest."""
    out = frame.copy()
    out["exception_type"] = exception_type
    out["entity"] = entity.to_numpy()
    out["exception_key"] = exception_type + ":" + out["entity"]
    out["trigger_values"] = json_rows(trigger).to_numpy()
    out["sentence"] = sentence.to_numpy()
    for col in EXCEPTION_COLUMNS:
        if col not in out:
            out[col] = None
    if "customer_tier" in out and "tier" in out:
        out["customer_tier"] = out["customer_tier"].fillna(out["tier"])
    out["affected_orders"] = out["affected_orders"].fillna("[]")
    out["affected_order_count"] = pd.to_numeric(out["affected_order_count"], errors="coerce").fillna(0).astype(int)
    return out[list(EXCEPTION_COLUMNS)]


def _sku_location_entity(frame: pd.DataFrame) -> pd.Series:
    return frame["sku"].astype(str) + "@" + frame["location_id"].astype(str)


def _projection_window(projection: pd.DataFrame, ctx: pd.DataFrame, horizon_start: pd.Timestamp) -> pd.DataFrame:
    """The projection rows inside each SKU-location's protection window (lead time + review period from the
    horizon start), with the context columns."""
    proj = projection.merge(ctx[[*SKU_LOCATION, "window_days"]], on=SKU_LOCATION, how="inner")
    proj["period_start"] = as_datetime_column(proj["period_start"])
    in_window = proj["period_start"] < horizon_start + pd.to_timedelta(proj["window_days"], unit="D")
    return proj[in_window | (proj["bucket"] == 0)]


def _first_receipts(purchase_lines: pd.DataFrame) -> pd.DataFrame:
    """Per SKU-location the next scheduled receipt: date (confirmed, else expected) and quantity."""
    if purchase_lines.empty:
        return pd.DataFrame(columns=[*SKU_LOCATION, "next_receipt_date", "next_receipt_qty"])
    po = purchase_lines[purchase_lines["status"].isin(PO_SCHEDULED) & (purchase_lines["qty_open"].astype(float) > 0)].copy()
    po["due"] = as_datetime_column(po["confirmed_date"]).fillna(as_datetime_column(po["expected_date"])) if "confirmed_date" in po else as_datetime_column(po["expected_date"])
    po = po.sort_values([*SKU_LOCATION, "due"], kind="mergesort")
    first = po.groupby(SKU_LOCATION, sort=False).agg(next_receipt_date=("due", "first")).reset_index()
    qty = po.merge(first, on=SKU_LOCATION)
    qty = qty[qty["due"] == qty["next_receipt_date"]].groupby(SKU_LOCATION, as_index=False)["qty_open"].sum()
    return first.merge(qty.rename(columns={"qty_open": "next_receipt_qty"}), on=SKU_LOCATION, how="left")


def order_arrival(
    projection: pd.DataFrame, ctx: pd.DataFrame, as_of: pd.Timestamp, review_days: float, default_lead_time_days: float, bucket_days: int = 7
) -> pd.DataFrame:
    """Per SKU-location, when an order placed today lands and which buckets it must cover: sku, location_id,
    arrival (today + lead time), arrival_bucket (the bucket it lands in) and cover_bucket (the last bucket
    before the order of the next review can land: today + lead time + review period)."""
    lead = ctx[[*SKU_LOCATION, "lead_time_days"]].copy()
    lead["lead_time_days"] = lead["lead_time_days"].astype(float).fillna(default_lead_time_days)
    first = projection.loc[projection["bucket"] == 0, [*SKU_LOCATION, "period_start"]].drop_duplicates(SKU_LOCATION)
    first["period_start"] = as_datetime_column(first["period_start"])
    out = lead.merge(first, on=SKU_LOCATION, how="inner")
    days_to_arrival = out["lead_time_days"] + ((as_of - out["period_start"]) / pd.Timedelta(days=1))
    out["arrival"] = as_of + pd.to_timedelta(out["lead_time_days"], unit="D")
    out["arrival_bucket"] = np.floor(days_to_arrival / bucket_days).astype(int)
    out["cover_bucket"] = np.maximum(np.floor((days_to_arrival + review_days - 1) / bucket_days).astype(int), out["arrival_bucket"])
    return out[[*SKU_LOCATION, "arrival", "arrival_bucket", "cover_bucket"]]


def replenishment_due(inputs: PlanningInputs, ctx: pd.DataFrame, arrival: pd.DataFrame) -> pd.DataFrame:
    """replenishment_due: the projected balance (every scheduled and planned receipt counted) falls below
    safety stock in the buckets an order placed today can still reach — from its arrival a lead time from now
    to when the next review's order could land. The routine case of a replenishment plan: its action is the
    order; a person sees it only when the policy does not approve it. Units at risk = the net requirement
    (safety stock less the lowest balance over those buckets); money = margin of the units that would be
    short of zero without it.

    Where the inventory position by the need date (stock and every receipt due by then) already reaches the
    order-up-to level, the order's premise is false (`_routine_orders` refuses it): the dip is the end of a
    weekly bucket the next review's order still reaches. The case is recorded with that `suppressed_reason`,
    not sent to a person with nothing to do."""
    sourced = ctx[ctx["supplier_id"].notna() & ctx["active"]] if "active" in ctx else ctx[ctx["supplier_id"].notna()]
    proj = inputs.projection.merge(arrival, on=SKU_LOCATION, how="inner").merge(sourced[SKU_LOCATION], on=SKU_LOCATION, how="inner")
    reach = proj[(proj["bucket"] >= proj["arrival_bucket"]) & (proj["bucket"] <= proj["cover_bucket"])].copy()
    if reach.empty:
        return pd.DataFrame(columns=list(EXCEPTION_COLUMNS))
    reach["period_start"] = as_datetime_column(reach["period_start"])
    below = reach[reach["closing"] < reach["safety_stock"]]
    if below.empty:
        return pd.DataFrame(columns=list(EXCEPTION_COLUMNS))
    first = below.sort_values([*SKU_LOCATION, "bucket"], kind="mergesort").drop_duplicates(SKU_LOCATION)[[*SKU_LOCATION, "period_start", "arrival"]]
    lowest = reach.groupby(SKU_LOCATION, as_index=False).agg(lowest=("closing", "min"), safety_stock=("safety_stock", "first"))
    hits = first.merge(lowest, on=SKU_LOCATION).merge(ctx, on=SKU_LOCATION, how="left", suffixes=("", "_policy"))
    hits["need_date"] = hits[["period_start", "arrival"]].max(axis=1)
    hits["units_at_risk"] = (hits["safety_stock"] - hits["lowest"]).clip(lower=0)
    hits["money_at_risk"] = (-hits["lowest"]).clip(lower=0) * hits["margin"]
    hits["window_start"] = hits["need_date"].dt.date
    through = inputs.projection.assign(_start=as_datetime_column(inputs.projection["period_start"])).merge(hits[[*SKU_LOCATION, "need_date"]], on=SKU_LOCATION)
    through = through[through["_start"] <= through["need_date"]].groupby(SKU_LOCATION, as_index=False)["bucket"].max()
    hits = hits.merge(inventory_position(inputs.projection, through), on=SKU_LOCATION, how="left")
    reached = hits["position"].astype(float).fillna(0.0) >= hits["order_up_to"].astype(float).fillna(np.inf)
    hits["suppressed_reason"] = np.where(
        reached, "the inventory position by " + fmt_day(hits["need_date"]) + " (" + fmt_qty(hits["position"].fillna(0.0))
        + ") already reaches the order-up-to level " + fmt_qty(hits["order_up_to"].fillna(0.0)) + ": no order is due", None,
    )
    hits["customer_tier"] = hits["tier"]
    sentence = (
        hits["sku"] + " at " + hits["location_id"] + ": order now — an order placed today lands about " + fmt_day(hits["arrival"])
        + " (lead time " + fmt_qty(hits["lead_time_days"]) + " d); without it the projected balance falls to " + fmt_qty(hits["lowest"])
        + " by the week of " + fmt_day(hits["period_start"]) + ", below safety stock " + fmt_qty(hits["safety_stock"]) + "."
    )
    trigger = hits[["arrival", "need_date", "lowest", "safety_stock", "units_at_risk", "lead_time_days"]]
    return _finish(hits, "replenishment_due", _sku_location_entity(hits), trigger, sentence)


def projected_stockouts(inputs: PlanningInputs, ctx: pd.DataFrame, orders: pd.DataFrame, horizon_start: pd.Timestamp, bucket_days: int) -> pd.DataFrame:
    """projected_stockout: the projected available balance goes below zero within lead time + review
    period. Units at risk = the deepest shortfall in the window; money = those units × margin."""
    window = _projection_window(inputs.projection, ctx, horizon_start)
    short = window[window["closing"] < 0]
    if short.empty:
        return pd.DataFrame(columns=list(EXCEPTION_COLUMNS))
    first = short.sort_values([*SKU_LOCATION, "bucket"], kind="mergesort").drop_duplicates(SKU_LOCATION)
    deepest = short.groupby(SKU_LOCATION, as_index=False)["closing"].min().rename(columns={"closing": "min_closing"})
    summary = window.groupby(SKU_LOCATION, as_index=False).agg(
        available=("opening", "first"), forecast_per_bucket=("forecast", "mean")
    )
    hits = first[[*SKU_LOCATION, "period_start", "bucket"]].rename(columns={"period_start": "stockout_week", "bucket": "stockout_bucket"})
    hits = hits.merge(deepest, on=SKU_LOCATION).merge(summary, on=SKU_LOCATION).merge(ctx, on=SKU_LOCATION)
    hits = hits.merge(_first_receipts(inputs.purchase_lines), on=SKU_LOCATION, how="left")
    hits["units_at_risk"] = -hits["min_closing"]
    hits["money_at_risk"] = hits["units_at_risk"] * hits["margin"]
    hits["window_start"] = hits["stockout_week"].dt.date
    hits["_until"] = hits["stockout_week"] + pd.Timedelta(days=float(bucket_days)) + pd.to_timedelta(hits["window_days"], unit="D")
    hits = hits.merge(_affected(orders, hits, "_until"), on=SKU_LOCATION, how="left")
    hits["customer_tier"] = hits["affected_tier"]
    inbound = np.where(
        hits["next_receipt_date"].notna(),
        "next receipt " + fmt_qty(hits["next_receipt_qty"]) + " on " + fmt_day(hits["next_receipt_date"]),
        "no inbound supply",
    )
    sentence = (
        hits["sku"] + " at " + hits["location_id"] + ": available " + fmt_qty(hits["available"]) + ", " + inbound
        + ", forecast " + fmt_qty(hits["forecast_per_bucket"]) + "/wk → stockout week of " + fmt_day(hits["stockout_week"])
        + ", short " + fmt_qty(hits["units_at_risk"]) + " within lead time " + fmt_qty(hits["lead_time_days"].fillna(-1)).replace("-1", "?")
        + " d (" + fmt_money(hits["money_at_risk"]) + " margin at risk"
        + np.where(hits["affected_order_count"] > 0, ", " + hits["affected_order_count"].astype(str) + " customer order lines affected", "")
        + ")."
    )
    trigger = hits[["available", "next_receipt_date", "next_receipt_qty", "forecast_per_bucket", "stockout_week", "stockout_bucket", "units_at_risk", "lead_time_days", "window_days"]]
    return _finish(hits, "projected_stockout", _sku_location_entity(hits), trigger, sentence)


def below_safety_stock(
    inputs: PlanningInputs, ctx: pd.DataFrame, horizon_start: pd.Timestamp, n: int, stockout_keys: pd.DataFrame, tolerances: Tolerances | None = None
) -> pd.DataFrame:
    """below_safety_stock: the balance stays below safety stock (but not below zero within the window, which
    is a projected_stockout) for n consecutive buckets, the run starting inside the protection window. Units
    at risk: the deepest gap below safety stock over those n buckets. A dip that receipts already scheduled or
    planned restore by the end of the protection window is recorded with its `suppressed_reason` (the
    tolerance `below_safety_stock_when_receipts_restore`)."""
    tolerances = tolerances or Tolerances()
    proj = inputs.projection.merge(ctx[[*SKU_LOCATION, "window_days"]], on=SKU_LOCATION, how="inner")
    proj = proj.sort_values([*SKU_LOCATION, "bucket"], kind="mergesort").reset_index(drop=True)
    below = (proj["closing"] < proj["safety_stock"]) & (proj["safety_stock"] > 0)
    # Run length of consecutive `below` buckets: cumulative count reset at every bucket that is not below.
    run_id = (~below).groupby([proj["sku"], proj["location_id"]], sort=False).cumsum()
    run_len = below.astype(int).groupby([proj["sku"], proj["location_id"], run_id], sort=False).cumsum()
    proj["run_len"] = run_len
    proj["period_start"] = as_datetime_column(proj["period_start"])
    reached = proj[(proj["run_len"] == n)].copy()
    reached["run_start_bucket"] = reached["bucket"] - (n - 1)
    reached = reached.drop_duplicates(SKU_LOCATION)
    starts = proj[[*SKU_LOCATION, "bucket", "period_start"]].rename(columns={"bucket": "run_start_bucket", "period_start": "run_start"})
    reached = reached[[*SKU_LOCATION, "run_start_bucket", "window_days"]].merge(starts, on=[*SKU_LOCATION, "run_start_bucket"])
    reached = reached[reached["run_start"] < horizon_start + pd.to_timedelta(reached["window_days"], unit="D")]
    if not stockout_keys.empty:
        reached = reached.merge(stockout_keys[SKU_LOCATION].assign(_so=True), on=SKU_LOCATION, how="left")
        reached = reached[reached["_so"].isna()].drop(columns="_so")
    if reached.empty:
        return pd.DataFrame(columns=list(EXCEPTION_COLUMNS))
    run_rows = proj.merge(reached[[*SKU_LOCATION, "run_start_bucket"]], on=SKU_LOCATION)
    # The n buckets that make the run: what lies beyond them is another rule's business (a later stockout).
    run_rows = run_rows[(run_rows["bucket"] >= run_rows["run_start_bucket"]) & (run_rows["bucket"] < run_rows["run_start_bucket"] + n)]
    gap = run_rows.assign(gap=run_rows["safety_stock"] - run_rows["closing"]).groupby(SKU_LOCATION, as_index=False).agg(
        gap=("gap", "max"), lowest=("closing", "min"), safety_stock=("safety_stock", "first")
    )
    hits = reached.drop(columns="window_days").merge(gap, on=SKU_LOCATION).merge(ctx, on=SKU_LOCATION, suffixes=("", "_policy"))
    hits["units_at_risk"] = hits["gap"]
    hits["money_at_risk"] = hits["gap"] * hits["margin"]
    hits["window_start"] = hits["run_start"].dt.date
    # Where the balance stands at the end of the protection window, once the receipts due by then landed.
    in_window = proj[proj["period_start"] < horizon_start + pd.to_timedelta(proj["window_days"], unit="D")]
    window_end = in_window.drop_duplicates(SKU_LOCATION, keep="last")[[*SKU_LOCATION, "closing", "period_start"]]
    hits = hits.merge(window_end.rename(columns={"closing": "window_end_closing", "period_start": "window_end_week"}), on=SKU_LOCATION, how="left")
    restored = hits["window_end_closing"] >= hits["safety_stock"]
    hits["suppressed_reason"] = np.where(
        restored & (not tolerances.below_safety_stock_when_receipts_restore),
        "receipts already scheduled or planned restore safety stock by the week of " + fmt_day(hits["window_end_week"]), None,
    )
    hits["customer_tier"] = hits["tier"]
    sentence = (
        hits["sku"] + " at " + hits["location_id"] + ": projected balance stays below safety stock " + fmt_qty(hits["safety_stock"])
        + " for " + str(n) + " weeks from the week of " + fmt_day(hits["run_start"]) + ", down to " + fmt_qty(hits["lowest"])
        + " (gap " + fmt_qty(hits["gap"]) + " units, " + fmt_money(hits["money_at_risk"]) + " margin exposed)."
    )
    trigger = hits[["run_start", "lowest", "safety_stock", "gap"]].assign(consecutive_buckets=n)
    return _finish(hits, "below_safety_stock", _sku_location_entity(hits), trigger, sentence)


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
    volume = inputs.forecast.groupby(SKU_LOCATION, as_index=False)["mean"].sum()
    stocked = volume.merge(inputs.location[["location_id", "region"]].drop_duplicates("location_id"), on="location_id", how="left")
    by_region = stocked.sort_values("mean", ascending=False, kind="mergesort").drop_duplicates(["sku", "region"])
    largest = stocked.sort_values("mean", ascending=False, kind="mergesort").drop_duplicates("sku")[["sku", "location_id"]]
    placed = pipe.merge(by_region[["sku", "region", "location_id"]], on=["sku", "region"], how="left")
    placed = placed.merge(largest.rename(columns={"location_id": "_fallback"}), on="sku", how="left")
    placed["location_id"] = placed["location_id"].fillna(placed["_fallback"])
    placed = placed.dropna(subset=["location_id"])
    return placed.groupby(SKU_LOCATION, as_index=False)["weighted"].sum().rename(columns={"weighted": "pipeline_weighted"})


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
    fc = inputs.forecast.copy()
    fc["period_start"] = as_datetime_column(fc["period_start"])
    fc["sigma"] = (fc["q90"].astype(float) - fc["q10"].astype(float)).clip(lower=0) / Z90_SPAN
    first = fc.sort_values([*SKU_LOCATION, "period_start"], kind="mergesort").drop_duplicates(SKU_LOCATION)
    level = first[[*SKU_LOCATION, "mean", "sigma"]].rename(columns={"mean": "forecast_level", "sigma": "forecast_sigma"})
    signals = ctx[SKU_LOCATION].merge(level, on=SKU_LOCATION, how="inner")
    signals["limit"] = signals["forecast_level"] + k * signals["forecast_sigma"]

    hist = inputs.demand_history
    if not hist.empty:
        hist = hist.assign(period_start=as_datetime_column(hist["period_start"]))
        hist = hist[hist["period_start"] < horizon_start]
        ordered = hist.sort_values([*SKU_LOCATION, "period_start"], kind="mergesort")
        last = ordered.drop_duplicates(SKU_LOCATION, keep="last")
        signals = signals.merge(last[[*SKU_LOCATION, "qty", "period_start"]].rename(columns={"qty": "recent_demand", "period_start": "recent_week"}), on=SKU_LOCATION, how="left")
        # How many of the latest weeks in a row ran above the limit (a one-week blip is not a new level).
        tail = ordered.groupby(SKU_LOCATION, sort=False).tail(tolerances.demand_spike_min_weeks).merge(signals[[*SKU_LOCATION, "limit"]], on=SKU_LOCATION)
        above = tail.assign(_above=tail["qty"].astype(float) > tail["limit"]).groupby(SKU_LOCATION, as_index=False)["_above"].sum()
        signals = signals.merge(above.rename(columns={"_above": "weeks_above"}), on=SKU_LOCATION, how="left")
    else:
        signals["recent_demand"], signals["recent_week"], signals["weeks_above"] = np.nan, pd.NaT, 0
    signals["weeks_above"] = pd.to_numeric(signals["weeks_above"], errors="coerce").fillna(0)
    proj = _projection_window(inputs.projection, ctx, horizon_start)
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
    return _finish(hits, "demand_spike", _sku_location_entity(hits), trigger, sentence)


def supplier_delays(inputs: PlanningInputs, ctx: pd.DataFrame, orders: pd.DataFrame, as_of: pd.Timestamp, horizon_start: pd.Timestamp) -> pd.DataFrame:
    """supplier_delay: a sent or confirmed PO line whose confirmed date slipped past the expected date, or
    whose due date (confirmed, else expected) has passed with quantity still open. Money at risk = the
    margin of the late units the projection is short of within the window (zero if stock covers the slip)."""
    po = inputs.purchase_lines
    if po.empty:
        return pd.DataFrame(columns=list(EXCEPTION_COLUMNS))
    po = po[po["status"].isin(PO_SCHEDULED) & (po["qty_open"].astype(float) > 0)].copy()
    po["expected_date"] = as_datetime_column(po["expected_date"])
    po["confirmed_date"] = as_datetime_column(po["confirmed_date"]) if "confirmed_date" in po else pd.NaT
    po["due"] = po["confirmed_date"].fillna(po["expected_date"])
    po["slip_days"] = ((po["confirmed_date"] - po["expected_date"]) / pd.Timedelta(days=1)).fillna(0.0)
    po["overdue_days"] = ((as_of - po["due"]) / pd.Timedelta(days=1)).clip(lower=0)
    hits = po[(po["slip_days"] > 0) | (po["overdue_days"] > 0)].copy()
    if hits.empty:
        return pd.DataFrame(columns=list(EXCEPTION_COLUMNS))
    shortfall = _projection_window(inputs.projection, ctx, horizon_start).groupby(SKU_LOCATION, as_index=False)["closing"].min()
    shortfall["shortfall"] = (-shortfall["closing"]).clip(lower=0)
    hits = hits.merge(shortfall[[*SKU_LOCATION, "shortfall"]], on=SKU_LOCATION, how="left")
    hits = hits.merge(ctx.drop(columns=["supplier_id"]), on=SKU_LOCATION, how="left")
    if not inputs.supplier.empty:
        hits = hits.merge(inputs.supplier[["supplier_id", "name"]].rename(columns={"name": "supplier_name"}).drop_duplicates("supplier_id"), on="supplier_id", how="left")
    else:
        hits["supplier_name"] = None
    hits["supplier_name"] = hits["supplier_name"].fillna(hits["supplier_id"])
    hits["margin"] = hits["margin"].fillna(0.0)
    hits["units_at_risk"] = np.minimum(hits["qty_open"].astype(float), hits["shortfall"].fillna(0.0))
    hits["money_at_risk"] = hits["units_at_risk"] * hits["margin"]
    hits["window_start"] = hits["due"].dt.date
    hits["_until"] = hits["due"].where(hits["due"] > as_of, as_of)
    # One SKU-location may have several late lines: the affected orders are per SKU-location and due date.
    aff = _affected(orders, hits.sort_values("_until", ascending=False, kind="mergesort"), "_until")
    hits = hits.merge(aff, on=SKU_LOCATION, how="left")
    hits["customer_tier"] = hits["affected_tier"]
    hits["po_line_no"] = hits["line_no"].astype(int)
    what = np.where(
        hits["slip_days"] > 0,
        "now confirmed " + fmt_day(hits["confirmed_date"]) + ", " + fmt_qty(hits["slip_days"]) + " days after the expected " + fmt_day(hits["expected_date"]),
        "due " + fmt_day(hits["due"]) + ", " + fmt_qty(hits["overdue_days"]) + " days overdue",
    )
    sentence = (
        hits["po_id"].astype(str) + "/" + hits["po_line_no"].astype(str) + " from " + hits["supplier_name"].astype(str) + ": "
        + fmt_qty(hits["qty_open"]) + " units of " + hits["sku"] + " for " + hits["location_id"] + " " + what
        + np.where(hits["units_at_risk"] > 0, "; projected short " + fmt_qty(hits["units_at_risk"]) + " meanwhile", "; stock covers the slip")
        + np.where(hits["affected_order_count"] > 0, ", " + hits["affected_order_count"].astype(str) + " customer order lines promised before it arrives", "")
        + "."
    )
    trigger = hits[["po_id", "po_line_no", "qty_open", "expected_date", "confirmed_date", "slip_days", "overdue_days", "units_at_risk"]]
    entity = hits["po_id"].astype(str) + "/" + hits["po_line_no"].astype(str)
    return _finish(hits, "supplier_delay", entity, trigger, sentence)


def risky_order_lines(inputs: PlanningInputs, orders: pd.DataFrame, bucket_days: int, today: pd.Timestamp | date) -> pd.DataFrame:
    """The open order lines the projected supply cannot meet on their promise date (`order_lines_at_risk`),
    each scheduled receipt counted from its own day: what the order_at_risk rule and its actions both read."""
    return order_lines_at_risk(inputs.projection, orders, bucket_days, dated_receipts(inputs.purchase_lines, pd.Timestamp(today)), pd.Timestamp(today))


def orders_at_risk(inputs: PlanningInputs, ctx: pd.DataFrame, orders: pd.DataFrame, bucket_days: int, today: pd.Timestamp) -> pd.DataFrame:
    """order_at_risk: one exception per SKU-location with open order lines that projected supply cannot meet
    on their promise dates (see `risky_order_lines`); money = short units × margin."""
    risky = risky_order_lines(inputs, orders, bucket_days, today)
    if risky.empty:
        return pd.DataFrame(columns=list(EXCEPTION_COLUMNS))
    risky["_json"] = json_rows(risky[["order_id", "line_no", "customer_id", "tier", "qty_open", "short", "promise_date", "revised_date"]])
    hits = risky.groupby(SKU_LOCATION, sort=False).agg(
        affected_orders=("_json", lambda s: "[" + ",".join(s) + "]"),
        affected_order_count=("_json", "size"),
        units_at_risk=("short", "sum"),
        customers=("customer_id", "nunique"),
        first_promise=("promise_date", "min"),
        _rank=("_tier_rank", "min"),
    ).reset_index()
    hits["customer_tier"] = hits["_rank"].map(RANK_TIER)
    hits = hits.merge(ctx, on=SKU_LOCATION, how="left")
    hits["money_at_risk"] = hits["units_at_risk"] * hits["margin"].fillna(0.0)
    hits["window_start"] = hits["first_promise"].dt.date
    sentence = (
        hits["sku"] + " at " + hits["location_id"] + ": " + hits["affected_order_count"].astype(str) + " order lines of "
        + hits["customers"].astype(str) + " customers (" + hits["customer_tier"].fillna("unknown tier") + " first) cannot be met on their promise dates from "
        + fmt_day(hits["first_promise"]) + "; " + fmt_qty(hits["units_at_risk"]) + " units short of supply."
    )
    trigger = hits[["units_at_risk", "customers", "first_promise", "affected_order_count"]]
    return _finish(hits, "order_at_risk", _sku_location_entity(hits), trigger, sentence)


def excess_stock(inputs: PlanningInputs, ctx: pd.DataFrame, threshold_days: float, bucket_days: int, holding_cost_rate: float = 0.25) -> pd.DataFrame:
    """excess_stock: days of cover of the stock available now (on hand − allocated over the horizon's
    average daily forecast) above the threshold. Units at risk = the stock beyond threshold days of demand
    (and beyond the order-up-to level); money = what holding those units costs until demand uses them up
    (unit cost × the yearly holding rate × the years it takes, at most one): capital tied up, not a loss as
    urgent as a shortage's margin."""
    proj = inputs.projection.sort_values([*SKU_LOCATION, "bucket"], kind="mergesort")
    summary = proj.groupby(SKU_LOCATION, as_index=False, sort=False).agg(available=("opening", "first"), mean_forecast=("forecast", "mean"))
    summary = summary.merge(ctx, on=SKU_LOCATION, how="left")
    daily = summary["mean_forecast"] / float(bucket_days)
    with np.errstate(divide="ignore", invalid="ignore"):
        cover = np.where(summary["available"] > 0, summary["available"] / daily, 0.0)
    summary["days_of_cover"] = cover
    keep = np.maximum(daily * threshold_days, summary["order_up_to"].fillna(0.0))
    summary["units_at_risk"] = (summary["available"] - keep).clip(lower=0)
    hits = summary[(summary["days_of_cover"] > threshold_days) & (summary["units_at_risk"] > 0)].copy()
    if hits.empty:
        return pd.DataFrame(columns=list(EXCEPTION_COLUMNS))
    with np.errstate(divide="ignore", invalid="ignore"):
        years = np.where(daily[hits.index] > 0, hits["units_at_risk"] / daily[hits.index] / 365.0, 1.0)
    hits["stock_value"] = hits["units_at_risk"] * hits["unit_cost"]
    hits["money_at_risk"] = hits["stock_value"] * holding_cost_rate * np.clip(years, 0.0, 1.0)
    hits["customer_tier"] = hits["tier"]
    cover_text = np.where(np.isfinite(hits["days_of_cover"]), fmt_qty(hits["days_of_cover"]) + " days of cover", "no forecast demand")
    sentence = (
        hits["sku"] + " at " + hits["location_id"] + ": available " + fmt_qty(hits["available"]) + " against forecast "
        + fmt_qty(hits["mean_forecast"]) + "/wk = " + cover_text + " (threshold " + f"{threshold_days:g}" + "); "
        + fmt_qty(hits["units_at_risk"]) + " units worth " + fmt_money(hits["stock_value"]) + " beyond need, costing about "
        + fmt_money(hits["money_at_risk"]) + " to hold until used."
    )
    trigger = hits[["available", "mean_forecast", "days_of_cover", "units_at_risk", "stock_value"]].assign(
        days_of_cover=np.where(np.isfinite(hits["days_of_cover"]), hits["days_of_cover"], None), threshold_days=threshold_days
    )
    return _finish(hits, "excess_stock", _sku_location_entity(hits), trigger, sentence)


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
    value = value.sort_values(["value", *SKU_LOCATION], ascending=[False, True, True], kind="mergesort")
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
    hits = hits.merge(forecast_value_share(inputs.projection, ctx), on=SKU_LOCATION, how="left")
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
    return _finish(hits, "forecast_degradation", _sku_location_entity(hits), trigger, sentence)


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
    out = [_finish(stale, "stale_feed", stale["object"], stale[["object", "age_hours", "freshness_hours"]], stale_sentence)] if not stale.empty else []
    rows = f["rows_extracted"].astype(float).where(f["rows_extracted"].astype(float) > 0)
    f["quarantine_share"] = (f["rows_quarantined"].astype(float).fillna(0) / rows).fillna(0.0)
    bad = f[(f["status"] == "rejected") | (f["quarantine_share"] > quarantine_share)]
    if not bad.empty:
        sentence = (
            "Feed " + bad["object"] + ": " + np.where(bad["status"] == "rejected", "the latest load was rejected; ", "")
            + fmt_qty(bad["rows_quarantined"].fillna(0)) + " of " + fmt_qty(bad["rows_extracted"]) + " rows quarantined ("
            + (100 * bad["quarantine_share"]).map("{:.1f}".format) + "%, limit " + f"{100 * quarantine_share:g}" + "%): fix the source data."
        )
        out.append(_finish(bad, "data_quality", bad["object"], bad[["object", "status", "rows_extracted", "rows_quarantined", "quarantine_share"]], sentence))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=list(EXCEPTION_COLUMNS))


def link_to_root_causes(detected: pd.DataFrame, projection: pd.DataFrame, arrival: pd.DataFrame, tolerances: Tolerances) -> pd.DataFrame:
    """One case per root cause. A shortage an order placed today still prevents (it bites at or after the
    order's arrival) is a symptom of that SKU-location's replenishment_due; a shortage at a SKU-location whose
    supplier slipped a line it needed is a symptom of that supplier_delay (the slip short of the most units).
    Orders at risk are never symptoms: their customers must hear whatever the cause. Symptoms carry their root's key in `cause_key`. A slip the projected balance covers is
    recorded but held back (`supplier_delay_when_covered`)."""
    out = detected.copy()
    for col in ("cause_key", "suppressed_reason"):
        if col not in out:
            out[col] = None
    out["cause_key"] = out["cause_key"].astype(object)
    out["suppressed_reason"] = out["suppressed_reason"].astype(object)
    delay = out["exception_type"] == "supplier_delay"
    covered = delay & (out["units_at_risk"].astype(float) <= 0) & out["suppressed_reason"].isna()
    if not tolerances.supplier_delay_when_covered:
        out.loc[covered, "suppressed_reason"] = "the projected balance covers the slip"

    pairs = out[SKU_LOCATION].astype(object)
    shortage = out["exception_type"].isin(["projected_stockout", "below_safety_stock"])
    if shortage.any() and not projection.empty:
        proj = projection.merge(arrival[[*SKU_LOCATION, "arrival_bucket"]], on=SKU_LOCATION, how="inner")
        first_out = proj[proj["closing"] < 0].groupby(SKU_LOCATION)["bucket"].min().rename("stockout_bucket")
        first_below = proj[proj["closing"] < proj["safety_stock"]].groupby(SKU_LOCATION)["bucket"].min().rename("below_bucket")
        due = arrival.set_index(SKU_LOCATION)["arrival_bucket"]
        index = pd.MultiIndex.from_frame(pairs)
        breach = np.where(out["exception_type"] == "projected_stockout", first_out.reindex(index).to_numpy(), first_below.reindex(index).to_numpy())
        reachable = shortage.to_numpy() & (breach >= due.reindex(index).to_numpy())
        routine = set(map(tuple, out.loc[out["exception_type"] == "replenishment_due", SKU_LOCATION].to_numpy()))
        has_routine = np.array([tuple(p) in routine for p in pairs.to_numpy()])
        link = reachable & has_routine
        out.loc[link, "cause_key"] = ("replenishment_due:" + out.loc[link, "sku"].astype(str) + "@" + out.loc[link, "location_id"].astype(str)).to_numpy()

    slipped = out[delay & (out["units_at_risk"].astype(float) > 0)]
    if not slipped.empty:
        root = slipped.sort_values(["units_at_risk", "exception_key"], ascending=[False, True], kind="mergesort").drop_duplicates(SKU_LOCATION)
        by_pair = dict(zip(map(tuple, root[SKU_LOCATION].to_numpy()), root["exception_key"]))
        # Orders at risk stay cases of their own: their customers must hear, whatever caused the shortage.
        symptom = out["exception_type"].isin(["projected_stockout", "below_safety_stock"]) & out["cause_key"].isna()
        causes = pd.Series([by_pair.get(tuple(p)) for p in pairs.to_numpy()], index=out.index, dtype=object)
        out.loc[symptom & causes.notna(), "cause_key"] = causes[symptom & causes.notna()]
    return out


def detect_exceptions(
    inputs: PlanningInputs,
    thresholds: ExceptionThresholds,
    horizon_start: date | pd.Timestamp | str,
    as_of: date | pd.Timestamp | str | None = None,
    bucket_days: int = 7,
    tolerances: Tolerances | None = None,
) -> pd.DataFrame:
    """Every exception of the taxonomy that fires now (columns EXCEPTION_COLUMNS), one row per stable key,
    with the tolerances' hold-backs and the links of symptoms to their root cause (`link_to_root_causes`).
    `horizon_start` is the projection's first day; `as_of` (default the same) is today: what is overdue, and
    when an order placed now would land."""
    tolerances = tolerances or Tolerances()
    require_columns(inputs.projection, [*SKU_LOCATION, "bucket", "period_start", "opening", "receipts", "forecast", "committed", "closing", "safety_stock"], "projection")
    start = as_timestamp(horizon_start)
    now = as_timestamp(as_of) if as_of is not None else start
    ctx = sku_location_context(inputs, thresholds)
    orders = open_orders(inputs.order_lines, inputs.customer)
    # A discontinued SKU is meant to run down: its projected stockout is no exception (its open orders at
    # risk still are).
    selling = ctx[ctx["active"]] if "active" in ctx else ctx
    arrival = order_arrival(inputs.projection, ctx, now, thresholds.review_period_days, thresholds.default_lead_time_days, bucket_days)
    stockouts = projected_stockouts(inputs, selling, orders, start, bucket_days)
    stockout_keys = stockouts[SKU_LOCATION] if not stockouts.empty else pd.DataFrame(columns=SKU_LOCATION)
    parts = [
        replenishment_due(inputs, selling, arrival),
        stockouts,
        below_safety_stock(inputs, selling, start, thresholds.below_safety_stock_consecutive_buckets, stockout_keys, tolerances),
        demand_spikes(inputs, ctx, orders, start, thresholds, tolerances),
        supplier_delays(inputs, ctx, orders, now, start),
        orders_at_risk(inputs, ctx, orders, bucket_days, now),
        excess_stock(inputs, ctx, thresholds.excess_days_of_cover, bucket_days, tolerances.holding_cost_rate),
        forecast_degradation(inputs, ctx, thresholds.forecast_degradation_ratio, start, tolerances),
        feed_exceptions(inputs.feeds, thresholds.data_quality_quarantine_share, start),
    ]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=list(EXCEPTION_COLUMNS))
    out = pd.concat(parts, ignore_index=True)
    out["units_at_risk"] = out["units_at_risk"].astype(float).fillna(0.0)
    out["money_at_risk"] = out["money_at_risk"].astype(float).fillna(0.0)
    out["po_line_no"] = out["po_line_no"].astype("Int64")
    small_excess = (out["exception_type"] == "excess_stock") & (out["money_at_risk"] < tolerances.excess_stock_min_holding_cost)
    out["suppressed_reason"] = out["suppressed_reason"].astype(object).where(
        ~small_excess, "holding the excess costs less than the policy's minimum (" + fmt_money(out["money_at_risk"]) + ")"
    ) if "suppressed_reason" in out else None
    out = link_to_root_causes(out, inputs.projection, arrival, tolerances)
    return out.sort_values(["money_at_risk", "exception_key"], ascending=[False, True], kind="mergesort").reset_index(drop=True)
