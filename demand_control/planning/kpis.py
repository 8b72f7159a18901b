"""Coordination KPIs in long form (kpi, dimension, member, value, unit): how many exceptions are open and
where, the money at risk, what is overdue against its SLA, how long exceptions take to close, how much the
policy lets through automatically, how accurate the forecast is per demand class and how reliably each
supplier delivers on the date it was asked for; and how the decisions flow out: approval latency, human vs
policy decisions, overrides, ERP write-back success, customer notices sent and SLA escalations. Long form so
an analyst can chart any KPI by any dimension with one filter."""

from __future__ import annotations

import numpy as np
import pandas as pd

from demand_control.planning.vocabulary import AUTO_APPROVED, AWAITING_APPROVAL
from demand_control.planning.inventory_common import SCHEDULED_PO_STATUSES
from demand_control.planning.lifecycle import ACTIVE_STATES, CLOSED_STATES

KPI_COLUMNS: tuple[str, ...] = ("kpi", "dimension", "member", "value", "unit")
POLICY_ACTOR = "policy"
HUMAN_VERDICTS = ("approved", "rejected")  # a snooze defers the decision: it is neither latency nor override
WRITE_BACK_FINAL = ("done", "dead_letter")
NOTICE_DELIVERED = ("sent", "console")


def _long(kpi: str, unit: str, values: pd.Series, dimension: str) -> pd.DataFrame:
    """A Series indexed by member (or a scalar under 'all') as KPI rows."""
    return pd.DataFrame(
        {"kpi": kpi, "dimension": dimension, "member": values.index.astype(str), "value": values.to_numpy(dtype=float), "unit": unit}
    )


def _aggregate(values, how: str):  # noqa: ANN001, ANN202 - a Series or a SeriesGroupBy alike
    """`how` of `values`: a pandas reduction by name, or 'p90' (the 90th percentile, linear)."""
    return values.quantile(0.9) if how == "p90" else getattr(values, how)()


def _by(frame: pd.DataFrame, kpi: str, unit: str, column: str | None, how: str) -> pd.DataFrame:
    """`how` of `column` ('size' counts rows) overall and per dimension value."""
    dims = ("exception_type", "severity", "owner_team")
    parts = []
    total = float(len(frame)) if how == "size" else float(_aggregate(frame[column], how)) if len(frame) else np.nan
    parts.append(_long(kpi, unit, pd.Series([total], index=["all"]), "all"))
    for dim in dims:
        if dim in frame and len(frame):
            grouped = frame.groupby(frame[dim].fillna("unassigned"))
            parts.append(_long(kpi, unit, grouped.size() if how == "size" else _aggregate(grouped[column], how), dim))
    return pd.concat(parts, ignore_index=True)


