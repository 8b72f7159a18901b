"""Scenario files: the default one loads, a bad one names its field."""

from __future__ import annotations

import pytest

from demand_control.twin.scenario import ScenarioError, check_against_landscape, load_scenario, parse_scenario

GOOD = """
seed: 1
weeks: 4
skus: 5
locations: 2
history_weeks: 20
disruptions:
  - {type: supplier_delay, supplier: SUP-001, start_week: 1, days: 7, share: 0.5}
planner: {capacity_per_team_per_day: 5, response_hours: 4}
"""


def test_the_default_scenario_has_one_disruption_of_each_kind() -> None:
    sc = load_scenario()
    assert (sc.seed, sc.weeks, sc.skus, sc.locations) == (7, 52, 200, 3)
    assert sorted(d.type for d in sc.disruptions) == ["demand_spike", "new_sku", "shortfall", "supplier_delay", "supplier_outage"]


@pytest.mark.parametrize(("change", "named"), [
    (("days: 7", "days: -7"), "disruptions[0].days at line 8"),
    (("share: 0.5", "share: 1.5"), "disruptions[0].share"),
    (("type: supplier_delay", "type: supplier_dlay"), "disruptions[0]"),
    (("weeks: 4", "weeks: four"), "weeks at line 3"),
    (("seed: 1", "seeds: 1"), "seeds at line 2: unknown key"),
    (("start_week: 1", "start_week: 9"), "disruptions[0].start_week: 9 is not inside the 4 simulated weeks"),
    (("planner: {capacity_per_team_per_day: 5, ", "planner: {"), "planner.capacity_per_team_per_day"),
])
def test_a_bad_scenario_names_its_field(change, named) -> None:  # noqa: ANN001
    text = GOOD.replace(*change)
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text, "my.yaml")
    assert "invalid scenario my.yaml" in str(err.value) and named in str(err.value)


def test_a_disruption_naming_an_unknown_supplier_names_the_field() -> None:
    sc = parse_scenario(GOOD, "my.yaml")
    with pytest.raises(ScenarioError, match=r"disruptions\[0\]\.supplier: 'SUP-001' is not in the landscape"):
        check_against_landscape(sc, {"SUP-002"}, set(), set())


def test_a_missing_file_says_so(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ScenarioError, match="cannot be read"):
        load_scenario(tmp_path / "nope.yaml")
