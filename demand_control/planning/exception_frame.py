"""The common ground of the exception rules: their thresholds, their inputs, the per SKU-location context
(tier, lead time, cost, margin, protection window) and the helpers every rule uses to shape its rows
(`exception_rows`) and to name the customer orders it affects (`affected_orders`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from demand_control.planning.formatting import json_rows
from demand_control.planning.order_supply import open_orders
from demand_control.planning.inventory_common import (
    SCHEDULED_PO_STATUSES,
    SKU_LOCATION,
    as_datetime_column,
)
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
    # Days ahead of the promise date customers order a line (fewest, most): the share of the forecast still
    # to be ordered that the orders at risk serve first (`order_supply.orders_to_come`).
    customer_order_lead_days: tuple[float, float] = (7.0, 42.0)

    def __post_init__(self) -> None:
        if self.below_safety_stock_consecutive_buckets < 1:
            raise ValueError(f"below_safety_stock_consecutive_buckets must be ≥ 1, got {self.below_safety_stock_consecutive_buckets}")
        for name in ("demand_spike_k_sigma", "pipeline_surge_share", "excess_days_of_cover", "forecast_degradation_ratio"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        # Hashable and numeric whatever sequence it came as: the thresholds key derived frames.
        object.__setattr__(self, "customer_order_lead_days", tuple(float(d) for d in self.customer_order_lead_days))
        fewest, most = self.customer_order_lead_days
        if not 0 <= fewest <= most:
            raise ValueError(f"customer_order_lead_days must be (fewest, most) with 0 ≤ fewest ≤ most, got {self.customer_order_lead_days}")


@dataclass
class PlanningInputs:
    """Everything the exception rules read. Frames are the warehouse tables of the same name; `feeds` is
    one row per canonical object: object, age_hours, freshness_hours, rows_extracted, rows_quarantined,
    status (see `feed_health`); `quarantined` the quarantine rows (object, key) of the latest loads. Empty
    frames are fine: a rule without its inputs fires nothing. The frames are read once and not changed
    afterwards (derive new inputs with `dataclasses.replace`): frames derived from them are kept."""

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
    # sku, location_id, mean (the forecast summed over the horizon) at every DC of the SKUs with pipeline, when
    # `forecast` holds only some DCs (a region's plan): the CRM pipeline goes to the DC it would go to in a
    # plan of the whole panel. None: from `forecast`.
    forecast_volume: pd.DataFrame | None = None
    # sku, location_id, share_before of the whole panel's forecast value (`value_shares`), when `projection`
    # holds only some DCs: a region's plan grades by the panel's ABC classes. None: from `projection`.
    value_shares: pd.DataFrame | None = None
    # Rows of the latest loads held in quarantine (object, key): evidence of a data error behind a case.
    quarantined: pd.DataFrame = field(default_factory=pd.DataFrame)
    # supplier_id, supplier_lines, supplier_late over every open PO line (`root_cause.supplier_record`), when
    # `purchase_lines` holds only some SKU-locations (a region's plan, an event's re-plan): a supplier's
    # record is the whole of it. None: from `purchase_lines`.
    supplier_record: pd.DataFrame | None = None
    # Frames derived from the inputs, computed once: a plan's three steps (exceptions, allocations, actions)
    # share one read of the inputs and would otherwise each rebuild the context, the open orders and the
    # order lines at risk. The inputs are not changed after the read, so a derived frame stays true.
    _derived: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def derived(self, key: tuple, compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        """`compute()` the first time `key` is asked for; a copy of that frame every time (callers may add
        columns to what they get)."""
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key].copy()


def open_orders_of(inputs: PlanningInputs) -> pd.DataFrame:
    """The open customer order lines of the inputs with their customer's tier (`open_orders`), once per read."""
    return inputs.derived(("open_orders",), lambda: open_orders(inputs.order_lines, inputs.customer))


def sku_location_context(inputs: PlanningInputs, thresholds: ExceptionThresholds) -> pd.DataFrame:
    """Per SKU-location: category, region, primary supplier, policy tier, lead time, safety stock, order-up-
    to, unit cost and price, margin per unit, and the protection window (lead time + review period)."""
    return inputs.derived(("context", thresholds), lambda: _sku_location_context(inputs, thresholds))


def _sku_location_context(inputs: PlanningInputs, thresholds: ExceptionThresholds) -> pd.DataFrame:
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


def affected_orders(orders: pd.DataFrame, hits: pd.DataFrame, until_column: str) -> pd.DataFrame:
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


def exception_rows(frame: pd.DataFrame, exception_type: str, entity: pd.Series, trigger: pd.DataFrame, sentence: pd.Series) -> pd.DataFrame:
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


def sku_location_entity(frame: pd.DataFrame) -> pd.Series:
    return frame["sku"].astype(str) + "@" + frame["location_id"].astype(str)


def projection_window(projection: pd.DataFrame, ctx: pd.DataFrame, horizon_start: pd.Timestamp) -> pd.DataFrame:
    """The projection rows inside each SKU-location's protection window (lead time + review period from the
    horizon start), with the context columns."""
    proj = projection.merge(ctx[[*SKU_LOCATION, "window_days"]], on=SKU_LOCATION, how="inner")
    proj["period_start"] = as_datetime_column(proj["period_start"])
    in_window = proj["period_start"] < horizon_start + pd.to_timedelta(proj["window_days"], unit="D")
    return proj[in_window | (proj["bucket"] == 0)]


def first_receipts(purchase_lines: pd.DataFrame) -> pd.DataFrame:
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
