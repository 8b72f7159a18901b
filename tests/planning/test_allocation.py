"""Allocation of constrained supply: hand-worked scenarios, then invariants on a randomised panel checked
against a plain per-SKU-location reference written the obvious way.

The hand example, SKU A at DC1, supply 10 against 15 open:
  line  customer  tier       qty  promise     price
  o1    c1        strategic   6   2026-03-05  10
  o2    c2        key         4   2026-03-10  20
  o3    c3        standard    5   2026-03-01  30
  fair_share        quotas 6·10/15 = 4, 4·10/15 = 2.67, 5·10/15 = 3.33 → floors 4, 2, 3 (9); the one unit
                    left goes to the largest fraction (o2, .67) → 4, 3, 3
  tier_priority     o1 6, o2 4, o3 0
  most_lines_filled smallest first: o2 4, o3 5, then o1 gets the last 1 → 1, 4, 5
  earliest_promise  o3 (03-01) 5, o1 (03-05) 5, o2 (03-10) 0 → 5, 0, 5
  revenue at risk (Σ short × price) and tier-weighted (strategic 3, key 2, standard 1):
    fair_share        2·10 + 1·20 + 2·30 = 100; 60 + 40 + 60 = 160; 3 customers (1 strategic)
    tier_priority     5·30 = 150;               150;              1 customer  (0 strategic)
    most_lines_filled 5·10 = 50;                150;              1 customer  (1 strategic)
    earliest_promise  1·10 + 4·20 = 90;         30 + 160 = 190;   2 customers (1 strategic)
  → tier_priority and most_lines_filled tie at 150 and on customers; tier_priority comes first in SCENARIOS,
    so it is recommended: ranks tier 1, most_lines 2, fair 3, earliest 4.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from demand_control.planning.allocation import (
    ALLOCATION_COLUMNS,
    SCENARIOS,
    SUMMARY_COLUMNS,
    allocate_lines,
    allocation_scenarios,
)
from demand_control.planning.vocabulary import TIER_RANK as TIER_ORDER

KEYS = ["sku", "location_id", "scenario"]


def _lines(rows: list[tuple], sku: str = "A", location_id: str = "DC1") -> pd.DataFrame:
    """rows of (order_id, customer_id, tier, qty_open, promise_date, unit_price); line_no 1."""
    frame = pd.DataFrame(rows, columns=["order_id", "customer_id", "tier", "qty_open", "promise_date", "unit_price"])
    frame["promise_date"] = pd.to_datetime(frame["promise_date"]).dt.date
    return frame.assign(sku=sku, location_id=location_id, line_no=1)


def _supply(**by_sku: float) -> pd.DataFrame:
    return pd.DataFrame({"sku": list(by_sku), "location_id": "DC1", "supply": list(by_sku.values())})


def _hand_lines() -> pd.DataFrame:
    return _lines(
        [
            ("o1", "c1", "strategic", 6, "2026-03-05", 10.0),
            ("o2", "c2", "key", 4, "2026-03-10", 20.0),
            ("o3", "c3", "standard", 5, "2026-03-01", 30.0),
        ]
    )


def _allocated(lines: pd.DataFrame, scenario: str) -> dict[str, float]:
    part = lines[lines["scenario"] == scenario]
    return dict(zip(part["order_id"], part["allocated"]))


def test_hand_example_each_scenario() -> None:
    lines = allocate_lines(_hand_lines(), _supply(A=10))
    assert list(lines.columns) == list(ALLOCATION_COLUMNS)
    assert list(lines["scenario"].unique()) == list(SCENARIOS)
    assert _allocated(lines, "fair_share") == {"o1": 4, "o2": 3, "o3": 3}
    assert _allocated(lines, "tier_priority") == {"o1": 6, "o2": 4, "o3": 0}
    assert _allocated(lines, "most_lines_filled") == {"o1": 1, "o2": 4, "o3": 5}
    assert _allocated(lines, "earliest_promise") == {"o1": 5, "o2": 0, "o3": 5}
    fair = lines[lines["scenario"] == "fair_share"].set_index("order_id")
    assert fair["short"].to_dict() == {"o1": 2, "o2": 1, "o3": 2}
    assert fair["fill_rate"].to_dict() == pytest.approx({"o1": 4 / 6, "o2": 3 / 4, "o3": 3 / 5})
    assert fair.loc["o1", "promise_date"] == pd.Timestamp("2026-03-05")


def test_hand_example_summary_and_recommendation() -> None:
    summary, lines = allocation_scenarios(_hand_lines(), _supply(A=10))
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    s = summary.set_index("scenario")
    assert list(s.index) == list(SCENARIOS)
    assert (s["supply"] == 10).all() and (s["demand"] == 15).all() and (s["allocated"] == 10).all()
    assert s["revenue_at_risk"].to_dict() == {
        "fair_share": 100, "tier_priority": 150, "most_lines_filled": 50, "earliest_promise": 90
    }
    assert s["weighted_revenue_at_risk"].to_dict() == {
        "fair_share": 160, "tier_priority": 150, "most_lines_filled": 150, "earliest_promise": 190
    }
    assert s["customers_affected"].to_dict() == {
        "fair_share": 3, "tier_priority": 1, "most_lines_filled": 1, "earliest_promise": 2
    }
    assert s["customers_affected_strategic"].to_dict() == {
        "fair_share": 1, "tier_priority": 0, "most_lines_filled": 1, "earliest_promise": 1
    }
    assert s["scenario_rank"].to_dict() == {
        "fair_share": 3, "tier_priority": 1, "most_lines_filled": 2, "earliest_promise": 4
    }
    assert s["recommended"].to_dict() == {
        "fair_share": False, "tier_priority": True, "most_lines_filled": False, "earliest_promise": False
    }
    assert s.loc["fair_share", ["fill_rate_strategic", "fill_rate_key", "fill_rate_standard"]].tolist() == pytest.approx(
        [4 / 6, 3 / 4, 3 / 5]
    )
    assert s.loc["tier_priority", ["fill_rate_strategic", "fill_rate_key", "fill_rate_standard"]].tolist() == [1, 1, 0]
    assert s["lines_total"].tolist() == [3, 3, 3, 3]
    assert s["lines_filled"].to_dict() == {
        "fair_share": 0, "tier_priority": 2, "most_lines_filled": 2, "earliest_promise": 1
    }
    assert s.loc["fair_share", "lines_short"] == 3


def test_recommendation_prefers_fewer_customers_on_equal_weighted_risk() -> None:
    # Supply 2 against two lines of 2 (one customer, strategic, promised late) and one of 2 (another
    # customer, strategic, early); price 1 everywhere. Every scenario leaves 4 strategic units short
    # (weighted 12); earliest_promise and tier_priority short both lines of c1 (1 customer), fair share
    # shorts both customers.
    order_lines = _lines(
        [
            ("o1", "c1", "strategic", 2, "2026-03-09", 1.0),
            ("o2", "c1", "strategic", 2, "2026-03-10", 1.0),
            ("o3", "c2", "strategic", 2, "2026-03-01", 1.0),
        ]
    )
    summary, _ = allocation_scenarios(order_lines, _supply(A=2))
    s = summary.set_index("scenario")
    assert (s["weighted_revenue_at_risk"] == 12).all()
    assert s.loc["fair_share", "customers_affected"] == 2
    assert s.loc["tier_priority", "customers_affected"] == 1
    assert s.loc["tier_priority", "recommended"]
    assert s.loc["fair_share", "scenario_rank"] == 4


def test_continuous_quantities_are_split_exactly() -> None:
    order_lines = _hand_lines()
    lines = allocate_lines(order_lines, _supply(A=7.5))
    # Supply 7.5 is not whole: fair share is exactly half of each line.
    assert _allocated(lines, "fair_share") == pytest.approx({"o1": 3.0, "o2": 2.0, "o3": 2.5})
    assert _allocated(lines, "tier_priority") == pytest.approx({"o1": 6.0, "o2": 1.5, "o3": 0.0})
    # A fractional line makes the whole SKU-location continuous even with whole supply.
    fractional = order_lines.assign(qty_open=[6.0, 4.0, 5.5])
    lines = allocate_lines(fractional, _supply(A=10))
    assert _allocated(lines, "fair_share") == pytest.approx({"o1": 60 / 15.5, "o2": 40 / 15.5, "o3": 55 / 15.5})


def test_largest_remainder_ties_go_by_tier_then_promise_then_order() -> None:
    # Supply 2 over three lines of 1: each quota 2/3, all fractions equal, so the tie-break decides.
    by_tier = _lines(
        [
            ("o1", "c1", "standard", 1, "2026-03-01", 1.0),
            ("o2", "c2", "strategic", 1, "2026-03-09", 1.0),
            ("o3", "c3", "key", 1, "2026-03-09", 1.0),
        ]
    )
    assert _allocated(allocate_lines(by_tier, _supply(A=2)), "fair_share") == {"o1": 0, "o2": 1, "o3": 1}
    by_promise = by_tier.assign(tier="key", promise_date=pd.to_datetime(["2026-03-05", "2026-03-09", "2026-03-01"]).date)
    assert _allocated(allocate_lines(by_promise, _supply(A=2)), "fair_share") == {"o1": 1, "o2": 0, "o3": 1}
    by_order = by_tier.assign(tier="key", promise_date=pd.Timestamp("2026-03-09").date())
    assert _allocated(allocate_lines(by_order, _supply(A=2)), "fair_share") == {"o1": 1, "o2": 1, "o3": 0}


def test_largest_remainder_gives_integers_summing_to_supply() -> None:
    # 7 units over lines 3, 3, 3: quotas 2.33 each → 2, 2, 2 and one left, which goes to the strategic line.
    order_lines = _lines(
        [
            ("o1", "c1", "key", 3, "2026-03-01", 1.0),
            ("o2", "c2", "strategic", 3, "2026-03-01", 1.0),
            ("o3", "c3", "standard", 3, "2026-03-01", 1.0),
        ]
    )
    assert _allocated(allocate_lines(order_lines, _supply(A=7)), "fair_share") == {"o1": 2, "o2": 3, "o3": 2}
    lines = allocate_lines(_panel(seed=3, whole=True), _panel_supply(_panel(seed=3, whole=True), seed=3))
    fair = lines[lines["scenario"] == "fair_share"]
    assert (fair["allocated"] == np.floor(fair["allocated"])).all()
    totals = fair.groupby(["sku", "location_id"])["allocated"].sum()
    supply = _panel_supply(_panel(seed=3, whole=True), seed=3).set_index(["sku", "location_id"])["supply"]
    assert (totals == supply.reindex(totals.index)).all()
    # Whole units are within one unit of the exact pro-rata quota.
    demand = fair.groupby(["sku", "location_id"])["qty_open"].transform("sum")
    quota = fair["qty_open"] * supply.reindex(pd.MultiIndex.from_frame(fair[["sku", "location_id"]])).to_numpy() / demand
    assert ((fair["allocated"] - quota).abs() < 1).all()


def test_unconstrained_sku_locations_are_not_returned() -> None:
    order_lines = pd.concat(
        [
            _hand_lines(),  # 15 open against 10: constrained
            _hand_lines().assign(sku="B"),  # 15 against 15: covered
            _hand_lines().assign(sku="C"),  # 15 against 40: covered
            _hand_lines().assign(sku="D"),  # no supply row: nothing to promise, constrained
        ],
        ignore_index=True,
    )
    summary, lines = allocation_scenarios(order_lines, _supply(A=10, B=15, C=40, E=3))
    assert set(lines["sku"]) == {"A", "D"}
    assert set(summary["sku"]) == {"A", "D"}
    assert (lines.loc[lines["sku"] == "D", "allocated"] == 0).all()
    assert (summary.loc[summary["sku"] == "D", "supply"] == 0).all()

    nothing_short = allocate_lines(_hand_lines(), _supply(A=15))
    assert nothing_short.empty and list(nothing_short.columns) == list(ALLOCATION_COLUMNS)
    summary, _ = allocation_scenarios(_hand_lines(), _supply(A=100))
    assert summary.empty and list(summary.columns) == list(SUMMARY_COLUMNS)


def test_scenario_subset_keeps_the_order_asked_for() -> None:
    summary, lines = allocation_scenarios(_hand_lines(), _supply(A=10), scenarios=("earliest_promise", "fair_share"))
    assert list(lines["scenario"].unique()) == ["earliest_promise", "fair_share"]
    assert summary["scenario"].tolist() == ["earliest_promise", "fair_share"]
    # With tier_priority left out, fair share (160) beats earliest promise (190).
    assert summary.set_index("scenario")["recommended"].to_dict() == {"earliest_promise": False, "fair_share": True}
    with pytest.raises(ValueError, match="unknown scenarios"):
        allocate_lines(_hand_lines(), _supply(A=10), scenarios=("first_come",))


def test_missing_promise_date_and_unknown_tier_go_last() -> None:
    order_lines = _lines(
        [
            ("o1", "c1", "strategic", 4, None, 1.0),
            ("o2", "c2", "gold", 4, "2026-03-01", 1.0),
            ("o3", "c3", "standard", 4, "2026-03-20", 1.0),
        ]
    )
    lines = allocate_lines(order_lines, _supply(A=6))
    assert _allocated(lines, "earliest_promise") == {"o1": 0, "o2": 4, "o3": 2}
    assert _allocated(lines, "tier_priority") == {"o1": 4, "o2": 0, "o3": 2}
    assert pd.isna(lines.loc[lines["order_id"] == "o1", "promise_date"]).all()


@pytest.mark.parametrize(
    ("frame", "column", "value", "match"),
    [
        ("order_lines", "qty_open", -1, r"order_lines\.qty_open must not be negative; e\.g\. row .*'order_id': 'o2'"),
        ("order_lines", "qty_open", np.nan, r"order_lines\.qty_open must not be missing; e\.g\. row .*'order_id': 'o2'"),
        ("supply", "supply", -5, r"supply\.supply must not be negative; e\.g\. row .*'sku': 'A'"),
        ("order_lines", "sku", None, r"order_lines\.sku must not be missing; e\.g\. row .*'order_id': 'o2'"),
    ],
)
def test_bad_values_name_the_column_and_a_row(frame: str, column: str, value: object, match: str) -> None:
    order_lines, supply = _hand_lines(), _supply(A=10)
    target = order_lines if frame == "order_lines" else supply
    target[column] = target[column].astype(object)
    target.loc[1 if frame == "order_lines" else 0, column] = value
    with pytest.raises(ValueError, match=match):
        allocation_scenarios(order_lines, supply)


def test_missing_columns_and_duplicate_supply_are_refused() -> None:
    with pytest.raises(ValueError, match=r"order_lines is missing columns \['unit_price'\]; first row: .*'order_id': 'o1'"):
        allocate_lines(_hand_lines().drop(columns="unit_price"), _supply(A=10))
    with pytest.raises(ValueError, match=r"supply is missing columns \['supply'\]"):
        allocate_lines(_hand_lines(), _supply(A=10).rename(columns={"supply": "atp"}))
    with pytest.raises(ValueError, match="more than one row for a SKU-location"):
        allocate_lines(_hand_lines(), pd.concat([_supply(A=10), _supply(A=4)]))


def _panel(seed: int, n_sku_locations: int = 400, whole: bool = False) -> pd.DataFrame:
    """A random book of open lines: 1–14 lines per SKU-location, shared customers and promise dates (so
    that ties happen), some lines of 0, fractional quantities at every other SKU-location unless `whole`."""
    rng = np.random.default_rng(seed)
    per = rng.integers(1, 15, n_sku_locations)
    sl = np.repeat(np.arange(n_sku_locations), per)
    n = len(sl)
    qty = rng.integers(0, 12, n).astype(float)
    if not whole:
        qty = np.where(sl % 2 == 1, np.round(rng.uniform(0, 12, n), 3), qty)
    return pd.DataFrame(
        {
            "sku": [f"S{i // 3:05d}" for i in sl],
            "location_id": [f"DC{i % 3}" for i in sl],
            "order_id": [f"SO{i:06d}" for i in rng.integers(0, n // 2 + 1, n)],
            "line_no": np.arange(n),
            "customer_id": [f"C{i:03d}" for i in rng.integers(0, 60, n)],
            "tier": rng.choice(["strategic", "key", "standard", "unknown"], n, p=[0.2, 0.3, 0.45, 0.05]),
            "qty_open": qty,
            "promise_date": pd.Timestamp("2026-03-01") + pd.to_timedelta(rng.integers(0, 6, n), unit="D"),
            "unit_price": np.round(rng.uniform(1, 50, n), 2),
        }
    )


def _panel_supply(order_lines: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Supply between 0 and 130 % of demand (so some SKU-locations are covered), whole where demand is."""
    rng = np.random.default_rng(seed + 1000)
    demand = order_lines.groupby(["sku", "location_id"], as_index=False)["qty_open"].sum()
    supply = demand["qty_open"] * rng.uniform(0, 1.3, len(demand))
    whole = demand["qty_open"] == np.floor(demand["qty_open"])
    return demand.assign(supply=np.where(whole, np.floor(supply), np.round(supply, 2)))[["sku", "location_id", "supply"]]


