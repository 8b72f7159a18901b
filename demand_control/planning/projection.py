"""Projected available balance (PAB) per SKU-location and bucket over the forecast horizon, by DOMAIN.md:
stock on hand less allocations, plus in-transit and open purchase orders as they land, less demand, where
open customer orders consume the forecast in their bucket. Also the first projected stockout and days of
cover per SKU-location. Vectorised: one pass of merges and grouped cumulative sums, no per-SKU loop.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from demand_control.planning.inventory_common import (
    SKU_LOCATION,
    as_datetime_column,
    as_timestamp,
    require_columns,
    with_bucket_index,
)

PROJECTION_COLUMNS: tuple[str, ...] = (
    "sku",
    "location_id",
    "period_start",
    "bucket",
    "opening",
    "receipts",
    "planned_receipts",
    "forecast",
    "committed",
    "demand",
    "closing",
    "safety_stock",
    "below_safety_stock",
    "stockout",
    "days_of_cover",
)


def _horizon_grid(forecast: pd.DataFrame, horizon_start: pd.Timestamp, bucket_days: int) -> pd.DataFrame:
    """The forecast's buckets from the one containing `horizon_start` on, numbered 0, 1, … per SKU-location."""
    require_columns(forecast, [*SKU_LOCATION, "period_start", "mean"], "forecast")
    fc = forecast[[*SKU_LOCATION, "period_start", "mean"]].copy()
    fc["period_start"] = as_datetime_column(fc["period_start"])
    fc = fc[fc["period_start"] + pd.Timedelta(days=bucket_days) > horizon_start]
    return with_bucket_index(fc).rename(columns={"mean": "forecast"})


def with_ordered_items_unforecast(grid: pd.DataFrame, open_orders: pd.DataFrame, horizon_start: pd.Timestamp, bucket_days: int) -> pd.DataFrame:
    """The horizon grid plus the SKU-locations customers have ordered that have no forecast yet (an item
    listed since the last forecast run), on the same buckets with a zero forecast: their orders against stock
    and receipts are what tells their customers in time, days before the next forecast knows the item."""
    if open_orders.empty:
        return grid
    ordered = open_orders[SKU_LOCATION].drop_duplicates()
    known = grid[SKU_LOCATION].drop_duplicates()
    missing = ordered.merge(known, on=SKU_LOCATION, how="left", indicator=True)
    missing = missing.loc[missing["_merge"] == "left_only", SKU_LOCATION].sort_values(SKU_LOCATION, kind="mergesort")
    if missing.empty:
        return grid
    if not grid.empty:
        periods = np.sort(grid["period_start"].unique())
    else:
        # No forecast in this scope at all: weekly buckets from the Monday of the as-of week (the forecast's
        # own calendar), as far as the latest promise of these orders.
        first = horizon_start - pd.Timedelta(days=horizon_start.weekday() if bucket_days == 7 else 0)
        last = as_datetime_column(open_orders["promise_date"]).max()
        count = max(int((last - first) / pd.Timedelta(days=bucket_days)) + 1, 1) if pd.notna(last) else 1
        periods = (first + pd.to_timedelta(np.arange(count) * bucket_days, unit="D")).to_numpy()
    extra = missing.merge(pd.DataFrame({"period_start": periods}), how="cross")
    extra["forecast"] = 0.0
    extra["bucket"] = np.tile(np.arange(len(periods), dtype=np.int64), len(missing))
    return pd.concat([grid, extra[grid.columns] if not grid.empty else extra], ignore_index=True)


def remaining_share(period_start: pd.Series, horizon_start: pd.Timestamp, bucket_days: int) -> np.ndarray:
    """Share of each bucket still ahead on `horizon_start` (the day itself counts): 1 for a bucket starting
    on or after it, (days left) / bucket_days for the bucket that contains it."""
    ends = as_datetime_column(period_start) + pd.Timedelta(days=bucket_days)
    left = ((ends - horizon_start) / pd.Timedelta(days=1)).to_numpy(dtype=float)
    return np.clip(left / float(bucket_days), 0.0, 1.0)


