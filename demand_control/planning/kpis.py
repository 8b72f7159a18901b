"""Coordination KPIs in long form (kpi, dimension, member, value, unit): how many exceptions are open and
where, the money at risk, what is overdue against its SLA, how long exceptions take to close, how much the
policy lets through automatically, how accurate the forecast is per demand class and how reliably each
supplier delivers on the date it was asked for. Long form so an analyst can chart any KPI by any dimension
with one filter."""

from __future__ import annotations

import numpy as np
import pandas as pd

from demand_control.planning.lifecycle import ACTIVE_STATES, CLOSED_STATES

KPI_COLUMNS: tuple[str, ...] = ("kpi", "dimension", "member", "value", "unit")
PO_SCHEDULED = ("sent", "confirmed", "partial")


def _long(kpi: str, unit: str, values: pd.Series, dimension: str) -> pd.DataFrame:
    """A Series indexed by member (or a scalar under 'all') as KPI rows."""
    return pd.DataFrame(
        {"kpi": kpi, "dimension": dimension, "member": values.index.astype(str), "value": values.to_numpy(dtype=float), "unit": unit}
    )


def _by(frame: pd.DataFrame, kpi: str, unit: str, column: str | None, how: str) -> pd.DataFrame:
    """`how` of `column` ('size' counts rows) overall and per dimension value."""
    dims = ("exception_type", "severity", "owner_team")
    parts = []
    total = float(len(frame)) if how == "size" else float(getattr(frame[column], how)()) if len(frame) else np.nan
    parts.append(_long(kpi, unit, pd.Series([total], index=["all"]), "all"))
    for dim in dims:
        if dim in frame and len(frame):
            grouped = frame.groupby(frame[dim].fillna("unassigned"))
            parts.append(_long(kpi, unit, grouped.size() if how == "size" else getattr(grouped[column], how)(), dim))
    return pd.concat(parts, ignore_index=True)


def exception_kpis(lifecycle: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """open_exceptions, money_at_risk, overdue_exceptions (active past their SLA due time),
    exception_cycle_time_hours (opened → resolved, closed occurrences) and auto_resolved_share."""
    if lifecycle.empty:
        return pd.DataFrame(columns=list(KPI_COLUMNS))
    active = lifecycle[lifecycle["state"].isin(ACTIVE_STATES)]
    closed = lifecycle[lifecycle["state"].isin(CLOSED_STATES)].copy()
    due = pd.to_datetime(active["sla_due_at"], utc=True)
    overdue = active[due.notna() & (due < now)]
    closed["cycle_hours"] = (pd.to_datetime(closed["resolved_at"], utc=True) - pd.to_datetime(closed["opened_at"], utc=True)) / pd.Timedelta(hours=1)
    closed["auto"] = (closed["state"] == "auto_resolved").astype(float)
    parts = [
        _by(active, "open_exceptions", "count", None, "size"),
        _by(active, "money_at_risk", "money", "money_at_risk", "sum"),
        _by(overdue, "overdue_exceptions", "count", None, "size"),
        _by(closed, "exception_cycle_time_hours", "hours", "cycle_hours", "mean"),
        _by(closed, "auto_resolved_share", "share", "auto", "mean"),
    ]
    return pd.concat(parts, ignore_index=True)


def action_kpis(actions: pd.DataFrame) -> pd.DataFrame:
    """auto_approved_share and awaiting_approval_share of the recommended actions, overall and per action
    type, and the value awaiting a human decision."""
    if actions.empty:
        return pd.DataFrame(columns=list(KPI_COLUMNS))
    auto = (actions["policy_decision"] == "auto_approved").astype(float)
    awaiting = actions["policy_decision"] == "awaiting_approval"
    by_type = actions["action_type"]
    parts = [
        _long("auto_approved_share", "share", pd.Series([auto.mean()], index=["all"]), "all"),
        _long("auto_approved_share", "share", auto.groupby(by_type).mean(), "action_type"),
        _long("awaiting_approval_share", "share", pd.Series([1 - auto.mean()], index=["all"]), "all"),
        _long("value_awaiting_approval", "money", pd.Series([actions.loc[awaiting, "value"].sum()], index=["all"]), "all"),
        _long("value_awaiting_approval", "money", actions.loc[awaiting].groupby("action_type")["value"].sum(), "action_type"),
    ]
    if "approver_role" in actions:
        parts.append(_long("actions_awaiting_role", "count", actions.loc[awaiting].groupby(actions["approver_role"].fillna("none")).size(), "approver_role"))
    return pd.concat(parts, ignore_index=True)


def forecast_kpis(accuracy: pd.DataFrame) -> pd.DataFrame:
    """forecast_rmsse, forecast_bias_pct and forecast_cover80 per demand class and overall, from the backtest."""
    if accuracy.empty:
        return pd.DataFrame(columns=list(KPI_COLUMNS))
    rows = accuracy[accuracy["scope"].isin(["class", "overall"])].copy()
    rows["member"] = np.where(rows["scope"] == "overall", "all", rows["subject"])
    rows["dimension"] = np.where(rows["scope"] == "overall", "all", "demand_class")
    parts = []
    for column, kpi, unit in (("rmsse", "forecast_rmsse", "rmsse"), ("bias_pct", "forecast_bias_pct", "percent"), ("cover80", "forecast_cover80", "share")):
        parts.append(pd.DataFrame({"kpi": kpi, "dimension": rows["dimension"], "member": rows["member"], "value": rows[column].astype(float), "unit": unit}))
    return pd.concat(parts, ignore_index=True)


def supplier_kpis(purchase_lines: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """supplier_on_time_rate per supplier and overall: the share of its open, sent or confirmed PO lines
    that are neither confirmed later than the buyer's expected date nor overdue."""
    if purchase_lines.empty:
        return pd.DataFrame(columns=list(KPI_COLUMNS))
    po = purchase_lines[purchase_lines["status"].isin(PO_SCHEDULED)].copy()
    if po.empty:
        return pd.DataFrame(columns=list(KPI_COLUMNS))
    expected = pd.to_datetime(po["expected_date"])
    confirmed = pd.to_datetime(po["confirmed_date"]) if "confirmed_date" in po else pd.Series(pd.NaT, index=po.index)
    due = confirmed.fillna(expected)
    today = pd.Timestamp(now).tz_convert(None).normalize() if pd.Timestamp(now).tzinfo else pd.Timestamp(now).normalize()
    late = (confirmed.notna() & (confirmed > expected)) | (due < today)
    on_time = (~late).astype(float)
    return pd.concat(
        [
            _long("supplier_on_time_rate", "share", pd.Series([on_time.mean()], index=["all"]), "all"),
            _long("supplier_on_time_rate", "share", on_time.groupby(po["supplier_id"]).mean(), "supplier_id"),
        ],
        ignore_index=True,
    )


def coordination_kpis(
    lifecycle: pd.DataFrame, actions: pd.DataFrame, accuracy: pd.DataFrame, purchase_lines: pd.DataFrame, now: pd.Timestamp
) -> pd.DataFrame:
    """Every KPI above in one long frame (columns KPI_COLUMNS), one row per kpi × dimension × member."""
    parts = [exception_kpis(lifecycle, now), action_kpis(actions), forecast_kpis(accuracy), supplier_kpis(purchase_lines, now)]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=list(KPI_COLUMNS))
    return pd.concat(parts, ignore_index=True).drop_duplicates(["kpi", "dimension", "member"]).reset_index(drop=True)