def _reference(group: pd.DataFrame, supply: float, scenario: str) -> pd.Series:
    """One SKU-location, one scenario, the obvious way: a loop over lines in priority order."""
    g = group.assign(
        rank=group["tier"].map(TIER_ORDER).fillna(3), date=pd.to_datetime(group["promise_date"])
    ).sort_values(["order_id", "line_no"])
    whole = supply == int(supply) and (g["qty_open"] == g["qty_open"].round()).all()
    if scenario == "fair_share":
        if not whole:
            return g["qty_open"] * supply / g["qty_open"].sum()
        # Integers, so that fractional parts equal in exact arithmetic compare equal.
        numerator = g["qty_open"].astype(int) * int(supply)
        demand = int(g["qty_open"].sum())
        base, remainder = numerator // demand, numerator % demand
        order = g.assign(rem=remainder).sort_values(["rem", "rank", "date"], ascending=[False, True, True], kind="mergesort")
        extra = pd.Series(0, index=g.index)
        extra[order.index[: int(supply) - int(base.sum())]] = 1
        return (base + extra).astype(float)
    sort = {
        "tier_priority": ["rank", "date"],
        "earliest_promise": ["date", "rank"],
        "most_lines_filled": ["qty_open", "rank", "date"],
    }[scenario]
    left, out = supply, pd.Series(0.0, index=g.index)
    for idx, qty in g.sort_values(sort, kind="mergesort")["qty_open"].items():
        out[idx] = min(qty, max(left, 0.0))
        left -= out[idx]
    return out


