"""What planners read (messages.planner_text and the Slack texts built with it): money in the policy's
currency, whole units, dates as people write them, customer and supplier names beside their ids, Slack
mentions only for user ids, one allocation table per case, the digest in the worklist's order."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pandas as pd

from demand_control.messages.planner_text import fmt_day, fmt_money, fmt_units, fmt_when, loss_text, mention, root_cause_text, with_names
from demand_control.messages.slack import digest_message, exception_message, home_view
from tests.services.test_notify import scenario_rows
from tests.worklist_cases import FRESH, NAMES, action, case


def test_money_units_and_dates() -> None:
    assert fmt_money(12_000.4, "EUR") == "EUR 12,000" and fmt_money(None, "CHF") == "?" and fmt_money(float("nan"), "EUR") == "?"
    assert fmt_units(96.4) == "96" and fmt_units(1_234.6) == "1,235" and fmt_units(None) == "?"
    assert fmt_day(date(2026, 12, 7)) == "Mon 7 Dec" == fmt_day("2026-12-07T10:00:00+00:00") == fmt_day(pd.Timestamp("2026-12-07"))
    assert fmt_when(datetime(2026, 12, 7, tzinfo=UTC)) == "Mon 7 Dec"  # a date: no hour
    assert fmt_when(datetime(2026, 12, 7, 14, 0)) == "Mon 7 Dec 14:00 UTC"  # naive is UTC, as the warehouse stores it
    assert fmt_when("2026-12-07T23:30:00-02:00") == "Tue 8 Dec 01:30 UTC"
    assert fmt_when(None) == "none" and fmt_day(pd.NaT) == "none"
    assert loss_text("shortage", 2_000, "EUR") == "EUR 2,000 lost margin (tier-weighted)"
    assert loss_text("excess", 300, "EUR") == "EUR 300 holding cost" and loss_text("none", 0, "EUR") == "no money at stake"


def test_mentions_only_for_slack_user_ids() -> None:
    assert mention("U0FRESH01") == "<@U0FRESH01>" and mention("W0GRID0001") == "<@W0GRID0001>"
    assert mention("ursula.planner") == "ursula.planner" and mention("Ursula") == "Ursula" and mention(None) == ""


def test_names_beside_ids() -> None:
    assert with_names("tells CUST-0028 that 12 of 40 units ship late; ask SUP-1.", NAMES) == (
        "tells Northwind Foods (CUST-0028) that 12 of 40 units ship late; ask Acme Dairy (SUP-1)."
    )
    assert with_names("already Northwind Foods (CUST-0028)", NAMES) == "already Northwind Foods (CUST-0028)"
    assert with_names("CUST-00281 and XCUST-0028 are others", NAMES) == "CUST-00281 and XCUST-0028 are others"
    assert with_names("order 4711 units", {"4711": "Numeric Supplier"}) == "order 4711 units"  # a number stays a number
    assert with_names(None, NAMES) == ""


def test_the_parent_message_reads_like_the_worklist() -> None:
    exc = case("order_at_risk:SKU-13@DC-1", "high", 300.0, money=1_234.6, units_at_risk=96.4,
               sentence="SKU-13 at DC-1: 2 order lines of 1 customers cannot be met.",
               affected_orders=json.dumps([{"order_id": "SO-9", "line_no": 1, "customer_id": "CUST-0028"},
                                           {"order_id": "SO-9", "line_no": 2, "customer_id": "CUST-0028"}]))
    act = action(exc, "A-0000000000000013", approver="manager", action_type="notify_customer",
                 expected_impact="tells CUST-0028 that 12 of 40 units of order SO-9/1 will ship by 7 Dec")
    # Two actions of one case name the same scenarios, and the rows come twice: one table, each scenario once.
    scenarios = scenario_rows("SKU-13", "DC-1") * 2
    msg = exception_message(exc, act, scenarios, currency="CHF", names=NAMES)
    text = json.dumps(msg.blocks, ensure_ascii=False)
    assert "*Money at risk*\\nCHF 1,235" in text and "*Units at risk*\\n96" in text and "96.4" not in text
    assert "*Expected loss*\\nCHF 2,469 lost margin (tier-weighted)" in text
    assert "Act by" not in text  # a routine order's act-by is the plan's day: it would change the message daily
    assert "*Owner*\\nteam:buying-fresh (<@U0FRESH01>)" in text
    assert "Supplier Acme Dairy (SUP-1) · Customers Northwind Foods (CUST-0028)" in text
    assert "tells Northwind Foods (CUST-0028) that" in text and "tells Northwind Foods (CUST-0028) that" in msg.text
    assert text.count("Allocation scenarios") == 1 and text.count("tier_priority") == 1 and text.count("fair_share") == 1
    assert "rev. at risk CHF" in text
    named = exception_message({**exc, "owner_user": "ursula.planner"}, act, names=NAMES)
    assert "(ursula.planner)" in json.dumps(named.blocks) and "<@ursula" not in json.dumps(named.blocks)


def test_the_digest_is_in_the_worklist_order_whatever_order_it_is_given() -> None:
    cases = [
        case("order_at_risk:SKU-13@DC-1", "low", 300.0),
        case("below_safety_stock:SKU-14@DC-1", "low", 50.0),
        case("excess_stock:SKU-12@DC-1", "low", 300.0, loss_kind="excess", expected_loss=300.0),
        case("projected_stockout:SKU-11@DC-1", "low", 900.0, sentence="SKU-11 at DC-1: CUST-0028 waits."),
    ]
    msg = digest_message(FRESH, date(2026, 11, 23), cases, currency="CHF", names=NAMES)
    order = [line.split("`")[1] for line in msg.text.splitlines()[1:]]
    assert order == ["projected_stockout:SKU-11@DC-1", "excess_stock:SKU-12@DC-1", "order_at_risk:SKU-13@DC-1", "below_safety_stock:SKU-14@DC-1"]
    assert msg.text.startswith("4 low-severity exception(s) for #buying-fresh on Mon 23 Nov:")
    assert "(CHF 300 holding cost; act by Mon 7 Dec)" in msg.text and "Northwind Foods (CUST-0028) waits." in msg.text


def test_the_message_and_the_worklist_item_say_why_and_an_undecided_cause_says_nothing() -> None:
    exc = case("demand_spike:SKU-13@DC-1", "high", 300.0, sentence="SKU-13 at DC-1: orders of 164 due the week of 24 Nov.",
               root_cause="single_customer_order", root_cause_confidence=0.83,
               root_cause_evidence="CUST-0028 holds 93% of the 176 units due in 4 weeks (5.1x a week's forecast)")
    why = "single customer order (confidence 83%): Northwind Foods (CUST-0028) holds 93% of the 176 units due in 4 weeks (5.1x a week's forecast)"
    assert root_cause_text(exc) == "single customer order (confidence 83%): CUST-0028 holds 93% of the 176 units due in 4 weeks (5.1x a week's forecast)"
    msg = exception_message(exc, None, names=NAMES)
    assert f"*Why:* {why}" in json.dumps(msg.blocks, ensure_ascii=False) and f"Why: {why}." in msg.text
    # The cause is a fact (a change of cause is news); its evidence's figures are not (they move every plan).
    assert msg.facts["root cause"] == "single customer order" and "93%" not in " ".join(msg.facts.values())
    assert f"*Why:* {why}" in json.dumps(home_view("U0FRESH01", [exc], names=NAMES).blocks, ensure_ascii=False)
    undecided = {**exc, "root_cause": "unknown", "root_cause_confidence": 0.0, "root_cause_evidence": "no evidence decides it"}
    assert root_cause_text(undecided) is None and root_cause_text({**exc, "root_cause": None}) is None
    assert "Why" not in json.dumps(exception_message(undecided, None).blocks) and "root cause" not in exception_message(undecided, None).facts
