"""The seed scenario's target selection and sizing on the demo distributor, for 61 as-of dates spread over
two years and every weekday: each time the spike and the delay, applied exactly as the `replan` job applies
them, leave an emailed customer's order line short with a revised date inside the horizon. Pure functions
on generated landscapes with a naive forecast (the rule does not depend on how the forecast was made)."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from demand_control.sample import generate_landscape
from demand_control.sample.seed_scenario import (
    NoTarget,
    ScenarioInputs,
    Target,
    choose_target,
    scenario_outcome,
)

AS_OF_DATES = [date(2025, 12, 1) + timedelta(days=12 * i) for i in range(61)]  # 12 ≡ 5 (mod 7): every weekday
HORIZON_WEEKS = 13


def naive_forecast(history: pd.DataFrame, as_of: date, weeks: int = HORIZON_WEEKS) -> pd.DataFrame:
    """The mean of the last 8 weeks for the weeks from the one containing `as_of`."""
    h = history.assign(period_start=pd.to_datetime(history["period_start"]), sku=history["sku"].astype(str), location_id=history["location_id"].astype(str))
    recent = h[h["period_start"] > h["period_start"].max() - pd.Timedelta(weeks=8)]
    mean = recent.groupby(["sku", "location_id"], as_index=False)["qty"].mean().rename(columns={"qty": "mean"})
    monday = pd.Timestamp(as_of) - pd.Timedelta(days=as_of.weekday())
    return mean.merge(pd.DataFrame({"period_start": pd.date_range(monday, periods=weeks, freq="7D")}), how="cross")


def demo_inputs(as_of: date) -> ScenarioInputs:
    frames = generate_landscape(skus=200, locations=3, weeks=130, seed=7, as_of=as_of)  # the demo's distributor
    return ScenarioInputs(
        forecast=naive_forecast(frames["demand_history"], as_of), inventory=frames["inventory_position"],
        order_lines=frames["customer_order_line"], purchase_lines=frames["purchase_order_line"], customer=frames["customer"],
    )


def test_the_dates_cover_two_years_and_every_weekday() -> None:
    assert len(AS_OF_DATES) >= 60 and (AS_OF_DATES[-1] - AS_OF_DATES[0]).days >= 700
    assert {d.weekday() for d in AS_OF_DATES} == set(range(7))


@pytest.mark.parametrize("as_of", AS_OF_DATES, ids=lambda d: f"{d:%Y-%m-%d-%a}")
def test_the_scenario_always_puts_an_order_at_risk_with_a_revised_date_in_the_horizon(as_of: date) -> None:
    inputs = demo_inputs(as_of)
    target = choose_target(inputs, as_of)
    assert isinstance(target, Target), target.reason
    horizon_end = pd.Timestamp(as_of) - pd.Timedelta(days=as_of.weekday()) + pd.Timedelta(weeks=HORIZON_WEEKS)
    assert as_of < target.po_due < target.new_po_date < horizon_end.date()
    assert target.spike_qty >= 1 and target.spike_promise == as_of + timedelta(days=3)

    late = scenario_outcome(inputs, target, as_of)
    line = late[(late["order_id"] == target.order_id) & (late["line_no"] == target.order_line_no)]
    assert len(line) == 1 and line["short"].iloc[0] > 0, "the order line relying on the slipped PO is short"
    revised = pd.Timestamp(line["revised_date"].iloc[0])
    assert pd.notna(revised) and revised < horizon_end and revised.date() == target.revised_date
    emailed = set(inputs.customer.loc[inputs.customer["notify_email"].notna(), "customer_id"])
    assert target.customer_id in emailed and target.spike_customer_id in emailed
    # The notice the owner is offered first (strictest tier, then earliest promise) is a strategic customer's,
    # whom a person tells, and reaches them with a date.
    first = late.sort_values(["_tier_rank", "promise_date", "order_id", "line_no"]).iloc[0]
    assert (first["order_id"], first["line_no"]) == (target.notice_order_id, target.notice_line_no)
    assert first["customer_id"] in emailed and pd.notna(first["revised_date"]) and first["tier"] == "strategic"
    # Without the two events the same line is not at risk: the scenario, not the landscape, makes it late.
    nothing = scenario_outcome(inputs, Target(**{**vars(target), "spike_qty": 0.0, "delay_days": 0}), as_of)
    assert nothing[(nothing["order_id"] == target.order_id) & (nothing["line_no"] == target.order_line_no)].empty


def test_no_forecast_or_no_reachable_customer_is_said_not_raised() -> None:
    inputs = demo_inputs(date(2026, 11, 23))
    empty = choose_target(ScenarioInputs(**{**vars(inputs), "forecast": inputs.forecast.iloc[0:0]}), date(2026, 11, 23))
    assert isinstance(empty, NoTarget) and "forecast" in empty.reason
    silent = inputs.customer.assign(notify_email=None)
    nobody = choose_target(ScenarioInputs(**{**vars(inputs), "customer": silent}), date(2026, 11, 23))
    assert isinstance(nobody, NoTarget) and "notify_email" in nobody.reason
    no_po = inputs.purchase_lines.iloc[0:0]
    dry = choose_target(ScenarioInputs(**{**vars(inputs), "purchase_lines": no_po}), date(2026, 11, 23))
    assert isinstance(dry, NoTarget) and "PO line" in dry.reason


@pytest.mark.parametrize("as_of", AS_OF_DATES[::12], ids=lambda d: f"{d:%Y-%m-%d-%a}")
def test_with_the_policy_lead_times_the_scenario_agrees_with_the_rule_that_serves_orders_still_to_come(as_of: date) -> None:
    """With an inventory policy (lead times of the primary lanes) the order_at_risk rule also serves the
    forecast's orders still to come first; the scenario sizes and predicts with that same rule, so the line
    it picks is the one the replan finds short, with the revised date it predicted."""
    from demand_control.planning.exceptions import ExceptionThresholds, PlanningInputs, risky_order_lines
    from demand_control.sample.seed_scenario import _after_events

    frames = generate_landscape(skus=200, locations=3, weeks=130, seed=7, as_of=as_of)
    lanes = frames["sourcing"][frames["sourcing"]["primary"]][["sku", "location_id", "lead_time_days"]]
    inputs = ScenarioInputs(**{**vars(demo_inputs(as_of)), "policy": lanes})
    target = choose_target(inputs, as_of)
    assert isinstance(target, Target), target.reason
    late = scenario_outcome(inputs, target, as_of)
    line = late[(late["order_id"] == target.order_id) & (late["line_no"] == target.order_line_no)]
    assert len(line) == 1 and line["short"].iloc[0] > 0
    assert pd.Timestamp(line["revised_date"].iloc[0]).date() == target.revised_date
    # The replan's own path (`risky_order_lines` on the same facts after the events, with the policy's
    # lead times and the default order leads) finds the same lines short, by the same amounts.
    from demand_control.sample.seed_scenario import _applied, _one

    po_lines, order_lines = _applied(target, as_of, _one(inputs.purchase_lines, target.sku, target.location_id), _one(inputs.order_lines, target.sku, target.location_id))
    projection, _, _ = _after_events(inputs, target, as_of, 7)
    replan = PlanningInputs(
        projection=projection, policy=lanes, product=pd.DataFrame(), location=pd.DataFrame(), customer=inputs.customer,
        order_lines=order_lines, purchase_lines=po_lines, forecast=_one(inputs.forecast, target.sku, target.location_id),
    )
    found = risky_order_lines(replan, 7, as_of, ExceptionThresholds().customer_order_lead_days)
    assert found[["order_id", "line_no", "short"]].values.tolist() == late[["order_id", "line_no", "short"]].values.tolist()
