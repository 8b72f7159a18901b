"""The control arms run the product's chain: an injected delay, or a customer's new order, triggers a same-day
scoped re-plan in control_event and none in control_weekly; the same seed gives the same scorecard."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from demand_control.twin import forecasts as fc
from demand_control.twin.engine import ANNOUNCE_DAY
from demand_control.twin.run import run_arm
from demand_control.twin.scenario import SupplierDelay, parse_scenario
from demand_control.twin.simulate import simulate
from tests.twin.landscapes import AS_OF, scenario, world

PURCHASES = [
    {"po_id": "PO-1", "line_no": 1, "supplier_id": "SUP-001", "sku": "SKU-000001", "location_id": "DC-01", "qty_open": 60.0,
     "order_date": pd.Timestamp(AS_OF) - pd.Timedelta(days=3), "expected_date": pd.Timestamp(AS_OF) + pd.Timedelta(days=4), "confirmed_date": pd.NaT, "status": "sent"},
]


def test_an_injected_delay_is_replanned_the_same_day_only_on_the_event_path(tmp_path: Path) -> None:
    delay = SupplierDelay(type="supplier_delay", supplier="SUP-001", start_week=0, days=14, share=1.0)
    sc = scenario(weeks=1, disruptions=[delay])
    tiny = world(7, on_hand=[30.0, 200.0], lead=[7.0, 7.0], daily=[10.0, 10.0], purchases=PURCHASES, history_per_week=[70.0, 70.0])
    forecasts = fc.precompute(tiny, 1, tmp_path / "forecasts", log=lambda m: None)
    event = run_arm("control_event", tiny, sc, work=tmp_path, forecasts=forecasts)
    weekly = run_arm("control_weekly", tiny, sc, work=tmp_path, forecasts=forecasts)
    assert [(p["day"], p["scope"]) for p in weekly.plans] == [(0, "full")]
    assert [(p["day"], p["scope"]) for p in event.plans] == [(0, "full"), (ANNOUNCE_DAY, "scoped")]
    assert event.plans[1]["sku_locations"] == 1
    # The re-plan saw the supplier's new date and raised the delay that same morning.
    delays = event.cases[event.cases["exception_key"] == "supplier_delay:PO-1/1"]
    assert len(delays) == 1 and delays.iloc[0]["opened_at"].day == AS_OF.day + ANNOUNCE_DAY
    assert weekly.cases[weekly.cases["exception_type"] == "supplier_delay"].empty


def test_a_new_customer_order_is_replanned_the_morning_it_arrives_only_on_the_event_path(tmp_path: Path) -> None:
    # B has 200 on hand and sells 10 a day; on day 3 a customer orders 400 more for day 5, which the stock
    # and a 7-day lead time cannot meet: the event path re-plans B that morning and raises the order at risk.
    tiny = world(7, on_hand=[300.0, 200.0], lead=[7.0, 7.0], daily=[10.0, 10.0], history_per_week=[70.0, 70.0])
    big = tiny.lines.iloc[[0]].assign(series=1, qty=400.0, promise_day=5, order_day=3, order_id="SO-BIG")
    lines = pd.concat([tiny.lines, big], ignore_index=True).sort_values(["order_day", "promise_day", "series"], kind="mergesort").reset_index(drop=True)
    lines["line"] = np.arange(len(lines))
    tiny = replace(tiny, lines=lines)
    sc = scenario(weeks=1, disruptions=[])
    forecasts = fc.precompute(tiny, 1, tmp_path / "forecasts", log=lambda m: None)
    event = run_arm("control_event", tiny, sc, work=tmp_path, forecasts=forecasts)
    weekly = run_arm("control_weekly", tiny, sc, work=tmp_path, forecasts=forecasts)
    assert [(p["day"], p["scope"], p["sku_locations"]) for p in event.plans] == [(0, "full", 2), (3, "scoped", 1)]
    assert [(p["day"], p["scope"]) for p in weekly.plans] == [(0, "full")]
    at_risk = event.cases[event.cases["exception_type"] == "order_at_risk"]
    assert len(at_risk) == 1 and at_risk.iloc[0]["sku"] == "SKU-000002" and at_risk.iloc[0]["opened_at"].day == AS_OF.day + 3
    assert weekly.cases[weekly.cases["exception_type"] == "order_at_risk"].empty


SMALL = """
seed: 9
weeks: 1
skus: 3
locations: 2
history_weeks: 30
disruptions:
  - {type: supplier_delay, supplier: SUP-002, start_week: 0, days: 10, share: 0.8}
