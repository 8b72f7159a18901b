"""Recording the coordination KPIs plan by plan: `kpi_history` keeps one slice per plan (re-measuring a plan
replaces its slice only) and `coordination_kpis` is rewritten as the newest slice, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
from sqlalchemy import delete, func, select

from demand_control.planning.kpis import KPI_COLUMNS, history_slice, latest_slice
from demand_control.resources.warehouse import Warehouse, bulk_insert
from demand_control.schema import tables


@dataclass(frozen=True)
class PlanRef:
    """The plan a KPI slice describes (a row of plan_runs)."""

    plan_id: int
    as_of: date
    run_id: str | None


def latest_plan(warehouse: Warehouse) -> PlanRef | None:
    """The newest plan of `plan_runs` (full or scoped), or None before the first plan."""
    warehouse.ensure_schema()
    runs = tables.plan_runs
    with warehouse.engine.connect() as conn:
        newest = conn.execute(select(func.max(runs.c.plan_id))).scalar_one()
        if newest is None:
            return None
        row = conn.execute(select(runs.c.plan_id, runs.c.as_of, runs.c.run_id).where(runs.c.plan_id == newest)).one()
    return PlanRef(int(row.plan_id), pd.Timestamp(row.as_of).date(), row.run_id)


def record_kpis(warehouse: Warehouse, kpis: pd.DataFrame, plan: PlanRef | None, now: pd.Timestamp) -> pd.DataFrame:
    """Store `kpis` as the slice of `plan` in `kpi_history` (replacing that plan's rows, keeping every other
    plan's) and rewrite `coordination_kpis` as the newest slice of the history; without a plan only
    `coordination_kpis` is written. Returns the whole history."""
    warehouse.ensure_schema()
    history_table = tables.kpi_history
    with warehouse.engine.begin() as conn:
        if plan is not None:
            conn.execute(delete(history_table).where(history_table.c.plan_id == plan.plan_id))
            bulk_insert(conn, history_table, history_slice(kpis, plan.plan_id, plan.as_of, plan.run_id, now))
        history = pd.read_sql(select(history_table), conn)
        # A re-measured older plan must not overwrite the newer figures people read.
        latest = latest_slice(history) if plan is not None else kpis[list(KPI_COLUMNS)].assign(computed_at=now)
        conn.execute(delete(tables.coordination_kpis))
        bulk_insert(conn, tables.coordination_kpis, latest)
    return history