@pytest.fixture(scope="module")
def panel() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    order_lines = _panel(seed=7)
    supply = _panel_supply(order_lines, seed=7)
    summary, lines = allocation_scenarios(order_lines, supply)
    return order_lines, supply, summary, lines


def test_panel_matches_a_per_sku_location_reference(panel) -> None:
    order_lines, supply, _, lines = panel
    sup = supply.set_index(["sku", "location_id"])["supply"]
    got = lines.set_index(["scenario", "sku", "location_id", "order_id", "line_no"])["allocated"]
    checked = 0
    for (sku, loc), group in itertools.islice(order_lines.groupby(["sku", "location_id"]), 120):
        if group["qty_open"].sum() <= sup[(sku, loc)]:
            continue
        for scenario in SCENARIOS:
            want = _reference(group, float(sup[(sku, loc)]), scenario)
            keys = pd.MultiIndex.from_arrays(
                [[scenario] * len(group), [sku] * len(group), [loc] * len(group), group["order_id"], group["line_no"]]
            )
            want_values = want.reindex(group.index).to_numpy()
            assert got.reindex(keys).to_numpy() == pytest.approx(want_values, abs=1e-9), (sku, loc, scenario)
            checked += 1
    assert checked > 100


def test_panel_conserves_supply(panel) -> None:
    order_lines, supply, _, lines = panel
    demand = order_lines.groupby(["sku", "location_id"])["qty_open"].sum()
    sup = supply.set_index(["sku", "location_id"])["supply"]
    constrained = demand[demand > sup.reindex(demand.index)]
    assert 50 < len(constrained) < len(demand)  # the panel has both kinds
    assert len(lines) == len(SCENARIOS) * order_lines.set_index(["sku", "location_id"]).index.isin(constrained.index).sum()
    totals = lines.groupby(KEYS)["allocated"].sum().reset_index()
    totals = totals.merge(supply, on=["sku", "location_id"])
    assert np.allclose(totals["allocated"], totals["supply"], atol=1e-9)
    assert (lines["allocated"] >= 0).all()
    assert (lines["allocated"] <= lines["qty_open"]).all()
    assert np.allclose(lines["short"], lines["qty_open"] - lines["allocated"])
    open_lines = lines["qty_open"] > 0
    assert np.allclose(lines.loc[open_lines, "fill_rate"], lines.loc[open_lines, "allocated"] / lines.loc[open_lines, "qty_open"])


