"""The regions' summaries and the global step, on frames small enough to check by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from demand_control.infra import settings
from demand_control.planning.regions import headroom, panel_value_shares, sku_location_balance, transfer_sources

REGION_OF = pd.Series({"N1": "North", "N2": "North", "S1": "South"})
PRODUCT = pd.DataFrame({"sku": ["A", "B"], "unit_price": [2.0, None], "unit_cost": [1.0, 3.0]})


def projection(rows: list[tuple[str, str, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["sku", "location_id", "closing", "safety_stock", "forecast"])


def test_the_balance_is_the_worst_headroom_over_the_horizon_and_the_forecast_value() -> None:
    frame = projection([
        ("A", "N1", 30, 10, 5), ("A", "N1", 25, 10, 5),  # headroom 20 then 15: 15 to spare
        ("A", "S1", 4, 10, 6), ("A", "S1", -2, 10, 6),  # 6 then 12 below safety stock: short 12
        ("B", "N2", 10, 10, 1),  # exactly at safety stock
    ])
    balance = sku_location_balance(frame, REGION_OF, PRODUCT).set_index(["sku", "location_id"])
    assert balance.loc[("A", "N1"), ["region", "surplus", "shortfall", "forecast_value"]].tolist() == ["North", 15.0, 0.0, 20.0]
    assert balance.loc[("A", "S1"), ["region", "surplus", "shortfall", "forecast_value"]].tolist() == ["South", 0.0, 12.0, 24.0]
    # No price: the unit cost values it.
    assert balance.loc[("B", "N2"), ["surplus", "shortfall", "forecast_value"]].tolist() == [0.0, 0.0, 3.0]


def test_the_global_step_picks_the_largest_donor_of_any_region() -> None:
    balance = pd.DataFrame([
        ("A", "S1", "South", 0.0, 12.0, 1.0),
        ("A", "N1", "North", 5.0, 0.0, 1.0),
        ("A", "N2", "North", 9.0, 0.0, 1.0),
        ("B", "N1", "North", 0.0, 3.0, 1.0),  # short, but nobody has B to spare
        ("C", "N1", "North", 0.0, 4.0, 1.0),
        ("C", "N2", "North", 7.0, 0.0, 1.0),  # a donor in the same region
        ("C", "S1", "South", 7.0, 0.0, 1.0),  # as large: the lower location id wins
    ], columns=["sku", "location_id", "region", "surplus", "shortfall", "forecast_value"])
    sources = transfer_sources(balance)
    assert sources.to_dict("records") == [
        {"sku": "A", "location_id": "S1", "region": "South", "from_location_id": "N2", "from_region": "North", "surplus": 9.0, "allotted": 9.0},
        {"sku": "C", "location_id": "N1", "region": "North", "from_location_id": "N2", "from_region": "North", "surplus": 7.0, "allotted": 4.0},
    ]


def _balance(rows: list[tuple[str, str, str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["sku", "location_id", "region", "surplus", "shortfall"]).assign(forecast_value=1.0)


def test_a_short_supply_is_shared_in_proportion_to_what_each_dc_lacks() -> None:
    """A supplier shipped short: two DCs of two regions lack 30 and 10 units, the network can spare 20 (one DC
    of a third region). Each gets half of what it lacks - not the first asked all 20 and the other none,
    nor each of them the sender's whole 20."""
    sources = transfer_sources(_balance([
        ("A", "N1", "North", 0.0, 30.0), ("A", "S1", "South", 0.0, 10.0), ("A", "E1", "East", 20.0, 0.0),
    ])).set_index("location_id")
    assert sources["allotted"].to_dict() == {"N1": 15.0, "S1": 5.0}
    assert set(sources["from_location_id"]) == {"E1"}
    assert sources["allotted"].sum() <= 20.0


def test_no_sender_is_promised_more_than_it_can_spare() -> None:
    """Enough spare in the network (12 for 10 short), but split 7 + 5: the larger shortfall chooses first and
    takes the larger sender; the other takes what the second sender has. Every sender stays within its spare
    and each short DC gets at most what it lacks."""
    balance = _balance([
        ("A", "N1", "North", 0.0, 6.0), ("A", "S1", "South", 0.0, 4.0),
        ("A", "E1", "East", 7.0, 0.0), ("A", "W1", "West", 5.0, 0.0),
    ])
    sources = transfer_sources(balance).set_index("location_id")
    assert sources.loc["N1", ["from_location_id", "allotted"]].tolist() == ["E1", 6.0]
    assert sources.loc["S1", ["from_location_id", "allotted"]].tolist() == ["W1", 4.0]
    taken = sources.groupby("from_location_id")["allotted"].sum()
    spare = balance.set_index("location_id")["surplus"]
    assert (taken <= spare[taken.index] + 1e-9).all()


def test_without_regions_the_plans_own_headroom_is_allocated_alike() -> None:
    """A whole-panel plan allocates its own projection's headroom by the same rule (no region columns)."""
    frame = projection([("A", "N1", 26, 10, 5), ("A", "S1", 0, 10, 5), ("A", "N2", 4, 10, 5)])
    sources = transfer_sources(headroom(frame))
    assert sources[["location_id", "from_location_id", "allotted"]].to_dict("records") == [
        {"location_id": "N2", "from_location_id": "N1", "allotted": 6.0},  # 16 to spare covers 10 + 6
        {"location_id": "S1", "from_location_id": "N1", "allotted": 10.0},
    ]
    assert sources["region"].isna().all()


def test_the_value_ranking_spans_every_region() -> None:
    balance = pd.DataFrame({"sku": ["A", "B", "C"], "location_id": ["S1", "N1", "N2"], "forecast_value": [50.0, 30.0, 20.0]})
    shares = panel_value_shares(balance).set_index("sku")["share_before"]
    assert shares.to_dict() == {"A": 0.0, "B": 0.5, "C": 0.8}


def test_the_planning_regions_setting(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv(settings.PLANNING_REGIONS_ENV, raising=False)
    assert settings.planning_regions(("North",)) == ("North",)
    monkeypatch.setenv(settings.PLANNING_REGIONS_ENV, " Alps , Coast")
    assert settings.planning_regions(("North",)) == ("Alps", "Coast")
    monkeypatch.setenv(settings.PLANNING_REGIONS_ENV, "Alps,,Alps")
    with pytest.raises(ValueError, match="DEMAND_CONTROL_PLANNING_REGIONS must list distinct region names.*'Alps,,Alps'"):
        settings.planning_regions(("North",))
