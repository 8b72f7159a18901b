"""Open customer orders against projected supply: which supply can serve them, in which order lines are
served (promise date, then tier, order, line), which lines fall short on their promise date and when they
can ship instead. Read by the order_at_risk rule, the allocation scenarios, the actions and the seed
scenario."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from demand_control.planning.inventory_common import SCHEDULED_PO_STATUSES, SKU_LOCATION, as_datetime_column, require_columns
from demand_control.planning.vocabulary import TIER_RANK


def open_orders(order_lines: pd.DataFrame, customer: pd.DataFrame) -> pd.DataFrame:
    """Open customer order lines with the customer's tier, promise dates as timestamps."""
    cols = ["order_id", "line_no", "customer_id", *SKU_LOCATION, "qty_open", "promise_date"]
    if order_lines.empty:
        return pd.DataFrame(columns=[*cols, "tier"])
    require_columns(order_lines, cols, "order_lines")
    orders = order_lines[order_lines["qty_open"].astype(float) > 0][cols].copy()
    orders["promise_date"] = as_datetime_column(orders["promise_date"])
    tiers = customer[["customer_id", "tier"]].drop_duplicates("customer_id") if not customer.empty else pd.DataFrame(columns=["customer_id", "tier"])
    return orders.merge(tiers, on="customer_id", how="left")


def cumulative_supply(projection: pd.DataFrame) -> pd.DataFrame:
    """Per SKU-location and bucket, the supply that can serve orders up to the bucket's end: available stock
    plus every receipt scheduled up to it (sku, location_id, bucket, period_start, supply_to_date)."""
    proj = projection.sort_values([*SKU_LOCATION, "bucket"], kind="mergesort").copy()
    proj["period_start"] = as_datetime_column(proj["period_start"])
    first_open = proj.groupby(SKU_LOCATION, sort=False)["opening"].transform("first")
    proj["supply_to_date"] = first_open + proj.groupby(SKU_LOCATION, sort=False)["receipts"].cumsum()
    return proj[[*SKU_LOCATION, "bucket", "period_start", "supply_to_date"]]


def _day(today: pd.Timestamp | object) -> pd.Timestamp:
    """Midnight of `today`, as the naive timestamps the planning frames hold."""
    stamp = pd.Timestamp(today)
    return (stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp).normalize()


def dated_receipts(purchase_lines: pd.DataFrame, today: pd.Timestamp) -> pd.DataFrame:
    """The scheduled purchase lines the projection receives, each on its day: sku, location_id, due (the
    confirmed date, else the expected one; overdue lines today) and qty."""
    if purchase_lines is None or purchase_lines.empty:
        return pd.DataFrame({"sku": pd.Series(dtype=object), "location_id": pd.Series(dtype=object), "due": pd.Series(dtype="datetime64[ns]"), "qty": pd.Series(dtype=float)})
    po = purchase_lines[purchase_lines["status"].isin(SCHEDULED_PO_STATUSES)] if "status" in purchase_lines else purchase_lines
    due = as_datetime_column(po["expected_date"])
    if "confirmed_date" in po:
        due = as_datetime_column(po["confirmed_date"]).fillna(due)
    return pd.DataFrame({"sku": po["sku"], "location_id": po["location_id"], "due": due.clip(lower=_day(today)), "qty": po["qty_open"].astype(float)})


def policy_lead_times(policy: pd.DataFrame) -> pd.DataFrame:
    """The lead time per SKU-location of the inventory policy (sku, location_id, lead_time_days): the window
    `orders_to_come` looks ahead. Empty without a policy."""
    if policy is None or policy.empty or "lead_time_days" not in policy:
        return pd.DataFrame({"sku": pd.Series(dtype=object), "location_id": pd.Series(dtype=object), "lead_time_days": pd.Series(dtype=float)})
    return policy[[*SKU_LOCATION, "lead_time_days"]].dropna().drop_duplicates(SKU_LOCATION).reset_index(drop=True)


@dataclass(frozen=True)
class ExpectedOrders:
    """What says which orders are still to come: the forecast (sku, location_id, period_start, mean per
    bucket), the lead time per SKU-location (sku, location_id, lead_time_days: `policy_lead_times`) and how
    many days ahead of its promise date customers order a line, (fewest, most), taken as evenly spread."""

    forecast: pd.DataFrame
    lead_times: pd.DataFrame
    order_lead_days: tuple[float, float]


