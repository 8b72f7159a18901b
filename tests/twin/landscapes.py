"""Tiny hand-built landscapes for the twin's tests: every number in them can be checked by hand."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from demand_control.twin.demand import World
from demand_control.twin.scenario import Planner, Scenario

AS_OF = dt.date(2026, 11, 23)  # a Monday


def scenario(weeks: int = 4, disruptions: list | None = None, capacity: int = 5, response_hours: float = 4.0, **kw) -> Scenario:
    return Scenario(seed=3, weeks=weeks, skus=1, locations=1, history_weeks=20, as_of=AS_OF, disruptions=disruptions or [],
                    planner=Planner(capacity_per_team_per_day=capacity, response_hours=response_hours), **kw)


def world(days: int, on_hand: list[float], lead: list[float], daily: list[float], purchases: list[dict] | None = None,
          history_per_week: list[float] | None = None, reliability: float = 1.0) -> World:
    """SKU-locations A@DC-1, B@DC-1, ... with the given stock, lane lead time and one customer line per day of
    `daily[i]` units (ordered on day 0, promised that day); 13 history weeks of `history_per_week[i]`."""
    n = len(on_hand)
    skus = [f"SKU-{i + 1:06d}" for i in range(n)]
    series = pd.DataFrame({
        "sku": skus, "location_id": "DC-01", "supplier_id": "SUP-001", "lead_time_days": lead, "lead_time_std_days": 0.0,
        "moq": 1.0, "pack_size": 1.0, "unit_cost": 2.0, "category": "Beverages", "listed_day": 0, "scale": 1.0,
    })
    frames = {
        "product": pd.DataFrame({"sku": skus, "description": skus, "category": "Beverages", "unit": "each", "unit_cost": 2.0,
                                 "unit_price": 3.0, "substitute_skus": None, "active": True}),
        "location": pd.DataFrame({"location_id": ["DC-01"], "name": ["North DC"], "region": ["North"], "type": ["dc"]}),
        "customer": pd.DataFrame({"customer_id": ["CUST-0001"], "name": ["A"], "tier": ["standard"], "region": ["North"], "notify_email": ["a@x"]}),
        "supplier": pd.DataFrame({"supplier_id": ["SUP-001", "SUP-002"], "name": ["S1", "S2"], "contact": ["s1", "s2"],
                                  "reliability": [reliability, reliability], "lead_time_mean_days": [7.0, 7.0], "lead_time_std_days": [0.0, 0.0]}),
        "sourcing": series[["sku", "location_id", "supplier_id", "lead_time_days", "lead_time_std_days", "moq", "pack_size", "unit_cost"]].assign(primary=True),
        "inventory_position": pd.DataFrame({"sku": skus, "location_id": "DC-01", "as_of": pd.Timestamp(AS_OF), "on_hand": on_hand, "allocated": 0.0, "in_transit": 0.0}),
        "customer_order_line": pd.DataFrame(columns=["order_id", "line_no", "customer_id", "sku", "location_id", "qty_open", "promise_date", "priority", "status"]),
        "purchase_order_line": pd.DataFrame(purchases or [], columns=["po_id", "line_no", "supplier_id", "sku", "location_id", "qty_open", "order_date", "expected_date", "confirmed_date", "status"]),
        "demand_history": pd.DataFrame(columns=["sku", "location_id", "period_start", "qty"]),
        "pipeline_opportunity": pd.DataFrame(columns=["opportunity_id", "sku", "customer_id", "qty", "probability", "expected_date", "stage"]),
    }
    rows = [(i, d) for i in range(n) for d in range(days)]
    lines = pd.DataFrame({
        "series": [i for i, _ in rows], "qty": [float(daily[i]) for i, _ in rows], "promise_day": [d for _, d in rows],
        "customer": 0, "tier": 2, "priority": 3, "spike": -1, "order_day": 0,
    })
    lines = lines.sort_values(["order_day", "promise_day", "series"], kind="mergesort").reset_index(drop=True)
    lines["line"] = np.arange(len(lines))
    lines["order_id"] = "SO-" + lines["line"].astype(str)
    lines["line_no"] = 1
    weeks = history_per_week or [0.0] * n
    history = pd.DataFrame([
        {"series": i, "period_start": pd.Timestamp(AS_OF) - pd.Timedelta(days=7 * k), "qty": float(weeks[i])}
        for i in range(n) for k in range(1, 14)
    ])
    return World(as_of=AS_OF, days=days, frames=frames, series=series, lines=lines, history=history)
