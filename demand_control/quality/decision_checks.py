"""Checks on the decision layer: the tables a planner reads and the ERP is written from.

Blocking (a bad table would mislead a person or write to the ERP; a failure also withholds auto-approval,
`quality.gates`): open exception keys are unique and every open exception has an owner team and an SLA due
time; every recommended action answers an open exception (key and occurrence) and carries no order-by,
needed-by or new date before the plan's as-of day. Non-blocking (shown red in the UI, nothing withheld):
allocations conserve supply, the projection balances, the inventory policy's levels are ordered, the KPI
table's totals match a recount of their source tables, and the KPI table is the newest slice of kpi_history.

Each rule is a pure function over frames returning the offending rows (empty when the table is good), so
tests can feed it a crafted bad table; the `@dg.asset_check` wrappers below only read the warehouse.
"""

from __future__ import annotations

from datetime import date

import dagster as dg
import numpy as np
import pandas as pd

from demand_control.planning.kpis import latest_slice, source_totals, totals_disagreeing
from demand_control.planning.lifecycle import ACTIVE_STATES
from demand_control.resources.clock import PlanningClock
from demand_control.resources.warehouse import Warehouse
from demand_control.schema.asset_metadata import first_row_text, preview

SKU_LOCATION = ["sku", "location_id"]
ACTION_DATE_COLUMNS = ("order_by", "needed_by", "new_date")
# Quantities are floats summed in different orders; a unit's millionth is noise, not a lost unit.
UNIT_TOLERANCE = 1e-6

EXCEPTION_KEYS_UNIQUE_CHECK = "open_exception_keys_unique"
EXCEPTIONS_OWNED_CHECK = "open_exceptions_have_owner_and_sla"
ACTIONS_REFERENCE_CHECK = "actions_reference_open_exceptions"
ACTION_DATES_CHECK = "action_dates_not_in_past"
ALLOCATION_CONSERVES_CHECK = "allocations_conserve_supply"
PROJECTION_BALANCES_CHECK = "projection_balances"
POLICY_LEVELS_CHECK = "policy_levels_ordered"
KPI_OPEN_COUNT_CHECK = "kpi_open_exceptions_match_snapshot"
KPI_HISTORY_LATEST_CHECK = "kpi_table_is_latest_history_slice"


# --- pure rules ------------------------------------------------------------------------------------------


def open_exceptions(exceptions: pd.DataFrame) -> pd.DataFrame:
    """The rows of an exception table in an active state (open, acknowledged, in progress, snoozed)."""
    return exceptions[exceptions["state"].isin(ACTIVE_STATES)]


def duplicate_open_keys(exceptions: pd.DataFrame) -> pd.DataFrame:
    """Exception keys held by more than one open row, with how many."""
    active = open_exceptions(exceptions)
    counts = active.groupby("exception_key").size().rename("rows").reset_index()
    return counts[counts["rows"] > 1].reset_index(drop=True)


def unowned_open_exceptions(exceptions: pd.DataFrame) -> pd.DataFrame:
    """Open exceptions without an owner team or without an SLA due time, naming what is missing."""
    active = open_exceptions(exceptions)
    no_owner = active["owner_team"].isna() | (active["owner_team"].astype(str).str.strip() == "")
    no_sla = pd.to_datetime(active["sla_due_at"], utc=True, errors="coerce").isna()
    missing = (no_owner.map({True: "owner_team", False: ""}) + (no_owner & no_sla).map({True: ", ", False: ""})
               + no_sla.map({True: "sla_due_at", False: ""}))
    bad = no_owner | no_sla
    return active.loc[bad, ["exception_key", "exception_type", "owner_team", "sla_due_at"]].assign(missing=missing[bad]).reset_index(drop=True)


def actions_without_open_exception(actions: pd.DataFrame, exceptions: pd.DataFrame) -> pd.DataFrame:
    """Actions whose (exception_key, occurrence) is not an open exception of `exceptions`."""
    active = open_exceptions(exceptions)[["exception_key", "occurrence"]].drop_duplicates()
    active = active.astype({"exception_key": str, "occurrence": "int64"}).assign(_open=True)
    refs = actions[["action_id", "exception_key", "occurrence", "action_type"]].astype({"exception_key": str, "occurrence": "int64"})
    merged = refs.merge(active, on=["exception_key", "occurrence"], how="left")
    return merged.loc[merged["_open"].isna(), ["action_id", "exception_key", "occurrence", "action_type"]].reset_index(drop=True)