def test_panel_tier_priority_serves_higher_tiers_first(panel) -> None:
    _, _, _, lines = panel
    tp = lines[lines["scenario"] == "tier_priority"].assign(rank=lambda f: f["tier"].map(TIER_ORDER).fillna(3))
    tp = tp[tp["qty_open"] > 0]
    worst_short_rank = tp[tp["short"] > 0].groupby(["sku", "location_id"])["rank"].min().rename("short_rank")
    served = tp[tp["allocated"] > 0].merge(worst_short_rank, left_on=["sku", "location_id"], right_index=True)
    # Nobody of a lower tier gets anything while a line of a higher tier there is short.
    assert (served["rank"] <= served["short_rank"]).all()
    strategic_short = tp[(tp["short"] > 0) & (tp["tier"] == "strategic")][["sku", "location_id"]].drop_duplicates()
    standard_served = tp[(tp["allocated"] > 0) & (tp["tier"] == "standard")].merge(strategic_short)
    assert standard_served.empty
    assert len(strategic_short) > 10


def test_panel_most_lines_filled_fills_the_most_lines(panel) -> None:
    _, _, summary, _ = panel
    filled = summary.pivot_table(index=["sku", "location_id"], columns="scenario", values="lines_filled")
    assert (filled["most_lines_filled"].to_numpy()[:, None] >= filled.to_numpy()).all()
    assert (filled["most_lines_filled"] > filled["fair_share"]).any()