def share_not_yet_ordered(days: int, order_lead_days: tuple[float, float]) -> np.ndarray:
    """For d = 0 … days − 1: the share of the demand promised d days from today that customers have not
    ordered yet, P(order lead < d), with order leads spread evenly over whole days from the fewest to the
    most of `order_lead_days` (promised within the fewest days, everything is ordered already)."""
    fewest, most = np.ceil(order_lead_days[0]), np.floor(order_lead_days[1])
    return np.clip((np.arange(max(days, 0)) - fewest) / (most - fewest + 1.0), 0.0, 1.0)


def _first_days(per_day: np.ndarray) -> np.ndarray:
    """Column n: the sum of the first n days of each row (n = 0 … columns − 1)."""
    return np.concatenate([np.zeros((per_day.shape[0], 1)), np.cumsum(per_day, axis=1)[:, :-1]], axis=1)


def orders_to_come(lines: pd.DataFrame, orders: pd.DataFrame, expected: ExpectedOrders, today: pd.Timestamp, bucket_days: int) -> np.ndarray:
    """Per row of `lines` (sku, location_id, promise_date): the units customers are expected to order after
    today for promise dates before the line's, which supply serves ahead of it. Only the days inside the
    SKU-location's lead time count: no supply ordered today lands sooner, and after it new supply can serve
    them. Per day the expectation is the forecast (each bucket of `bucket_days` spread evenly over its days)
    times the share not ordered yet (`share_not_yet_ordered`); over the window it is at most what the
    forecast exceeds the open `orders` promised in it by, so orders already booked are not counted again.
    Never decreasing with the promise date within a SKU-location. Zero without a forecast or a lead time."""
    day = _day(today)
    none = np.zeros(len(lines))
    forecast, lead_times = expected.forecast, expected.lead_times
    if lines.empty or forecast is None or forecast.empty or lead_times is None or lead_times.empty:
        return none
    windows = lines[SKU_LOCATION].merge(lead_times[[*SKU_LOCATION, "lead_time_days"]].drop_duplicates(SKU_LOCATION), on=SKU_LOCATION, how="left")
    ahead = ((lines["promise_date"] - day) / pd.Timedelta(days=1)).to_numpy()
    window_days = np.nan_to_num(np.minimum(ahead, np.rint(windows["lead_time_days"].to_numpy(dtype=float))), nan=0.0)
    window_days = np.clip(np.ceil(window_days), 0, None).astype(np.int64)
    days = int(window_days.max()) + 1
    unordered = share_not_yet_ordered(days, expected.order_lead_days)
    if days <= 1 or not unordered.any():
        return none
    keys = lines[SKU_LOCATION].drop_duplicates().reset_index(drop=True)
    index = pd.MultiIndex.from_frame(keys)
    # Daily forecast per SKU-location over [today, today + days): each bucket's mean over its days.
    fc = forecast[[*SKU_LOCATION, "period_start", "mean"]].reset_index(drop=True)
    fc["offset"] = ((as_datetime_column(fc["period_start"]) - day) / pd.Timedelta(days=1)).astype(np.int64)
    # Only buckets with a day inside the window are spread into days (a region's whole horizon spread day by
    # day is 18M rows at 100k SKU-locations); the days they drop are the ones filtered out below anyway.
    fc = fc[(fc["offset"] + bucket_days > 0) & (fc["offset"] < days)].reset_index(drop=True)
    fc = fc.loc[np.repeat(fc.index.to_numpy(), bucket_days)].assign(offset=lambda f: f["offset"] + np.tile(np.arange(bucket_days), len(f) // bucket_days))
    fc = fc[(fc["offset"] >= 0) & (fc["offset"] < days)]
    daily = np.zeros((len(keys), days))
    row = index.get_indexer(pd.MultiIndex.from_frame(fc[SKU_LOCATION]))
    known = row >= 0
    np.add.at(daily, (row[known], fc["offset"].to_numpy()[known]), fc["mean"].fillna(0.0).to_numpy(dtype=float)[known] / bucket_days)
    # Open orders per SKU-location and promise day in the same window.
    book = orders[[*SKU_LOCATION, "promise_date", "qty_open"]]
    offset = ((as_datetime_column(book["promise_date"]) - day) / pd.Timedelta(days=1)).to_numpy()
    row = index.get_indexer(pd.MultiIndex.from_frame(book[SKU_LOCATION]))
    inside = (row >= 0) & (offset >= 0) & (offset < days)
    booked = np.zeros((len(keys), days))
    np.add.at(booked, (row[inside], offset[inside].astype(np.int64)), book["qty_open"].to_numpy(dtype=float)[inside])
    # Column n: the window of the first n days.
    to_come = np.minimum(_first_days(daily * unordered[None, :]), np.clip(_first_days(daily) - _first_days(booked), 0.0, None))
    to_come = np.maximum.accumulate(to_come, axis=1)
    return to_come[index.get_indexer(pd.MultiIndex.from_frame(lines[SKU_LOCATION])), window_days]


def served_order_lines(
    projection: pd.DataFrame,
    orders: pd.DataFrame,
    bucket_days: int,
    receipts: pd.DataFrame | None = None,
    today: pd.Timestamp | None = None,
    expected: ExpectedOrders | None = None,
) -> pd.DataFrame:
    """Every open order line promised within the horizon, in the order supply serves them: promise date,
    then tier, order, line. Adds cum_orders (the line and all open lines served before it), to_come (the
    orders still to come that supply serves before it, `orders_to_come`: zero without `expected` and
    `today`), supply_to_date (at its promise date), supply_by_horizon_end and short (what
    cum_orders plus to_come exceed that supply by, at most the line's quantity).

    Supply at the promise date is the available stock plus the receipts up to the promise's bucket; with
    `receipts` (`dated_receipts`) a receipt due later in that same bucket than the promise (a line promised
    Monday, its supply landing Friday) does not serve it. Lines promised before `today` are due today."""
    supply = cumulative_supply(projection)
    span = supply.groupby(SKU_LOCATION, as_index=False).agg(first=("period_start", "min"), last=("period_start", "max"), supply_by_horizon_end=("supply_to_date", "last"))
    lines = orders.merge(span, on=SKU_LOCATION, how="inner")
    lines = lines[lines["promise_date"] < lines["last"] + pd.Timedelta(days=float(bucket_days))].copy()
    lines["_bucket_date"] = lines["promise_date"].where(lines["promise_date"] >= lines["first"], lines["first"])
    lines["_tier_rank"] = lines["tier"].map(TIER_RANK).fillna(len(TIER_RANK))
    lines = lines.sort_values([*SKU_LOCATION, "promise_date", "_tier_rank", "order_id", "line_no"], kind="mergesort")
    lines["cum_orders"] = lines.groupby(SKU_LOCATION, sort=False)["qty_open"].cumsum()
    lines["to_come"] = orders_to_come(lines, orders, expected, today, bucket_days) if expected is not None and today is not None else 0.0
    supply = supply[[*SKU_LOCATION, "period_start", "supply_to_date"]].sort_values("period_start", kind="mergesort")
    lines = pd.merge_asof(
        lines.sort_values("_bucket_date", kind="mergesort"), supply, left_on="_bucket_date", right_on="period_start", by=SKU_LOCATION, direction="backward"
    )
    if receipts is not None and not receipts.empty and not lines.empty:
        promised = lines["promise_date"] if today is None else lines["promise_date"].clip(lower=_day(today))
        probe = lines[[*SKU_LOCATION, "order_id", "line_no", "period_start"]].assign(_promised=promised.to_numpy())
        pairs = probe.merge(receipts[[*SKU_LOCATION, "due", "qty"]], on=SKU_LOCATION, how="inner")
        end = pairs["period_start"] + pd.Timedelta(days=float(bucket_days))
        later = pairs[(pairs["due"] > pairs["_promised"]) & (pairs["due"] >= pairs["period_start"]) & (pairs["due"] < end)]
        if not later.empty:
            landing = later.groupby([*SKU_LOCATION, "order_id", "line_no"], as_index=False)["qty"].sum().rename(columns={"qty": "_later"})
            lines = lines.merge(landing, on=[*SKU_LOCATION, "order_id", "line_no"], how="left")
            lines["supply_to_date"] = lines["supply_to_date"] - lines["_later"].fillna(0.0)
            lines = lines.drop(columns="_later")
    lines = lines.drop(columns="period_start")
    lines["short"] = np.clip(lines["cum_orders"] + lines["to_come"] - lines["supply_to_date"].clip(lower=0), 0, lines["qty_open"])
    return lines.sort_values([*SKU_LOCATION, "promise_date", "_tier_rank", "order_id", "line_no"], kind="mergesort").reset_index(drop=True)


def order_lines_at_risk(
    projection: pd.DataFrame,
    orders: pd.DataFrame,
    bucket_days: int,
    receipts: pd.DataFrame | None = None,
    today: pd.Timestamp | None = None,
    expected: ExpectedOrders | None = None,
) -> pd.DataFrame:
    """Open order lines whose promise cannot be met from projected supply. Lines are served in promise-date
    order (then tier, order, line) from the available stock plus receipts scheduled up to their promise
    date (see `served_order_lines` for `receipts`, `today` and `expected`); a line is short by
    what the orders ahead of it (open, and with a forecast those still to come inside the lead time) and
    itself exceed that supply. Columns: the order line's, tier, short, to_come, supply_to_date (at its
    promise date), supply_by_horizon_end and
    revised_date (the first bucket whose cumulative supply covers it, NaT if none within the horizon)."""
    if orders.empty or projection.empty:
        return pd.DataFrame(columns=[*SKU_LOCATION, "order_id", "line_no", "customer_id", "tier", "qty_open", "promise_date", "short", "to_come", "supply_to_date", "supply_by_horizon_end", "revised_date"])
    lines = served_order_lines(projection, orders, bucket_days, receipts, today, expected)
    supply = cumulative_supply(projection)
    risky = lines[lines["short"] > 1e-9].copy()
    if risky.empty:
        return risky.assign(revised_date=pd.Series(dtype="datetime64[ns]"))
    # Revised date: the first bucket whose cumulative supply (running maximum) covers the orders through the line.
    covered = supply.sort_values([*SKU_LOCATION, "period_start"], kind="mergesort")
    covered["covered"] = covered.groupby(SKU_LOCATION, sort=False)["supply_to_date"].cummax().astype(float)
    # The orders still to come ahead of the line are served first there too.
    risky["_served_through"] = (risky["cum_orders"] + risky["to_come"]).astype(float)
    found = pd.merge_asof(
        risky[[*SKU_LOCATION, "order_id", "line_no", "_served_through"]].sort_values("_served_through", kind="mergesort"),
        covered[[*SKU_LOCATION, "covered", "period_start"]].sort_values("covered", kind="mergesort"),
        left_on="_served_through", right_on="covered", by=SKU_LOCATION, direction="forward",
    )
    risky = risky.drop(columns="_served_through").merge(
        found[[*SKU_LOCATION, "order_id", "line_no", "period_start"]].rename(columns={"period_start": "revised_date"}), on=[*SKU_LOCATION, "order_id", "line_no"], how="left"
    )
    return risky.sort_values([*SKU_LOCATION, "promise_date", "_tier_rank", "order_id", "line_no"], kind="mergesort").reset_index(drop=True)


def supply_for_open_orders(projection: pd.DataFrame, orders: pd.DataFrame, bucket_days: int = 7) -> pd.DataFrame:
    """Per SKU-location with open orders in the horizon: the supply that can serve them — available stock
    plus scheduled receipts up to the bucket of the latest promise date, floored at 0 (sku, location_id,
    supply). The input of the allocation scenarios."""
    if orders.empty or projection.empty:
        return pd.DataFrame({"sku": pd.Series(dtype=object), "location_id": pd.Series(dtype=object), "supply": pd.Series(dtype=float)})
    proj = projection.sort_values([*SKU_LOCATION, "bucket"], kind="mergesort").copy()
    proj["period_start"] = as_datetime_column(proj["period_start"])
    proj["supply_to_date"] = proj.groupby(SKU_LOCATION, sort=False)["opening"].transform("first") + proj.groupby(SKU_LOCATION, sort=False)["receipts"].cumsum()
    span = proj.groupby(SKU_LOCATION, as_index=False)["period_start"].agg(first="min", last="max")
    latest = orders.groupby(SKU_LOCATION, as_index=False)["promise_date"].max().merge(span, on=SKU_LOCATION, how="inner")
    latest["_date"] = latest["promise_date"].clip(lower=latest["first"], upper=latest["last"]).astype("datetime64[ns]")
    placed = pd.merge_asof(
        latest.sort_values("_date", kind="mergesort"),
        proj[[*SKU_LOCATION, "period_start", "supply_to_date"]].sort_values("period_start", kind="mergesort"),
        left_on="_date", right_on="period_start", by=SKU_LOCATION, direction="backward",
    )
    return placed.assign(supply=placed["supply_to_date"].clip(lower=0).astype(float))[[*SKU_LOCATION, "supply"]].reset_index(drop=True)
