"""The root-cause classifier on hand-made cases: each cause is named on the evidence that decides it, with
that evidence's numbers in the text, and the near miss stays unknown."""

from __future__ import annotations

import pandas as pd
import pytest

from demand_control.planning.exceptions import PlanningInputs
from demand_control.planning.root_cause import RootCauseThresholds, classify_root_causes
from demand_control.planning.vocabulary import ROOT_CAUSES

START = pd.Timestamp("2026-03-02")  # a Monday: the horizon's first bucket
EMPTY = pd.DataFrame()


def case(exception_type: str = "demand_spike", key: str | None = None, sku: str = "S1", location_id: str = "DC1", **extra: object) -> dict:
    row = {"exception_type": exception_type, "sku": sku, "location_id": location_id, "supplier_id": "SUP1", "po_id": None,
           "po_line_no": None, "cause_key": None, "units_at_risk": 10.0}
    row.update(extra)
    row["exception_key"] = key or f"{exception_type}:{sku}@{location_id}"
    return row


def weekly(values: list[float], sku: str = "S1", location_id: str = "DC1") -> pd.DataFrame:
    """History ending the week before START: values[-1] is the last week."""
    n = len(values)
    periods = [START - pd.Timedelta(days=7 * (n - i)) for i in range(n)]
    return pd.DataFrame({"sku": sku, "location_id": location_id, "period_start": periods, "qty": [float(v) for v in values]})


def forecast(level: float = 10.0) -> pd.DataFrame:
    return pd.DataFrame({"sku": "S1", "location_id": "DC1", "period_start": pd.date_range(START, periods=4, freq="7D"), "mean": level})


def po_lines(lines: list[tuple[str, str, str | None]], supplier: str = "SUP1") -> pd.DataFrame:
    """(po_id, expected, confirmed) lines of one supplier, all confirmed and open."""
    return pd.DataFrame([
        {"po_id": p, "line_no": 1, "supplier_id": supplier, "sku": "S1", "location_id": "DC1", "qty_open": 10.0,
         "order_date": START - pd.Timedelta(days=30), "expected_date": pd.Timestamp(e), "confirmed_date": pd.Timestamp(c) if c else pd.NaT,
         "status": "confirmed"}
        for p, e, c in lines
    ])


def inputs(history: pd.DataFrame = EMPTY, orders: pd.DataFrame = EMPTY, purchases: pd.DataFrame = EMPTY, accuracy: pd.DataFrame = EMPTY,
           quarantined: pd.DataFrame = EMPTY, fc: pd.DataFrame | None = None) -> PlanningInputs:
    return PlanningInputs(
        projection=EMPTY, policy=EMPTY, product=EMPTY, location=EMPTY, customer=EMPTY, order_lines=orders, purchase_lines=purchases,
        forecast=forecast() if fc is None else fc, demand_history=history, accuracy=accuracy, quarantined=quarantined,
    )


def classify(cases: list[dict], planning: PlanningInputs, **kw: object) -> pd.DataFrame:
    return classify_root_causes(pd.DataFrame(cases), planning, START, START, RootCauseThresholds(**kw) if kw else None)


def test_a_supplier_late_on_most_other_lines_is_chronically_late_and_one_on_time_elsewhere_slipped_once():
    late = [("PO-1", "2026-03-10", "2026-03-30")]
    others_late = [(f"PO-{i}", "2026-03-12", "2026-03-26") for i in range(2, 6)] + [("PO-6", "2026-03-12", "2026-03-12")]
    others_on_time = [(f"PO-{i}", "2026-03-12", "2026-03-12") for i in range(2, 6)] + [("PO-6", "2026-03-12", "2026-03-20")]
    delay = case("supplier_delay", key="supplier_delay:PO-1/1", po_id="PO-1", po_line_no=1)

    chronic = classify([delay], inputs(purchases=po_lines(late + others_late))).iloc[0]
    assert chronic["root_cause"] == "supplier_chronic_lateness"
    assert chronic["root_cause_evidence"] == "SUP1 is on time on 20% of its 5 other open lines"
    assert 0.55 <= chronic["root_cause_confidence"] <= 0.95

    one_off = classify([delay], inputs(purchases=po_lines(late + others_on_time))).iloc[0]
    assert one_off["root_cause"] == "supplier_one_off_delay"
    assert one_off["root_cause_evidence"] == "SUP1 is on time on 80% of its 5 other open lines"