planner: {capacity_per_team_per_day: 3, response_hours: 4}
"""


def test_the_same_seed_gives_the_same_scorecard(tmp_path: Path) -> None:
    sc = parse_scenario(SMALL)
    first = simulate(sc, tmp_path / "a", arms=("control_weekly", "order_point"), jobs=1, log=lambda m: None)
    second = simulate(sc, tmp_path / "b", arms=("control_weekly", "order_point"), jobs=1, log=lambda m: None)
    assert first.cards == second.cards
    assert set(first.cards["control_weekly"]) == set(first.cards["order_point"])
    assert pd.read_parquet(tmp_path / "a" / "demand.parquet").equals(pd.read_parquet(tmp_path / "b" / "demand.parquet"))
    other = simulate(parse_scenario(SMALL.replace("seed: 9", "seed: 10")), tmp_path / "c", arms=("order_point",), jobs=1, log=lambda m: None)
    assert other.cards["order_point"] != first.cards["order_point"]


def test_a_scoped_replan_of_sku_locations_without_open_orders_projects() -> None:
    # The event path re-plans SKU-locations a supplier notice touches, with or without customer orders open
    # (the twin found the projection failing on an empty order book; planning.projection now returns typed
    # empty totals).
    from demand_control.planning.projection import projected_inventory

    forecast = pd.DataFrame({"sku": "A", "location_id": "DC", "period_start": pd.to_datetime(["2026-11-23", "2026-11-30"]), "mean": [7.0, 7.0]})
    stock = pd.DataFrame({"sku": ["A"], "location_id": ["DC"], "on_hand": [10.0], "allocated": [0.0], "in_transit": [0.0]})
    none = pd.DataFrame({"sku": pd.Series(dtype=object), "location_id": pd.Series(dtype=object), "qty_open": pd.Series(dtype=float),
                         "promise_date": pd.Series(dtype="datetime64[ns]"), "expected_date": pd.Series(dtype="datetime64[ns]")})
    out = projected_inventory(stock, forecast, none, none, 0.0, "2026-11-23")
    assert out["closing"].tolist() == [3.0, -4.0]


def test_refits_beside_the_arms_score_as_refits_before_them(tmp_path: Path) -> None:
    # With two processes the forecast refits are computed while the arms run (the event arm waits for each
    # refit file); one process computes them all first. Same refits, so the same scorecard, key by key.
    sc = parse_scenario(SMALL)
    serial = simulate(sc, tmp_path / "serial", jobs=1, log=lambda m: None)
    pipelined = simulate(sc, tmp_path / "pipelined", jobs=2, log=lambda m: None)
    assert list(pipelined.cards) == list(serial.cards)
    assert (tmp_path / "pipelined" / "scorecard.json").read_text() == (tmp_path / "serial" / "scorecard.json").read_text()
    for name in ("demand.parquet", "supply.parquet", "supply_draws.parquet"):
        assert pd.read_parquet(tmp_path / "pipelined" / name).equals(pd.read_parquet(tmp_path / "serial" / name))


def test_an_arm_waiting_for_a_refit_that_failed_raises(tmp_path: Path) -> None:
    stem = tmp_path / "day_0000"
    stem.with_suffix(".failed").write_text("ValueError('boom')")
    with pytest.raises(RuntimeError, match="boom"):
        fc.load(stem, timeout_s=5)
    with pytest.raises(TimeoutError):
        fc.load(tmp_path / "day_0007", timeout_s=0.1)
