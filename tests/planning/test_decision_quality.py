"""Cases that matter and actions in time (issue: a ranked worklist a planner trusts), on hand-built
scenarios: each tolerance holds back its near miss and keeps its hit, symptoms point at their root cause,
the routine order lands in time and only when its premise holds, no action is dated in the past, and the
worklist ranks by expected loss × urgency."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest

from demand_control.planning.policy.schema import Tolerances
from demand_control.planning.vocabulary import AWAITING_APPROVAL
from demand_control.planning.worklist import rank_cases, worklist
from tests.planning.test_actions import actions_for
from tests.planning.test_exceptions import START, detect, of_type, scenario


def case(found: pd.DataFrame, kind: str) -> pd.Series:
    rows = of_type(found, kind)
    assert len(rows) == 1, f"expected one {kind}, found {len(rows)}"
    return rows.iloc[0]


def test_a_supplier_delay_the_stock_covers_is_recorded_not_sent() -> None:
    # 200 on hand against 10/wk: a three-week slip of PO7 changes nothing for anyone.
    covered = detect(scenario(on_hand=200, purchases=[("PO7", 1, 50, "2026-03-09", "2026-03-30", "confirmed")]))
    assert case(covered, "supplier_delay")["suppressed_reason"] == "the projected balance covers the slip"
    # 15 on hand: the same slip leaves the DC short — the delay is the root cause, the stockout its symptom.
    short = detect(scenario(on_hand=15, purchases=[("PO7", 1, 50, "2026-03-09", "2026-03-30", "confirmed")]))
    delay = case(short, "supplier_delay")
    assert pd.isna(delay["suppressed_reason"]) and pd.isna(delay["cause_key"])
    assert case(short, "projected_stockout")["cause_key"] == "supplier_delay:PO7/1"


def test_a_dip_below_safety_stock_that_receipts_restore_is_held_back() -> None:
    # Safety stock 30, 40 on hand, 10/wk, lead time 14 (window 21 days): below 30 from week 1 for two weeks.
    hit = detect(scenario(on_hand=40, safety_stock=30))
    assert pd.isna(case(hit, "below_safety_stock")["suppressed_reason"])
    # A confirmed receipt of 40 lands in week 2: the balance is back above 30 by the window's end (week 2).
    near = detect(scenario(on_hand=40, safety_stock=30, purchases=[("PO1", 1, 40, "2026-03-16", "2026-03-16", "confirmed")]))
    below = of_type(near, "below_safety_stock")
    assert below.empty or below.iloc[0]["suppressed_reason"].startswith("receipts already scheduled or planned restore safety stock")


def _history(weeks: list[float]) -> pd.DataFrame:
    starts = pd.date_range(START - pd.Timedelta(weeks=len(weeks)), periods=len(weeks), freq="7D")
    return pd.DataFrame({"sku": "S1", "location_id": "DC1", "period_start": starts, "qty": weeks})


def test_a_one_week_spike_and_a_few_units_are_held_back_two_weeks_are_kept() -> None:
    # Forecast 10/wk, σ = (15 − 5)/2.563 = 3.9: the limit is 10 + 3 × 3.9 = 21.7.
    one = case(detect(scenario(on_hand=500, demand_history=_history([10, 10, 10, 60]))), "demand_spike")
    assert one["suppressed_reason"] == "one week above forecast + kσ, not yet a new level"
    two = case(detect(scenario(on_hand=500, demand_history=_history([10, 10, 60, 60]))), "demand_spike")
    assert pd.isna(two["suppressed_reason"])
    # 27 twice (17 over forecast): above the limit, but fewer units than the policy's minimum of 20.
    small = case(detect(scenario(on_hand=500, demand_history=_history([10, 10, 27, 27]))), "demand_spike")
    assert small["suppressed_reason"].startswith("fewer units above forecast than the policy's minimum")
    loose = Tolerances(demand_spike_min_weeks=1, demand_spike_min_units=0, demand_spike_min_share=0)
    from demand_control.planning.exceptions import ExceptionThresholds, detect_exceptions

    kept = of_type(detect_exceptions(scenario(on_hand=500, demand_history=_history([10, 10, 10, 60])), ExceptionThresholds(), START, tolerances=loose), "demand_spike")
    assert pd.isna(kept.iloc[0]["suppressed_reason"])


def test_the_routine_order_lands_in_time_and_a_feasible_expedite_outranks_anything_late() -> None:
    # 15 on hand, 10/wk, lead time 14; PO1 (30) confirmed for 23 Mar, after the stockout of 9 Mar.
    found, acts = actions_for(scenario(on_hand=15, purchases=[("PO1", 1, 30, "2026-03-05", "2026-03-23", "confirmed")]))
    stockout = acts[acts["exception_key"] == "projected_stockout:S1@DC1"].sort_values("rank")
    assert stockout.iloc[0]["action_type"] == "expedite" and stockout.iloc[0]["po_id"] == "PO1"
    assert (stockout["action_type"] != "replenish").all(), "a shortage inside the lead time is never answered with a late order"
    routine = acts[acts["action_type"] == "replenish"]
    assert (pd.to_datetime(routine["needed_by"]) >= START + pd.Timedelta(days=14)).all(), "a routine order is needed no sooner than it can land"


def test_no_action_is_dated_before_today() -> None:
    # An overdue PO (expected 20 Feb) and an overdue order: every date an action proposes is today or later.
    inputs = scenario(on_hand=5, orders=[("SO1", 1, "C-KEY", 8, "2026-02-27")], purchases=[("PO1", 1, 20, "2026-02-20", None, "confirmed")])
    _, acts = actions_for(inputs)
    for col in ("order_by", "needed_by"):
        dated = pd.to_datetime(acts[col]).dropna()
        assert (dated >= START).all(), f"{col} before today: {acts.loc[pd.to_datetime(acts[col]) < START, ['action_type', col]].to_dict('records')}"


def test_the_premise_check_refuses_an_order_above_the_order_up_to_level() -> None:
    inputs = scenario(on_hand=15)
    _, acts = actions_for(inputs)
    assert len(acts[acts["action_type"] == "replenish"]) == 1
    # The same need, but a policy whose order-up-to level (10) the position (15) already reaches.
    found, refused = actions_for(replace(inputs, policy=inputs.policy.assign(order_up_to=10.0)))
    assert refused[refused["action_type"] == "replenish"].empty
    # ... and the case is recorded, not sent to a person with no action to take.
    assert case(found, "replenishment_due")["suppressed_reason"].startswith("the inventory position by")
    assert case(found, "replenishment_due")["suppressed_reason"].endswith("already reaches the order-up-to level 10: no order is due")


def test_a_degraded_forecast_reaches_a_person_on_class_a_items_only() -> None:
    from tests.planning.test_exceptions import forecast

    # S1 sells 100/wk, S2 2/wk at the same price: S1 is 98% of the forecast value, S2 the tail.
    fc = pd.concat([forecast(100.0, "S1"), forecast(2.0, "S2", spread=1.0)], ignore_index=True)
    acc = pd.DataFrame({"scope": "series", "sku": ["S1", "S2"], "location_id": "DC1", "demand_class": "smooth",
                        "rmsse": 1.4, "recent_rmsse": 2.0, "earlier_rmsse": 1.0, "benchmark_rmsse": 1.5})
    found = of_type(detect(scenario(on_hand=5000, fc=fc, accuracy=acc)), "forecast_degradation").set_index("sku")
    assert pd.isna(found.loc["S1", "suppressed_reason"])
    assert found.loc["S2", "suppressed_reason"].startswith("outside the SKU-locations making up 80% of forecast value")
    from demand_control.planning.exceptions import ExceptionThresholds, detect_exceptions

    every = detect_exceptions(scenario(on_hand=5000, fc=fc, accuracy=acc), ExceptionThresholds(), START, tolerances=Tolerances(forecast_degradation_value_share=1.0))
    assert of_type(every, "forecast_degradation")["suppressed_reason"].isna().all()


def test_the_worklist_ranks_by_expected_loss_times_urgency_and_skips_what_needs_nobody() -> None:
    now = pd.Timestamp("2026-03-02 06:00", tz="UTC")
    cases = pd.DataFrame({
        "exception_key": ["projected_stockout:A@D", "order_at_risk:B@D", "excess_stock:C@D", "supplier_delay:P/1", "below_safety_stock:D@D"],
        "occurrence": 1,
        "exception_type": ["projected_stockout", "order_at_risk", "excess_stock", "supplier_delay", "below_safety_stock"],
        "customer_tier": ["standard", "strategic", "standard", "standard", "standard"],
        "money_at_risk": [900.0, 400.0, 5000.0, 100.0, 50.0],
        "suppressed_reason": [None, None, None, "the projected balance covers the slip", None],
        "cause_key": [None, None, None, None, None],
        "sla_due_at": [now + pd.Timedelta(hours=24)] * 2 + [now + pd.Timedelta(days=7)] + [now + pd.Timedelta(hours=24)] * 2,
        "severity": ["high", "high", "medium", "low", "low"],
        "owner_team": "team:planning", "owner_channel": "#p", "owner_user": None, "sku": list("ABCPD"), "location_id": "D",
        "sentence": "s", "last_change": "opened",
    })
    actions = pd.DataFrame({
        "action_id": ["a1", "a2", "a3", "a4", "a5"], "exception_key": cases["exception_key"], "occurrence": 1, "rank": 1,
        "action_type": ["expedite", "notify_customer", "reschedule_out", "supplier_followup", "transfer"],
        "policy_decision": [AWAITING_APPROVAL, AWAITING_APPROVAL, AWAITING_APPROVAL, AWAITING_APPROVAL, "auto_approved"],
        # Expedite needed in 2 weeks; the notice today; the reschedule's date is an excess's, not its act-by.
        "order_by": [None, None, None, None, None],
        "needed_by": [pd.Timestamp("2026-03-16"), pd.Timestamp("2026-03-02"), pd.Timestamp("2026-04-30"), pd.Timestamp("2026-03-09"), pd.Timestamp("2026-03-03")],
        "expected_impact": "x", "approver_role": "planner",
    })
    ranked = rank_cases(cases, actions, now)
    got = ranked.set_index("exception_key")
    # Strategic notice: 400 × 3 = 1,200 due now (urgency 1) → 1,200; stockout 900 due in 14 days → 900 × 0.25 = 225;
    # excess: holding money 5,000 due at its weekly SLA → 5,000 × 0.5 = 2,500: capital, ranked on its own terms.
    assert got.loc["order_at_risk:B@D", "priority"] == pytest.approx(1200.0)
    assert got.loc["projected_stockout:A@D", "priority"] == pytest.approx(900.0 * 0.25, rel=0.02)
    assert got.loc["excess_stock:C@D", "loss_kind"] == "excess"
    assert not got.loc["supplier_delay:P/1", "for_person"] and not got.loc["below_safety_stock:D@D", "for_person"]
    order = list(worklist(ranked, actions)["exception_key"])
    assert order == ["excess_stock:C@D", "order_at_risk:B@D", "projected_stockout:A@D"]
    # A decided action awaits nobody: its case leaves the worklist.
    assert "order_at_risk:B@D" not in set(worklist(rank_cases(cases, actions, now, decided={"a2"}), actions)["exception_key"])


def test_a_receipt_later_in_the_promise_week_does_not_serve_the_line() -> None:
    # 5 on hand; a customer line of 20 promised Tuesday 10 Mar; PO1's 50 land Friday 13 Mar, the same week.
    tuesday = detect(scenario(on_hand=5, orders=[("SO1", 1, "C-KEY", 20, "2026-03-10")], purchases=[("PO1", 1, 50, "2026-03-13", "2026-03-13", "confirmed")]))
    at_risk = case(tuesday, "order_at_risk")
    line = json.loads(at_risk["affected_orders"])[0]
    assert line["order_id"] == "SO1" and line["short"] == pytest.approx(15.0)
    # Promised the Friday the receipt lands (or later): served, nothing at risk.
    friday = detect(scenario(on_hand=5, orders=[("SO1", 1, "C-KEY", 20, "2026-03-13")], purchases=[("PO1", 1, 50, "2026-03-13", "2026-03-13", "confirmed")]))
    assert of_type(friday, "order_at_risk").empty
    # The customer hears the same: the notice for SO1 exists on the Tuesday promise.
    _, acts = actions_for(scenario(on_hand=5, orders=[("SO1", 1, "C-KEY", 20, "2026-03-10")], purchases=[("PO1", 1, 50, "2026-03-13", "2026-03-13", "confirmed")]))
    assert (acts["action_type"] == "notify_customer").sum() == 1


def test_a_case_whose_first_notice_was_decided_presents_its_next_customer_notice() -> None:
    now = pd.Timestamp("2026-03-02 06:00", tz="UTC")
    cases = pd.DataFrame({
        "exception_key": ["order_at_risk:B@D", "projected_stockout:A@D"], "occurrence": 1,
        "exception_type": ["order_at_risk", "projected_stockout"], "customer_tier": ["strategic", "standard"],
        "money_at_risk": [400.0, 900.0], "suppressed_reason": None, "cause_key": None,
        "sla_due_at": [now + pd.Timedelta(hours=24)] * 2, "severity": "high", "owner_team": "team:planning",
        "owner_channel": "#p", "owner_user": None, "sku": ["B", "A"], "location_id": "D", "sentence": "s", "last_change": "opened",
    })
    # B: two strategic customers' notices (one per order line, each its own decision) and an allocation; A: a
    # transfer recommended and an expedite as its alternative.
    actions = pd.DataFrame({
        "action_id": ["n1", "n2", "al", "t1", "e2"],
        "exception_key": ["order_at_risk:B@D"] * 3 + ["projected_stockout:A@D"] * 2, "occurrence": 1,
        "rank": [1, 2, 3, 1, 2], "action_type": ["notify_customer", "notify_customer", "allocate", "transfer", "expedite"],
        "policy_decision": AWAITING_APPROVAL, "order_by": None, "needed_by": pd.Timestamp("2026-03-04"),
        "expected_impact": "x", "approver_role": "planner",
    })
    before = worklist(rank_cases(cases, actions, now), actions).set_index("exception_key")["action_id"]
    assert before.to_dict() == {"order_at_risk:B@D": "n1", "projected_stockout:A@D": "t1"}
    decided = {"n1", "t1"}
    after = worklist(rank_cases(cases, actions, now, decided=decided), actions, decided=decided)
    # The second customer still has to hear; the expedite was an alternative to the decided transfer.
    assert after["action_id"].tolist() == ["n2"]
    # Both notices decided: the allocation is an alternative, not a further decision; nothing awaits.
    assert worklist(rank_cases(cases, actions, now, decided={"n1", "n2", "t1"}), actions, decided={"n1", "n2", "t1"}).empty
    # A notice that went ahead automatically (a standard customer's) leaves the strategic one behind it waiting.
    auto_first = actions.assign(policy_decision=[ "auto_approved", AWAITING_APPROVAL, AWAITING_APPROVAL, "auto_approved", AWAITING_APPROVAL])
    assert worklist(rank_cases(cases, auto_first, now), auto_first)["action_id"].tolist() == ["n2"]
