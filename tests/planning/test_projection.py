"""Projected available balance on a hand-made scenario whose every bucket is worked out in the comments.

Horizon starts Monday 2026-03-02, so bucket 0 is a whole week; weekly buckets start Mondays 2026-03-02
(bucket 0), 03-09, 03-16, 03-23. The tests at the end start the same scenario on a Wednesday and a Sunday.
SKU A at DC1: on hand 60, allocated 10, in transit 5 (an older snapshot says 999 and must be ignored);
forecast 18/week; safety stock 20.
  orders: 4 promised 2026-02-20 (overdue → bucket 0), 25 on 03-10 (bucket 1), 22 on 03-17 (bucket 2),
          100 on 04-20 (beyond the horizon → left out)
  POs:    6 expected 02-25, unconfirmed (overdue → bucket 0); 30 expected 03-10 but confirmed 03-24 (bucket 3)
  bucket 0: opening 60 − 10 = 50, receipts 5 + 6 = 11, demand max(18, 4) = 18 → closing 43
  bucket 1: opening 43, receipts 0, demand max(18, 25) = 25 → closing 18 (< SS 20)
  bucket 2: opening 18, receipts 0, demand max(18, 22) = 22 → closing −4 (stockout, shortfall 4)
  bucket 3: opening −4, receipts 30, demand 18 → closing 8 (< SS 20)
SKU B at DC1: on hand 5, no forecast demand, no orders → closing 5 throughout, never out.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from demand_control.planning.projection import PROJECTION_COLUMNS, days_of_cover, first_stockout, projected_inventory

HORIZON = "2026-03-02"  # a Monday


def _forecast() -> pd.DataFrame:
    weeks = pd.date_range("2026-02-23", periods=5, freq="7D")  # 02-23 ends before the horizon: dropped
    a = pd.DataFrame({"sku": "A", "location_id": "DC1", "period_start": weeks, "mean": 18.0})
    b = pd.DataFrame({"sku": "B", "location_id": "DC1", "period_start": weeks, "mean": 0.0})
    return pd.concat([a, b], ignore_index=True)


def _inventory() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sku": ["A", "A", "B"],
            "location_id": ["DC1"] * 3,
            "as_of": pd.to_datetime(["2026-02-01", "2026-03-03", "2026-03-03"]),
            "on_hand": [999.0, 60.0, 5.0],
            "allocated": [0.0, 10.0, 0.0],
            "in_transit": [0.0, 5.0, 0.0],
        }
    )


def _orders() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3", "o4", "o5"],
            "sku": ["A", "A", "A", "A", "Z"],  # Z has no forecast yet (newly listed): projected with none
            "location_id": ["DC1"] * 5,
            "qty_open": [4.0, 25.0, 22.0, 100.0, 7.0],
            "promise_date": pd.to_datetime(["2026-02-20", "2026-03-10", "2026-03-17", "2026-04-20", "2026-03-10"]).date,
        }
    )


def _purchases() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "po_id": ["p1", "p2"],
            "sku": ["A", "A"],
            "location_id": ["DC1", "DC1"],
            "qty_open": [6.0, 30.0],
            "expected_date": pd.to_datetime(["2026-02-25", "2026-03-10"]),
            "confirmed_date": [pd.NaT, pd.Timestamp("2026-03-24")],
        }
    )


@pytest.fixture
def projection() -> pd.DataFrame:
    ss = pd.DataFrame({"sku": ["A"], "location_id": ["DC1"], "safety_stock": [20.0]})
    return projected_inventory(_inventory(), _forecast(), _orders(), _purchases(), ss, HORIZON)


def _rows(projection: pd.DataFrame, sku: str) -> pd.DataFrame:
    return projection[projection["sku"] == sku].sort_values("bucket").reset_index(drop=True)


def test_columns_and_buckets(projection):
    assert list(projection.columns) == list(PROJECTION_COLUMNS)
    a = _rows(projection, "A")
    assert a["bucket"].tolist() == [0, 1, 2, 3]
    assert a["period_start"].tolist() == list(pd.date_range("2026-03-02", periods=4, freq="7D"))
    assert set(projection["sku"]) == {"A", "B", "Z"}


def test_an_ordered_item_without_a_forecast_is_projected_so_its_order_is_seen_short(projection):
    z = _rows(projection, "Z")
    assert z["period_start"].tolist() == list(pd.date_range("2026-03-02", periods=4, freq="7D"))
    assert z["forecast"].tolist() == [0.0] * 4
    assert z["committed"].tolist() == [0.0, 7.0, 0.0, 0.0]
    assert z["closing"].tolist() == [0.0, -7.0, -7.0, -7.0]  # no stock, no receipt: the order is short


def test_a_scope_with_no_forecast_at_all_projects_its_orders_on_weeks_from_the_as_of_monday():
    orders = _orders()[lambda o: o["sku"] == "Z"]
    empty_forecast = _forecast().iloc[0:0]
    out = projected_inventory(_inventory().iloc[0:0], empty_forecast, orders, _purchases().iloc[0:0], 0.0, "2026-03-04")
    assert out["period_start"].tolist() == list(pd.date_range("2026-03-02", periods=2, freq="7D"))  # Wednesday as-of
    assert out["committed"].tolist() == [0.0, 7.0]
    assert out["closing"].tolist() == [0.0, -7.0]


def test_projected_available_balance_by_hand(projection):
    a = _rows(projection, "A")
    assert a["opening"].tolist() == [50.0, 43.0, 18.0, -4.0]
    assert a["receipts"].tolist() == [11.0, 0.0, 0.0, 30.0]  # in transit + overdue PO; confirmed date wins
    assert a["forecast"].tolist() == [18.0] * 4
    assert a["committed"].tolist() == [4.0, 25.0, 22.0, 0.0]  # overdue order in bucket 0; April order out
    assert a["demand"].tolist() == [18.0, 25.0, 22.0, 18.0]  # orders consume the forecast, not add to it
    assert a["closing"].tolist() == [43.0, 18.0, -4.0, 8.0]
    assert a["stockout"].tolist() == [False, False, True, False]
    assert a["below_safety_stock"].tolist() == [False, True, True, True]


def test_days_of_cover_per_bucket(projection):
    # average daily forecast 18/7 = 2.571429: 43 → 16.7222, 18 → 7.0, −4 → 0, 8 → 3.1111
    a = _rows(projection, "A")
    assert a["days_of_cover"].tolist() == pytest.approx([16.7222, 7.0, 0.0, 3.1111], abs=1e-4)
    b = _rows(projection, "B")
    assert b["closing"].tolist() == [5.0] * 4 and not b["below_safety_stock"].any()  # missing SS → 0
    assert all(math.isinf(x) for x in b["days_of_cover"])  # stock and no forecast demand


def test_first_stockout(projection):
    out = first_stockout(projection).set_index("sku")
    assert out.loc["A", "stockout_bucket"] == 2
    assert out.loc["A", "stockout_period_start"] == pd.Timestamp("2026-03-16")
    assert out.loc["A", "shortfall"] == 4.0
    assert pd.isna(out.loc["B", "stockout_bucket"]) and pd.isna(out.loc["B", "stockout_period_start"])


def test_days_of_cover_and_days_to_stockout(projection):
    out = days_of_cover(projection, HORIZON).set_index("sku")
    # now: 50 available / (18/7 per day) = 19.4444 days
    assert out.loc["A", "days_of_cover"] == pytest.approx(19.4444, abs=1e-4)
    # bucket 2 starts 03-16 with 18 on hand against 22 spread over 7 days: out after 18/22·7 = 5.7273 days,
    # i.e. 14 + 5.7273 = 19.7273 days after 03-02.
    assert out.loc["A", "days_to_stockout"] == pytest.approx(19.7273, abs=1e-4)
    assert math.isinf(out.loc["B", "days_of_cover"]) and math.isnan(out.loc["B", "days_to_stockout"])


def test_empty_orders_and_purchases_and_scalar_safety_stock():
    empty_orders = _orders().iloc[0:0]
    empty_pos = _purchases().iloc[0:0]
    out = projected_inventory(_inventory(), _forecast(), empty_orders, empty_pos, 0.0, HORIZON)
    a = _rows(out, "A")
    # 50 + 5 in transit − 18 = 37, then −18 each week: 19, 1, −17
    assert a["closing"].tolist() == [37.0, 19.0, 1.0, -17.0]
    assert first_stockout(out).set_index("sku").loc["A", "stockout_bucket"] == 3


def test_expected_date_used_when_no_confirmed_date_column():
    pos = _purchases().drop(columns=["confirmed_date"])
    out = projected_inventory(_inventory(), _forecast(), _orders(), pos, 0.0, HORIZON)
    # the 30 now lands on its expected date 03-10 (bucket 1): 43 + 30 − 25 = 48, 48 − 22 = 26, 26 − 18 = 8
    assert _rows(out, "A")["closing"].tolist() == [43.0, 48.0, 26.0, 8.0]


def _from(horizon: str) -> pd.DataFrame:
    ss = pd.DataFrame({"sku": ["A"], "location_id": ["DC1"], "safety_stock": [20.0]})
    return projected_inventory(_inventory(), _forecast(), _orders(), _purchases(), ss, horizon)


def test_bucket_zero_on_a_wednesday_counts_the_five_days_left():
    a = _rows(_from("2026-03-04"), "A")
    # Wed–Sun are left of the week of 03-02: forecast 18 · 5/7 = 12.8571 > the overdue order's 4.
    # closing 50 + 11 − 12.8571 = 48.1429; then − 25 = 23.1429; − 22 = 1.1429; + 30 − 18 = 13.1429.
    assert a["forecast"].tolist() == pytest.approx([90 / 7, 18.0, 18.0, 18.0])
    assert a["demand"].tolist() == pytest.approx([90 / 7, 25.0, 22.0, 18.0])
    assert a["closing"].tolist() == pytest.approx([48.1429, 23.1429, 1.1429, 13.1429], abs=1e-4)
    assert not a["stockout"].any()  # the Monday plan's stockout in bucket 2 came from two days already gone
    # average daily forecast over the 26 days projected: (90/7 + 54) / 26 = 18/7 → 48.1429 / (18/7) = 18.7222
    assert a["days_of_cover"].iloc[0] == pytest.approx(18.7222, abs=1e-4)


def test_bucket_zero_on_a_sunday_counts_one_day_and_every_overdue_order():
    a = _rows(_from("2026-03-08"), "A")
    # One day left: forecast 18/7 = 2.5714, below the overdue order's 4, which still counts in full.
    assert a["forecast"].tolist() == pytest.approx([18 / 7, 18.0, 18.0, 18.0])
    assert a["demand"].tolist() == pytest.approx([4.0, 25.0, 22.0, 18.0])
    # 50 + 11 − 4 = 57; 57 − 25 = 32; 32 − 22 = 10; 10 + 30 − 18 = 22
    assert a["closing"].tolist() == pytest.approx([57.0, 32.0, 10.0, 22.0])
    assert a["below_safety_stock"].tolist() == [False, False, True, False]


def test_days_to_stockout_inside_a_part_week():
    stock = pd.DataFrame({"sku": ["C"], "location_id": ["DC1"], "on_hand": [5.0], "allocated": [0.0], "in_transit": [0.0]})
    forecast = pd.DataFrame({"sku": "C", "location_id": "DC1", "period_start": pd.date_range("2026-03-02", periods=2, freq="7D"), "mean": 14.0})
    out = projected_inventory(stock, forecast, _orders().iloc[0:0], _purchases().iloc[0:0], 0.0, "2026-03-04")
    # Wednesday: 14 · 5/7 = 10 over the five days left; 5 on hand last 5/10 of them = 2.5 days.
    assert _rows(out, "C")["closing"].tolist() == pytest.approx([-5.0, -19.0])
    assert days_of_cover(out, "2026-03-04").set_index("sku").loc["C", "days_to_stockout"] == pytest.approx(2.5)
