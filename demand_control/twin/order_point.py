"""The order-point arm: Tryton's own replenishment (stock_supply 8.2) as a competent ERP user sets it up, with
no control layer on top. The rules, with where Tryton states them:

1. Order points (`stock.order_point`, type purchase, one per product and warehouse; "The minimum quantity
   is the threshold quantity below which the provisioning process will be triggered", "The target quantity
   is the quantity that will be found in the location after the provisioning", stock_supply README). The
   user re-sets them every Monday from the trailing 13 weeks of demand: minimum = d·L + z·σ_w·√(L/7)
   (lead-time demand plus safety stock at the same service level the product uses for the SKU-location,
   `sku_location_service_levels`), target = minimum + 7·d (one weekly review period); d the mean daily
   demand, σ_w the weekly standard deviation, L the supplier lead time (`purchase.product_supplier`
   lead_time).
2. The supply run (`stock.supply` wizard, run daily by the "Supply Stock" cron; `purchase.request
   .generate_requests`): per product and warehouse the earliest supply date is today + lead time
   (`product_supplier.compute_supply_date`), the next one that plus the supply period (Tryton's default: one
   day); the forecast quantity (`products_by_location` with `forecast=True`: stock plus planned incoming
   moves minus planned outgoing moves up to a date) is walked from the first supply date to the next, and a
   purchase request is made when it falls below the minimum (`get_shortage`).
3. Requested quantity = target − the lowest forecast quantity in that interval (`compute_request`), rounded
   up to the purchase unit; requests already turned into purchase lines are subtracted
   (`compare_requests`); draft requests are deleted and recomputed on each run.
4. A buyer turns requests into purchases (`purchase.request.create_purchase`) `planner.response_hours`
   after the need was first raised, on working days, rounding up to the supplier's minimum and pack (the
   supplier accepts nothing less). No expedites, no customer notices: an ERP user reading e-mail sees the
   suppliers' new dates in the ERP, nothing more.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtri

from demand_control.planning.inventory_policy import (
    round_order_quantity,
    sku_location_service_levels,
)
from demand_control.twin.demand import weekly_history
from demand_control.twin.engine import Twin

TRAILING_WEEKS = 13
REVIEW_DAYS = 7.0
SUPPLY_PERIOD_DAYS = 1  # Tryton's default `purchase.configuration.supply_period`
WORK_START, WORK_END = 9.0, 17.0
ORIGIN_REQUEST = 2


def order_points(demand: np.ndarray, lead_days: np.ndarray, service_level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(minimum, target) per SKU-location from its trailing weekly demand (rows: SKU-locations, columns: the
    trailing weeks it was listed; NaN where it was not)."""
    weeks = np.maximum(np.sum(~np.isnan(demand), axis=1), 1)
    mean_week = np.nansum(demand, axis=1) / weeks
    centred = np.where(np.isnan(demand), 0.0, demand - mean_week[:, None])
    sigma_week = np.sqrt((centred**2).sum(axis=1) / np.maximum(weeks - 1, 1))
    daily = mean_week / 7.0
    z = ndtri(np.clip(service_level, 1e-6, 1 - 1e-6))
    minimum = daily * lead_days + z * sigma_week * np.sqrt(lead_days / 7.0)
    return minimum, minimum + REVIEW_DAYS * daily


def forecast_quantity(twin: Twin, until_day: np.ndarray) -> np.ndarray:
    """Per SKU-location, Tryton's forecast quantity at `until_day` (inclusive): stock on hand, plus open
    purchase lines and transfers planned by then (overdue ones included), minus open customer lines promised
    by then (overdue included)."""
    q = twin.on_hand.copy()
    a = twin.po
    open_ = np.flatnonzero(a["open"] & (a["qty_open"] > 0))
    due = twin.due_day(open_)
    s = a["series"][open_]
    q += np.bincount(s, weights=np.where(due <= until_day[s], a["qty_open"][open_], 0.0), minlength=twin.N)
    t = twin.transfers
    moving = ~t["done"]
    q += np.bincount(t["to"][moving], weights=np.where(t["arrive_day"][moving] <= until_day[t["to"][moving]], t["qty"][moving], 0.0), minlength=twin.N)
    lines = twin.open_lines
    ls = twin.l_series[lines]
    rem = twin.l_qty[lines] - twin.l_shipped[lines]
    q -= np.bincount(ls, weights=np.where(twin.l_promise[lines] <= until_day[ls], rem, 0.0), minlength=twin.N)
    return q


