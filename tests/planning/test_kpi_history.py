"""KPI history on hand-made frames: two plans give two slices, re-measuring a plan replaces only its own
slice, the newest slice is what coordination_kpis shows; the open figures count the exception table people
read, cycle time and approval latency have their p50/p90, and a recount of the source tables tells a stale
KPI table (after a human approval, after the outbox wrote) from a current one."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from demand_control.planning.kpis import (
    action_figures,
    allocation_figures,
    coordination_kpis,
    decision_kpis,
    exception_figures,
    exception_kpis,
    fill_rate_proxy,
    headline_figures,
    history_slice,
    kpi_series,
    latest_slice,
    projection_figures,
    source_totals,
    totals_disagreeing,
    with_slice,
)
from tests.planning.test_kpis import ACTIONS, DECISIONS, NOW, T0, value

H = pd.Timedelta(hours=1)
LIFECYCLE = pd.DataFrame({
    "exception_key": ["e1", "e2", "e3", "e4", "e5"],
    "exception_type": ["projected_stockout", "projected_stockout", "supplier_delay", "excess_stock", "excess_stock"],
    "severity": ["high", "critical", "medium", "low", "low"],
    "owner_team": ["team:planning"] * 5,
    "state": ["open", "snoozed", "resolved", "auto_resolved", "resolved"],
    "money_at_risk": [100.0, 300.0, 50.0, 20.0, 10.0],
    "sla_due_at": [NOW - H, NOW + H, None, None, None],
    "opened_at": [NOW - 10 * H, NOW - 30 * H, T0, T0, T0],
    "resolved_at": [None, None, T0 + 2 * H, T0 + 4 * H, T0 + 12 * H],
    "for_person": [True, False, False, False, False],
})


def kpis_of(open_count: float, money: float) -> pd.DataFrame:
    return pd.DataFrame({
        "kpi": ["open_exceptions", "open_exceptions", "money_at_risk"], "dimension": ["all", "severity", "all"],
        "member": ["all", "high", "all"], "value": [open_count, open_count, money], "unit": ["count", "count", "money"],
    })


def test_two_plans_make_two_slices_and_the_newest_is_the_latest() -> None:
    empty = pd.DataFrame()
    first = history_slice(kpis_of(5, 500.0), 1, date(2026, 11, 23), "run-1", NOW)
    second = history_slice(kpis_of(3, 200.0), 2, date(2026, 11, 24), "run-2", NOW + 24 * H)
    history = with_slice(with_slice(empty, first), second)
    assert sorted(history["plan_id"].unique()) == [1, 2] and len(history) == 6
    assert list(kpi_series(history, "open_exceptions")["value"]) == [5, 3]
    assert list(kpi_series(history, "open_exceptions", "severity", "high")["as_of"]) == [date(2026, 11, 23), date(2026, 11, 24)]
    latest = latest_slice(history)
    assert value(latest, "open_exceptions") == 3 and value(latest, "money_at_risk") == 200.0
    assert set(latest.columns) == {"kpi", "dimension", "member", "value", "unit", "computed_at"}


def test_remeasuring_a_plan_replaces_its_slice_and_keeps_the_others() -> None:
    history = with_slice(history_slice(kpis_of(5, 500.0), 1, date(2026, 11, 23), "run-1", NOW), history_slice(kpis_of(3, 200.0), 2, date(2026, 11, 24), "run-2", NOW))
    again = with_slice(history, history_slice(kpis_of(4, 250.0).iloc[:2], 2, date(2026, 11, 24), "run-2", NOW + H))
    assert len(again) == 5  # plan 1's three rows, plan 2's two new ones
    assert list(kpi_series(again, "open_exceptions")["value"]) == [5, 4]
    assert kpi_series(again, "money_at_risk")["plan_id"].tolist() == [1]  # plan 2 no longer has it
    # Re-measuring the older plan changes its history but not which slice is the latest.
    older = with_slice(again, history_slice(kpis_of(6, 600.0), 1, date(2026, 11, 23), "run-1", NOW + 2 * H))
    assert list(kpi_series(older, "open_exceptions")["value"]) == [6, 4]
    assert value(latest_slice(older), "open_exceptions") == 4


def test_the_newest_as_of_wins_over_a_later_plan_id_of_an_earlier_day() -> None:
    # A plan re-run for a past date (a backfill) gets a higher plan_id but is not the latest.
    history = with_slice(history_slice(kpis_of(3, 1.0), 1, date(2026, 11, 24), None, NOW), history_slice(kpis_of(9, 1.0), 2, date(2026, 11, 20), None, NOW))
    assert value(latest_slice(history), "open_exceptions") == 3
    assert list(kpi_series(history, "open_exceptions")["plan_id"]) == [2, 1]


def test_open_figures_count_the_snapshot_and_cycle_time_has_p50_p90() -> None:
    snapshot = LIFECYCLE[LIFECYCLE["state"].isin(["open", "snoozed"])].iloc[[0]]  # a replan left one case open
    k = exception_kpis(LIFECYCLE, NOW, snapshot)
    assert value(k, "open_exceptions") == 1 and value(k, "money_at_risk") == 100.0
    without = exception_kpis(LIFECYCLE, NOW)
    assert value(without, "open_exceptions") == 2 and value(without, "money_at_risk") == 400.0
    # Closed after 2, 4 and 12 hours.
    assert value(k, "exception_cycle_time_hours") == pytest.approx(6.0)
    assert value(k, "exception_cycle_time_hours_p50") == pytest.approx(4.0)
    assert value(k, "exception_cycle_time_hours_p90") == pytest.approx(10.4)  # 4 + 0.8 × (12 − 4)
    assert value(without, "open_exception_age_hours_p50") == pytest.approx(20.0)  # 10 and 30 hours old
    assert value(without, "open_exception_age_hours_p90") == pytest.approx(28.0)
    assert value(k, "exception_cycle_time_hours_p50", "severity", "low") == pytest.approx(8.0)


def test_open_figures_need_no_lifecycle() -> None:
    k = exception_kpis(pd.DataFrame(), NOW, LIFECYCLE.iloc[:2])
    assert value(k, "open_exceptions") == 2 and np.isnan(value(k, "exception_cycle_time_hours"))


def test_approval_latency_has_a_median() -> None:
    # Human verdicts after 2, 4 and 10 hours (the snooze is not a verdict).
    k = decision_kpis(DECISIONS, ACTIONS)
    assert value(k, "approval_latency_hours_p50") == pytest.approx(4.0)
    assert value(k, "approval_latency_hours_p50", "action_type", "replenish") == pytest.approx(3.0)


def test_a_recount_tells_a_stale_kpi_table_from_a_current_one() -> None:
    outbox = pd.DataFrame({"action_id": ["a5", "a1"], "kind": ["replenish"] * 2, "status": ["pending", "pending"]})
    policy_only = DECISIONS[DECISIONS["decided_by"] == "policy"]
    snapshot = LIFECYCLE[LIFECYCLE["state"].isin(["open", "snoozed"])]
    measured = coordination_kpis(LIFECYCLE, ACTIONS, pd.DataFrame(), pd.DataFrame(), NOW, decisions=policy_only, outbox=outbox, snapshot=snapshot)
    assert totals_disagreeing(measured, source_totals(snapshot, ACTIONS, policy_only, outbox)).empty
    # Later a person approves and the outbox writes both: the KPI table measured before says otherwise.
    approved = pd.concat([policy_only, DECISIONS[DECISIONS["action_id"] == "a1"]])
    written = outbox.assign(status="done")
    bad = totals_disagreeing(measured, source_totals(snapshot, ACTIONS, approved, written)).set_index("kpi")
    assert set(bad.index) == {"decided_by_human_share", "write_backs_waiting"}
    assert bad.loc["decided_by_human_share", "reported"] == 0.0 and bad.loc["decided_by_human_share", "recounted"] == 0.5
    assert bad.loc["write_backs_waiting", "reported"] == 2 and bad.loc["write_backs_waiting", "recounted"] == 0
    # Measured again, it agrees.
    again = coordination_kpis(LIFECYCLE, ACTIONS, pd.DataFrame(), pd.DataFrame(), NOW, decisions=approved, outbox=written, snapshot=snapshot)
    assert totals_disagreeing(again, source_totals(snapshot, ACTIONS, approved, written)).empty
    # An exception row the KPI table does not count disagrees too.
    assert set(totals_disagreeing(again, source_totals(LIFECYCLE.assign(state="open"), ACTIONS, approved, written))["kpi"]) == {"open_exceptions", "money_at_risk"}


def test_nothing_at_all_agrees_with_an_empty_kpi_table() -> None:
    empty_kpis = pd.DataFrame(columns=["kpi", "dimension", "member", "value", "unit"])
    snapshot = LIFECYCLE.iloc[0:0]
    assert totals_disagreeing(empty_kpis, source_totals(snapshot, ACTIONS.iloc[0:0], DECISIONS.iloc[0:0], pd.DataFrame())).empty


def test_figures_for_dagster_plots() -> None:
    snapshot = LIFECYCLE[LIFECYCLE["state"].isin(["open", "snoozed"])]
    figures = exception_figures(snapshot, NOW)
    assert figures == {"open_exceptions": 2, "open_critical": 1, "open_high": 1, "open_medium": 0, "open_low": 0,
                       "money_at_risk": 400.0, "overdue_exceptions": 1, "human_touches": 1}
    assert action_figures(ACTIONS) == {"actions": 5, "auto_approved_share": 0.2, "awaiting_approval": 4, "value_awaiting_approval": 490.0}
    scenarios = pd.DataFrame({"recommended": [True, False, True], "demand": [10.0, 10.0, 30.0], "allocated": [8.0, 9.0, 30.0],
                              "lines_short": [1, 1, 0], "revenue_at_risk": [20.0, 10.0, 0.0]})
    assert allocation_figures(scenarios) == {"short_sku_locations": 2, "allocation_fill_rate": pytest.approx(0.95), "lines_short": 1, "revenue_at_risk": 20.0}
    kpis = kpis_of(2, 400.0)
    assert headline_figures(kpis) == {"open_exceptions": 2, "money_at_risk": 400.0}
    assert isinstance(headline_figures(kpis)["open_exceptions"], int)


def test_fill_rate_proxy_counts_the_demand_the_available_balance_covers() -> None:
    projection = pd.DataFrame({
        "sku": ["A", "A", "B"], "location_id": ["D"] * 3, "opening": [10.0, -5.0, 4.0], "receipts": [0.0, 20.0, 0.0],
        "demand": [15.0, 10.0, 4.0], "closing": [-5.0, 5.0, 0.0], "stockout": [True, False, False], "below_safety_stock": [True, False, True],
    })
    # Bucket 1: 10 of 15 covered; bucket 2: 15 available, all 10 covered; B: 4 of 4.
    assert fill_rate_proxy(projection) == pytest.approx(1 - 5 / 29)
    assert projection_figures(projection) == {"sku_locations": 2, "sku_locations_stocking_out": 1, "sku_locations_below_safety_stock": 2,
                                              "fill_rate_proxy": pytest.approx(1 - 5 / 29)}
    assert np.isnan(fill_rate_proxy(projection.assign(demand=0.0)))
