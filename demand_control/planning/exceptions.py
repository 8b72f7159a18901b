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

from datetime import date

import numpy as np
import pandas as pd

from demand_control.planning.exception_frame import (
    ExceptionThresholds,
    PlanningInputs,
    open_orders_of,
    order_arrival,
    sku_location_context,
)
from demand_control.planning.formatting import fmt_money
from demand_control.planning.inventory_common import (
    SKU_LOCATION,
    as_timestamp,
    require_columns,
)
from demand_control.planning.policy.schema import Tolerances
from demand_control.planning.root_cause import classify_root_causes
from demand_control.planning.signal_exceptions import (
    demand_spikes,
    feed_exceptions,
    forecast_degradation,
)
from demand_control.planning.supply_exceptions import (
    below_safety_stock,
    excess_stock,
    orders_at_risk,
    projected_stockouts,
    replenishment_due,
    risky_order_lines,
    supplier_delays,
)
from demand_control.planning.vocabulary import EXCEPTION_COLUMNS

# The rules' inputs and thresholds are part of this module's interface: `detect_exceptions` takes them.
__all__ = ["ExceptionThresholds", "PlanningInputs", "detect_exceptions", "link_to_root_causes", "risky_order_lines", "sku_location_context"]



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
    with the tolerances' hold-backs, the links of symptoms to their root case (`link_to_root_causes`) and
    why each happened (`root_cause`, its confidence and evidence: `planning.root_cause`).
    `horizon_start` is the projection's first day; `as_of` (default the same) is today: what is overdue, and
    when an order placed now would land."""
    tolerances = tolerances or Tolerances()
    require_columns(inputs.projection, [*SKU_LOCATION, "bucket", "period_start", "opening", "receipts", "forecast", "committed", "closing", "safety_stock"], "projection")
    start = as_timestamp(horizon_start)
    now = as_timestamp(as_of) if as_of is not None else start
    ctx = sku_location_context(inputs, thresholds)
    orders = open_orders_of(inputs)
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
        orders_at_risk(inputs, ctx, bucket_days, now, thresholds.customer_order_lead_days),
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
    out = classify_root_causes(out, inputs, start, now)
    return out.sort_values(["money_at_risk", "exception_key"], ascending=[False, True], kind="mergesort").reset_index(drop=True)
