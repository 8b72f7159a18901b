"""Planted causes: the generator records each disruption it plants with its cause, leaves the landscape it
was given untouched, and the root-cause classifier names the planted cause far more often than the
baseline (the floor below fails if the classifier regresses)."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from demand_control.planning.root_cause_score import match_planted, score_root_causes
from demand_control.sample import generate_landscape
from demand_control.sample.planted_causes import PLANTED_CAUSE_COLUMNS, PLANTED_CAUSES, plant_causes

AS_OF = dt.date(2025, 6, 4)
SKUS, LOCATIONS, WEEKS, SEED, PER_CAUSE = 150, 2, 110, 42, 6


def _benchmark():
    path = Path(__file__).parents[2] / "benchmarks" / "root_cause.py"
    spec = importlib.util.spec_from_file_location("root_cause_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def landscape() -> dict[str, pd.DataFrame]:
    return generate_landscape(SKUS, LOCATIONS, WEEKS, seed=SEED, as_of=AS_OF)


@pytest.fixture(scope="module")
def planted(landscape) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    return plant_causes(landscape, seed=SEED, as_of=AS_OF, per_cause=PER_CAUSE)


def test_planting_leaves_the_given_landscape_and_the_seed_s_output_as_they_were(landscape, planted) -> None:
    fresh = generate_landscape(SKUS, LOCATIONS, WEEKS, seed=SEED, as_of=AS_OF)
    for name, frame in fresh.items():
        pd.testing.assert_frame_equal(landscape[name], frame, obj=name)
    changed, _ = planted
    assert not changed["demand_history"]["qty"].equals(landscape["demand_history"]["qty"])


def test_every_cause_is_planted_and_recorded_where_it_was_planted(landscape, planted) -> None:
    changed, table = planted
    assert list(table.columns) == list(PLANTED_CAUSE_COLUMNS)
    counts = table["cause"].value_counts()
    assert set(counts.index) == set(PLANTED_CAUSES)
    assert (counts.drop("supplier_chronic_lateness") <= PER_CAUSE).all() and counts.min() >= 3
    sku_location = table[~table["cause"].str.startswith("supplier_")]
    assert not sku_location.duplicated(["sku", "location_id"]).any(), "one plant per SKU-location"

    po = changed["purchase_order_line"].set_index(["po_id", "line_no"])
    for row in table[table["cause"].str.startswith("supplier_")].itertuples(index=False):
        line = po.loc[(row.po_id, row.po_line_no)]
        assert line["confirmed_date"] > line["expected_date"], row
    chronic = table.loc[table["cause"] == "supplier_chronic_lateness", "supplier_id"].unique()
    assert len(chronic) == 1
    assert (table.loc[table["cause"] == "supplier_one_off_delay", "supplier_id"] != chronic[0]).all()

    single = table[table["cause"] == "single_customer_order"]
    orders = changed["customer_order_line"]
    assert set(single["order_id"]) <= set(orders["order_id"])
    assert not set(single["order_id"]) & set(landscape["customer_order_line"]["order_id"])

    history = changed["demand_history"].assign(sku=lambda f: f["sku"].astype(str), location_id=lambda f: f["location_id"].astype(str))
    before = landscape["demand_history"].assign(sku=lambda f: f["sku"].astype(str), location_id=lambda f: f["location_id"].astype(str))
    last = history["period_start"].max()
    for row in table[table["cause"] == "data_error"].itertuples(index=False):
        at = (history["sku"] == row.sku) & (history["location_id"] == row.location_id) & (history["period_start"] == last)
        assert history.loc[at, "qty"].iloc[0] >= 100 * max(before.loc[at, "qty"].iloc[0], 1.0)
    for row in table[table["cause"] == "new_item"].itertuples(index=False):
        series = history[(history["sku"] == row.sku) & (history["location_id"] == row.location_id)]
        assert (series.loc[series["period_start"] < row.week, "qty"] == 0).all()
        assert (series.loc[series["period_start"] >= row.week, "qty"] >= 0).all()


def test_the_same_seed_plants_the_same_causes(landscape, planted) -> None:
    _, again = plant_causes(landscape, seed=SEED, as_of=AS_OF, per_cause=PER_CAUSE)
    pd.testing.assert_frame_equal(planted[1], again)


def test_the_classifier_names_the_planted_cause_well_above_the_baseline() -> None:
    """The floor: on a small landscape the classifier names the planted cause for at least 85% of the planted
    cases that raised an exception, and for at least half of those of every cause, and beats the baseline
    (the exception type's most common cause) by 1.5x. Measured 95% against 45% when written."""
    matched, background = _benchmark().planted_and_classified(SKUS, LOCATIONS, WEEKS, SEED, PER_CAUSE, AS_OF)
    table, overall = score_root_causes(matched)
    assert overall["coverage"] >= 0.85, overall
    assert overall["accuracy"] >= 0.85, (overall, table.to_dict("records"))
    assert overall["ratio"] >= 1.5, overall
    assert (table["accuracy"] >= 0.5).all(), table.to_dict("records")
    # Where nothing was planted, the data-side causes (typo, new item, one big order) are not invented.
    invented = background["root_cause"].isin(["data_error", "new_item", "single_customer_order"]).mean()
    assert invented <= 0.05, background["root_cause"].value_counts().to_dict()


def test_scoring_counts_per_cause_and_against_the_baseline() -> None:
    planted = pd.DataFrame([
        {"cause": "single_customer_order", "sku": "A", "location_id": "D", "supplier_id": None, "po_id": None, "po_line_no": None},
        {"cause": "broad_demand_shift", "sku": "B", "location_id": "D", "supplier_id": None, "po_id": None, "po_line_no": None},
        {"cause": "broad_demand_shift", "sku": "C", "location_id": "D", "supplier_id": None, "po_id": None, "po_line_no": None},
        {"cause": "supplier_one_off_delay", "sku": "A", "location_id": "D", "supplier_id": "S", "po_id": "PO-1", "po_line_no": 1},
        {"cause": "new_item", "sku": "E", "location_id": "D", "supplier_id": None, "po_id": None, "po_line_no": None},
    ])
    exceptions = pd.DataFrame([
        {"exception_key": "demand_spike:A@D", "exception_type": "demand_spike", "sku": "A", "location_id": "D", "po_id": None, "po_line_no": None, "root_cause": "single_customer_order", "root_cause_confidence": 0.9},
        {"exception_key": "replenishment_due:A@D", "exception_type": "replenishment_due", "sku": "A", "location_id": "D", "po_id": None, "po_line_no": None, "root_cause": "unknown", "root_cause_confidence": 0.0},
        {"exception_key": "demand_spike:B@D", "exception_type": "demand_spike", "sku": "B", "location_id": "D", "po_id": None, "po_line_no": None, "root_cause": "broad_demand_shift", "root_cause_confidence": 0.7},
        {"exception_key": "demand_spike:C@D", "exception_type": "demand_spike", "sku": "C", "location_id": "D", "po_id": None, "po_line_no": None, "root_cause": "single_customer_order", "root_cause_confidence": 0.6},
        {"exception_key": "supplier_delay:PO-1/1", "exception_type": "supplier_delay", "sku": "A", "location_id": "D", "po_id": "PO-1", "po_line_no": 1, "root_cause": "supplier_one_off_delay", "root_cause_confidence": 0.8},
    ])
    matched = match_planted(exceptions, planted)
    assert matched["exception_key"].fillna("none").tolist() == ["demand_spike:A@D", "demand_spike:B@D", "demand_spike:C@D", "supplier_delay:PO-1/1", "none"]
    table, overall = score_root_causes(matched)
    rows = table.set_index("cause")
    assert overall["accuracy"] == pytest.approx(3 / 4) and overall["coverage"] == pytest.approx(4 / 5)
    # The baseline says broad_demand_shift for every spike (2 of the 3) and one-off for the delay: 3 of 4.
    assert overall["baseline_accuracy"] == pytest.approx(3 / 4) and overall["ratio"] == pytest.approx(1.0)
    assert rows.loc["broad_demand_shift", "accuracy"] == 0.5 and rows.loc["single_customer_order", "precision"] == 0.5
    assert rows.loc["new_item", "raised"] == 0 and pd.isna(rows.loc["new_item", "accuracy"])
    # Averaged over the causes that raised cases: shift 1/2, one-off 1, single 1 (new item raised none).
    assert overall["macro_accuracy"] == pytest.approx((0.5 + 1 + 1) / 3)
