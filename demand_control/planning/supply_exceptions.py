"""Exception rules about supply against demand: a routine order due, a projected stockout, a run below
safety stock, a supplier's slip, customer order lines the supply will not serve in time, and excess stock.
Each is vectorised over the whole panel; `planning.exceptions.detect_exceptions` runs them all."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from demand_control.planning.exception_frame import (
    PO_SCHEDULED,
    RANK_TIER,
    PlanningInputs,
    affected_orders,
    exception_rows,
    first_receipts,
    open_orders_of,
    projection_window,
    sku_location_entity,
)
from demand_control.planning.formatting import fmt_day, fmt_money, fmt_qty, json_rows
from demand_control.planning.inventory_common import (
    SKU_LOCATION,
    as_datetime_column,
    as_timestamp,
)
from demand_control.planning.order_supply import ExpectedOrders, dated_receipts, order_lines_at_risk, policy_lead_times
from demand_control.planning.policy.schema import Tolerances
from demand_control.planning.projection import inventory_position
from demand_control.planning.vocabulary import EXCEPTION_COLUMNS


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
    return exception_rows(hits, "replenishment_due", sku_location_entity(hits), trigger, sentence)


def projected_stockouts(inputs: PlanningInputs, ctx: pd.DataFrame, orders: pd.DataFrame, horizon_start: pd.Timestamp, bucket_days: int) -> pd.DataFrame:
    """projected_stockout: the projected available balance goes below zero within lead time + review
    period. Units at risk = the deepest shortfall in the window; money = those units × margin."""
    window = projection_window(inputs.projection, ctx, horizon_start)
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
    hits = hits.merge(first_receipts(inputs.purchase_lines), on=SKU_LOCATION, how="left")
    hits["units_at_risk"] = -hits["min_closing"]
    hits["money_at_risk"] = hits["units_at_risk"] * hits["margin"]
    hits["window_start"] = hits["stockout_week"].dt.date
    hits["_until"] = hits["stockout_week"] + pd.Timedelta(days=float(bucket_days)) + pd.to_timedelta(hits["window_days"], unit="D")
    hits = hits.merge(affected_orders(orders, hits, "_until"), on=SKU_LOCATION, how="left")
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
    return exception_rows(hits, "projected_stockout", sku_location_entity(hits), trigger, sentence)


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
    return exception_rows(hits, "below_safety_stock", sku_location_entity(hits), trigger, sentence)


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
    shortfall = projection_window(inputs.projection, ctx, horizon_start).groupby(SKU_LOCATION, as_index=False)["closing"].min()
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
    aff = affected_orders(orders, hits.sort_values("_until", ascending=False, kind="mergesort"), "_until")
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
    return exception_rows(hits, "supplier_delay", entity, trigger, sentence)


def risky_order_lines(
    inputs: PlanningInputs, bucket_days: int, today: pd.Timestamp | date, customer_order_lead_days: tuple[float, float] | None = None
) -> pd.DataFrame:
    """The open order lines (`open_orders_of`) the projected supply cannot meet on their promise date
    (`order_lines_at_risk`), each scheduled receipt counted from its own day and, given how far ahead
    customers order (`customer_order_lead_days`, the thresholds'), the orders the forecast still expects
    inside the policy's lead time served before the lines promised after them: what the order_at_risk rule
    and its actions both read, computed once per read of the inputs."""
    day = as_timestamp(today)
    leads = None if customer_order_lead_days is None else tuple(float(d) for d in customer_order_lead_days)

    def compute() -> pd.DataFrame:
        expected = None if leads is None else ExpectedOrders(inputs.forecast, policy_lead_times(inputs.policy), leads)
        return order_lines_at_risk(inputs.projection, open_orders_of(inputs), bucket_days, dated_receipts(inputs.purchase_lines, day), day, expected)

    return inputs.derived(("risky_order_lines", bucket_days, day, leads), compute)


def orders_at_risk(
    inputs: PlanningInputs, ctx: pd.DataFrame, bucket_days: int, today: pd.Timestamp, customer_order_lead_days: tuple[float, float] | None = None
) -> pd.DataFrame:
    """order_at_risk: one exception per SKU-location with open order lines that projected supply cannot meet
    on their promise dates (see `risky_order_lines`); money = short units × margin."""
    risky = risky_order_lines(inputs, bucket_days, today, customer_order_lead_days)
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
    return exception_rows(hits, "order_at_risk", sku_location_entity(hits), trigger, sentence)


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
    return exception_rows(hits, "excess_stock", sku_location_entity(hits), trigger, sentence)
