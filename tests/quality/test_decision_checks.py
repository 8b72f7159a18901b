"""The decision-layer checks: each rule passes a good hand-made table and names the offending rows of a
crafted bad one; the checks are registered in the code location, blocking only where a bad table would
mislead a person or write to the ERP."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from demand_control.definitions import defs
from demand_control.quality.decision_checks import (
    actions_dated_before,
    actions_without_open_exception,
    disordered_policy_levels,
    duplicate_open_keys,
    duplicate_projection_buckets,
    kpi_open_count_mismatch,
    over_allocated_scenarios,
    unbalanced_allocation_lines,
    unbalanced_projection,
    unowned_open_exceptions,
)

AS_OF = date(2026, 11, 23)
DUE = pd.Timestamp("2026-11-24 12:00", tz="UTC")


def exceptions() -> pd.DataFrame:
    return pd.DataFrame({
        "exception_key": ["projected_stockout:A@DC-01", "supplier_delay:PO-1/1", "excess_stock:B@DC-02"],
        "exception_type": ["projected_stockout", "supplier_delay", "excess_stock"],
        "occurrence": [1, 2, 1],
        "state": ["open", "acknowledged", "resolved"],
        "owner_team": ["planning", "procurement", None],  # a resolved case needs no owner
        "sla_due_at": [DUE, DUE, pd.NaT],
    })


def actions() -> pd.DataFrame:
    return pd.DataFrame({
        "action_id": ["act-1", "act-2"],
        "exception_key": ["projected_stockout:A@DC-01", "supplier_delay:PO-1/1"],
        "occurrence": [1, 2],
        "action_type": ["replenish", "expedite"],
        "order_by": [pd.Timestamp("2026-11-23"), None],
        "needed_by": [pd.Timestamp("2026-12-01"), pd.Timestamp("2026-11-30")],
        "new_date": [None, pd.Timestamp("2026-11-27")],
    })


def test_exception_keys_unique_passes_good_and_names_the_duplicated_key() -> None:
    assert duplicate_open_keys(exceptions()).empty
    bad = pd.concat([exceptions(), exceptions().iloc[[0]]], ignore_index=True)
    assert duplicate_open_keys(bad).to_dict("records") == [{"exception_key": "projected_stockout:A@DC-01", "rows": 2}]
    # A key reopened after resolution holds one open row and one closed one: not a duplicate.
    reopened = pd.concat([exceptions(), exceptions().iloc[[0]].assign(state="resolved")], ignore_index=True)
    assert duplicate_open_keys(reopened).empty


def test_open_exceptions_need_owner_and_sla_and_the_missing_field_is_named() -> None:
    assert unowned_open_exceptions(exceptions()).empty
    bad = exceptions()
    bad.loc[0, "owner_team"] = " "
    bad.loc[1, "sla_due_at"] = pd.NaT
    found = unowned_open_exceptions(bad)
    assert found[["exception_key", "missing"]].to_dict("records") == [
        {"exception_key": "projected_stockout:A@DC-01", "missing": "owner_team"},
        {"exception_key": "supplier_delay:PO-1/1", "missing": "sla_due_at"},
    ]


def test_actions_must_answer_an_open_exception_of_the_same_occurrence() -> None:
    assert actions_without_open_exception(actions(), exceptions()).empty
    bad = pd.concat([actions(), pd.DataFrame({
        "action_id": ["act-old", "act-gone", "act-closed"],
        "exception_key": ["projected_stockout:A@DC-01", "demand_spike:Z@DC-09", "excess_stock:B@DC-02"],
        "occurrence": [0, 1, 1],  # an earlier occurrence; a key never raised; a resolved exception
        "action_type": ["replenish", "review_forecast", "cancel"],
    })], ignore_index=True)
    assert list(actions_without_open_exception(bad, exceptions())["action_id"]) == ["act-old", "act-gone", "act-closed"]


def test_action_dates_before_the_as_of_day_are_named_by_column() -> None:
    assert actions_dated_before(actions(), AS_OF).empty  # order_by on the as-of day itself is fine
    bad = actions()
    bad.loc[1, "new_date"] = pd.Timestamp("2026-11-20")
    bad.loc[0, "order_by"] = pd.Timestamp("2026-11-22")
    found = actions_dated_before(bad, AS_OF)
    assert found[["action_id", "column", "date"]].to_dict("records") == [
        {"action_id": "act-1", "column": "order_by", "date": date(2026, 11, 22)},
        {"action_id": "act-2", "column": "new_date", "date": date(2026, 11, 20)},
    ]


def allocation() -> tuple[pd.DataFrame, pd.DataFrame]:
    scenarios = pd.DataFrame({
        "scenario": ["fair_share", "tier_priority"], "sku": ["A", "A"], "location_id": ["DC-01", "DC-01"],
        "supply": [10.0, 10.0], "allocated": [10.0, 10.0],
    })
    lines = pd.DataFrame({
        "scenario": ["fair_share", "fair_share", "tier_priority", "tier_priority"],
        "sku": ["A"] * 4, "location_id": ["DC-01"] * 4, "order_id": ["SO-1", "SO-2", "SO-1", "SO-2"], "line_no": [1, 1, 1, 1],
        "qty_open": [8.0, 6.0, 8.0, 6.0], "allocated": [5.0, 5.0, 8.0, 2.0], "short": [3.0, 1.0, 0.0, 4.0],
    })
    return scenarios, lines


def test_allocations_conserve_supply_and_each_line_balances() -> None:
    scenarios, lines = allocation()
    assert over_allocated_scenarios(scenarios, lines).empty and unbalanced_allocation_lines(lines).empty
    # tier_priority hands SO-2 three more units than there are: the summary still says 10, its lines say 13.
    lines.loc[3, ["allocated", "short"]] = [5.0, 1.0]
    over = over_allocated_scenarios(scenarios, lines)
    assert over[["scenario", "supply", "lines_allocated"]].to_dict("records") == [{"scenario": "tier_priority", "supply": 10.0, "lines_allocated": 13.0}]
    lines.loc[0, "short"] = 2.0  # 5 + 2 ≠ 8: a unit vanished
    assert unbalanced_allocation_lines(lines)[["scenario", "order_id"]].to_dict("records") == [{"scenario": "fair_share", "order_id": "SO-1"}]


def projection() -> pd.DataFrame:
    return pd.DataFrame({
        "sku": ["A", "A", "B"], "location_id": ["DC-01"] * 3, "bucket": [0, 1, 0],
        "opening": [100.0, 70.0, 5.0], "receipts": [0.0, 50.0, 0.0], "demand": [30.0, 40.0, 9.0], "closing": [70.0, 80.0, -4.0],
    })


def test_projection_has_one_row_per_bucket_and_balances() -> None:
    assert duplicate_projection_buckets(projection()).empty and unbalanced_projection(projection()).empty
    bad = pd.concat([projection(), projection().iloc[[2]]], ignore_index=True)
    assert duplicate_projection_buckets(bad).to_dict("records") == [{"sku": "B", "location_id": "DC-01", "bucket": 0, "rows": 2}]
    bad = projection()
    bad.loc[1, "closing"] = 81.0
    found = unbalanced_projection(bad)
    assert found[["sku", "bucket", "closing", "expected_closing"]].to_dict("records") == [{"sku": "A", "bucket": 1, "closing": 81.0, "expected_closing": 80.0}]


def test_policy_levels_are_ordered_where_present() -> None:
    good = pd.DataFrame({
        "sku": ["A", "B", "C"], "location_id": ["DC-01"] * 3,
        "safety_stock": [10.0, 0.0, np.nan], "reorder_point": [30.0, 0.0, np.nan], "order_up_to": [50.0, 4.0, np.nan],
    })  # C has no sourcing lane: no levels, nothing to break
    assert disordered_policy_levels(good).empty
    bad = good.copy()
    bad.loc[0, "order_up_to"] = 20.0
    bad.loc[1, ["safety_stock", "reorder_point"]] = [-1.0, -2.0]
    found = disordered_policy_levels(bad)
    assert found[["sku", "rule"]].to_dict("records") == [
        {"sku": "A", "rule": "order_up_to < reorder_point"},
        {"sku": "B", "rule": "safety_stock < 0; reorder_point < safety_stock"},
    ]


def test_kpi_open_count_must_match_the_snapshot() -> None:
    kpis = pd.DataFrame({
        "kpi": ["open_exceptions", "open_exceptions", "money_at_risk"], "dimension": ["all", "severity", "all"],
        "member": ["all", "high", "all"], "value": [2.0, 2.0, 100.0],
    })
    assert kpi_open_count_mismatch(kpis, exceptions()) == (True, 2.0, 2)
    assert kpi_open_count_mismatch(kpis.assign(value=[3.0, 3.0, 100.0]), exceptions()) == (False, 3.0, 2)


def test_decision_checks_are_registered_blocking_only_where_a_person_or_the_erp_is_misled() -> None:
    graph = defs.resolve_asset_graph()
    registered = {
        (key.asset_key.to_user_string(), key.name): graph.get(key).blocking
        for key in graph.asset_check_keys
    }
    assert {k: v for k, v in registered.items() if k[0] in {
        "inventory_policy", "projected_inventory", "planning_exceptions", "recommended_actions", "allocation_scenarios", "coordination_kpis",
    }} == {
        ("planning_exceptions", "open_exception_keys_unique"): True,
        ("planning_exceptions", "open_exceptions_have_owner_and_sla"): True,
        ("recommended_actions", "actions_reference_open_exceptions"): True,
        ("recommended_actions", "action_dates_not_in_past"): True,
        ("allocation_scenarios", "allocations_conserve_supply"): False,
        ("projected_inventory", "projection_balances"): False,
        ("inventory_policy", "policy_levels_ordered"): False,
        ("coordination_kpis", "kpi_open_exceptions_match_snapshot"): False,
        ("coordination_kpis", "kpi_table_is_latest_history_slice"): False,
    }
