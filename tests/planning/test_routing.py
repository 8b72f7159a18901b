"""The packaged policy's routing: each default team receives its share — supplier delays reach purchasing and
forecast alerts demand planning even inside a category a buying team owns."""

from __future__ import annotations

import pandas as pd
import pytest

from demand_control.planning.policy import assign_owners, load_policy

CASES = [
    # exception_type, category, region, supplier_id, customer_tier → expected team
    ("supplier_delay", "Beverages", "South", "SUP-001", "standard", "team:purchasing"),
    ("supplier_delay", "Beverages", "South", "SUP-003", "standard", "team:buying-grocery"),  # the recovery plan's buyer
    ("forecast_degradation", "Snacks & Confectionery", "East", None, "standard", "team:demand-planning"),
    ("demand_spike", "Household Cleaning", "West", None, "standard", "team:demand-planning"),
    ("order_at_risk", "Personal Care", "South", None, "strategic", "team:key-accounts"),
    ("projected_stockout", "Beverages", "North", None, "standard", "team:planning-north"),
    ("excess_stock", "Office Supplies", "North", None, "standard", "team:planning-north"),
    ("replenishment_due", "Frozen Foods", "North", "SUP-002", "standard", "team:buying-fresh"),
    ("replenishment_due", "Hardware & Tools", "South", "SUP-004", "standard", "team:buying-nonfood"),
    ("below_safety_stock", "Snacks & Confectionery", "Central", None, "standard", "team:buying-grocery"),
    ("stale_feed", None, None, None, None, "team:data-eng"),
    ("data_quality", None, None, None, None, "team:data-eng"),
]


@pytest.fixture(scope="module")
def routed() -> pd.DataFrame:
    frame = pd.DataFrame(CASES, columns=["exception_type", "category", "region", "supplier_id", "customer_tier", "expected"])
    return assign_owners(frame, load_policy())


@pytest.mark.parametrize("row", range(len(CASES)), ids=[f"{c[0]}-{c[-1]}" for c in CASES])
def test_each_case_goes_to_its_team(routed: pd.DataFrame, row: int) -> None:
    case = routed.iloc[row]
    assert case["owner_team"] == case["expected"], f"{case['exception_type']} routed by {case['routing_rule']}"


def test_every_default_team_receives_its_share(routed: pd.DataFrame) -> None:
    teams = {rule.owner.team for rule in load_policy().owners.rules}
    assert teams <= set(routed["owner_team"]), f"teams never routed to: {sorted(teams - set(routed['owner_team']))}"
