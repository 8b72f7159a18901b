"""The order-point arm orders exactly when and what Tryton's stock_supply rule says, on a case done by hand."""

from __future__ import annotations

import numpy as np
import pytest

from demand_control.twin.engine import Twin
from demand_control.twin.order_point import OrderPointArm, order_points
from tests.twin.landscapes import scenario, world


def test_order_points_are_lead_time_demand_plus_safety_stock_and_one_review_period() -> None:
    demand = np.array([[70.0] * 13, [0.0, 14.0] * 6 + [0.0]])
    minimum, target = order_points(demand, np.array([7.0, 14.0]), np.array([0.9, 0.9]))
    assert minimum[0] == pytest.approx(70.0) and target[0] == pytest.approx(140.0)  # σ = 0: no safety stock
    mean = 84.0 / 13
    sigma = np.std(demand[1], ddof=1)
    z = 1.2815515655446004
    assert minimum[1] == pytest.approx(mean / 7 * 14 + z * sigma * np.sqrt(2.0))
    assert target[1] == pytest.approx(minimum[1] + mean)


def test_a_request_when_the_forecast_quantity_at_today_plus_lead_time_falls_below_the_minimum() -> None:
    # A: 50 on hand, 10 a day promised every day, lead time 7 days, 70 a week of history: minimum 70,
    # target 140. Tryton's forecast quantity on day 0 + 7 = 50 - 8 days x 10 = -30 < 70: request 140 + 30.
    # B: 500 on hand: forecast quantity 500 - 80 = 420 ≥ 70: no request.
    sc = scenario(weeks=2, response_hours=4.0)
    twin = Twin(world(14, on_hand=[50.0, 500.0], lead=[7.0, 7.0], daily=[10.0, 10.0], history_per_week=[70.0, 70.0]), sc, "order_point", "O")
    arm = OrderPointArm(twin)
    twin.open_book(0)
    arm.morning(0, [])
    assert arm.minimum == pytest.approx([70.0, 70.0]) and arm.target == pytest.approx([140.0, 140.0])
    assert arm.request.tolist() == [170.0, 0.0]
    arm.workday(0)  # raised at 06:00, the buyer converts it 4 hours later
    placed = twin.po.frame()
    assert placed["series"].tolist() == [0] and placed["qty"].tolist() == [170.0]
    assert placed["order_day"].tolist() == [0] and placed["expected_day"].tolist() == [7]
    assert [t["at"].hour for t in arm.touches] == [10]
    # Next morning the purchase line counts in the forecast quantity: -30 - 10 + 170 = 130 ≥ 70, no request.
    twin.ship(0)
    twin.open_book(1)
    arm.morning(1, [])
    assert arm.request.tolist() == [0.0, 0.0]


def test_the_buyer_waits_the_response_time_and_converts_what_the_last_run_computed() -> None:
    sc = scenario(weeks=2, response_hours=30.0)
    twin = Twin(world(14, on_hand=[50.0], lead=[7.0], daily=[10.0], history_per_week=[70.0]), sc, "order_point", "O")
    arm = OrderPointArm(twin)
    twin.open_book(0)
    arm.morning(0, [])
    arm.workday(0)
    assert twin.po.n == 0  # raised at 06:00 day 0, ready at 12:00 day 1
    twin.ship(0)
    twin.open_book(1)
    arm.morning(1, [])
    # Day 1: 40 on hand, 10 a day for days 1..8 promised: 40 - 80 = -40: request 180.
    assert arm.request.tolist() == [180.0]
    arm.workday(1)
    assert twin.po.frame()["qty"].tolist() == [180.0] and arm.touches[0]["at"].hour == 12