def exception_kpis(lifecycle: pd.DataFrame, now: pd.Timestamp, snapshot: pd.DataFrame | None = None) -> pd.DataFrame:
    """open_exceptions and, of them, cases_for_a_person, cases_held_back (a tolerance) and
    cases_linked_to_a_root_cause; money_at_risk, overdue_exceptions (active past their SLA due time),
    exception_cycle_time_hours (opened → resolved, closed occurrences: mean, p50, p90),
    open_exception_age_hours (opened → now, p50 and p90) and auto_resolved_share.

    The open figures count `snapshot` (the `planning_exceptions` table people read) when given, else the
    lifecycle's active rows; the closed figures always come from the lifecycle."""
    if lifecycle.empty and (snapshot is None or snapshot.empty):
        return pd.DataFrame(columns=list(KPI_COLUMNS))
    source = snapshot if snapshot is not None else lifecycle
    active = source[source["state"].isin(ACTIVE_STATES)].copy()
    closed = lifecycle[lifecycle["state"].isin(CLOSED_STATES)].copy() if "state" in lifecycle else pd.DataFrame(columns=["state", "opened_at", "resolved_at"])
    due = pd.to_datetime(active["sla_due_at"], utc=True)
    overdue = active[due.notna() & (due < now)]
    closed["cycle_hours"] = (pd.to_datetime(closed["resolved_at"], utc=True) - pd.to_datetime(closed["opened_at"], utc=True)) / pd.Timedelta(hours=1)
    closed["auto"] = (closed["state"] == "auto_resolved").astype(float)
    active["age_hours"] = (pd.Timestamp(now) - pd.to_datetime(active["opened_at"], utc=True)) / pd.Timedelta(hours=1)
    # Of the open cases, the few a person must act on; the rest are held back by a tolerance or are symptoms
    # of another case, and the policy runs them.
    for_person = active["for_person"].astype("boolean").fillna(False).astype(bool) if "for_person" in active else pd.Series(True, index=active.index)
    held_back = active["suppressed_reason"].notna() if "suppressed_reason" in active else pd.Series(False, index=active.index)
    linked = active["cause_key"].notna() if "cause_key" in active else pd.Series(False, index=active.index)
    parts = [
        _by(active, "open_exceptions", "count", None, "size"),
        _by(active[for_person], "cases_for_a_person", "count", None, "size"),
        _by(active[held_back], "cases_held_back", "count", None, "size"),
        _by(active[linked], "cases_linked_to_a_root_cause", "count", None, "size"),
        _by(active, "money_at_risk", "money", "money_at_risk", "sum"),
        _by(overdue, "overdue_exceptions", "count", None, "size"),
        _by(closed, "exception_cycle_time_hours", "hours", "cycle_hours", "mean"),
        _by(closed, "exception_cycle_time_hours_p50", "hours", "cycle_hours", "median"),
        _by(closed, "exception_cycle_time_hours_p90", "hours", "cycle_hours", "p90"),
        _by(active, "open_exception_age_hours_p50", "hours", "age_hours", "median"),
        _by(active, "open_exception_age_hours_p90", "hours", "age_hours", "p90"),
        _by(closed, "auto_resolved_share", "share", "auto", "mean"),
    ]
    return pd.concat(parts, ignore_index=True)


def action_kpis(actions: pd.DataFrame) -> pd.DataFrame:
    """auto_approved_share and awaiting_approval_share of the recommended actions, overall and per action
    type, and the value awaiting a human decision."""
    if actions.empty:
        return pd.DataFrame(columns=list(KPI_COLUMNS))
    auto = (actions["policy_decision"] == AUTO_APPROVED).astype(float)
    awaiting = actions["policy_decision"] == AWAITING_APPROVAL
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
    po = purchase_lines[purchase_lines["status"].isin(SCHEDULED_PO_STATUSES)].copy()
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


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=list(KPI_COLUMNS))


def _overall_and_by(kpi: str, unit: str, values: pd.Series, by: pd.Series, dimension: str, how: str) -> list[pd.DataFrame]:
    overall = float(_aggregate(values, how)) if len(values) else np.nan
    parts = [_long(kpi, unit, pd.Series([overall], index=["all"]), "all")]
    if len(values):
        parts.append(_long(kpi, unit, _aggregate(values.groupby(by.fillna("unknown")), how), dimension))
    return parts