def test_a_supplier_with_too_few_other_lines_is_unknown():
    delay = case("supplier_delay", key="supplier_delay:PO-1/1", po_id="PO-1", po_line_no=1)
    out = classify([delay], inputs(purchases=po_lines([("PO-1", "2026-03-10", "2026-03-30"), ("PO-2", "2026-03-12", "2026-03-26")]))).iloc[0]
    assert out["root_cause"] == "unknown"
    assert out["root_cause_confidence"] == 0.0
    assert out["root_cause_evidence"] == "no evidence decides it"


def orders_of(rows: list[tuple[str, float]], days_ahead: int = 5) -> pd.DataFrame:
    return pd.DataFrame([
        {"order_id": f"SO-{i}", "line_no": 1, "customer_id": c, "sku": "S1", "location_id": "DC1", "qty_open": q,
         "promise_date": START + pd.Timedelta(days=days_ahead), "priority": 3, "status": "open"}
        for i, (c, q) in enumerate(rows)
    ])


def test_one_customer_holding_most_of_the_orders_due_is_a_single_customer_order():
    out = classify([case()], inputs(history=weekly([10.0] * 60), orders=orders_of([("CUST-A", 30.0), ("CUST-B", 4.0)]))).iloc[0]
    assert out["root_cause"] == "single_customer_order"
    assert out["root_cause_evidence"] == "CUST-A holds 88% of the 34 units due in 4 weeks (3.0x a week's forecast)"


@pytest.mark.parametrize("rows", [
    [("CUST-A", 30.0), ("CUST-B", 25.0)],  # the biggest customer holds 55%: no single order drives it
    [("CUST-A", 15.0), ("CUST-B", 1.0)],  # one customer, but only 1.5 weeks of forecast: an ordinary order
])
def test_orders_spread_over_customers_or_small_are_no_single_customer_order(rows):
    out = classify([case()], inputs(history=weekly([10.0] * 60), orders=orders_of(rows))).iloc[0]
    assert out["root_cause"] != "single_customer_order"


def test_orders_due_after_the_window_do_not_count():
    out = classify([case()], inputs(history=weekly([10.0] * 60), orders=orders_of([("CUST-A", 30.0)], days_ahead=40))).iloc[0]
    assert out["root_cause"] == "unknown"


def test_an_isolated_week_far_beyond_the_year_is_a_data_error():
    out = classify([case()], inputs(history=weekly([10.0] * 59 + [1000.0]))).iloc[0]
    assert out["root_cause"] == "data_error"
    assert out["root_cause_evidence"] == "last week's 1,000 units are 100.0x the largest week of the year before (10), the week before 10"
    assert out["root_cause_confidence"] == 0.95


def test_quarantined_rows_of_the_sku_location_are_a_data_error():
    quarantined = pd.DataFrame({"object": ["demand_history", "customer_order_line"], "key": ["S1|DC1|2026-02-23", "SO-1|1"]})
    out = classify([case("projected_stockout")], inputs(history=weekly([10.0] * 60), quarantined=quarantined)).iloc[0]
    assert out["root_cause"] == "data_error"
    assert out["root_cause_evidence"] == "1 rows of its stock or demand held in quarantine"


def test_three_weeks_well_above_the_year_before_are_a_broad_shift_and_two_weeks_just_above_are_not():
    out = classify([case()], inputs(history=weekly([10.0] * 57 + [30.0, 30.0, 30.0]))).iloc[0]
    assert out["root_cause"] == "broad_demand_shift"
    assert out["root_cause_evidence"] == "the last 3 weeks ran at 3.0x the year before (3 of 3 weeks above 1.5x)"
    near = classify([case()], inputs(history=weekly([10.0] * 57 + [10.0, 14.0, 14.0]))).iloc[0]
    assert near["root_cause"] == "unknown"


