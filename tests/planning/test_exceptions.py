"""Planning exceptions on crafted scenarios: each type fires on its scenario and stays silent on the near
miss; the numbers and sentences are the hand-computed ones; the lifecycle survives re-runs."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from demand_control.planning.exceptions import ExceptionThresholds, PlanningInputs, detect_exceptions
from demand_control.planning.formatting import fmt_qty
from demand_control.planning.lifecycle import update_lifecycle
from demand_control.planning.projection import projected_inventory

START = pd.Timestamp("2026-03-02")  # a Monday
WEEKS = 8


def forecast(level: float = 10.0, sku: str = "S1", loc: str = "DC1", spread: float = 5.0) -> pd.DataFrame:
    periods = pd.date_range(START, periods=WEEKS, freq="7D")
    rows = {
        "sku": sku, "location_id": loc, "period_start": periods, "mean": level, "demand_class": "smooth",
        "q05": level - 1.5 * spread, "q10": level - spread, "q25": level - 0.5 * spread, "q50": level,
        "q75": level + 0.5 * spread, "q90": level + spread, "q95": level + 1.5 * spread,
    }
    out = pd.DataFrame(rows)
    q = [c for c in out if c.startswith("q")]
    out[q] = out[q].clip(lower=0)
    return out


def scenario(
    on_hand: float = 100.0,
    allocated: float = 0.0,
    safety_stock: float = 0.0,
    lead_time: float = 14.0,
    orders: list[tuple] | None = None,
    purchases: list[tuple] | None = None,
    fc: pd.DataFrame | None = None,
    **extra: pd.DataFrame,
) -> PlanningInputs:
    """One SKU-location S1@DC1 (plus whatever `fc` holds): stock, policy, orders (order_id, line_no,
    customer_id, qty, promise) and POs (po_id, line_no, qty, expected, confirmed, status)."""
    fc = forecast() if fc is None else fc
    keys = fc[["sku", "location_id"]].drop_duplicates()
    inv = keys.assign(as_of=START.date(), on_hand=on_hand, allocated=allocated, in_transit=0.0)
    order_frame = pd.DataFrame(
        [
            {"order_id": o, "line_no": n, "customer_id": c, "sku": "S1", "location_id": "DC1", "qty_open": q, "promise_date": pd.Timestamp(d), "priority": 3, "status": "open"}
            for o, n, c, q, d in (orders or [])
        ],
        columns=["order_id", "line_no", "customer_id", "sku", "location_id", "qty_open", "promise_date", "priority", "status"],
    )
    po_frame = pd.DataFrame(
        [
            {"po_id": p, "line_no": n, "supplier_id": "SUP1", "sku": "S1", "location_id": "DC1", "qty_open": q, "order_date": START - pd.Timedelta(days=30),
             "expected_date": pd.Timestamp(e), "confirmed_date": pd.Timestamp(c) if c else pd.NaT, "status": s}
            for p, n, q, e, c, s in (purchases or [])
        ],
        columns=["po_id", "line_no", "supplier_id", "sku", "location_id", "qty_open", "order_date", "expected_date", "confirmed_date", "status"],
    )
    policy = keys.assign(
        supplier_id="SUP1", lead_time_days=lead_time, safety_stock=safety_stock, reorder_point=safety_stock + 20.0,
        order_up_to=safety_stock + 30.0, tier="standard", moq=10.0, pack_size=5.0,
    )
    projection = projected_inventory(inv, fc, order_frame, po_frame, policy[["sku", "location_id", "safety_stock"]], START)
    product = pd.DataFrame({"sku": keys["sku"].unique()}).assign(category="dry", unit_cost=4.0, unit_price=10.0, substitute_skus=None)
    location = pd.DataFrame({"location_id": keys["location_id"].unique()}).assign(region="north", type="dc")
    customer = pd.DataFrame(
        {"customer_id": ["C-STRAT", "C-KEY", "C-STD"], "tier": ["strategic", "key", "standard"], "region": "north"}
    )
    supplier = pd.DataFrame({"supplier_id": ["SUP1"], "name": ["Acme Foods"], "contact": ["orders@acme.example"], "reliability": [0.8]})
    return PlanningInputs(
        projection=projection, policy=policy, product=product, location=location, customer=customer,
        order_lines=order_frame, purchase_lines=po_frame, forecast=fc, supplier=supplier, **extra,
    )


def detect(inputs: PlanningInputs, thresholds: ExceptionThresholds = ExceptionThresholds(), as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    return detect_exceptions(inputs, thresholds, START, as_of=as_of)


def of_type(found: pd.DataFrame, kind: str) -> pd.DataFrame:
    return found[found["exception_type"] == kind].reset_index(drop=True)


def test_projected_stockout_fires_within_lead_time_plus_review_with_numbers_and_sentence() -> None:
    # 15 on hand, 10/wk: closing 5, −5, −15 in the 21-day window (lead time 14 + review 7) → short 15.
    found = of_type(detect(scenario(on_hand=15, orders=[("SO1", 1, "C-KEY", 3, "2026-03-10")])), "projected_stockout")
    assert len(found) == 1
    row = found.iloc[0]
    assert row["exception_key"] == "projected_stockout:S1@DC1"
    assert row["units_at_risk"] == pytest.approx(15.0)
    assert row["money_at_risk"] == pytest.approx(15 * 6.0)  # margin 10 − 4
    assert str(row["window_start"]) == "2026-03-09"
    assert row["customer_tier"] == "key"
    assert json.loads(row["affected_orders"])[0]["order_id"] == "SO1"
    assert row["sentence"] == (
        "S1 at DC1: available 15, no inbound supply, forecast 10/wk → stockout week of 9 Mar, short 15 within lead time 14 d "
        "(90 margin at risk, 1 customer order lines affected)."
    )


def test_projected_stockout_stays_silent_when_the_gap_is_beyond_the_window() -> None:
    # 31 on hand: closing 21, 11, 1 in the window; −9 only in bucket 3, outside 21 days.
    assert of_type(detect(scenario(on_hand=31)), "projected_stockout").empty


def test_below_safety_stock_needs_n_consecutive_buckets_starting_in_the_window() -> None:
    found = of_type(detect(scenario(on_hand=45, safety_stock=20)), "below_safety_stock")
    assert len(found) == 1
    # Closing 35, 25, 15, 5, −5 …: the run of two starts in bucket 2 (15 < 20); its deepest gap is 20 − 5 = 15.
    assert found.iloc[0]["units_at_risk"] == pytest.approx(15.0)
    assert found.iloc[0]["sentence"] == (
        "S1 at DC1: projected balance stays below safety stock 20 for 2 weeks from the week of 16 Mar, down to 5 (gap 15 units, 90 margin exposed)."
    )
    # A receipt in bucket 3 breaks the run: 15 < 20 only in bucket 2, the next run starts in bucket 4 (outside).
    near = scenario(on_hand=45, safety_stock=20, purchases=[("PO1", 1, 20, "2026-03-23", None, "confirmed")])
    assert of_type(detect(near), "below_safety_stock").empty
    # The same numbers with n = 1 fire on the single bucket.
    assert len(of_type(detect(near, replace(ExceptionThresholds(), below_safety_stock_consecutive_buckets=1)), "below_safety_stock")) == 1


def test_stockout_suppresses_below_safety_stock_for_the_same_sku_location() -> None:
    found = detect(scenario(on_hand=15, safety_stock=10))
    assert set(found["exception_type"]) >= {"projected_stockout"}
    assert of_type(found, "below_safety_stock").empty


def test_demand_spike_from_recent_demand_fires_beyond_k_sigma_and_not_below() -> None:
    # σ = (q90 − q10) / 2.563 = 10 / 2.563 = 3.90; limit = 10 + 3·3.90 = 21.7.
    history = pd.DataFrame({"sku": "S1", "location_id": "DC1", "period_start": [START - pd.Timedelta(days=7)], "qty": [60.0]})
    found = of_type(detect(scenario(demand_history=history)), "demand_spike")
    assert len(found) == 1 and found.iloc[0]["units_at_risk"] == pytest.approx(50.0)
    assert "demand of 60 in the week of 23 Feb" in found.iloc[0]["sentence"]
    assert of_type(detect(scenario(demand_history=history.assign(qty=21.0))), "demand_spike").empty


def test_demand_spike_from_orders_and_from_the_crm_pipeline() -> None:
    spike = of_type(detect(scenario(orders=[("SO1", 1, "C-STD", 40, "2026-03-11")])), "demand_spike")
    assert len(spike) == 1 and json.loads(spike.iloc[0]["trigger_values"])["orders_spike"] is True
    assert of_type(detect(scenario(orders=[("SO1", 1, "C-STD", 21, "2026-03-11")])), "demand_spike").empty
    # Horizon forecast 80; weighted pipeline 0.5 × 100 = 50 > 0.5 × 80 = 40 fires; 0.3 × 100 = 30 does not.
    pipe = pd.DataFrame({"opportunity_id": ["OP1"], "sku": ["S1"], "customer_id": ["C-KEY"], "qty": [100.0], "probability": [0.5],
                         "expected_date": [pd.Timestamp("2026-04-01")], "stage": ["proposal"]})
    assert len(of_type(detect(scenario(pipeline=pipe)), "demand_spike")) == 1
    assert of_type(detect(scenario(pipeline=pipe.assign(probability=0.3))), "demand_spike").empty
    assert of_type(detect(scenario(pipeline=pipe.assign(stage="lost"))), "demand_spike").empty


def test_supplier_delay_on_a_slipped_confirmation_or_an_overdue_line() -> None:
    slipped = scenario(on_hand=15, purchases=[("PO7", 2, 50, "2026-03-09", "2026-03-23", "confirmed")],
                       orders=[("SO1", 1, "C-STRAT", 5, "2026-03-16")])
    found = of_type(detect(slipped), "supplier_delay")
    assert len(found) == 1
    row = found.iloc[0]
    assert row["exception_key"] == "supplier_delay:PO7/2" and row["po_line_no"] == 2
    assert json.loads(row["trigger_values"])["slip_days"] == 14
    assert row["customer_tier"] == "strategic"
    assert row["sentence"].startswith("PO7/2 from Acme Foods: 50 units of S1 for DC1 now confirmed 23 Mar, 14 days after the expected 9 Mar")
    on_time = scenario(purchases=[("PO7", 2, 50, "2026-03-09", "2026-03-09", "confirmed")])
    assert of_type(detect(on_time), "supplier_delay").empty
    overdue = scenario(purchases=[("PO8", 1, 50, "2026-02-27", None, "sent")])
    assert len(of_type(detect(overdue), "supplier_delay")) == 1
    assert of_type(detect(scenario(purchases=[("PO8", 1, 50, "2026-02-27", None, "draft")])), "supplier_delay").empty


def test_order_at_risk_names_the_lines_supply_cannot_meet_with_a_revised_date() -> None:
    # 10 available; strategic 8 and standard 6 promised the same week → the standard line is 4 short, until
    # the PO of 20 lands in the week of 16 Mar.
    risky = scenario(on_hand=10, orders=[("SO1", 1, "C-STRAT", 8, "2026-03-03"), ("SO2", 1, "C-STD", 6, "2026-03-03")],
                     purchases=[("PO1", 1, 20, "2026-03-16", None, "confirmed")])
    found = of_type(detect(risky), "order_at_risk")
    assert len(found) == 1
    lines = json.loads(found.iloc[0]["affected_orders"])
    assert [(x["order_id"], x["short"], x["revised_date"]) for x in lines] == [("SO2", 4.0, "2026-03-16")]
    assert found.iloc[0]["customer_tier"] == "standard"
    near = scenario(on_hand=10, orders=[("SO1", 1, "C-STRAT", 8, "2026-03-03"), ("SO2", 1, "C-STD", 2, "2026-03-03")])
    assert of_type(detect(near), "order_at_risk").empty


def test_order_at_risk_serves_the_strategic_line_first_even_when_its_order_id_is_higher() -> None:
    # The standard customer's SO1 sorts before the strategic customer's SO2 by id; supply goes by tier. 10
    # available, both promised 3 Mar: strategic SO2 (8) is served in full, standard SO1 (6) gets the 2 left and
    # is 4 short until the PO of 20 lands on 16 Mar. Sorted by order id instead, SO1 would be served and the
    # strategic SO2 would be the one 4 short.
    risky = scenario(on_hand=10, orders=[("SO1", 1, "C-STD", 6, "2026-03-03"), ("SO2", 1, "C-STRAT", 8, "2026-03-03")],
                     purchases=[("PO1", 1, 20, "2026-03-16", None, "confirmed")])
    [found] = of_type(detect(risky), "order_at_risk").to_dict("records")
    lines = json.loads(found["affected_orders"])
    assert [(x["order_id"], x["customer_id"], x["short"], x["revised_date"]) for x in lines] == [("SO1", "C-STD", 4.0, "2026-03-16")]
    assert found["customer_tier"] == "standard" and found["units_at_risk"] == pytest.approx(4.0)
    # Short enough that both fall short: the strategic line is named first and sets the case's tier.
    both = scenario(on_hand=5, orders=[("SO1", 1, "C-STD", 6, "2026-03-03"), ("SO2", 1, "C-STRAT", 8, "2026-03-03")],
                    purchases=[("PO1", 1, 20, "2026-03-16", None, "confirmed")])
    [found] = of_type(detect(both), "order_at_risk").to_dict("records")
    lines = json.loads(found["affected_orders"])
    assert [(x["order_id"], x["short"]) for x in lines] == [("SO2", 3.0), ("SO1", 6.0)]
    assert found["customer_tier"] == "strategic"



def test_orders_still_to_come_before_a_promise_inside_the_lead_time_put_a_served_line_at_risk() -> None:
    from demand_control.planning.order_supply import share_not_yet_ordered
    from demand_control.planning.supply_exceptions import risky_order_lines

    # Customers order 0 to 9 days ahead: of the demand promised d days from today, d/10 is not ordered yet.
    leads = (0.0, 9.0)
    assert share_not_yet_ordered(11, leads).tolist() == pytest.approx([d / 10 for d in range(10)] + [1.0])
    assert share_not_yet_ordered(44, (7.0, 42.0))[[7, 8, 43]].tolist() == pytest.approx([0.0, 1 / 36, 1.0])
    # 60 in stock, a forecast of 10 a day. Open: key SO1 20 on day 3, strategic SO2 30 on day 10: 50 of
    # 60, both served. Still to come before day 10: Σ 10 × d/10 over days 0..9 = 45 (of the forecast's 100,
    # the 20 booked leave 80), so SO2 needs 20 + 45 + 30 = 95: all of its 30 short until the PO of 100 on 23
    # Mar. SO1 needs 20 + (0 + 1 + 2) = 23: served.
    orders = [("SO1", 1, "C-KEY", 20, "2026-03-05"), ("SO2", 1, "C-STRAT", 30, "2026-03-12")]
    inputs = scenario(on_hand=60, lead_time=14.0, orders=orders, purchases=[("PO1", 1, 100, "2026-03-23", None, "confirmed")], fc=forecast(level=70.0))
    at_risk = risky_order_lines(inputs, 7, START, leads)
    assert at_risk[["order_id", "short", "to_come"]].values.tolist() == [["SO2", pytest.approx(30.0), pytest.approx(45.0)]]
    assert at_risk["revised_date"].tolist() == [pd.Timestamp("2026-03-23")]
    [found] = of_type(detect(inputs, ExceptionThresholds(customer_order_lead_days=leads)), "order_at_risk").to_dict("records")
    assert found["customer_tier"] == "strategic" and found["units_at_risk"] == pytest.approx(30.0)
    # Without the forecast of orders to come, today's open orders leave SO2 served.
    assert risky_order_lines(scenario(on_hand=60, orders=orders, fc=forecast(level=70.0)), 7, START).empty
    assert of_type(detect(inputs, ExceptionThresholds(customer_order_lead_days=(40.0, 42.0))), "order_at_risk").empty
    # A lead time of 4 days: supply ordered today lands before day 10, so only days 0..3 count (0+1+2+3 = 6).
    short_lead = scenario(on_hand=60, lead_time=4.0, orders=orders, fc=forecast(level=70.0))
    assert risky_order_lines(short_lead, 7, START, leads).empty


def test_orders_already_booked_are_not_counted_again_as_orders_to_come() -> None:
    from demand_control.planning.order_supply import ExpectedOrders, open_orders, order_lines_at_risk, policy_lead_times, served_order_lines

    # The forecast's 100 before day 10 is booked already (standard SO3 100 on day 5): nothing is still to
    # come, so SO2 needs 100 + 30 = 130 of 160. Counting the 45 again would make it 175: short.
    orders = [("SO3", 1, "C-STD", 100, "2026-03-07"), ("SO2", 1, "C-STRAT", 30, "2026-03-12")]
    inputs = scenario(on_hand=160, lead_time=14.0, orders=orders, fc=forecast(level=70.0))
    expected = ExpectedOrders(inputs.forecast, policy_lead_times(inputs.policy), (0.0, 9.0))
    book = open_orders(inputs.order_lines, inputs.customer)
    served = served_order_lines(inputs.projection, book, 7, today=START, expected=expected)
    assert served.set_index("order_id")["to_come"].to_dict() == pytest.approx({"SO3": 10.0, "SO2": 10.0})
    assert order_lines_at_risk(inputs.projection, book, 7, today=START, expected=expected).empty
    # Booked short of the forecast, the rest up to the expected 45 is still to come: 100 − 70 = 30.
    thinner = scenario(on_hand=160, lead_time=14.0, orders=[("SO3", 1, "C-STD", 70, "2026-03-07"), orders[1]], fc=forecast(level=70.0))
    served = served_order_lines(thinner.projection, open_orders(thinner.order_lines, thinner.customer), 7, today=START, expected=expected)
    assert served.set_index("order_id")["to_come"].to_dict() == pytest.approx({"SO3": 10.0, "SO2": 30.0})

def test_excess_stock_over_the_days_of_cover_threshold() -> None:
    found = of_type(detect(scenario(on_hand=2000)), "excess_stock")
    assert len(found) == 1
    # Keep max(120 days × 10/7 per day, order-up-to 30) = 171.4 → 1,828.6 units at cost 4.
    assert found.iloc[0]["units_at_risk"] == pytest.approx(2000 - 120 * 10 / 7)
    # Money is the holding cost until used: 1,828.6 units last 1,280 days at 10/7 a day, so a full year of
    # 25% holding on their 7,314.3 of value.
    assert found.iloc[0]["money_at_risk"] == pytest.approx((2000 - 120 * 10 / 7) * 4 * 0.25)
    assert of_type(detect(scenario(on_hand=160)), "excess_stock").empty  # 112 days of cover


def test_forecast_degradation_from_the_backtest() -> None:
    acc = pd.DataFrame({"scope": ["series"], "sku": ["S1"], "location_id": ["DC1"], "demand_class": ["smooth"],
                        "rmsse": [1.4], "recent_rmsse": [2.0], "earlier_rmsse": [1.0], "benchmark_rmsse": [1.5]})
    assert len(of_type(detect(scenario(accuracy=acc)), "forecast_degradation")) == 1
    assert of_type(detect(scenario(accuracy=acc.assign(recent_rmsse=1.25))), "forecast_degradation").empty


def test_stale_feed_and_data_quality_per_object() -> None:
    feeds = pd.DataFrame({"object": ["inventory_position", "product"], "age_hours": [30.0, 20.0], "freshness_hours": [26.0, 26.0],
                          "rows_extracted": [100, 100], "rows_quarantined": [5, 1], "status": ["staged", "staged"]})
    found = detect(scenario(feeds=feeds))
    assert list(of_type(found, "stale_feed")["entity"]) == ["inventory_position"]
    assert list(of_type(found, "data_quality")["entity"]) == ["inventory_position"]
    rejected = feeds.assign(status=["staged", "rejected"], age_hours=1.0, rows_quarantined=0)
    assert list(of_type(detect(scenario(feeds=rejected)), "data_quality")["entity"]) == ["product"]


def test_a_quiet_sku_location_raises_nothing() -> None:
    assert detect(scenario(on_hand=60)).empty


def test_fmt_qty_reads_like_a_planner() -> None:
    assert list(fmt_qty(pd.Series([1234.4, 2.5, 3.0, None]))) == ["1,234", "2.5", "3", "?"]


def _details(found: pd.DataFrame) -> pd.DataFrame:
    # The lifecycle follows one case here: the stockout (the same scenario also raises its replenishment_due).
    found = of_type(found, "projected_stockout")
    return found.assign(severity="high", owner_team="team:planning", owner_channel="#planning", owner_user=None, routing_rule="fallback")


def test_lifecycle_rerun_updates_instead_of_duplicating_and_auto_resolves() -> None:
    t0, t1, t2, t3 = (pd.Timestamp("2026-03-02 06:00", tz="UTC") + pd.Timedelta(hours=h) for h in (0, 1, 2, 3))
    first = _details(detect(scenario(on_hand=15)))
    state = update_lifecycle(pd.DataFrame(), first, t0)
    assert list(state["state"]) == ["open"] and list(state["last_change"]) == ["opened"]

    again = update_lifecycle(state, first, t1)
    assert len(again) == 1 and again.iloc[0]["last_change"] == "unchanged"
    assert again.iloc[0]["first_seen_at"] == t0 and again.iloc[0]["last_seen_at"] == t1

    worse = update_lifecycle(again.assign(state="acknowledged"), _details(detect(scenario(on_hand=5))), t2)
    assert worse.iloc[0]["last_change"] == "updated" and worse.iloc[0]["state"] == "acknowledged"
    assert worse.iloc[0]["values_changed_at"] == t2 and worse.iloc[0]["units_at_risk"] == pytest.approx(25.0)

    cleared = update_lifecycle(worse, _details(detect(scenario(on_hand=60))), t3)
    assert cleared.iloc[0]["state"] == "auto_resolved" and cleared.iloc[0]["resolved_at"] == t3

    back = update_lifecycle(cleared, first, t3 + pd.Timedelta(hours=1))
    assert back.iloc[0]["state"] == "open" and back.iloc[0]["occurrence"] == 2 and back.iloc[0]["last_change"] == "reopened"
    assert back.iloc[0]["first_seen_at"] == t0 and pd.isna(back.iloc[0]["resolved_at"])


def test_lifecycle_leaves_unevaluated_exceptions_alone_and_reopens_after_a_snooze() -> None:
    t0 = pd.Timestamp("2026-03-02 06:00", tz="UTC")
    state = update_lifecycle(pd.DataFrame(), _details(detect(scenario(on_hand=15))), t0)
    untouched = update_lifecycle(state, _details(detect(scenario(on_hand=60))), t0 + pd.Timedelta(hours=1), evaluated=pd.Series(False, index=state.index))
    assert untouched.iloc[0]["state"] == "open" and untouched.iloc[0]["last_change"] == "untouched"

    snoozed = state.assign(state="snoozed", snoozed_until=t0 + pd.Timedelta(hours=2))
    still = update_lifecycle(snoozed, _details(detect(scenario(on_hand=15))), t0 + pd.Timedelta(hours=1))
    assert still.iloc[0]["state"] == "snoozed"
    woke = update_lifecycle(still, _details(detect(scenario(on_hand=15))), t0 + pd.Timedelta(hours=3))
    assert woke.iloc[0]["state"] == "open" and woke.iloc[0]["last_change"] == "updated"


def test_lifecycle_refuses_duplicate_keys() -> None:
    found = _details(detect(scenario(on_hand=15)))
    with pytest.raises(ValueError, match="projected_stockout:S1@DC1"):
        update_lifecycle(pd.DataFrame(), pd.concat([found, found]), pd.Timestamp("2026-03-02", tz="UTC"))


def test_a_discontinued_sku_running_down_is_no_stockout() -> None:
    inputs = scenario(on_hand=15)
    inputs.product["active"] = False
    assert of_type(detect(inputs), "projected_stockout").empty


def test_frames_derived_from_one_read_are_computed_once_and_handed_out_as_copies() -> None:
    calls = []
    inputs = scenario(on_hand=10, orders=[("SO1", 1, "C-STRAT", 8, "2026-03-03"), ("SO2", 1, "C-STD", 6, "2026-03-03")])

    def compute() -> pd.DataFrame:
        calls.append(1)
        return pd.DataFrame({"x": [1, 2]})

    first = inputs.derived(("probe",), compute)
    first["x"] = 0  # a caller adding to or changing its frame ...
    second = inputs.derived(("probe",), compute)
    assert calls == [1]
    assert second["x"].tolist() == [1, 2]  # ... does not change what the next caller gets
    # The order lines at risk the order_at_risk rule and the actions read are one computation.
    from demand_control.planning.supply_exceptions import risky_order_lines

    at_risk = risky_order_lines(inputs, 7, START)
    assert at_risk["order_id"].tolist() == ["SO2"] and at_risk.equals(risky_order_lines(inputs, 7, START))
    assert len([k for k in inputs._derived if k[0] == "risky_order_lines"]) == 1


def test_the_latest_weeks_before_the_horizon_equal_sorting_the_history_and_taking_each_tail():
    """`latest_weeks_before` sorts positions, not the 10M-row frame: it must give what the frame sort gives,
    on shuffled rows with gaps, a series that ended long ago and weeks at and after the horizon."""
    from demand_control.planning.signal_exceptions import latest_weeks_before

    rng = np.random.default_rng(5)
    weeks = pd.date_range("2025-01-06", periods=40, freq="7D")
    rows = [(f"SKU-{s:03d}", f"DC-{d}", w, float(rng.integers(0, 50))) for s in range(30) for d in "BA" for w in weeks if rng.random() < 0.8]
    rows += [("SKU-900", "DC-A", weeks[0], 7.0), ("SKU-900", "DC-A", weeks[1], 9.0)]  # ended long before the horizon
    history = pd.DataFrame(rows, columns=["sku", "location_id", "period_start", "qty"]).sample(frac=1.0, random_state=3).reset_index(drop=True)
    horizon = weeks[30]
    for n in (0, 1, 3, 50):
        expected = history[history["period_start"] < horizon].sort_values(["sku", "location_id", "period_start"], kind="mergesort").groupby(["sku", "location_id"], sort=False).tail(n)
        got = latest_weeks_before(history, horizon, n)
        pd.testing.assert_frame_equal(got, expected[["sku", "location_id", "qty", "period_start"]].reset_index(drop=True))
    assert latest_weeks_before(history, weeks[0], 3).empty