def decision_kpis(decisions: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    """From `action_decisions` (one per action): approval_latency_hours (mean), _p50 and _p90
    (recommended → decided, human approvals and rejections), decided_by_human_share and
    decided_by_policy_share (of all decisions), rejected_share and override_share (rejected, or approved and
    then changed in value, of the human verdicts), overall and per action type."""
    if decisions is None or decisions.empty:
        return _empty()
    d = decisions.copy()
    types = actions.drop_duplicates("action_id").set_index("action_id") if ("action_id" in actions and len(actions)) else pd.DataFrame(columns=["action_type", "value", "created_at"])
    d["action_type"] = d["action_id"].map(types["action_type"]) if "action_type" in types else np.nan
    recommended = pd.to_datetime(d["recommended_at"], utc=True)
    if "created_at" in types:
        recommended = recommended.fillna(pd.to_datetime(d["action_id"].map(types["created_at"]), utc=True))
    d["latency_hours"] = (pd.to_datetime(d["decided_at"], utc=True) - recommended) / pd.Timedelta(hours=1)
    human = d["decided_by"].astype(str) != POLICY_ACTOR
    d["by_human"] = human.astype(float)
    d["by_policy"] = (~human).astype(float)
    verdicts = d[human & d["decision"].isin(HUMAN_VERDICTS)].copy()
    current_value = verdicts["action_id"].map(types["value"]) if "value" in types else pd.Series(np.nan, index=verdicts.index)
    edited = (verdicts["decision"] == "approved") & current_value.notna() & verdicts["value"].notna() & ((current_value - verdicts["value"]).abs() > 1e-6)
    verdicts["rejected"] = (verdicts["decision"] == "rejected").astype(float)
    verdicts["override"] = ((verdicts["decision"] == "rejected") | edited).astype(float)
    timed = verdicts.dropna(subset=["latency_hours"])
    parts = [
        *_overall_and_by("approval_latency_hours", "hours", timed["latency_hours"], timed["action_type"], "action_type", "mean"),
        *_overall_and_by("approval_latency_hours_p50", "hours", timed["latency_hours"], timed["action_type"], "action_type", "median"),
        *_overall_and_by("approval_latency_hours_p90", "hours", timed["latency_hours"], timed["action_type"], "action_type", "p90"),
        *_overall_and_by("decided_by_human_share", "share", d["by_human"], d["action_type"], "action_type", "mean"),
        *_overall_and_by("decided_by_policy_share", "share", d["by_policy"], d["action_type"], "action_type", "mean"),
        *_overall_and_by("rejected_share", "share", verdicts["rejected"], verdicts["action_type"], "action_type", "mean"),
        *_overall_and_by("override_share", "share", verdicts["override"], verdicts["action_type"], "action_type", "mean"),
        _long("decisions", "count", d.groupby("decision").size(), "decision"),
    ]
    return pd.concat(parts, ignore_index=True)


def write_back_kpis(outbox: pd.DataFrame) -> pd.DataFrame:
    """From `erp_outbox`: write_back_success_rate (done of the writes that finished: done or dead letter),
    dead_letters and write_backs_waiting (pending, in progress or retrying), overall and per ERP action kind."""
    if outbox is None or outbox.empty:
        return _empty()
    finished = outbox[outbox["status"].isin(WRITE_BACK_FINAL)]
    success = (finished["status"] == "done").astype(float)
    dead = (outbox["status"] == "dead_letter").astype(float)
    waiting = (~outbox["status"].isin(WRITE_BACK_FINAL)).astype(float)
    return pd.concat([
        *_overall_and_by("write_back_success_rate", "share", success, finished["kind"], "kind", "mean"),
        *_overall_and_by("dead_letters", "count", dead, outbox["kind"], "kind", "sum"),
        *_overall_and_by("write_backs_waiting", "count", waiting, outbox["kind"], "kind", "sum"),
    ], ignore_index=True)


def notice_kpis(notices: pd.DataFrame, escalations: pd.DataFrame) -> pd.DataFrame:
    """customer_notices_sent (sent, or console without SMTP), customer_notices_failed, customer_notices_by_status,
    and escalations (recorded SLA escalation steps) overall and per step."""
    parts = []
    if notices is not None and len(notices):
        status = notices["status"].astype(str)
        parts += [
            _long("customer_notices_sent", "count", pd.Series([float(status.isin(NOTICE_DELIVERED).sum())], index=["all"]), "all"),
            _long("customer_notices_failed", "count", pd.Series([float((status == "failed").sum())], index=["all"]), "all"),
            _long("customer_notices", "count", status.value_counts().sort_index(), "status"),
        ]
    if escalations is not None and len(escalations):
        parts += [
            _long("escalations", "count", pd.Series([float(len(escalations))], index=["all"]), "all"),
            _long("escalations", "count", escalations.groupby(escalations["step"].astype(int)).size(), "step"),
        ]
    return pd.concat(parts, ignore_index=True) if parts else _empty()


def coordination_kpis(
    lifecycle: pd.DataFrame,
    actions: pd.DataFrame,
    accuracy: pd.DataFrame,
    purchase_lines: pd.DataFrame,
    now: pd.Timestamp,
    decisions: pd.DataFrame | None = None,
    outbox: pd.DataFrame | None = None,
    notices: pd.DataFrame | None = None,
    escalations: pd.DataFrame | None = None,
    snapshot: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every KPI above in one long frame (columns KPI_COLUMNS), one row per kpi × dimension × member.
    The decision-flow inputs (`action_decisions`, `erp_outbox`, `customer_notices`, `escalations`) are
    optional: without them those KPIs are simply absent. `snapshot` (`planning_exceptions`): the open
    figures count it rather than the lifecycle's active rows, so they match the table people read."""
    parts = [
        exception_kpis(lifecycle, now, snapshot),
        action_kpis(actions),
        forecast_kpis(accuracy),
        supplier_kpis(purchase_lines, now),
        decision_kpis(decisions, actions) if decisions is not None else _empty(),
        write_back_kpis(outbox) if outbox is not None else _empty(),
        notice_kpis(notices, escalations),
    ]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return _empty()
    return pd.concat(parts, ignore_index=True).drop_duplicates(["kpi", "dimension", "member"]).reset_index(drop=True)


# --- history: one slice of KPIs per plan ---------------------------------------------------------------------

HISTORY_KEY: tuple[str, ...] = ("plan_id", "kpi", "dimension", "member")
HISTORY_COLUMNS: tuple[str, ...] = ("plan_id", "as_of", "plan_run_id", *KPI_COLUMNS, "computed_at")


def history_slice(kpis: pd.DataFrame, plan_id: int, as_of: object, plan_run_id: str | None, computed_at: pd.Timestamp) -> pd.DataFrame:
    """The KPIs of one plan as `kpi_history` rows: the figures stamped with the plan they describe."""
    frame = kpis[list(KPI_COLUMNS)].copy()
    frame.insert(0, "plan_id", int(plan_id))
    frame.insert(1, "as_of", pd.Timestamp(as_of).date())
    frame.insert(2, "plan_run_id", plan_run_id)
    frame["computed_at"] = computed_at
    return frame[list(HISTORY_COLUMNS)].reset_index(drop=True)


def with_slice(history: pd.DataFrame, slice_: pd.DataFrame) -> pd.DataFrame:
    """The history after recording `slice_`: the rows of its plan are replaced, every other plan's kept."""
    plans = set(slice_["plan_id"].astype(int))
    kept = history[~history["plan_id"].astype(int).isin(plans)] if len(history) else history.iloc[0:0]
    parts = [p for p in (kept, slice_) if len(p)]
    if not parts:
        return pd.DataFrame(columns=list(HISTORY_COLUMNS))
    return pd.concat(parts, ignore_index=True).sort_values(["as_of", "plan_id", "kpi", "dimension", "member"]).reset_index(drop=True)


def latest_slice(history: pd.DataFrame) -> pd.DataFrame:
    """The newest plan's KPIs (latest as-of, then the latest plan of that day) in `coordination_kpis` form."""
    if history.empty:
        return pd.DataFrame(columns=[*KPI_COLUMNS, "computed_at"])
    order = history[["as_of", "plan_id"]].drop_duplicates().sort_values(["as_of", "plan_id"])
    newest = int(order["plan_id"].iloc[-1])
    return history.loc[history["plan_id"].astype(int) == newest, [*KPI_COLUMNS, "computed_at"]].reset_index(drop=True)


def kpi_series(history: pd.DataFrame, kpi: str, dimension: str = "all", member: str = "all") -> pd.DataFrame:
    """One KPI's figure plan after plan (columns plan_id, as_of, value), oldest first: what a chart plots."""
    rows = history[(history["kpi"] == kpi) & (history["dimension"] == dimension) & (history["member"].astype(str) == member)]
    return rows.sort_values(["as_of", "plan_id"])[["plan_id", "as_of", "value"]].reset_index(drop=True)


# --- source totals: what the KPI table must agree with ---------------------------------------------------------

# The totals a person can recount from one table: open cases and money at risk from planning_exceptions,
# the writes still waiting and dead-lettered from erp_outbox, who decided from action_decisions.
CHECKED_TOTALS: tuple[str, ...] = (
    "open_exceptions", "money_at_risk", "write_backs_waiting", "dead_letters", "decided_by_human_share", "auto_approved_share",
)
# A money sum over hundreds of floats may differ in the last digits depending on the order of addition.
TOTAL_TOLERANCE = 1e-6


def source_totals(snapshot: pd.DataFrame, actions: pd.DataFrame, decisions: pd.DataFrame, outbox: pd.DataFrame) -> dict[str, float]:
    """The CHECKED_TOTALS recounted straight from their tables, independently of the KPI functions above."""
    active = snapshot[snapshot["state"].isin(ACTIVE_STATES)] if len(snapshot) else snapshot
    totals: dict[str, float] = {
        "open_exceptions": float(len(active)),
        "money_at_risk": float(active["money_at_risk"].sum()) if len(active) else np.nan,
    }
    if len(actions):
        totals["auto_approved_share"] = float((actions["policy_decision"] == AUTO_APPROVED).mean())
    if len(decisions):
        totals["decided_by_human_share"] = float((decisions["decided_by"].astype(str) != POLICY_ACTOR).mean())
    if len(outbox):
        totals["write_backs_waiting"] = float((~outbox["status"].isin(WRITE_BACK_FINAL)).sum())
        totals["dead_letters"] = float((outbox["status"] == "dead_letter").sum())
    return totals


def totals_disagreeing(kpis: pd.DataFrame, totals: dict[str, float]) -> pd.DataFrame:
    """The CHECKED_TOTALS whose 'all' figure in `kpis` differs from the recount (columns kpi, reported,
    recounted); a figure missing on one side and present on the other disagrees."""
    overall = kpis[(kpis["dimension"] == "all") & (kpis["member"].astype(str) == "all")].set_index("kpi")["value"]
    rows = []
    for kpi in CHECKED_TOTALS:
        reported = float(overall[kpi]) if kpi in overall.index and pd.notna(overall[kpi]) else np.nan
        recounted = totals.get(kpi, np.nan)
        if kpi == "open_exceptions" and np.isnan(reported):
            reported = 0.0  # no exception rows at all: nothing open
        both_missing = np.isnan(reported) and np.isnan(recounted)
        close = not np.isnan(reported) and not np.isnan(recounted) and abs(reported - recounted) <= TOTAL_TOLERANCE * max(1.0, abs(recounted))
        if not (both_missing or close):
            rows.append({"kpi": kpi, "reported": reported, "recounted": recounted})
    return pd.DataFrame(rows, columns=["kpi", "reported", "recounted"])


# --- run-over-run figures: the plain numbers each decision asset reports to Dagster ------------------------------

SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low")


def exception_figures(snapshot: pd.DataFrame, now: pd.Timestamp) -> dict[str, int | float]:
    """Open exceptions in all and by severity, money at risk, overdue (past the SLA due time) and the cases
    a person must act on (the human touches the plan asks for)."""
    active = snapshot[snapshot["state"].isin(ACTIVE_STATES)] if len(snapshot) else snapshot
    severity = active["severity"].astype(str) if len(active) else pd.Series(dtype=str)
    due = pd.to_datetime(active["sla_due_at"], utc=True) if len(active) else pd.Series(dtype="datetime64[ns, UTC]")
    for_person = active["for_person"].astype("boolean").fillna(False).astype(bool) if len(active) and "for_person" in active else pd.Series(True, index=active.index)
    figures: dict[str, int | float] = {"open_exceptions": len(active)}
    figures.update({f"open_{s}": int((severity == s).sum()) for s in SEVERITIES})
    figures["money_at_risk"] = float(active["money_at_risk"].sum()) if len(active) else 0.0
    figures["overdue_exceptions"] = int((due.notna() & (due < now)).sum())
    figures["human_touches"] = int(for_person.sum())
    return figures


def action_figures(actions: pd.DataFrame) -> dict[str, int | float]:
    """Actions recommended, the share the policy approved by itself, those waiting for a person (human
    touches) and the value waiting."""
    if actions.empty:
        return {"actions": 0, "awaiting_approval": 0, "value_awaiting_approval": 0.0}
    auto = actions["policy_decision"] == AUTO_APPROVED
    waiting = actions["policy_decision"] == AWAITING_APPROVAL
    return {
        "actions": len(actions),
        "auto_approved_share": float(auto.mean()),
        "awaiting_approval": int(waiting.sum()),
        "value_awaiting_approval": float(actions.loc[waiting, "value"].sum()),
    }


def fill_rate_proxy(projection: pd.DataFrame) -> float:
    """Share of the projected demand the available balance covers, bucket by bucket: a bucket's demand is
    short by what exceeds max(opening + receipts, 0). NaN without demand."""
    demand = projection["demand"].clip(lower=0)
    available = (projection["opening"] + projection["receipts"]).clip(lower=0)
    short = (demand - available).clip(lower=0)
    total = float(demand.sum())
    return float(1 - short.sum() / total) if total > 0 else np.nan


def projection_figures(projection: pd.DataFrame) -> dict[str, int | float]:
    """SKU-locations projected, those stocking out or dipping below safety stock within the horizon, and the
    fill-rate proxy."""
    if projection.empty:
        return {"sku_locations": 0, "sku_locations_stocking_out": 0, "sku_locations_below_safety_stock": 0}
    per_sku_location = projection.groupby(["sku", "location_id"])[["stockout", "below_safety_stock"]].any()
    return {
        "sku_locations": len(per_sku_location),
        "sku_locations_stocking_out": int(per_sku_location["stockout"].sum()),
        "sku_locations_below_safety_stock": int(per_sku_location["below_safety_stock"].sum()),
        "fill_rate_proxy": fill_rate_proxy(projection),
    }


def policy_figures(policy: pd.DataFrame) -> dict[str, int | float]:
    """SKU-locations with a policy, the mean service level aimed at and the safety stock held, in units."""
    if policy.empty:
        return {"sku_locations": 0}
    return {
        "sku_locations": len(policy),
        "mean_service_level": float(policy["service_level"].mean()),
        "safety_stock_units": float(policy["safety_stock"].sum()),
    }


def allocation_figures(scenarios: pd.DataFrame) -> dict[str, int | float]:
    """Of the recommended scenarios: short SKU-locations, their fill rate (allocated / demand), lines left
    short and revenue at risk."""
    chosen = scenarios[scenarios["recommended"].astype(bool)] if len(scenarios) else scenarios
    if chosen.empty:
        return {"short_sku_locations": 0, "lines_short": 0, "revenue_at_risk": 0.0}
    demand = float(chosen["demand"].sum())
    return {
        "short_sku_locations": len(chosen),
        "allocation_fill_rate": float(chosen["allocated"].sum() / demand) if demand > 0 else np.nan,
        "lines_short": int(chosen["lines_short"].sum()),
        "revenue_at_risk": float(chosen["revenue_at_risk"].sum()),
    }


def headline_figures(kpis: pd.DataFrame) -> dict[str, int | float]:
    """Every KPI's overall figure (dimension 'all'), by KPI name: counts as whole numbers."""
    overall = kpis[(kpis["dimension"] == "all") & (kpis["member"].astype(str) == "all")]
    return {str(k): int(v) if u == "count" and pd.notna(v) else float(v) for k, v, u in zip(overall["kpi"], overall["value"], overall["unit"])}