def test_most_lines_filled_is_optimal_on_small_cases() -> None:
    # Against brute force: the most lines any subset of whole lines can fill within the supply.
    rng = np.random.default_rng(11)
    for case in range(40):
        qty = rng.integers(1, 9, rng.integers(2, 7)).astype(float)
        supply = float(rng.integers(0, qty.sum()))
        order_lines = _lines([(f"o{i}", f"c{i}", "standard", q, "2026-03-01", 1.0) for i, q in enumerate(qty)])
        summary, _ = allocation_scenarios(order_lines, _supply(A=supply))
        best = max(
            k for k in range(len(qty) + 1) for subset in itertools.combinations(qty, k) if sum(subset) <= supply
        )
        assert summary.set_index("scenario").loc["most_lines_filled", "lines_filled"] == best, (case, qty, supply)


def test_panel_recommends_exactly_one_per_sku_location(panel) -> None:
    _, _, summary, _ = panel
    per = summary.groupby(["sku", "location_id"])
    assert (per["recommended"].sum() == 1).all()
    assert (per["scenario_rank"].apply(sorted).map(tuple) == tuple(range(1, len(SCENARIOS) + 1))).all()
    best = summary[summary["recommended"]].set_index(["sku", "location_id"])["weighted_revenue_at_risk"]
    lowest = per["weighted_revenue_at_risk"].min()
    assert np.allclose(best.reindex(lowest.index), lowest)
    assert summary[summary["scenario_rank"] == 1]["recommended"].all()