def test_a_lift_the_same_weeks_of_earlier_years_had_is_a_seasonal_peak():
    values = [10.0] * 110
    for age in [*range(46, 56), *range(98, 108), 1, 2, 3]:  # the same weeks one and two years ago, and now
        values[-age] = 30.0
    out = classify([case()], inputs(history=weekly(values))).iloc[0]
    assert out["root_cause"] == "seasonal_peak"
    assert out["root_cause_evidence"].startswith("the same weeks of earlier years ran at 2.")


def test_an_item_selling_for_a_few_weeks_is_a_new_item():
    out = classify([case("projected_stockout")], inputs(history=weekly([0.0] * 54 + [5.0] * 6))).iloc[0]
    assert out["root_cause"] == "new_item"
    assert out["root_cause_evidence"] == "it has sold for 6 weeks only"


def test_the_demand_class_backtest_bias_explains_shortages_when_under_and_excess_when_over():
    accuracy = pd.DataFrame([
        {"scope": "series", "sku": "S1", "location_id": "DC1", "demand_class": "smooth", "bias_pct": -3.0},
        {"scope": "class", "sku": None, "location_id": None, "demand_class": "smooth", "bias_pct": -25.0},
    ])
    out = classify([case("projected_stockout"), case("excess_stock")], inputs(history=weekly([10.0] * 60), accuracy=accuracy))
    assert out["root_cause"].tolist() == ["forecast_bias", "unknown"]
    assert out["root_cause_evidence"].iloc[0] == "its smooth class's backtest bias is -25%"
    over = accuracy.assign(bias_pct=[3.0, 25.0])
    out = classify([case("projected_stockout"), case("excess_stock")], inputs(history=weekly([10.0] * 60), accuracy=over))
    assert out["root_cause"].tolist() == ["unknown", "forecast_bias"]


def test_symptoms_and_orders_at_risk_take_the_cause_of_the_slip_behind_them():
    purchases = po_lines([("PO-1", "2026-03-10", "2026-03-30")] + [(f"PO-{i}", "2026-03-12", "2026-03-12") for i in range(2, 6)])
    delay = case("supplier_delay", key="supplier_delay:PO-1/1", po_id="PO-1", po_line_no=1)
    symptom = case("projected_stockout", cause_key="supplier_delay:PO-1/1")
    at_risk = case("order_at_risk")
    out = classify([delay, symptom, at_risk], inputs(history=weekly([10.0] * 60), purchases=purchases))
    assert out["root_cause"].tolist() == ["supplier_one_off_delay"] * 3
    assert out["root_cause_evidence"].iloc[1] == "as its root case supplier_delay:PO-1/1: SUP1 is on time on 100% of its 4 other open lines"
    assert out["root_cause_confidence"].iloc[1] == pytest.approx(out["root_cause_confidence"].iloc[0] * 0.9, abs=0.01)


def test_feed_cases_are_data_errors_and_every_answer_is_in_the_vocabulary():
    cases = [case("data_quality", key="data_quality:demand_history", sku=None, location_id=None), case("stale_feed", key="stale_feed:product", sku=None, location_id=None),
             case("excess_stock"), case("replenishment_due")]
    out = classify(cases, inputs(history=weekly([10.0] * 60)))
    assert out["root_cause"].tolist() == ["data_error", "data_error", "unknown", "unknown"]
    assert set(out["root_cause"]) <= set(ROOT_CAUSES)
    assert out["root_cause_confidence"].between(0, 1).all()


def test_no_cases_and_no_inputs_give_the_columns_and_nothing_else():
    out = classify_root_causes(pd.DataFrame(columns=["exception_key", "exception_type"]), inputs(), START)
    assert list(out.columns[-3:]) == ["root_cause", "root_cause_confidence", "root_cause_evidence"] and out.empty
    bare = classify([case()], PlanningInputs(EMPTY, EMPTY, EMPTY, EMPTY, EMPTY, EMPTY, EMPTY, EMPTY)).iloc[0]
    assert bare["root_cause"] == "unknown"