class OrderPointArm:
    name = "order_point"

    def __init__(self, twin: Twin):
        self.twin = twin
        self.minimum = np.full(twin.N, np.nan)
        self.target = np.full(twin.N, np.nan)
        self.request = np.zeros(twin.N)
        self.pending_since = np.full(twin.N, np.nan)  # hours from day 0, 00:00
        self.touches: list[dict] = []
        self.requests_raised = 0
        s = twin.world.series
        self.moq = s["moq"].to_numpy(dtype=float)
        self.pack = s["pack_size"].to_numpy(dtype=float)
        self.lead_days = np.maximum(np.rint(twin.lead), 1).astype(np.int64)
        self.scale = s["scale"].to_numpy(dtype=float)

    def update_order_points(self, day: int) -> None:
        twin = self.twin
        history = weekly_history(twin.world, day)
        weeks = np.sort(history["period_start"].unique())[-TRAILING_WEEKS:]
        recent = history[history["period_start"].isin(weeks)]
        matrix = np.full((twin.N, len(weeks)), np.nan)
        col = {w: i for i, w in enumerate(weeks)}
        listed_week = twin.world.series["listed_day"].to_numpy()
        matrix[:, :] = 0.0
        matrix[recent["series"].to_numpy(), recent["period_start"].map(col).to_numpy()] = recent["qty"].to_numpy()
        # Weeks before a new SKU was listed are not demand history.
        week_day = ((pd.to_datetime(pd.Series(weeks)) - pd.Timestamp(twin.world.as_of)).dt.days).to_numpy()
        matrix[(listed_week[:, None] > 0) & (week_day[None, :] + 7 <= listed_week[:, None])] = np.nan
        frames = twin.world.frames
        keys = twin.world.series[["sku", "location_id"]]
        levels = sku_location_service_levels(keys, twin.order_lines_frame(day), frames["customer"], pd.concat([frames["product"], *[v for k, v in frames.items() if k.startswith("_new_product")]]))
        level = keys.merge(levels, on=["sku", "location_id"], how="left")["service_level"].fillna(0.9).to_numpy()
        self.minimum, self.target = order_points(matrix, self.lead_days.astype(float), level)

    def morning(self, day: int, known: list) -> None:  # noqa: ARG002 - disruptions reach it only through the ERP
        twin = self.twin
        if day == 0 or twin.is_monday(day):
            self.update_order_points(day)
        listed = twin.listed(day)
        first = day + self.lead_days
        q = forecast_quantity(twin, first + SUPPLY_PERIOD_DAYS - 1)
        short = listed & (q < self.minimum)
        qty = np.where(short, np.ceil((self.target - q) * self.scale - 1e-9) / self.scale, 0.0)
        short &= qty > 0
        raised = short & np.isnan(self.pending_since)
        self.requests_raised += int(raised.sum())
        self.pending_since = np.where(short, np.where(raised, 24.0 * day + 6.0, self.pending_since), np.nan)
        self.request = qty

    def workday(self, day: int) -> None:
        twin = self.twin
        if not twin.is_workday(day):
            return
        hours = twin.scenario.planner.response_hours
        ready_at = self.pending_since + hours
        due = np.flatnonzero(~np.isnan(self.pending_since) & (ready_at <= 24.0 * day + WORK_END))
        if not len(due):
            return
        qty = round_order_quantity(self.request[due], self.moq[due], self.pack[due])
        twin.place_po(due, qty, day, origin=ORIGIN_REQUEST)
        at_hours = np.maximum(ready_at[due], 24.0 * day + WORK_START)
        for s, h in zip(due, at_hours):
            at = twin.instant(0, float(h))
            twin.log_action(day, at, "replenish", np.array([s]), "purchase request converted", by="buyer")
            self.touches.append({"day": day, "at": at, "team": "buyer", "series": int(s), "decision": "approve", "item": "purchase_request"})
        self.pending_since[due] = np.nan
        self.request[due] = 0.0