def test_panel_summary_agrees_with_lines(panel) -> None:
    _, supply, summary, lines = panel
    f = lines.assign(
        at_risk=lines["short"] * lines["unit_price"],
        weighted=lines["short"] * lines["unit_price"] * lines["tier"].map({"strategic": 3, "key": 2}).fillna(1),
        is_short=lines["short"] > 0,
    )
    g = f.groupby(KEYS)
    want = pd.DataFrame(
        {
            "demand": g["qty_open"].sum(),
            "allocated": g["allocated"].sum(),
            "lines_total": g.size(),
            "lines_short": g["is_short"].sum(),
            "revenue_at_risk": g["at_risk"].sum(),
            "weighted_revenue_at_risk": g["weighted"].sum(),
            "customers_affected": f[f["is_short"]].groupby(KEYS)["customer_id"].nunique(),
            "customers_affected_strategic": f[f["is_short"] & (f["tier"] == "strategic")].groupby(KEYS)["customer_id"].nunique(),
        }
    ).fillna({"customers_affected": 0, "customers_affected_strategic": 0})
    for tier in TIER_ORDER:
        t = f[f["tier"] == tier].groupby(KEYS)[["allocated", "qty_open"]].sum()
        want[f"fill_rate_{tier}"] = (t["allocated"] / t["qty_open"]).where(t["qty_open"] > 0)
    got = summary.set_index(KEYS).loc[want.index]
    assert len(summary) == len(want)
    for column in want.columns:
        assert np.allclose(got[column], want[column], equal_nan=True), column
    assert (got["lines_filled"] == got["lines_total"] - got["lines_short"]).all()
    assert np.allclose(got["fill_rate"], got["allocated"] / got["demand"])
    assert np.allclose(got["supply"], supply.set_index(["sku", "location_id"])["supply"].reindex(got.index.droplevel("scenario")))


def test_input_row_order_does_not_change_the_answer(panel) -> None:
    order_lines, supply, summary, lines = panel
    summary2, lines2 = allocation_scenarios(order_lines.sample(frac=1, random_state=1), supply.sample(frac=1, random_state=2))
    pd.testing.assert_frame_equal(lines2, lines)
    pd.testing.assert_frame_equal(summary2, summary)


def test_moderate_scale_stays_consistent() -> None:
    # 5,000 SKU-locations × up to 14 lines through the same vectorised path: every constrained
    # SKU-location appears once per scenario and conserves its supply (no timing asserted).
    order_lines = _panel(seed=21, n_sku_locations=5_000)
    supply = _panel_supply(order_lines, seed=21)
    summary, lines = allocation_scenarios(order_lines, supply)
    demand = order_lines.groupby(["sku", "location_id"])["qty_open"].sum()
    n_constrained = (demand > supply.set_index(["sku", "location_id"])["supply"].reindex(demand.index)).sum()
    assert len(summary) == len(SCENARIOS) * n_constrained
    assert summary["recommended"].sum() == n_constrained
    assert np.allclose(summary["allocated"], summary["supply"])
    assert (lines["allocated"].between(0, lines["qty_open"])).all()
