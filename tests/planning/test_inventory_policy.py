"""Inventory policy formulas on tiny hand-made frames whose answers are worked out in the comments."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from demand_control.planning.inventory_policy import (
    POLICY_COLUMNS,
    ServiceLevelTable,
    blend_lead_times,
    economic_order_quantity,
    inventory_policy,
    observed_lead_times,
    order_quantity,
    primary_lanes,
    quantile_at,
    round_order_quantity,
    service_level_for,
    service_levels_for,
    sku_location_service_levels,
)
from demand_control.planning.metrics import QUANTILE_COLUMNS, QUANTILE_LEVELS

Z95 = 1.6448536  # Φ⁻¹(0.95)
Z98 = 2.0537489  # Φ⁻¹(0.98)


def normal_forecast(sku: str, loc: str, means: list[float], sigma: float, start: str = "2026-03-02", bucket_days: int = 7, demand_class: str = "smooth") -> pd.DataFrame:
    """Forecast rows whose quantiles are those of Normal(mean, sigma) in every bucket."""
    rows = []
    for k, m in enumerate(means):
        row = {"sku": sku, "location_id": loc, "period_start": pd.Timestamp(start) + pd.Timedelta(days=k * bucket_days), "mean": m}
        row.update({c: m + NormalDist().inv_cdf(p) * sigma for c, p in zip(QUANTILE_COLUMNS, QUANTILE_LEVELS)})
        row.update(model="test", demand_class=demand_class)
        rows.append(row)
    return pd.DataFrame(rows)


def quantile_forecast(sku: str, loc: str, n: int, mean: float, quantiles: list[float], demand_class: str = "intermittent") -> pd.DataFrame:
    rows = []
    for k in range(n):
        row = {"sku": sku, "location_id": loc, "period_start": pd.Timestamp("2026-03-02") + pd.Timedelta(weeks=k), "mean": mean}
        row.update(dict(zip(QUANTILE_COLUMNS, quantiles)))
        row.update(model="test", demand_class=demand_class)
        rows.append(row)
    return pd.DataFrame(rows)


def lane(sku: str, loc: str, lead: float, lead_std: float, moq: float = 0.0, pack: float = 1.0, supplier: str = "S1", primary: bool = True) -> dict:
    return {"sku": sku, "location_id": loc, "supplier_id": supplier, "lead_time_days": lead, "lead_time_std_days": lead_std,
            "moq": moq, "pack_size": pack, "unit_cost": 1.0, "primary": primary}


def one(frame: pd.DataFrame, sku: str, loc: str = "DC1") -> pd.Series:
    rows = frame[(frame["sku"] == sku) & (frame["location_id"] == loc)]
    assert len(rows) == 1
    return rows.iloc[0]


# --- service levels ---------------------------------------------------------------------------------------


def test_service_level_by_tier_category_override_and_fallback():
    table = ServiceLevelTable(category_overrides={"fresh": {"standard": 0.97}})
    assert service_level_for("strategic", "dry", table) == 0.98
    assert service_level_for("key", "fresh", table) == 0.95  # fresh overrides only standard
    assert service_level_for("standard", "fresh", table) == 0.97
    assert service_level_for("unknown-tier", None, table) == 0.90  # falls back to the default tier
    levels = service_levels_for(pd.Series(["strategic", "standard", "standard", None]), pd.Series(["fresh", "fresh", "dry", "dry"]), table)
    assert levels.tolist() == [0.98, 0.97, 0.90, 0.90]


def test_service_level_table_rejects_impossible_levels():
    with pytest.raises(ValueError, match=r"by_tier\[key\] = 1.0"):
        ServiceLevelTable(by_tier={"strategic": 0.98, "key": 1.0, "standard": 0.9})
    with pytest.raises(ValueError, match="default_tier"):
        ServiceLevelTable(by_tier={"key": 0.95})


def test_sku_location_takes_the_strictest_customer_tier():
    keys = pd.DataFrame({"sku": ["A", "B"], "location_id": ["DC1", "DC1"]})
    orders = pd.DataFrame({"sku": ["A", "A", "C"], "location_id": ["DC1"] * 3, "customer_id": ["c-std", "c-strat", "c-key"]})
    customers = pd.DataFrame({"customer_id": ["c-std", "c-strat", "c-key"], "tier": ["standard", "strategic", "key"]})
    products = pd.DataFrame({"sku": ["A", "B", "C"], "category": ["dry", "fresh", "dry"]})
    table = ServiceLevelTable(category_overrides={"fresh": {"standard": 0.93}})
    out = sku_location_service_levels(keys, orders, customers, products, table)
    # A serves a strategic customer → 0.98; B has no open orders → default tier standard, fresh override 0.93.
    assert one(out, "A")[["tier", "service_level"]].tolist() == ["strategic", 0.98]
    assert one(out, "B")[["tier", "service_level"]].tolist() == ["standard", 0.93]
    assert len(out) == 2  # C is not a SKU-location being planned


# --- order quantity rounding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("qty", "moq", "pack", "expected"),
    [
        (0.0, 12, 6, 0.0),  # nothing needed → no order, even with an MOQ
        (-3.0, 12, 6, 0.0),
        (5.0, 12, 5, 15.0),  # MOQ 12 is not a pack multiple: first multiple of 5 at or above 12
        (13.0, 12, 6, 18.0),  # above MOQ: next pack multiple
        (12.0, 12, 6, 12.0),  # already exact: no extra pack
        (0.3, 0, 0.1, 0.3),  # 0.3/0.1 = 2.9999999999999996 in floats: still 3 packs
        (7.0, float("nan"), 0, 7.0),  # no MOQ, no pack: the quantity itself
        (7.2, 0, 1, 8.0),  # whole units
        (1.0, 100, 24, 120.0),  # MOQ dominates: 100 → 5 packs of 24
    ],
)
def test_round_order_quantity_edges(qty, moq, pack, expected):
    assert round_order_quantity(qty, moq, pack) == pytest.approx(expected)


def test_round_order_quantity_is_the_smallest_valid_quantity():
    rng = np.random.default_rng(5)
    qty = rng.uniform(0.01, 500, 2000)
    moq = rng.choice([0, 10, 48, 250], 2000)
    pack = rng.choice([1, 6, 12, 24, 0.5], 2000)
    out = round_order_quantity(qty, moq, pack)
    packs = out / pack
    assert (out >= qty - 1e-9).all() and (out >= moq - 1e-9).all()
    assert np.allclose(packs, np.round(packs))
    assert (out - pack < np.maximum(qty, moq) - 1e-9).all()  # one pack fewer would be too little


def test_order_quantity_orders_up_to_level_only_at_or_below_reorder_point():
    # position 50 ≤ ROP 105.39 → 175.39 − 50 = 125.39 → MOQ 100 ok → packs of 24: 6 × 24 = 144.
    # position 110 > ROP → nothing.
    out = order_quantity(np.array([50.0, 110.0]), 105.39, 175.39, 100, 24)
    assert out.tolist() == [144.0, 0.0]


# --- quantile interpolation --------------------------------------------------------------------------------


def test_quantile_at_is_exact_for_a_normal_distribution_inside_and_beyond_the_known_levels():
    sigma, mean = 3.0, 10.0
    q = np.array([[mean + NormalDist().inv_cdf(p) * sigma for p in QUANTILE_LEVELS]] * 3)
    got = quantile_at(q, np.array([0.95, 0.98, 0.60]))
    assert got == pytest.approx([mean + Z95 * sigma, mean + Z98 * sigma, mean + NormalDist().inv_cdf(0.60) * sigma], rel=1e-6)


def test_quantile_at_extrapolates_the_upper_tail_linearly_in_z():
    # quantiles 0,0,0,0,2,6,9: beyond q95 the q90→q95 slope in z continues:
    # q98 = 9 + (9 − 6)·(2.053749 − 1.644854)/(1.644854 − 1.281552) = 9 + 3·1.125498 = 12.3765
    got = quantile_at(np.array([[0, 0, 0, 0, 2, 6, 9]]), np.array([0.98]))
    assert got[0] == pytest.approx(12.3765, abs=1e-4)


# --- safety stock, reorder point, order-up-to ---------------------------------------------------------------


def test_normal_safety_stock_with_daily_buckets():
    # d̄ = 10/day, σ_d = 3/day, L = 7 d, σ_L = 2 d, α = 0.95 (z = 1.644854), review period 7 d:
    # SS = 1.644854·√(7·3² + 10²·2²) = 1.644854·√463 = 1.644854·21.517435 = 35.3931
    # ROP = 10·7 + 35.3931 = 105.3931; order-up-to = 105.3931 + 10·7 = 175.3931
    fc = normal_forecast("A", "DC1", [10.0] * 20, sigma=3.0, bucket_days=1)
    sourcing = pd.DataFrame([lane("A", "DC1", 7, 2)])
    out = one(inventory_policy(fc, sourcing, 0.95, review_period_days=7, bucket_days=1), "A")
    assert out["z"] == pytest.approx(Z95, rel=1e-6)
    assert out["mean_daily_demand"] == pytest.approx(10.0)
    assert out["demand_std_per_bucket"] == pytest.approx(3.0)
    assert out["safety_stock"] == pytest.approx(35.3931, abs=1e-3)
    assert out["reorder_point"] == pytest.approx(105.3931, abs=1e-3)
    assert out["order_up_to"] == pytest.approx(175.3931, abs=1e-3)
    assert out["method"] == "normal"


def test_normal_safety_stock_is_the_same_in_weekly_buckets():
    # The same demand in weeks: mean 70/week, σ_week = 3·√7 = 7.937254. L/b = 1 week:
    # SS = 1.644854·√(1·7.937254² + 10²·2²) = 1.644854·√(63 + 400) = 35.3931 as above.
    fc = normal_forecast("A", "DC1", [70.0] * 6, sigma=3 * math.sqrt(7))
    out = one(inventory_policy(fc, pd.DataFrame([lane("A", "DC1", 7, 2)]), 0.95, review_period_days=7), "A")
    assert out["demand_std_per_bucket"] == pytest.approx(7.937254, abs=1e-5)
    assert out["safety_stock"] == pytest.approx(35.3931, abs=1e-3)


def test_fixed_lead_time_reduces_to_z_sigma_root_l():
    # σ_L = 0: SS = z·σ_d·√L = 1.644854·3·√7 = 13.0557; at the strategic level z = 2.053749 → 16.3011
    fc = normal_forecast("A", "DC1", [10.0] * 20, sigma=3.0, bucket_days=1)
    sourcing = pd.DataFrame([lane("A", "DC1", 7, 0)])
    assert one(inventory_policy(fc, sourcing, 0.95, 0, bucket_days=1), "A")["safety_stock"] == pytest.approx(13.0557, abs=1e-3)
    assert one(inventory_policy(fc, sourcing, 0.98, 0, bucket_days=1), "A")["safety_stock"] == pytest.approx(16.3011, abs=1e-3)


def test_mean_demand_is_taken_over_the_protection_interval():
    # Weekly means 70, 140, 700; L = 10 d, R = 0 → window 10 d = bucket 0 whole + 3/7 of bucket 1:
    # expected demand = 70 + (3/7)·140 = 130 over 10 days → d̄ = 13/day (the 700 week lies beyond the window).
    fc = normal_forecast("A", "DC1", [70.0, 140.0, 700.0], sigma=0.0)
    out = one(inventory_policy(fc, pd.DataFrame([lane("A", "DC1", 10, 0)]), 0.95, 0), "A")
    assert out["mean_daily_demand"] == pytest.approx(13.0)
    assert out["safety_stock"] == pytest.approx(0.0)
    assert out["reorder_point"] == pytest.approx(130.0)


def test_intermittent_item_uses_the_lead_time_demand_quantile():
    # One weekly bucket of lead time (L = 7 d, σ_L = 0, R = 0): mean 2, q05..q95 = 0,0,0,0,2,6,9.
    # α = 0.95 → SS = q95 − mean = 9 − 2 = 7 (exact for one bucket); ROP = 2 + 7 = 9.
    # The normal formula would give 1.644854·(6 − 0)/2.563103 = 3.85 — it under-protects the slow mover.
    q = [0, 0, 0, 0, 2, 6, 9]
    fc = quantile_forecast("I", "DC1", 4, 2.0, q)
    out = one(inventory_policy(fc, pd.DataFrame([lane("I", "DC1", 7, 0)]), 0.95, 0), "I")
    assert out["method"] == "lead_time_quantile"
    assert out["safety_stock"] == pytest.approx(7.0)
    assert out["reorder_point"] == pytest.approx(9.0)
    # α = 0.90 sits on a known quantile: SS = 6 − 2 = 4.
    assert one(inventory_policy(fc, pd.DataFrame([lane("I", "DC1", 7, 0)]), 0.90, 0), "I")["safety_stock"] == pytest.approx(4.0)
    # Smooth class on the same numbers → the normal formula: 1.644854·6/(2·1.281552) = 3.8505
    smooth = fc.assign(demand_class="smooth")
    assert one(inventory_policy(smooth, pd.DataFrame([lane("I", "DC1", 7, 0)]), 0.95, 0), "I")["safety_stock"] == pytest.approx(3.8505, abs=1e-3)


def test_lead_time_quantile_over_two_buckets_and_with_lead_time_spread():
    q = [0, 0, 0, 0, 2, 6, 9]
    fc = quantile_forecast("I", "DC1", 4, 2.0, q, demand_class="lumpy")
    # L = 14 d: two buckets each with excess 7, added as independent: SS = √(2·7²) = 9.8995; ROP = 4 + 9.8995.
    out = one(inventory_policy(fc, pd.DataFrame([lane("I", "DC1", 14, 0)]), 0.95, 0), "I")
    assert out["safety_stock"] == pytest.approx(9.8995, abs=1e-4)
    assert out["reorder_point"] == pytest.approx(13.8995, abs=1e-4)
    # L = 7 d, σ_L = 7 d, d̄ = 2/7 per day: lead-time term z·d̄·σ_L = 1.644854·2 = 3.289707;
    # SS = √(7² + 3.289707²) = √59.82217 = 7.734479
    out = one(inventory_policy(fc, pd.DataFrame([lane("I", "DC1", 7, 7)]), 0.95, 0), "I")
    assert out["safety_stock"] == pytest.approx(7.734479, abs=1e-5)


def test_primary_lane_wins_and_missing_lane_gives_no_policy():
    fc = pd.concat([normal_forecast("A", "DC1", [70.0] * 4, 0.0), normal_forecast("B", "DC1", [70.0] * 4, 0.0)])
    sourcing = pd.DataFrame([lane("A", "DC1", 3, 0, supplier="FAST", primary=False), lane("A", "DC1", 14, 1, moq=50, pack=10, supplier="MAIN")])
    assert primary_lanes(sourcing)["supplier_id"].tolist() == ["MAIN"]
    out = inventory_policy(fc, sourcing, pd.DataFrame({"sku": ["A"], "location_id": ["DC1"], "service_level": [0.98]}), 7)
    assert list(out.columns) == list(POLICY_COLUMNS)
    a, b = one(out, "A"), one(out, "B")
    assert (a["supplier_id"], a["lead_time_days"], a["moq"], a["pack_size"], a["service_level"]) == ("MAIN", 14, 50, 10, 0.98)
    # d̄ = 10/day, no demand spread: SS = z·√(0 + 10²·1²) = 2.053749·10 = 20.5375; ROP = 140 + 20.5375
    assert a["safety_stock"] == pytest.approx(20.5375, abs=1e-4)
    assert a["reorder_point"] == pytest.approx(160.5375, abs=1e-4)
    # B: default service level 0.90, no lane → NaN policy rather than an invented lead time.
    assert b["service_level"] == 0.90
    assert math.isnan(b["lead_time_days"]) and math.isnan(b["reorder_point"])


def test_service_level_mapping_and_validation():
    fc = normal_forecast("A", "DC1", [70.0] * 4, 7.0)
    sourcing = pd.DataFrame([lane("A", "DC1", 7, 0)])
    out = inventory_policy(fc, sourcing, {("A", "DC1"): 0.95}, 0)
    assert one(out, "A")["service_level"] == 0.95
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        inventory_policy(fc, sourcing, 1.0, 0)
    with pytest.raises(ValueError, match="forecast is missing columns"):
        inventory_policy(fc.drop(columns=["q90"]), sourcing, 0.95, 0)


def test_observed_lead_times_update_the_quoted_lane() -> None:
    # Quote 10 ± 2 days; two confirmations at 14 and 16 days (mean 15, sd √2). With the quote worth 3
    # observations: mean (3·10 + 2·15)/5 = 12; variance (3·4 + 1·2 + 3·2/5·25)/(3 + 1) = 44/4 = 11.
    lanes = pd.DataFrame([lane("A", "DC1", 10, 2)])
    po = pd.DataFrame({
        "sku": "A", "location_id": "DC1", "supplier_id": "S1",
        "order_date": pd.to_datetime(["2026-03-01", "2026-03-05", "2026-03-07"]),
        "confirmed_date": pd.to_datetime(["2026-03-15", "2026-03-21", None]),
    })
    observed = observed_lead_times(po)
    assert observed.iloc[0]["observations"] == 2 and observed.iloc[0]["observed_mean_days"] == pytest.approx(15.0)
    blended = blend_lead_times(primary_lanes(lanes), observed).iloc[0]
    assert blended["lead_time_days"] == pytest.approx(12.0)
    assert blended["lead_time_std_days"] == pytest.approx(math.sqrt(11.0))
    assert blended["lead_time_observations"] == 2
    # Another lane's confirmations leave this lane at its quote.
    other = blend_lead_times(primary_lanes(lanes), observed.assign(supplier_id="S2")).iloc[0]
    assert other["lead_time_days"] == 10 and other["lead_time_std_days"] == 2 and other["lead_time_observations"] == 0


def test_economic_order_quantity_sets_the_lot_when_an_ordering_cost_is_configured() -> None:
    # D = 1000/yr, S = 50, H = 0.25 × 8 = 2 → EOQ = √(2·1000·50/2) = 223.6; rounded to packs of 25 → 225.
    assert economic_order_quantity(np.array([1000.0]), 50.0, np.array([2.0]))[0] == pytest.approx(223.6068, abs=1e-3)
    assert np.isnan(economic_order_quantity(np.array([1000.0]), 0.0, np.array([2.0]))[0])
    fc = normal_forecast("A", "DC1", [1000 / 365 * 7] * 10, 1.0)
    costs = pd.DataFrame({"sku": ["A"], "unit_cost": [8.0]})
    with_eoq = one(inventory_policy(fc, pd.DataFrame([lane("A", "DC1", 7, 0, pack=25)]), 0.95, 7, ordering_cost=50, unit_costs=costs), "A")
    assert with_eoq["eoq"] == pytest.approx(223.6068, abs=1e-2)
    assert with_eoq["order_up_to"] - with_eoq["reorder_point"] == pytest.approx(223.6068, abs=1e-2)
    assert with_eoq["order_quantity"] == 225
    # Without an ordering cost the lot is one review period of demand (7 days × 1000/365 = 19.2 → 25).
    plain = one(inventory_policy(fc, pd.DataFrame([lane("A", "DC1", 7, 0, pack=25)]), 0.95, 7, unit_costs=costs), "A")
    assert np.isnan(plain["eoq"]) and plain["order_quantity"] == 25