def _daily_rate(projection: pd.DataFrame, days: np.ndarray) -> pd.Series:
    """Average daily forecast per SKU-location over the days its buckets cover (bucket 0: the days left)."""
    keys = [projection["sku"], projection["location_id"]]
    totals = projection["forecast"].groupby(keys, sort=False).transform("sum")
    covered = pd.Series(days, index=projection.index).groupby(keys, sort=False).transform("sum")
    return totals / covered.where(covered > 0)


def _bucket_totals(
    events: pd.DataFrame, date_column: str, grid: pd.DataFrame, bucket_days: int, name: str
) -> pd.DataFrame:
    """Sum `qty_open` of dated events (order lines, PO lines) into the grid's buckets: dates before a
    SKU-location's first bucket (overdue) land in bucket 0; dates past the horizon's end and SKU-locations
    without a forecast are left out. Returns sku, location_id, bucket, `name`."""
    if events.empty:
        return pd.DataFrame({"sku": pd.Series(dtype=object), "location_id": pd.Series(dtype=object), "bucket": pd.Series(dtype="int64"), name: pd.Series(dtype=float)})
    span = grid.groupby(SKU_LOCATION, sort=False)["period_start"].agg(first="min", last="max").reset_index()
    ev = events[[*SKU_LOCATION, "qty_open"]].assign(_date=events[date_column].to_numpy()).merge(span, on=SKU_LOCATION, how="inner")
    ev = ev[ev["_date"] < ev["last"] + pd.Timedelta(days=bucket_days)]
    ev["_date"] = ev["_date"].where(ev["_date"] >= ev["first"], ev["first"])
    ev = ev.dropna(subset=["_date"]).sort_values("_date", kind="mergesort")
    placed = pd.merge_asof(
        ev[[*SKU_LOCATION, "qty_open", "_date"]],
        grid[[*SKU_LOCATION, "period_start", "bucket"]].sort_values("period_start", kind="mergesort"),
        left_on="_date",
        right_on="period_start",
        by=SKU_LOCATION,
        direction="backward",
    )
    return placed.groupby([*SKU_LOCATION, "bucket"], as_index=False)["qty_open"].sum().rename(columns={"qty_open": name})