def actions_dated_before(actions: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Actions with an order-by, needed-by or new date before `as_of`, one row per offending date."""
    day = pd.Timestamp(as_of)
    parts = []
    for column in ACTION_DATE_COLUMNS:
        dates = pd.to_datetime(actions[column], errors="coerce")
        late = dates.notna() & (dates.dt.normalize() < day)
        if late.any():
            parts.append(actions.loc[late, ["action_id", "action_type"]].assign(column=column, date=dates[late].dt.date))
    if not parts:
        return pd.DataFrame(columns=["action_id", "action_type", "column", "date"])
    return pd.concat(parts, ignore_index=True)


def over_allocated_scenarios(scenarios: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """Scenario × SKU-location rows allocating more than their supply, by the summary's own `allocated` or
    by the sum of its order lines."""
    key = ["scenario", *SKU_LOCATION]
    line_sums = lines.groupby(key, as_index=False)["allocated"].sum().rename(columns={"allocated": "lines_allocated"})
    merged = scenarios[[*key, "supply", "allocated"]].merge(line_sums, on=key, how="left")
    merged["lines_allocated"] = merged["lines_allocated"].fillna(0.0)
    limit = merged["supply"] + UNIT_TOLERANCE
    bad = (merged["allocated"] > limit) | (merged["lines_allocated"] > limit)
    return merged[bad].reset_index(drop=True)


def unbalanced_allocation_lines(lines: pd.DataFrame) -> pd.DataFrame:
    """Order lines where allocated + short ≠ qty_open, or a negative allocation or shortfall."""
    gap = lines["allocated"] + lines["short"] - lines["qty_open"]
    bad = (gap.abs() > UNIT_TOLERANCE) | (lines["allocated"] < -UNIT_TOLERANCE) | (lines["short"] < -UNIT_TOLERANCE)
    cols = ["scenario", *SKU_LOCATION, "order_id", "line_no", "qty_open", "allocated", "short"]
    return lines.loc[bad, cols].reset_index(drop=True)


def duplicate_projection_buckets(projection: pd.DataFrame) -> pd.DataFrame:
    """SKU-location × bucket pairs with more than one projection row."""
    counts = projection.groupby([*SKU_LOCATION, "bucket"]).size().rename("rows").reset_index()
    return counts[counts["rows"] > 1].reset_index(drop=True)


def unbalanced_projection(projection: pd.DataFrame) -> pd.DataFrame:
    """Buckets whose closing is not opening + receipts − demand (within a relative float tolerance)."""
    expected = projection["opening"] + projection["receipts"] - projection["demand"]
    tolerance = UNIT_TOLERANCE * np.maximum(1.0, expected.abs())
    bad = (projection["closing"] - expected).abs() > tolerance
    out = projection.loc[bad, [*SKU_LOCATION, "bucket", "opening", "receipts", "demand", "closing"]].copy()
    out["expected_closing"] = expected[bad]
    return out.reset_index(drop=True)


def disordered_policy_levels(policy: pd.DataFrame) -> pd.DataFrame:
    """Policies breaking 0 ≤ safety_stock ≤ reorder_point ≤ order_up_to where the levels are present (a
    SKU-location without a sourcing lane has none), naming the rule broken."""
    ss, rop, out = policy["safety_stock"], policy["reorder_point"], policy["order_up_to"]
    rules = {
        "safety_stock < 0": ss < -UNIT_TOLERANCE,
        "reorder_point < safety_stock": rop < ss - UNIT_TOLERANCE,
        "order_up_to < reorder_point": out < rop - UNIT_TOLERANCE,
    }  # NaN compares False: an absent level breaks no rule
    broken = pd.Series("", index=policy.index)
    for name, mask in rules.items():
        broken = broken.where(~mask, broken.where(broken == "", broken + "; ") + name)
    bad = broken != ""
    return policy.loc[bad, [*SKU_LOCATION, "safety_stock", "reorder_point", "order_up_to"]].assign(rule=broken[bad]).reset_index(drop=True)


def kpi_open_count_mismatch(kpis: pd.DataFrame, exceptions: pd.DataFrame) -> tuple[bool, float, int]:
    """(agrees, the KPI table's open_exceptions total, the open rows of the exception snapshot). A KPI table
    without the total agrees only when nothing is open."""
    total = kpis[(kpis["kpi"] == "open_exceptions") & (kpis["dimension"] == "all")]["value"]
    reported = float(total.iloc[0]) if len(total) else 0.0
    actual = int(len(open_exceptions(exceptions)))
    return reported == actual, reported, actual


def slice_differences(table: pd.DataFrame, newest: pd.DataFrame) -> pd.DataFrame:
    """Figures (kpi, dimension, member) present on one side only or with different values (NaN equals
    NaN), as rows kpi, dimension, member, in_table, in_history. Empty history: nothing to compare."""
    if newest.empty:
        return pd.DataFrame(columns=["kpi", "dimension", "member", "in_table", "in_history"])
    key = ["kpi", "dimension", "member"]
    merged = table[[*key, "value"]].astype({"member": str}).merge(
        newest[[*key, "value"]].astype({"member": str}), on=key, how="outer", suffixes=("_table", "_history"), indicator=True
    )
    a, b = merged["value_table"].astype(float), merged["value_history"].astype(float)
    same = (a.isna() & b.isna()) | ((a - b).abs() <= UNIT_TOLERANCE * np.maximum(1.0, b.abs()))
    bad = (merged["_merge"] != "both") | ~same
    out = merged.loc[bad, [*key, "value_table", "value_history"]].rename(columns={"value_table": "in_table", "value_history": "in_history"})
    return out.reset_index(drop=True)


# --- Dagster wrappers --------------------------------------------------------------------------------------


def _result(bad: pd.DataFrame, what: str, count_key: str, **metadata: object) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=bad.empty,
        description=None if bad.empty else f"{len(bad)} {what}, e.g. {first_row_text(bad)}",
        metadata={count_key: len(bad), "offending": preview(bad, rows=20), **metadata},
    )


def _findings_result(findings: list[tuple[str, str, pd.DataFrame, str]]) -> dg.AssetCheckResult:
    """A check with several rules: each finding is (count key, preview key, offending rows, what they break);
    it passes when no rule has offending rows."""
    problems = [f"{len(rows)} {what}, e.g. {first_row_text(rows)}" for _, _, rows, what in findings if len(rows)]
    counts = {count_key: len(rows) for count_key, _, rows, _ in findings}
    previews = {preview_key: preview(rows, rows=20) for _, preview_key, rows, _ in findings}
    return dg.AssetCheckResult(passed=not problems, description="; ".join(problems) or None, metadata={**counts, **previews})


@dg.asset_check(
    asset="planning_exceptions",
    name=EXCEPTION_KEYS_UNIQUE_CHECK,
    blocking=True,
    description="No exception key is held by two open exceptions (a planner would see the same case twice).",
)
def open_exception_keys_unique(warehouse: Warehouse) -> dg.AssetCheckResult:
    exceptions = warehouse.read("planning_exceptions", columns=["exception_key", "state"])
    bad = duplicate_open_keys(exceptions)
    return _result(bad, "exception keys are held by more than one open exception", "keys_duplicated", open_exceptions=len(open_exceptions(exceptions)))


@dg.asset_check(
    asset="planning_exceptions",
    name=EXCEPTIONS_OWNED_CHECK,
    blocking=True,
    description="Every open exception has an owner team and an SLA due time (no case waits with nobody on it).",
)
def open_exceptions_have_owner_and_sla(warehouse: Warehouse) -> dg.AssetCheckResult:
    exceptions = warehouse.read("planning_exceptions", columns=["exception_key", "exception_type", "state", "owner_team", "sla_due_at"])
    bad = unowned_open_exceptions(exceptions)
    return _result(bad, "open exceptions lack an owner team or an SLA due time", "exceptions_unowned", open_exceptions=len(open_exceptions(exceptions)))


@dg.asset_check(
    asset="recommended_actions",
    name=ACTIONS_REFERENCE_CHECK,
    blocking=True,
    description="Every recommended action answers an open exception of planning_exceptions (same key and occurrence).",
)
def actions_reference_open_exceptions(warehouse: Warehouse) -> dg.AssetCheckResult:
    actions = warehouse.read("recommended_actions", columns=["action_id", "exception_key", "occurrence", "action_type"])
    exceptions = warehouse.read("planning_exceptions", columns=["exception_key", "occurrence", "state"])
    bad = actions_without_open_exception(actions, exceptions)
    return _result(bad, "actions answer no open exception", "actions_orphaned", actions=len(actions))


@dg.asset_check(
    asset="recommended_actions",
    name=ACTION_DATES_CHECK,
    blocking=True,
    description="No action's order-by, needed-by or new date lies before the plan's as-of day (the ERP would get a date in the past).",
)
def action_dates_not_in_past(warehouse: Warehouse, clock: PlanningClock) -> dg.AssetCheckResult:
    as_of = clock.today()
    actions = warehouse.read("recommended_actions", columns=["action_id", "action_type", *ACTION_DATE_COLUMNS])
    bad = actions_dated_before(actions, as_of)
    return _result(bad, f"action dates lie before the as-of day {as_of.isoformat()}", "dates_in_past", as_of=as_of.isoformat())


@dg.asset_check(
    asset="allocation_scenarios",
    name=ALLOCATION_CONSERVES_CHECK,
    blocking=False,
    description="Each scenario allocates no more than the supply of its SKU-location, and allocated + short = qty_open on every order line.",
)
def allocations_conserve_supply(warehouse: Warehouse) -> dg.AssetCheckResult:
    scenarios = warehouse.read("allocation_scenarios", columns=["scenario", *SKU_LOCATION, "supply", "allocated"])
    lines = warehouse.read("allocation_lines", columns=["scenario", *SKU_LOCATION, "order_id", "line_no", "qty_open", "allocated", "short"])
    return _findings_result([
        ("scenarios_over_allocated", "over_allocated", over_allocated_scenarios(scenarios, lines), "scenario SKU-locations allocate more than their supply"),
        ("lines_unbalanced", "unbalanced_lines", unbalanced_allocation_lines(lines), "order lines break allocated + short = qty_open"),
    ])


@dg.asset_check(
    asset="projected_inventory",
    name=PROJECTION_BALANCES_CHECK,
    blocking=False,
    description="One row per SKU-location and bucket, and closing = opening + receipts − demand in every bucket.",
)
def projection_balances(warehouse: Warehouse) -> dg.AssetCheckResult:
    projection = warehouse.read("projected_inventory", columns=[*SKU_LOCATION, "bucket", "opening", "receipts", "demand", "closing"])
    return _findings_result([
        ("buckets_duplicated", "duplicated", duplicate_projection_buckets(projection), "SKU-location buckets appear twice"),
        ("buckets_unbalanced", "unbalanced", unbalanced_projection(projection), "buckets do not balance"),
    ])


@dg.asset_check(
    asset="inventory_policy",
    name=POLICY_LEVELS_CHECK,
    blocking=False,
    description="Where present: safety_stock ≥ 0, reorder_point ≥ safety_stock and order_up_to ≥ reorder_point.",
)
def policy_levels_ordered(warehouse: Warehouse) -> dg.AssetCheckResult:
    policy = warehouse.read("inventory_policy", columns=[*SKU_LOCATION, "safety_stock", "reorder_point", "order_up_to"])
    bad = disordered_policy_levels(policy)
    return _result(bad, "policies have disordered levels", "policies_disordered", policies=len(policy))


@dg.asset_check(
    asset="coordination_kpis",
    name=KPI_OPEN_COUNT_CHECK,
    blocking=False,
    description="The KPI table's totals equal a recount of their source tables: open exceptions and money at risk "
    "(planning_exceptions), auto-approved share (recommended_actions), decided-by-a-person share (action_decisions), "
    "write-backs waiting and dead letters (erp_outbox). Red after a replan, an approval or a write-back the KPIs "
    "have not been measured since.",
)
def kpi_open_exceptions_match_snapshot(warehouse: Warehouse) -> dg.AssetCheckResult:
    kpis = warehouse.read("coordination_kpis", columns=["kpi", "dimension", "member", "value"])
    exceptions = warehouse.read("planning_exceptions", columns=["exception_key", "state", "money_at_risk"])
    agrees, reported, actual = kpi_open_count_mismatch(kpis, exceptions)
    totals = source_totals(
        exceptions,
        warehouse.read("recommended_actions", columns=["action_id", "policy_decision"]),
        warehouse.read("action_decisions", columns=["action_id", "decided_by"]),
        warehouse.read("erp_outbox", columns=["action_id", "status"]),
    )
    bad = totals_disagreeing(kpis, totals)
    return dg.AssetCheckResult(
        passed=agrees and bad.empty,
        description=None if bad.empty else "; ".join(f"{r.kpi}: coordination_kpis {r.reported:g}, its source {r.recounted:g}" for r in bad.itertuples()),
        metadata={"kpi_open_exceptions": reported, "snapshot_open_exceptions": actual, "totals_disagreeing": len(bad), "disagreeing": preview(bad, rows=10)},
    )


@dg.asset_check(
    asset="coordination_kpis",
    name=KPI_HISTORY_LATEST_CHECK,
    blocking=False,
    description="coordination_kpis is the newest plan's slice of kpi_history, figure for figure.",
)
def kpi_table_is_latest_history_slice(warehouse: Warehouse) -> dg.AssetCheckResult:
    history = warehouse.read("kpi_history")
    bad = slice_differences(warehouse.read("coordination_kpis"), latest_slice(history))
    return _result(bad, "figures differ between coordination_kpis and the newest slice of kpi_history", "figures_differing",
                   plans_in_history=int(history["plan_id"].nunique()))


decision_checks = [
    open_exception_keys_unique,
    open_exceptions_have_owner_and_sla,
    actions_reference_open_exceptions,
    action_dates_not_in_past,
    allocations_conserve_supply,
    projection_balances,
    policy_levels_ordered,
    kpi_open_exceptions_match_snapshot,
    kpi_table_is_latest_history_slice,
]
