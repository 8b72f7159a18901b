"""Recommended actions on crafted scenarios: the right moves with hand-computed quantities and dates, ranked
sensibly, under ids that stay the same across runs."""

from __future__ import annotations

import pandas as pd
import pytest

from demand_control.planning.actions import recommend_actions
from demand_control.planning.allocation import allocation_scenarios
from demand_control.planning.exceptions import ExceptionThresholds, PlanningInputs, detect_exceptions, risky_order_lines, sku_location_context
from demand_control.planning.order_supply import open_orders, supply_for_open_orders
from tests.planning.test_exceptions import START, forecast, scenario


def actions_for(inputs: PlanningInputs, occurrence: int = 1, with_allocation: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    thresholds = ExceptionThresholds()
    found = detect_exceptions(inputs, thresholds, START).assign(occurrence=occurrence)
    ctx = sku_location_context(inputs, thresholds)
    orders = open_orders(inputs.order_lines, inputs.customer)
    risky = risky_order_lines(inputs, 7, START)
    summary = pd.DataFrame()
    if with_allocation:
        priced = orders.merge(inputs.product[["sku", "unit_price"]], on="sku")
        summary, _ = allocation_scenarios(priced, supply_for_open_orders(inputs.projection, priced))
    acts = recommend_actions(found, ctx, inputs.projection, inputs.purchase_lines, risky, inputs.product, inputs.supplier, inputs.accuracy, summary, START)
    return found, acts


def of(acts: pd.DataFrame, exception_type: str, action_type: str) -> pd.DataFrame:
    return acts[(acts["exception_type"] == exception_type) & (acts["action_type"] == action_type)].reset_index(drop=True)


def test_the_routine_order_rounds_to_moq_and_pack_and_is_placed_today() -> None:
    # 15 on hand, 10/wk, lead time 14: an order placed on Monday 2 Mar lands on 16 Mar (bucket 2), and must
    # cover until the next review's order can land (2 Mar + 14 + 7 − 1 day: still bucket 2). Closing there
    # −15 < safety stock 0: replenishment_due, net requirement 15. Position 15 (nothing on order), order-up-to
    # 30 → max(15, 30 − 15) = 15 → MOQ 10, pack 5 → 15, ordered today, needed 16 Mar.
    _, acts = actions_for(scenario(on_hand=15))
    rep = of(acts, "replenishment_due", "replenish").iloc[0]
    assert rep["quantity"] == 15 and rep["supplier_id"] == "SUP1" and rep["rank"] == 1
    assert str(rep["order_by"]) == "2026-03-02" and str(rep["needed_by"]) == "2026-03-16"
    assert rep["value"] == pytest.approx(15 * 4.0)
    assert rep["expected_impact"] == "orders 15 from SUP1 today to land by 16 Mar, bringing the inventory position from 15 to 30 (order-up-to 30)"
    # The stockout of 9 Mar is inside the lead time: no order can reach it, so its case offers none.
    assert of(acts, "projected_stockout", "replenish").empty


@pytest.mark.parametrize(
    ("on_hand", "moq", "pack", "quantity"),
    [
        (13, 10, 5, 20),  # need 17 (30 − 13): not a whole pack of 5 → 4 packs
        (15, 40, 5, 40),  # need 15, below the MOQ of 40 → the MOQ
        (15, 10, 12, 24),  # need 15, packs of 12 → 2 packs
        (13, 1, 1, 17),  # no constraint that binds: the need itself
    ],
)
def test_the_routine_order_rounds_a_need_that_is_not_a_valid_lot(on_hand: float, moq: float, pack: float, quantity: float) -> None:
    # As in the test above, the net requirement is order-up-to 30 − position (15 or 13), needed 16 Mar; here it
    # is not itself a valid lot, so the order is the smallest quantity ≥ the need, ≥ the MOQ, in whole packs.
    inputs = scenario(on_hand=on_hand)
    inputs.policy["moq"], inputs.policy["pack_size"] = moq, pack
    _, acts = actions_for(inputs)
    [rep] = of(acts, "replenishment_due", "replenish").to_dict("records")
    assert rep["quantity"] == quantity and rep["value"] == pytest.approx(quantity * 4.0)
    assert rep["expected_impact"] == (
        f"orders {quantity} from SUP1 today to land by 16 Mar, bringing the inventory position from {on_hand} to {on_hand + quantity} (order-up-to 30)"
    )


def test_transfer_from_a_dc_with_spare_stock_ranks_first_when_it_covers() -> None:
    both = pd.concat([forecast(), forecast(loc="DC2")], ignore_index=True)
    inputs = scenario(on_hand=15, fc=both)
    inv_dc2 = 200.0  # DC2 holds 200 against 80 of forecast over the horizon: spare 120 above SS 0
    proj = inputs.projection
    dc2 = proj["location_id"] == "DC2"
    proj.loc[dc2, ["opening", "closing"]] += inv_dc2 - 15
    _, acts = actions_for(inputs)
    stockout = acts[acts["exception_key"] == "projected_stockout:S1@DC1"].sort_values("rank")
    assert list(stockout["action_type"]) == ["transfer"]  # the routine order buys, under replenishment_due
    transfer = stockout.iloc[0]
    assert transfer["from_location_id"] == "DC2" and transfer["quantity"] == pytest.approx(15.0)


def test_two_short_dcs_share_one_senders_spare_instead_of_each_being_promised_all_of_it() -> None:
    """DC1 and DC3 run equally short, DC2 can spare 20 units (100 on hand, 80 of forecast over the horizon):
    each transfer moves its fair share, 10, and together they never take DC2 below its safety stock. Before the
    allocation both were offered DC2's whole 20."""
    fc = pd.concat([forecast(), forecast(loc="DC2"), forecast(loc="DC3")], ignore_index=True)
    inputs = scenario(on_hand=15, fc=fc)
    proj = inputs.projection
    proj.loc[proj["location_id"] == "DC2", ["opening", "closing"]] += 100.0 - 15
    _, acts = actions_for(inputs)
    transfers = acts[(acts["action_type"] == "transfer") & (acts["exception_type"] == "projected_stockout")]
    assert sorted(transfers["location_id"]) == ["DC1", "DC3"] and set(transfers["from_location_id"]) == {"DC2"}
    assert list(transfers["quantity"]) == pytest.approx([10.0, 10.0])
    assert transfers["expected_impact"].str.contains("spare 20 above its safety stock over the horizon, 10 of them allotted to this DC").all()


def test_supplier_delay_drafts_a_follow_up_and_expedites_when_short() -> None:
    inputs = scenario(on_hand=15, purchases=[("PO7", 2, 50, "2026-03-09", "2026-03-23", "confirmed")])
    _, acts = actions_for(inputs)
    follow = of(acts, "supplier_delay", "supplier_followup").iloc[0]
    assert follow["po_id"] == "PO7" and follow["po_line_no"] == 2
    assert follow["message"].startswith("Hello Acme Foods, PO PO7/2 (50 × S1 to DC1) is now due 23 Mar instead of 9 Mar.")
    expedite = of(acts, "supplier_delay", "expedite").iloc[0]
    assert str(expedite["needed_by"]) == "2026-03-09" and expedite["confidence"] == pytest.approx(0.8)  # supplier reliability


def test_order_at_risk_notifies_each_short_line_with_its_revised_date_and_allocates() -> None:
    inputs = scenario(on_hand=10, orders=[("SO1", 1, "C-STRAT", 8, "2026-03-03"), ("SO2", 1, "C-STD", 6, "2026-03-03")],
                      purchases=[("PO1", 1, 20, "2026-03-16", None, "confirmed")])
    _, acts = actions_for(inputs, with_allocation=True)
    notify = of(acts, "order_at_risk", "notify_customer")
    assert list(notify["order_id"]) == ["SO2"] and str(notify.iloc[0]["new_date"]) == "2026-03-16"
    assert notify.iloc[0]["quantity"] == pytest.approx(4.0) and notify.iloc[0]["customer_id"] == "C-STD"
    assert notify.iloc[0]["rank"] == 1  # the customer hears first; allocation is the manager's alternative
    allocate = of(acts, "order_at_risk", "allocate")
    assert len(allocate) == 1 and allocate.iloc[0]["rank"] == 2


def test_excess_stock_cancels_a_line_the_excess_covers() -> None:
    inputs = scenario(on_hand=2000, purchases=[("PO9", 1, 100, "2026-03-20", None, "confirmed")])
    _, acts = actions_for(inputs)
    cancel = of(acts, "excess_stock", "cancel").iloc[0]
    assert cancel["po_id"] == "PO9" and cancel["value"] == pytest.approx(400.0)


def test_action_ids_are_stable_across_runs_and_change_when_the_exception_reopens() -> None:
    inputs = scenario(on_hand=15, purchases=[("PO7", 2, 50, "2026-03-09", "2026-03-23", "confirmed")])
    _, first = actions_for(inputs)
    _, again = actions_for(inputs)
    assert list(first["action_id"]) == list(again["action_id"]) and first["action_id"].is_unique
    _, reopened = actions_for(inputs, occurrence=2)
    assert set(first["action_id"]).isdisjoint(reopened["action_id"])


def test_a_discontinued_sku_is_not_replenished() -> None:
    inputs = scenario(on_hand=15)
    inputs.product["active"] = False
    _, acts = actions_for(inputs)
    assert acts[acts["action_type"] == "replenish"].empty
    selling = scenario(on_hand=15)  # fresh inputs: frames derived from a read are computed once per read
    assert len(of(actions_for(selling)[1], "replenishment_due", "replenish")) == 1