def projected_inventory(
    inventory: pd.DataFrame,
    forecast: pd.DataFrame,
    open_orders: pd.DataFrame,
    open_purchases: pd.DataFrame,
    safety_stock: pd.DataFrame | float,
    horizon_start: date | pd.Timestamp | str,
    bucket_days: int = 7,
    planned_purchases: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Projected available balance per SKU-location and forecast bucket (columns PROJECTION_COLUMNS).

    - Buckets: the forecast's periods from the one containing `horizon_start`; bucket 0 is that one and
      covers only its remaining days, `horizon_start` included: its forecast is prorated by remaining days
      / bucket_days (a plan made on a Sunday of a Monday week counts 1/7 of the week's forecast, on a
      Wednesday 5/7, on the Monday all of it), so a plan does not depend on the weekday it runs.
    - opening of bucket 0 = on_hand − allocated of the latest `inventory` snapshot (0 where none); opening
      of bucket t = closing of bucket t − 1.
    - receipts_t = open purchase order lines (`qty_open`) at their confirmed date, else expected date;
      overdue lines land in bucket 0. The in-transit quantity has no arrival date in the contract, so it is
      received in bucket 0. Pass only the PO lines that count as scheduled receipts (e.g. not drafts).
    - planned_receipts_t = `planned_purchases` (sku, location_id, qty_open, expected_date): supply planned
      but not yet sent to a supplier — draft purchase lines, approved replenishments the ERP has not got yet —
      at their expected date, included in receipts_t and shown apart (DOMAIN.md's planned receipts).
    - committed_t = open customer order lines (`qty_open`) promised in bucket t; overdue lines in bucket 0
      (orders and receipts dated before `horizon_start` count as due today).
    - demand_t = max(forecast mean_t, committed_t): orders consume the forecast in their bucket.
    - closing_t (the PAB) = opening_t + receipts_t − demand_t; `stockout` = closing < 0; `below_safety_stock`
      = closing < safety stock (the n-consecutive-bucket rule belongs to the exception logic).
    - days_of_cover = max(closing, 0) / average daily forecast over the SKU-location's horizon, from the
      forecast over the days projected (inf when stock is positive and the forecast is zero).

    `safety_stock` is a frame with sku, location_id, safety_stock (e.g. the `inventory_policy` output;
    missing SKU-locations get 0) or one number for all. A SKU-location with open orders but no forecast yet
    is projected with a zero forecast (`with_ordered_items_unforecast`); PO lines of SKU-locations without
    either, and lines dated beyond the horizon, are not projected.
    """
    require_columns(inventory, [*SKU_LOCATION, "on_hand", "allocated", "in_transit"], "inventory")
    require_columns(open_orders, [*SKU_LOCATION, "qty_open", "promise_date"], "open_orders")
    require_columns(open_purchases, [*SKU_LOCATION, "qty_open", "expected_date"], "open_purchases")
    start = as_timestamp(horizon_start)
    grid = with_ordered_items_unforecast(_horizon_grid(forecast, start, bucket_days), open_orders, start, bucket_days)

    stock = inventory.copy()
    if "as_of" in stock:
        stock = stock.sort_values("as_of", kind="mergesort")
    stock = stock.drop_duplicates(SKU_LOCATION, keep="last")
    stock = stock.assign(
        available=stock["on_hand"].astype(float) - stock["allocated"].astype(float),
        in_transit=stock["in_transit"].astype(float),
    )[[*SKU_LOCATION, "available", "in_transit"]]

    orders = open_orders.assign(_due=as_datetime_column(open_orders["promise_date"]))
    po_date = as_datetime_column(open_purchases["expected_date"])
    if "confirmed_date" in open_purchases:
        po_date = as_datetime_column(open_purchases["confirmed_date"]).fillna(po_date)
    purchases = open_purchases.assign(_due=po_date)

    out = grid.merge(_bucket_totals(orders, "_due", grid, bucket_days, "committed"), on=[*SKU_LOCATION, "bucket"], how="left")
    out = out.merge(_bucket_totals(purchases, "_due", grid, bucket_days, "po_receipts"), on=[*SKU_LOCATION, "bucket"], how="left")
    planned = planned_purchases if planned_purchases is not None and not planned_purchases.empty else None
    if planned is not None:
        require_columns(planned, [*SKU_LOCATION, "qty_open", "expected_date"], "planned_purchases")
        planned = planned.assign(_due=as_datetime_column(planned["expected_date"]))
        out = out.merge(_bucket_totals(planned, "_due", grid, bucket_days, "planned_receipts"), on=[*SKU_LOCATION, "bucket"], how="left")
    else:
        out["planned_receipts"] = 0.0
    out = out.merge(stock, on=SKU_LOCATION, how="left")
    for col in ("committed", "po_receipts", "planned_receipts", "available", "in_transit"):
        out[col] = out[col].astype(float).fillna(0.0)

    if isinstance(safety_stock, pd.DataFrame):
        require_columns(safety_stock, [*SKU_LOCATION, "safety_stock"], "safety_stock")
        ss = safety_stock[[*SKU_LOCATION, "safety_stock"]].drop_duplicates(SKU_LOCATION)
        out = out.merge(ss, on=SKU_LOCATION, how="left")
        out["safety_stock"] = out["safety_stock"].astype(float).fillna(0.0)
    else:
        out["safety_stock"] = float(safety_stock)

    first = (out["bucket"] == 0).to_numpy()
    share = remaining_share(out["period_start"], start, bucket_days)
    out["forecast"] = out["forecast"].astype(float) * share
    out["receipts"] = out["po_receipts"] + out["planned_receipts"] + np.where(first, out["in_transit"], 0.0)
    out["demand"] = np.maximum(out["forecast"], out["committed"])
    net = out["receipts"] - out["demand"]
    out["closing"] = out["available"] + net.groupby([out["sku"], out["location_id"]], sort=False).cumsum()
    out["opening"] = out["closing"] - net
    out["below_safety_stock"] = out["closing"] < out["safety_stock"]
    out["stockout"] = out["closing"] < 0

    daily = _daily_rate(out, share * bucket_days)
    cover = np.maximum(out["closing"].to_numpy(), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["days_of_cover"] = np.where(cover > 0, cover / daily.to_numpy(), 0.0)
    return out[list(PROJECTION_COLUMNS)].reset_index(drop=True)


def first_stockout(projection: pd.DataFrame) -> pd.DataFrame:
    """Per SKU-location the first bucket whose projected balance is negative, or none: sku, location_id,
    stockout_bucket (nullable Int64), stockout_period_start (NaT when none) and shortfall (−closing in that
    bucket, 0 when none)."""
    keys = projection[SKU_LOCATION].drop_duplicates().reset_index(drop=True)
    hits = projection[projection["closing"] < 0].sort_values([*SKU_LOCATION, "bucket"], kind="mergesort")
    hits = hits.drop_duplicates(SKU_LOCATION)
    hits = hits.assign(shortfall=-hits["closing"])[[*SKU_LOCATION, "bucket", "period_start", "shortfall"]]
    out = keys.merge(hits, on=SKU_LOCATION, how="left").rename(
        columns={"bucket": "stockout_bucket", "period_start": "stockout_period_start"}
    )
    out["stockout_bucket"] = out["stockout_bucket"].astype("Int64")
    out["shortfall"] = out["shortfall"].fillna(0.0)
    return out


def days_of_cover(projection: pd.DataFrame, horizon_start: date | pd.Timestamp | str, bucket_days: int = 7) -> pd.DataFrame:
    """Both readings of days of cover per SKU-location (DOMAIN.md):

    - days_of_cover: available stock now (bucket 0's opening, on hand − allocated) / average daily forecast
      over the horizon; inf with stock and no forecast, 0 without stock;
    - days_to_stockout: days from `horizon_start` to the day the projected stock first runs out, with
      receipts at the start of their bucket and demand spread evenly through it; NaN if it never runs out
      within the horizon. This one counts inbound supply and committed orders, the first does not.
    """
    start = as_timestamp(horizon_start)
    proj = projection.sort_values([*SKU_LOCATION, "bucket"], kind="mergesort")
    groups = proj.groupby(SKU_LOCATION, sort=False)
    days = remaining_share(proj["period_start"], start, bucket_days) * bucket_days
    summary = groups.agg(available=("opening", "first")).reset_index()
    daily = _daily_rate(proj, days).groupby([proj["sku"], proj["location_id"]], sort=False).first().to_numpy()
    available = summary["available"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        summary["days_of_cover"] = np.where(available > 0, available / daily, 0.0)

    hits = proj[proj["closing"] < 0].drop_duplicates(SKU_LOCATION)
    on_hand_in_bucket = np.maximum(hits["opening"] + hits["receipts"], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.clip(on_hand_in_bucket / hits["demand"], 0.0, 1.0)
    # Demand spreads evenly over the part of the bucket still ahead: bucket 0 starts on `horizon_start`.
    bucket_start = pd.to_datetime(hits["period_start"]).clip(lower=start)
    bucket_length = pd.to_datetime(hits["period_start"]) + pd.Timedelta(days=bucket_days) - bucket_start
    runs_out = bucket_start + fraction * bucket_length
    hits = hits.assign(days_to_stockout=np.maximum((runs_out - start) / pd.Timedelta(days=1), 0.0))
    summary = summary.merge(hits[[*SKU_LOCATION, "days_to_stockout"]], on=SKU_LOCATION, how="left")
    return summary[[*SKU_LOCATION, "days_of_cover", "days_to_stockout"]]


def inventory_position(projection: pd.DataFrame, through_bucket: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per SKU-location the inventory position: available stock now (on hand − allocated) plus every receipt
    (in transit, scheduled and planned) due up to `through_bucket` (sku, location_id, bucket; default the
    whole horizon) — what a buyer compares with the order-up-to level before ordering."""
    proj = projection[[*SKU_LOCATION, "bucket", "opening", "receipts"]]
    if through_bucket is not None:
        proj = proj.merge(through_bucket.rename(columns={"bucket": "_through"}), on=SKU_LOCATION, how="inner")
        proj = proj[proj["bucket"] <= proj["_through"]]
    first = projection.loc[projection["bucket"] == 0, [*SKU_LOCATION, "opening"]].drop_duplicates(SKU_LOCATION)
    receipts = proj.groupby(SKU_LOCATION, as_index=False)["receipts"].sum()
    out = first.merge(receipts, on=SKU_LOCATION, how="left")
    out["position"] = out["opening"].astype(float) + out["receipts"].astype(float).fillna(0.0)
    return out[[*SKU_LOCATION, "position"]]
