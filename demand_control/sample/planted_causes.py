"""Disruptions planted in a sample landscape, each with the root cause it stands for, so a root-cause
classifier can be scored against the truth (`planning.root_cause_score`, `benchmarks/root_cause.py`).

`plant_causes` takes the frames `generate_landscape` drew and returns changed copies plus one row per planted
case: a chronically late supplier (every open line confirmed weeks late), one-off delays at suppliers that
are otherwise on time, single big customer orders, broad demand shifts (the last three weeks and the open
orders up two- to three-fold), seasonal peaks (the same weeks of every year lifted), new items (a few weeks
of sales, no stock, nothing on order) and data errors (last week typed with two extra zeros). It draws from
its own random stream, so the landscape's own frames for a seed stay exactly what they were.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from demand_control.planning.inventory_common import SCHEDULED_PO_STATUSES
from demand_control.sample.catalogue import CATEGORIES
from demand_control.sample.draws import as_date

PLANTED_CAUSE_COLUMNS: tuple[str, ...] = ("cause", "sku", "location_id", "supplier_id", "po_id", "po_line_no", "order_id", "week", "detail")
PLANTED_CAUSES: tuple[str, ...] = (
    "supplier_chronic_lateness",
    "supplier_one_off_delay",
    "single_customer_order",
    "broad_demand_shift",
    "seasonal_peak",
    "new_item",
    "data_error",
)
# The stream the plants draw from: the landscape's seed and this number, apart from the landscape's.
PLANT_STREAM = 18
# A series needs this much weekly demand for a multiple of it to stand out from its noise.
MIN_WEEKLY_DEMAND = 3.0
# A supplier is "usually on time" when at least this share of its scheduled lines is (the one-off plants).
RELIABLE_ON_TIME = 0.6
NON_SEASONAL = tuple(c.name for c in CATEGORIES if c.season_peak is None)


def _on_time(po: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    expected = pd.to_datetime(po["expected_date"])
    confirmed = pd.to_datetime(po["confirmed_date"])
    return ~((confirmed.notna() & (confirmed > expected)) | (confirmed.fillna(expected) < as_of))


def plant_causes(frames: dict[str, pd.DataFrame], seed: int, as_of: dt.date, per_cause: int = 6) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Changed copies of `frames` and the planted cases (columns PLANTED_CAUSE_COLUMNS): up to `per_cause`
    of each cause (one chronically late supplier, every one of its open lines a case), on distinct active
    SKU-locations selling at least MIN_WEEKLY_DEMAND a week."""
    if per_cause < 1:
        raise ValueError(f"per_cause must be at least 1, got {per_cause}")
    rng = np.random.default_rng([seed, PLANT_STREAM])
    today = pd.Timestamp(as_date(as_of))
    out = dict(frames)
    history = frames["demand_history"].copy()
    hist_sku, hist_loc = history["sku"].astype(str).to_numpy(), history["location_id"].astype(str).to_numpy()
    period = pd.to_datetime(history["period_start"])
    qty = history["qty"].to_numpy(dtype=float).copy()
    last_week = period.max()
    age = ((last_week - period) / pd.Timedelta(days=7)).round().astype(int).to_numpy() + 1
    key = pd.Series(hist_sku, dtype=object) + "@" + pd.Series(hist_loc, dtype=object)
    recent = pd.Series(np.where(age <= 13, qty, np.nan)).groupby(key.to_numpy()).mean()

    product = frames["product"].set_index("sku")
    pairs = pd.DataFrame({"key": recent.index, "mean13": recent.to_numpy()})
    pairs[["sku", "location_id"]] = pairs["key"].str.split("@", n=1, expand=True)
    pairs = pairs[(pairs["mean13"] >= MIN_WEEKLY_DEMAND) & pairs["sku"].map(product["active"]).fillna(False).astype(bool)]
    pairs["seasonal_category"] = ~pairs["sku"].map(product["category"]).isin(NON_SEASONAL)
    pool = pairs.iloc[rng.permutation(len(pairs))].reset_index(drop=True)
    used: set[str] = set()

    def take(n: int, non_seasonal: bool = False) -> pd.DataFrame:
        free = pool[~pool["key"].isin(used) & (~pool["seasonal_category"] if non_seasonal else True)].head(n)
        used.update(free["key"])
        return free

    planted: list[dict] = []
    orders = frames["customer_order_line"].copy()
    purchases = frames["purchase_order_line"].copy()
    inventory = frames["inventory_position"].copy()

    # Suppliers: one late as a habit, and one slip each at suppliers otherwise on time.
    scheduled = purchases["status"].isin(SCHEDULED_PO_STATUSES)
    record = purchases[scheduled].assign(_on_time=_on_time(purchases[scheduled], today)).groupby("supplier_id")["_on_time"].agg(["size", "mean"])
    eligible = record[record["size"] >= 4].index.to_numpy()
    # The chronic supplier is the one whose open lines number nearest `per_cause`, so its cases do not
    # outweigh the other causes' in the overall score.
    nearest = (record.loc[eligible, "size"] - per_cause).abs() if len(eligible) else pd.Series(dtype=float)
    closest = nearest.index[nearest == nearest.min()].to_numpy() if len(nearest) else eligible
    chronic = str(rng.choice(closest)) if len(closest) else None
    if chronic is not None:
        lines = purchases.index[scheduled & (purchases["supplier_id"] == chronic)]
        slip = rng.integers(7, 29, len(lines))
        purchases.loc[lines, "confirmed_date"] = pd.to_datetime(purchases.loc[lines, "expected_date"]) + pd.to_timedelta(slip, unit="D")
        purchases.loc[lines, "status"] = purchases.loc[lines, "status"].replace({"sent": "confirmed"})
        for i, s in zip(lines, slip):
            row = purchases.loc[i]
            planted.append({"cause": "supplier_chronic_lateness", "sku": row["sku"], "location_id": row["location_id"], "supplier_id": chronic,
                            "po_id": row["po_id"], "po_line_no": int(row["line_no"]), "week": pd.Timestamp(row["expected_date"]),
                            "detail": f"{chronic} confirms every open line late; this one {int(s)} days"})
    reliable = record[(record["size"] >= 4) & (record["mean"] >= RELIABLE_ON_TIME) & (record.index != chronic)].index.to_numpy()
    for supplier in rng.permutation(reliable)[:per_cause]:
        ontime = scheduled & (purchases["supplier_id"] == supplier) & (pd.to_datetime(purchases["expected_date"]) > today)
        ontime &= _on_time(purchases, today)
        if not ontime.any():
            continue
        i = purchases.index[ontime][int(rng.integers(ontime.sum()))]
        slip = int(rng.integers(14, 29))
        purchases.loc[i, "confirmed_date"] = pd.Timestamp(purchases.loc[i, "expected_date"]) + pd.Timedelta(days=slip)
        purchases.loc[i, "status"] = "confirmed" if purchases.loc[i, "status"] == "sent" else purchases.loc[i, "status"]
        row = purchases.loc[i]
        planted.append({"cause": "supplier_one_off_delay", "sku": row["sku"], "location_id": row["location_id"], "supplier_id": supplier,
                        "po_id": row["po_id"], "po_line_no": int(row["line_no"]), "week": pd.Timestamp(row["expected_date"]),
                        "detail": f"{supplier} slips one line {slip} days, its other lines on time"})

    # One customer's order of four to eight weeks of demand, due within two weeks.
    customers = frames["customer"]["customer_id"].to_numpy()
    for n, p in enumerate(take(per_cause).itertuples(index=False), start=1):
        customer = str(rng.choice(customers))
        units = float(np.ceil(p.mean13 * rng.uniform(4.0, 8.0)))
        promise = today + pd.Timedelta(days=int(rng.integers(3, 12)))
        order_id = f"SO-9{n:06d}"
        orders = pd.concat([orders, pd.DataFrame([{
            "order_id": order_id, "line_no": 1, "customer_id": customer, "sku": p.sku, "location_id": p.location_id, "qty_open": units,
            "promise_date": promise, "priority": 2, "status": "open",
        }])], ignore_index=True)
        planted.append({"cause": "single_customer_order", "sku": p.sku, "location_id": p.location_id, "order_id": order_id, "week": promise,
                        "detail": f"{customer} orders {units:.0f} units ({units / p.mean13:.1f} weeks of demand)"})

    def lift_orders(sku: str, location_id: str, factor: float) -> None:
        at = (orders["sku"] == sku) & (orders["location_id"] == location_id)
        orders.loc[at, "qty_open"] = np.ceil(orders.loc[at, "qty_open"].astype(float) * factor)

    # A broad shift: the last three weeks and every open order two to three times what they were.
    for p in take(per_cause, non_seasonal=True).itertuples(index=False):
        factor = float(rng.uniform(2.2, 3.2))
        at = (key == p.key).to_numpy() & (age <= 3)
        qty[at] = np.ceil(qty[at] * factor)
        lift_orders(p.sku, p.location_id, factor)
        planted.append({"cause": "broad_demand_shift", "sku": p.sku, "location_id": p.location_id, "week": last_week - pd.Timedelta(days=14),
                        "detail": f"demand and open orders x{factor:.1f} for the last 3 weeks"})

    # A seasonal peak: the weeks within three of this calendar week lifted in every year, this one included.
    day_of_year = period.dt.dayofyear.to_numpy()
    distance = np.abs(day_of_year - today.dayofyear)
    in_season = np.minimum(distance, 365 - distance) <= 21
    for p in take(per_cause, non_seasonal=True).itertuples(index=False):
        factor = float(rng.uniform(2.5, 3.5))
        at = (key == p.key).to_numpy() & in_season
        qty[at] = np.ceil(np.maximum(qty[at], p.mean13) * factor)
        lift_orders(p.sku, p.location_id, factor)
        planted.append({"cause": "seasonal_peak", "sku": p.sku, "location_id": p.location_id, "week": last_week,
                        "detail": f"the weeks around {today:%d %b} x{factor:.1f} in every year"})

    # A new item: a few weeks of sales, no stock left, nothing on order yet.
    for p in take(per_cause).itertuples(index=False):
        weeks = int(rng.integers(4, 10))
        qty[(key == p.key).to_numpy() & (age > weeks)] = 0.0
        at = (inventory["sku"] == p.sku) & (inventory["location_id"] == p.location_id)
        inventory.loc[at, ["on_hand", "allocated", "in_transit"]] = 0.0
        purchases = purchases[~((purchases["sku"] == p.sku) & (purchases["location_id"] == p.location_id))]
        planted.append({"cause": "new_item", "sku": p.sku, "location_id": p.location_id, "week": last_week - pd.Timedelta(days=7 * (weeks - 1)),
                        "detail": f"listed {weeks} weeks ago"})

    # A data error: last week's quantity typed with two extra zeros.
    for p in take(per_cause).itertuples(index=False):
        at = (key == p.key).to_numpy() & (age == 1)
        typed = np.maximum(qty[at], np.ceil(p.mean13)) * 100
        qty[at] = typed
        planted.append({"cause": "data_error", "sku": p.sku, "location_id": p.location_id, "week": last_week,
                        "detail": f"last week's demand typed as {typed[0]:.0f}" if len(typed) else "last week's demand mistyped"})

    history["qty"] = qty
    out.update(demand_history=history, customer_order_line=orders, purchase_order_line=purchases.reset_index(drop=True), inventory_position=inventory)
    table = pd.DataFrame(planted, columns=list(PLANTED_CAUSE_COLUMNS))
    table["po_line_no"] = table["po_line_no"].astype("Int64")
    table["week"] = pd.to_datetime(table["week"]).dt.normalize()
    return out, table
