"""Recording KPI slices in a real warehouse: each plan of plan_runs gets its slice, re-measuring a plan
replaces only that slice, coordination_kpis is always the newest slice, and the check comparing the two
agrees; the dashboard page has one chart per measured KPI."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from demand_control.quality.decision_checks import slice_differences
from demand_control.planning.kpis import latest_slice
from demand_control.resources.warehouse import Warehouse
from demand_control.services.dashboard import dashboard_path, render_dashboard, write_dashboard
from demand_control.services.kpi_history import PlanRef, latest_plan, record_kpis

NOW = pd.Timestamp("2026-11-23 06:00", tz="UTC")


def kpis(open_count: float, share: float | None) -> pd.DataFrame:
    return pd.DataFrame({
        "kpi": ["open_exceptions", "auto_approved_share", "exception_cycle_time_hours"], "dimension": ["all"] * 3, "member": ["all"] * 3,
        "value": [open_count, share, None], "unit": ["count", "share", "hours"],
    })


def add_plan(warehouse: Warehouse, as_of: date, run_id: str) -> PlanRef:
    warehouse.append_rows("plan_runs", pd.DataFrame([{"run_id": run_id, "scope": "full", "sku_locations": 3, "as_of": as_of,
                                                       "horizon_start": as_of, "bucket_days": 7, "planned_at": NOW}]))
    plan = latest_plan(warehouse)
    assert plan is not None and plan.as_of == as_of and plan.run_id == run_id
    return plan


def test_two_plans_two_slices_and_a_remeasure_replaces_its_own(tmp_path: Path) -> None:
    warehouse = Warehouse(home=str(tmp_path))
    assert latest_plan(warehouse) is None
    record_kpis(warehouse, kpis(9, 0.1), None, NOW)  # before any plan: the table only
    assert len(warehouse.read("coordination_kpis")) == 3 and warehouse.count("kpi_history") == 0
    first = add_plan(warehouse, date(2026, 11, 23), "run-a")
    record_kpis(warehouse, kpis(5, 0.5), first, NOW)
    second = add_plan(warehouse, date(2026, 11, 24), "run-b")
    record_kpis(warehouse, kpis(3, 0.6), second, NOW + pd.Timedelta(days=1))
    history = warehouse.read("kpi_history")
    assert history.groupby("plan_id").size().to_dict() == {first.plan_id: 3, second.plan_id: 3}
    assert set(history["plan_run_id"]) == {"run-a", "run-b"}
    table = warehouse.read("coordination_kpis").set_index("kpi")
    assert table.loc["open_exceptions", "value"] == 3 and table.loc["auto_approved_share", "value"] == 0.6
    # The same plan measured again (e.g. the KPI asset alone, after an approval) replaces its own slice.
    record_kpis(warehouse, kpis(2, 0.7), second, NOW + pd.Timedelta(days=1, hours=2))
    history = warehouse.read("kpi_history")
    assert len(history) == 6
    assert history.set_index(["plan_id", "kpi"]).loc[(first.plan_id, "open_exceptions"), "value"] == 5
    assert history.set_index(["plan_id", "kpi"]).loc[(second.plan_id, "open_exceptions"), "value"] == 2
    assert slice_differences(warehouse.read("coordination_kpis"), latest_slice(history)).empty
    # A table edited behind the history's back is named.
    warehouse.replace_rows("coordination_kpis", warehouse.read("coordination_kpis").assign(value=1.0))
    assert set(slice_differences(warehouse.read("coordination_kpis"), latest_slice(history))["kpi"]) == set(kpis(0, 0)["kpi"])


def test_the_dashboard_has_a_chart_per_measured_kpi(tmp_path: Path) -> None:
    warehouse = Warehouse(home=str(tmp_path))
    for day, count in ((23, 5), (24, 3)):
        record_kpis(warehouse, kpis(count, count / 10), add_plan(warehouse, date(2026, 11, day), f"run-{day}"), NOW)
    page = write_dashboard(warehouse.read("kpi_history"), dashboard_path(warehouse.state_home))
    assert page == tmp_path.resolve() / "dashboard" / "kpi_history.html"
    text = page.read_text()
    assert text.count('<svg class="chart"') == 2 and text.count('class="point"') == 4
    assert 'data-kpi="open_exceptions"' in text and 'data-value="3.0"' in text
    assert "Not measured yet" in text and "exception_cycle_time_hours" in text
    assert "http" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched from anywhere
    assert "No plan has been measured yet" in render_dashboard(warehouse.read("kpi_history").iloc[0:0])
