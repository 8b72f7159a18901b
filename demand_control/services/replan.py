"""Re-planning against the warehouse, for the whole panel or for a scope of SKU-locations.

The assets of groups `inventory`, `exceptions` and `actions` call these with no scope (everything); the
event path (an inbox or ERP change → the `replan` job) calls them with the SKU-locations the events touch,
so a supplier delay re-plans one SKU-location in a second instead of the whole panel. Each function reads
what it needs, calls the pure planning functions and replaces exactly the rows of its scope, so a scoped
run leaves every other SKU-location's rows as they were. No Dagster import: the assets and ops wrap it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import and_, func, or_, select, tuple_, update

from demand_control.infra.memory import release_freed_memory
from demand_control.schema import contracts, tables
from demand_control.services.audit import AuditEntry, append
from demand_control.planning.actions import ActionSettings, recommend_actions
from demand_control.planning.event_effects import ORDER_KEY, PO_KEY, AppliedEvents, apply_events
from demand_control.planning.allocation import allocation_scenarios
from demand_control.planning.exception_frame import open_orders_of
from demand_control.planning.exceptions import ExceptionThresholds, PlanningInputs, detect_exceptions, risky_order_lines, sku_location_context
from demand_control.planning.signal_exceptions import degraded_forecasts
from demand_control.planning.order_supply import supply_for_open_orders
from demand_control.planning.inventory_common import SCHEDULED_PO_STATUSES, as_timestamp
from demand_control.planning.root_cause import supplier_record
from demand_control.planning.lifecycle import ACTIVE_STATES, update_lifecycle
from demand_control.planning.policy import Policy, assign_owners, decide_autonomy, severity_from, sla_due_at
from demand_control.planning.projection import projected_inventory
from demand_control.planning.vocabulary import CASE_PRIORITY_COLUMNS
from demand_control.planning.worklist import rank_cases
from demand_control.resources.warehouse import Warehouse
from demand_control.services.auto_approval import auto_approve
from demand_control.services.regions import RegionScope, read_compact, region_transfer_sources, region_value_shares
from demand_control.services.worklist import settled_action_ids

# The objects a plan reads: a stale one among them means the plan rests on old facts (no auto-approval).
PLAN_INPUTS = (
    "product", "location", "customer", "supplier", "sourcing", "inventory_position",
    "customer_order_line", "purchase_order_line", "demand_history", "pipeline_opportunity",
)
# What the exception rules read of the history (demand spikes, root-cause features): a region's history is
# 10M rows at 100k SKU-locations, and its load bookkeeping columns alone are hundreds of MB there.
HISTORY_COLUMNS = ("sku", "location_id", "period_start", "qty")
# Types that are about a feed, not a SKU-location: only a full run evaluates them.
FEED_TYPES = ("stale_feed", "data_quality")
SKU_LOCATION_COLUMNS = ["sku", "location_id"]
# Outbox rows whose ERP write has not happened yet: the ERP does not show them, the plan must.
QUEUED_OUTBOX_STATUSES = ("pending", "in_progress", "failed")
# Beyond this many SKU-locations a scoped query is slower than a full re-plan (and SQLite limits the
# number of bound parameters).
MAX_SCOPE = 5_000

# sku, location_id pairs (an event's); a planning region (its DCs); None: everything
Scope = pd.DataFrame | RegionScope | None


@dataclass(frozen=True)
class PlanSettings:
    horizon_start: date
    bucket_days: int = 7
    review_period_days: float = 7.0
    degradation_factor: float = 1.5


def normalise_scope(scope: Scope) -> Scope:
    if scope is None or isinstance(scope, RegionScope):
        return scope
    scope = scope[["sku", "location_id"]].dropna().drop_duplicates().astype(str).reset_index(drop=True)
    return None if len(scope) > MAX_SCOPE else scope


def _pairs(scope: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(scope["sku"], scope["location_id"]))


def scope_clause(table_name: str, scope: Scope) -> Any:
    """WHERE (sku, location_id) IN scope (location_id IN the region's DCs) for a table with both columns;
    None when unscoped."""
    if scope is None:
        return None
    table = tables.metadata.tables[table_name]
    if isinstance(scope, RegionScope):
        return scope.clause(table)
    if scope.empty:
        return and_(table.c.sku.is_(None), table.c.sku.is_not(None))  # matches nothing
    return tuple_(table.c.sku, table.c.location_id).in_(_pairs(scope))


def _read(warehouse: Warehouse, name: str, scope: Scope, columns: Sequence[str] | None = None) -> pd.DataFrame:
    if isinstance(scope, RegionScope):
        # A region's tables run to millions of rows (its history to 10M at 100k SKU-locations): read in
        # chunks with equal text and dates sharing one object, the same frame in a fraction of the memory.
        return read_compact(warehouse, name, columns=columns, where=scope_clause(name, scope))
    return warehouse.read(name, columns=list(columns) if columns else None, where=scope_clause(name, scope))


def feed_health(warehouse: Warehouse, now: datetime) -> pd.DataFrame:
    """The latest load of every file-drop object: its age against the contract's freshness window and what
    validation did with it (object, age_hours, freshness_hours, rows_extracted, rows_quarantined, status)."""
    loads = warehouse.read("feed_load")
    if loads.empty:
        return pd.DataFrame(columns=["object", "age_hours", "freshness_hours", "rows_extracted", "rows_quarantined", "status"])
    last = loads.sort_values("load_id").drop_duplicates("object", keep="last")
    modified = pd.to_datetime(last["source_modified_at"], utc=True).fillna(pd.to_datetime(last["extracted_at"], utc=True))
    last = last.assign(
        age_hours=(pd.Timestamp(now) - modified) / pd.Timedelta(hours=1),
        freshness_hours=last["object"].map({n: c.freshness_hours for n, c in contracts.CONTRACTS.items()}),
    )
    return last[["object", "age_hours", "freshness_hours", "rows_extracted", "rows_quarantined", "status"]].reset_index(drop=True)


def planning_inputs(warehouse: Warehouse, now: datetime, scope: Scope = None) -> PlanningInputs:
    """The tables the exception rules read, restricted to the scope's SKU-locations (reference tables and
    the feed health are read whole: they are small)."""
    projection = _read(warehouse, "projected_inventory", scope)
    pipeline = warehouse.read("pipeline_opportunity")
    if isinstance(scope, pd.DataFrame):
        pipeline = pipeline[pipeline["sku"].isin(set(scope["sku"]))]
    inputs = PlanningInputs(
        projection=projection,
        policy=_read(warehouse, "inventory_policy", scope),
        product=warehouse.read("product"),
        location=warehouse.read("location"),
        customer=warehouse.read("customer"),
        order_lines=_read(warehouse, "customer_order_line", scope),
        purchase_lines=_read(warehouse, "purchase_order_line", scope),
        forecast=_read(warehouse, "demand_forecast", scope),
        demand_history=_read(warehouse, "demand_history", scope, columns=HISTORY_COLUMNS),
        pipeline=pipeline,
        supplier=warehouse.read("supplier"),
        accuracy=_accuracy(warehouse, scope),
        feeds=feed_health(warehouse, now) if scope is None else pd.DataFrame(),
        forecast_volume=_pipeline_forecast_volume(warehouse) if isinstance(scope, RegionScope) else None,
        value_shares=region_value_shares(warehouse, scope) if isinstance(scope, RegionScope) else None,
        quarantined=latest_quarantine(warehouse),
        supplier_record=None if scope is None else _whole_supplier_record(warehouse, now),
    )
    release_freed_memory()  # the chunked reads' garbage: the steps that share these inputs allocate next
    return inputs


def _whole_supplier_record(warehouse: Warehouse, now: datetime) -> pd.DataFrame:
    """Every supplier's open-line record over all SKU-locations: a scoped plan judges a supplier by all of it."""
    lines = warehouse.read("purchase_order_line", columns=["supplier_id", "status", "expected_date", "confirmed_date"])
    return supplier_record(lines, as_timestamp(now))


def _pipeline_forecast_volume(warehouse: Warehouse) -> pd.DataFrame:
    """The horizon's forecast per SKU-location at every DC, for the SKUs with CRM pipeline only, summed in
    SQL: where a region's plan places pipeline of a customer whose region does not stock the SKU."""
    f, p = tables.demand_forecast, tables.STAGED["pipeline_opportunity"]
    stmt = (
        select(f.c.sku, f.c.location_id, func.sum(f.c["mean"]).label("mean"))
        .where(f.c.sku.in_(select(p.c.sku).distinct()))
        .group_by(f.c.sku, f.c.location_id)
        .order_by(f.c.sku, f.c.location_id)
    )
    warehouse.ensure_schema()
    with warehouse.engine.connect() as conn:
        return pd.read_sql(stmt, conn)


def latest_quarantine(warehouse: Warehouse) -> pd.DataFrame:
    """The quarantined rows (object, key) of each object's latest load: what the data in the plan left out."""
    loads = warehouse.read("feed_load", columns=["load_id", "object"])
    if loads.empty:
        return pd.DataFrame(columns=["object", "key"])
    latest = [int(i) for i in loads.groupby("object")["load_id"].max()]
    return warehouse.read("quarantine", columns=["object", "key"], where=tables.quarantine.c.load_id.in_(latest))


def _accuracy(warehouse: Warehouse, scope: Scope) -> pd.DataFrame:
    if isinstance(scope, RegionScope):
        table = tables.forecast_accuracy
        return warehouse.read("forecast_accuracy", where=or_(table.c.scope != "series", scope.clause(table)))
    accuracy = warehouse.read("forecast_accuracy")
    if scope is None:
        return accuracy
    series = accuracy["scope"] == "series"
    keep = accuracy[series].merge(scope, on=["sku", "location_id"], how="inner")
    return pd.concat([accuracy[~series], keep], ignore_index=True)


def detector_thresholds(policy: Policy, settings: PlanSettings) -> ExceptionThresholds:
    kwargs = policy.thresholds.detector_kwargs()
    # One definition of "degraded" for the forecast_degraded check, this exception and the autonomy rule.
    kwargs["forecast_degradation_ratio"] = settings.degradation_factor
    kwargs["review_period_days"] = settings.review_period_days
    return ExceptionThresholds(**kwargs)


def planned_purchases(warehouse: Warehouse, purchases: pd.DataFrame, scope: Scope = None) -> pd.DataFrame:
    """Supply planned but not yet sent to a supplier (sku, location_id, qty_open, expected_date): the draft
    purchase lines in the ERP, and the approved replenishments still in the outbox (not yet written to the
    ERP). Counting them keeps the next plan from ordering the same need twice."""
    drafts = purchases.loc[(purchases["status"] == "draft") & (purchases["qty_open"].astype(float) > 0), [*SKU_LOCATION_COLUMNS, "qty_open", "expected_date"]]
    o = tables.erp_outbox
    queued = warehouse.read("erp_outbox", columns=["payload"], where=(o.c.kind == "replenish") & o.c.status.in_(QUEUED_OUTBOX_STATUSES))
    if queued.empty:
        return drafts.reset_index(drop=True)
    orders = pd.DataFrame([json.loads(p) for p in queued["payload"]])
    orders = orders.rename(columns={"quantity": "qty_open", "needed_by": "expected_date"})[[*SKU_LOCATION_COLUMNS, "qty_open", "expected_date"]]
    if isinstance(scope, RegionScope):
        orders = orders[scope.contains(orders["location_id"])]
    elif scope is not None:
        orders = orders.merge(scope, on=SKU_LOCATION_COLUMNS, how="inner")
    return pd.concat([drafts, orders], ignore_index=True)


def refresh_projection(
    warehouse: Warehouse, settings: PlanSettings, now: datetime, scope: Scope = None, run_id: str | None = None
) -> pd.DataFrame:
    """Projected available balance for the scope from the stored policy, stock, orders, POs (planned ones
    apart) and forecast; replaces the scope's rows of `projected_inventory` and records the plan and its as-of
    in `plan_runs`."""
    release_freed_memory()  # a region's run comes here from the forecast and the policy: start from their freed pages
    forecast = _read(warehouse, "demand_forecast", scope)
    purchases = _read(warehouse, "purchase_order_line", scope)
    policy = _read(warehouse, "inventory_policy", scope)
    projection = projected_inventory(
        _read(warehouse, "inventory_position", scope),
        forecast,
        _read(warehouse, "customer_order_line", scope),
        purchases[purchases["status"].isin(SCHEDULED_PO_STATUSES)],
        policy[["sku", "location_id", "safety_stock"]].fillna({"safety_stock": 0.0}),
        horizon_start=settings.horizon_start,
        bucket_days=settings.bucket_days,
        planned_purchases=planned_purchases(warehouse, purchases, scope),
    )
    projection["days_of_cover"] = projection["days_of_cover"].replace([float("inf"), float("-inf")], float("nan"))
    projection["computed_at"] = now
    warehouse.replace_rows("projected_inventory", projection, where=scope_clause("projected_inventory", scope))
    warehouse.append_rows("plan_runs", pd.DataFrame([{
        "run_id": run_id, "scope": "full" if scope is None else "region" if isinstance(scope, RegionScope) else "scoped",
        "sku_locations": int(projection[["sku", "location_id"]].drop_duplicates().shape[0]),
        "as_of": pd.Timestamp(now).date(), "horizon_start": settings.horizon_start, "bucket_days": settings.bucket_days, "planned_at": now,
    }]))
    return projection


def _horizon_start(projection: pd.DataFrame, fallback: date) -> date:
    first = projection.loc[projection["bucket"] == 0, "period_start"]
    return pd.Timestamp(first.min()).date() if len(first) else fallback


def _lifecycle_scope(previous: pd.DataFrame, scope: Scope) -> pd.Series | None:
    """Which stored exceptions this run evaluates: all (unscoped), else the scope's SKU-location ones."""
    if scope is None:
        return None
    if isinstance(scope, RegionScope):
        return scope.contains(previous["location_id"]) & ~previous["exception_type"].isin(FEED_TYPES)
    keys = set(_pairs(scope))
    pairs = pd.Series(list(zip(previous["sku"], previous["location_id"])), index=previous.index)
    return pairs.isin(keys) & ~previous["exception_type"].isin(FEED_TYPES)


def refresh_exceptions(
    warehouse: Warehouse, policy: Policy, settings: PlanSettings, now: datetime, scope: Scope = None, inputs: PlanningInputs | None = None
) -> pd.DataFrame:
    """Detect, grade and route the scope's exceptions; update their lifecycle and the active snapshot.
    Returns the lifecycle rows this run evaluated or touched. `inputs`: `planning_inputs` already read for
    this scope (the three refresh steps of one run share them), else read here."""
    inputs = inputs or planning_inputs(warehouse, now, scope)
    if inputs.projection.empty:
        return pd.DataFrame()
    release_freed_memory()
    thresholds = detector_thresholds(policy, settings)
    start = _horizon_start(inputs.projection, settings.horizon_start)
    detected = detect_exceptions(inputs, thresholds, start, as_of=now, bucket_days=settings.bucket_days, tolerances=policy.tolerances)
    detected["severity"] = severity_from(detected["money_at_risk"], detected["customer_tier"], policy, detected["exception_type"]).to_numpy()
    detected = assign_owners(detected, policy)

    previous = _read(warehouse, "exception_lifecycle", scope) if scope is not None else warehouse.read("exception_lifecycle")
    if isinstance(scope, pd.DataFrame):
        # Exceptions keyed by a PO line can sit under a SKU-location outside the read; fetch them by key.
        extra = sorted(set(detected["exception_key"]) - set(previous["exception_key"]))
        found = warehouse.read("exception_lifecycle", where=tables.exception_lifecycle.c.exception_key.in_(extra)) if extra else previous.iloc[0:0]
        if len(found):
            previous = pd.concat([previous, found], ignore_index=True) if len(previous) else found
    lifecycle = update_lifecycle(previous, detected, now, evaluated=_lifecycle_scope(previous, scope))
    active = lifecycle["state"].isin(ACTIVE_STATES)
    lifecycle.loc[active, "sla_due_at"] = sla_due_at(lifecycle.loc[active, "severity"], lifecycle.loc[active, "opened_at"], policy).to_numpy()
    # Excess stock is capital on a weekly cadence, whatever its severity (the policy's tolerance).
    excess = active & (lifecycle["exception_type"] == "excess_stock")
    lifecycle.loc[excess, "sla_due_at"] = (
        pd.to_datetime(lifecycle.loc[excess, "opened_at"], utc=True) + pd.Timedelta(hours=policy.tolerances.excess_stock_sla_hours)
    ).to_numpy()
    if isinstance(scope, RegionScope):  # a region's exceptions are those of its DCs, a whole slice to replace
        keys, snapshot_keys = scope.clause(tables.exception_lifecycle), scope.clause(tables.planning_exceptions)
    else:
        keys = tables.exception_lifecycle.c.exception_key.in_(list(lifecycle["exception_key"])) if scope is not None else None
        snapshot_keys = tables.planning_exceptions.c.exception_key.in_(list(lifecycle["exception_key"])) if scope is not None else None
    warehouse.replace_rows("exception_lifecycle", lifecycle, where=keys)
    warehouse.replace_rows("planning_exceptions", lifecycle[active].sort_values(["money_at_risk", "exception_key"], ascending=[False, True]), where=snapshot_keys)
    return lifecycle


def _priced_orders(inputs: PlanningInputs) -> pd.DataFrame:
    orders = open_orders_of(inputs)
    prices = inputs.product[["sku", "unit_price"]].drop_duplicates("sku")
    return orders.merge(prices, on="sku", how="left").assign(unit_price=lambda f: f["unit_price"].astype(float).fillna(0.0))


def refresh_allocations(
    warehouse: Warehouse, settings: PlanSettings, now: datetime, scope: Scope = None, inputs: PlanningInputs | None = None
) -> pd.DataFrame:
    """Allocation scenarios for the scope's SKU-locations with an active shortage-type exception."""
    inputs = inputs or planning_inputs(warehouse, now, scope)
    release_freed_memory()  # the exceptions step's frames
    orders = _priced_orders(inputs)
    active = _read(warehouse, "planning_exceptions", scope, columns=["sku", "location_id", "exception_type"])
    hit = active[active["exception_type"].isin(["order_at_risk", "projected_stockout", "supplier_delay", "demand_spike"])][["sku", "location_id"]].drop_duplicates()
    orders = orders.merge(hit, on=["sku", "location_id"], how="inner")
    summary, lines = allocation_scenarios(orders, supply_for_open_orders(inputs.projection, orders, settings.bucket_days))
    summary = summary.assign(computed_at=now)
    warehouse.replace_rows("allocation_scenarios", summary, where=scope_clause("allocation_scenarios", scope))
    warehouse.replace_rows("allocation_lines", lines.assign(computed_at=now)[[c.name for c in tables.allocation_lines.columns]], where=scope_clause("allocation_lines", scope))
    return summary


def forecasts_holding_autonomy(degraded: pd.DataFrame, exceptions: pd.DataFrame, reviewed: pd.DataFrame) -> pd.DataFrame:
    """The SKU-locations (sku, location_id) whose degraded forecast keeps their actions from auto-approval:
    the degraded ones (`degraded_forecasts`) less those whose forecast_degradation case a tolerance recorded
    instead of sending (outside class A nobody reviews it, so it holds nothing: the tail stays within the
    autonomy limits) and less those a person reviewed (`reviewed`: approved the review_forecast, which lifts
    the block for the rest of that degradation — one review, not every routine order of the item)."""
    keys = ["sku", "location_id"]
    out = degraded[keys].drop_duplicates()
    tail = exceptions.loc[(exceptions["exception_type"] == "forecast_degradation") & exceptions["suppressed_reason"].notna(), keys]
    for drop in (tail, reviewed[keys] if not reviewed.empty else reviewed):
        if not drop.empty:
            out = out.merge(drop.drop_duplicates().assign(_drop=True), on=keys, how="left")
            out = out[out["_drop"].isna()].drop(columns="_drop")
    return out.reset_index(drop=True)


def refresh_actions(
    warehouse: Warehouse,
    policy: Policy,
    settings: PlanSettings,
    now: datetime,
    scope: Scope = None,
    actor: str = "planner-engine",
    inputs: PlanningInputs | None = None,
) -> pd.DataFrame:
    """Recommend actions for the scope's active exceptions, apply the policy, replace their rows and audit
    every new recommendation and every changed policy decision."""
    inputs = inputs or planning_inputs(warehouse, now, scope)
    release_freed_memory()  # the allocation step's frames
    thresholds = detector_thresholds(policy, settings)
    exceptions = _read(warehouse, "planning_exceptions", scope)
    if scope is None:
        feed_level = exceptions  # already everything
    else:
        exceptions = exceptions[~exceptions["exception_type"].isin(FEED_TYPES)]
        feed_level = warehouse.read("planning_exceptions", where=tables.planning_exceptions.c.exception_type.in_(FEED_TYPES))
    ctx = sku_location_context(inputs, thresholds)
    risky = risky_order_lines(inputs, settings.bucket_days, settings.horizon_start, thresholds.customer_order_lead_days)
    actions = recommend_actions(
        exceptions, ctx, inputs.projection, inputs.purchase_lines, risky, inputs.product, inputs.supplier, inputs.accuracy,
        _read(warehouse, "allocation_scenarios", scope), as_of=settings.horizon_start,
        settings=ActionSettings(review_period_days=settings.review_period_days, bucket_days=settings.bucket_days, excess_days_of_cover=thresholds.excess_days_of_cover),
        transfer_sources=region_transfer_sources(warehouse, scope) if isinstance(scope, RegionScope) else None,
    )
    # Stale feeds are themselves exceptions: while one is active, nothing is auto-approved.
    stale = feed_level[feed_level["exception_type"] == "stale_feed"]
    degraded = forecasts_holding_autonomy(
        degraded_forecasts(inputs.accuracy, thresholds.forecast_degradation_ratio), exceptions, _reviewed_forecasts(warehouse)
    ).assign(forecast_degraded=True)
    actions = actions.merge(degraded, on=["sku", "location_id"], how="left")
    actions["forecast_degraded"] = actions["forecast_degraded"].astype("boolean").fillna(False).astype(bool)
    actions["data_fresh"] = stale.empty
    tiers = inputs.customer.drop_duplicates("customer_id").set_index("customer_id")["tier"] if not inputs.customer.empty else pd.Series(dtype=object)
    actions["customer_tier"] = actions["customer_id"].map(tiers)
    actions = decide_autonomy(actions, policy)
    actions = actions.merge(exceptions[["exception_key", "owner_team", "owner_channel"]], on="exception_key", how="left")

    if isinstance(scope, RegionScope):
        where = scope.clause(tables.recommended_actions)
    else:
        where = tables.recommended_actions.c.exception_key.in_(list(exceptions["exception_key"])) if scope is not None else None
    previous = warehouse.read("recommended_actions", columns=["action_id", "created_at", "policy_decision"], where=where)
    actions = actions.merge(previous.rename(columns={"policy_decision": "_previous_decision"}), on="action_id", how="left")
    actions["created_at"] = pd.to_datetime(actions["created_at"], utc=True).fillna(pd.Timestamp(now))
    actions["updated_at"] = now
    actions["source"] = "planner"
    if isinstance(scope, pd.DataFrame):
        # Actions of exceptions the scoped run no longer sees active (auto-resolved) go with them.
        where = tables.recommended_actions.c.exception_key.in_(list(exceptions["exception_key"]) + _closed_keys(warehouse, scope))
    warehouse.replace_rows("recommended_actions", actions[[c.name for c in tables.recommended_actions.columns]], where=where)
    _audit_recommendations(warehouse, actions, actor, now)
    _rank_cases(warehouse, exceptions, actions, now)
    return actions


def refresh_decisions(
    warehouse: Warehouse, policy: Policy, settings: PlanSettings, now: datetime, scope: Scope = None, actor: str = "planner-engine"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Exceptions → allocations → actions for the scope (after `refresh_projection`), from one read of the
    planning inputs: none of the three steps writes what the others read from it. Returns the lifecycle rows
    `refresh_exceptions` evaluated and the actions `refresh_actions` recommended."""
    inputs = planning_inputs(warehouse, now, scope)
    lifecycle = refresh_exceptions(warehouse, policy, settings, now, scope, inputs=inputs)
    # Only exception detection reads the demand history (spikes, root causes); a region's is 10M rows at
    # 100k SKU-locations, so it goes before the two steps that follow allocate theirs.
    inputs.demand_history = inputs.demand_history.iloc[0:0]
    refresh_allocations(warehouse, settings, now, scope, inputs=inputs)
    actions = refresh_actions(warehouse, policy, settings, now, scope, actor=actor, inputs=inputs)
    return lifecycle, actions


def _rank_cases(warehouse: Warehouse, exceptions: pd.DataFrame, actions: pd.DataFrame, now: datetime) -> None:
    """Who must act and in what order (`planning.worklist.rank_cases`), written onto the cases this run
    recommended for: the active snapshot and their lifecycle records (those columns only, in place)."""
    if exceptions.empty:
        return
    ranked = rank_cases(exceptions, actions, now, settled_action_ids(warehouse))[["exception_key", "cause_key", *CASE_PRIORITY_COLUMNS]]
    for name in ("planning_exceptions", "exception_lifecycle"):
        warehouse.update_rows(name, ranked, key="exception_key")


def _reviewed_forecasts(warehouse: Warehouse) -> pd.DataFrame:
    """SKU-locations whose open forecast_degradation occurrence a person reviewed (its review_forecast approved)."""
    a, d = tables.recommended_actions, tables.action_decisions
    stmt = (
        select(a.c.sku, a.c.location_id)
        .join(d, d.c.action_id == a.c.action_id)
        .where((a.c.exception_type == "forecast_degradation") & (a.c.action_type == "review_forecast") & (d.c.decision == "approved"))
    )
    warehouse.ensure_schema()
    with warehouse.engine.connect() as conn:
        return pd.DataFrame(conn.execute(stmt).all(), columns=["sku", "location_id"]).drop_duplicates()


def _closed_keys(warehouse: Warehouse, scope: pd.DataFrame) -> list[str]:
    closed = _read(warehouse, "exception_lifecycle", scope, columns=["exception_key", "state"])
    return list(closed.loc[~closed["state"].isin(ACTIVE_STATES), "exception_key"])


def _audit_recommendations(warehouse: Warehouse, actions: pd.DataFrame, actor: str, now: datetime) -> None:
    """One audit row per new recommendation and per changed policy decision (re-runs add nothing)."""
    new = actions["_previous_decision"].isna()
    changed = ~new & (actions["_previous_decision"] != actions["policy_decision"])
    entries = [
        AuditEntry(
            actor=actor if is_new else "policy",
            event_type="recommendation" if is_new else "policy_decision",
            subject=row.action_id,
            payload={
                "exception_key": row.exception_key, "action_type": row.action_type, "quantity": None if pd.isna(row.quantity) else float(row.quantity),
                "value": float(row.value), "confidence": float(row.confidence), "policy_decision": row.policy_decision,
                "approver_role": row.approver_role, "policy_reasons": row.policy_reasons,
            },
            occurred_at=now,
        )
        for row, is_new in zip(actions[new | changed].itertuples(index=False), new[new | changed])
    ]
    if entries:
        with warehouse.engine.begin() as conn:
            append(conn, entries)


def scope_of(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The union of the sku, location_id pairs of several frames."""
    parts = [f[["sku", "location_id"]] for f in frames if not f.empty]
    if not parts:
        return pd.DataFrame({"sku": pd.Series(dtype=object), "location_id": pd.Series(dtype=object)})
    return pd.concat(parts, ignore_index=True).dropna().drop_duplicates().reset_index(drop=True)


@dataclass
class InboxReplan:
    """What a `replan_inbox_batch` did: the events it applied, the scope it re-planned (None: everything)
    and the lifecycle rows and actions of that scope."""

    events: int
    scope: Scope
    lifecycle: pd.DataFrame
    actions: pd.DataFrame

    @property
    def touched_exceptions(self) -> list[str]:
        """Exception keys the re-plan opened, changed or resolved (the ones whose owners hear about it)."""
        if self.lifecycle.empty:
            return []
        return self.lifecycle.loc[self.lifecycle["last_change"] != "untouched", "exception_key"].tolist()


def _lines_by_key(warehouse: Warehouse, name: str, key: list[str], keys: pd.DataFrame) -> pd.DataFrame:
    if keys.empty:
        return warehouse.read(name).iloc[0:0]
    table = tables.STAGED[name]
    pairs = list(zip(keys[key[0]], keys[key[1]].astype(int)))
    return warehouse.read(name, where=tuple_(table.c[key[0]], table.c[key[1]]).in_(pairs))


def _replace_lines(warehouse: Warehouse, name: str, key: list[str], changed: pd.DataFrame, removed: pd.DataFrame, now: datetime) -> None:
    keys = pd.concat([changed[key] if not changed.empty else pd.DataFrame(columns=key), removed], ignore_index=True)
    if keys.empty:
        return
    table = tables.STAGED[name]
    pairs = list({(k0, int(k1)) for k0, k1 in zip(keys[key[0]], keys[key[1]])})
    rows = changed.assign(source_system="gateway", loaded_at=now) if not changed.empty else changed
    warehouse.replace_rows(name, rows, where=tuple_(table.c[key[0]], table.c[key[1]]).in_(pairs))


def apply_inbox_events(warehouse: Warehouse, inbox: pd.DataFrame, now: datetime) -> AppliedEvents:
    """Write the events' effect to the staged order and PO lines (the next extract from the source brings the
    same fact and supersedes it) and record them as `supplier_event` / `order_event`."""
    supplier = inbox["event_type"].str.startswith("supplier.")
    po_keys = inbox.loc[supplier & inbox["po_id"].notna(), ["po_id", "po_line_no"]].rename(columns={"po_line_no": "line_no"}).dropna()
    so_keys = inbox.loc[~supplier & inbox["order_id"].notna(), ["order_id", "order_line_no"]].rename(columns={"order_line_no": "line_no"}).dropna()
    applied = apply_events(
        inbox, _lines_by_key(warehouse, "purchase_order_line", PO_KEY, po_keys), _lines_by_key(warehouse, "customer_order_line", ORDER_KEY, so_keys), now
    )
    _replace_lines(warehouse, "purchase_order_line", PO_KEY, applied.purchase_lines, applied.purchase_removed, now)
    _replace_lines(warehouse, "customer_order_line", ORDER_KEY, applied.order_lines, applied.order_removed, now)
    for name, frame in (("supplier_event", applied.supplier_events), ("order_event", applied.order_events)):
        if not frame.empty:
            warehouse.replace_rows(name, frame, where=tables.STAGED[name].c.event_id.in_(list(frame["event_id"])))
    return applied


def replan_inbox_batch(
    warehouse: Warehouse, policy: Policy, settings: PlanSettings, now: datetime, inbox_from: int, inbox_to: int,
    requested: pd.DataFrame | None = None, run_id: str | None = None, failed_gates: list[str] | tuple[str, ...] = (),
) -> InboxReplan:
    """Apply the unprocessed inbox events inbox_from..inbox_to, re-plan the SKU-locations they touch (plus
    `requested`, e.g. changed in the ERP) and mark the events processed with their outcome and audit row.
    `failed_gates` (blocking data-quality checks upstream whose latest evaluation failed) withhold
    auto-approval, as in the plan's own run. Re-running a batch is safe: processed events are skipped."""
    inbox_table = tables.inbox_events
    inbox = warehouse.read("inbox_events", where=inbox_table.c.inbox_id.between(inbox_from, inbox_to) & inbox_table.c.processed_at.is_(None))
    requested = requested if requested is not None else pd.DataFrame(columns=["sku", "location_id"])
    if inbox.empty and requested.empty:
        return InboxReplan(events=0, scope=pd.DataFrame(columns=["sku", "location_id"]), lifecycle=pd.DataFrame(columns=["last_change"]), actions=pd.DataFrame())
    applied = apply_inbox_events(warehouse, inbox, now)
    # Re-plan the SKU-locations the events touched, plus those the inbox resolved at the gateway (e.g. a new
    # order for a SKU-location whose line did not exist yet).
    scope = normalise_scope(scope_of([applied.outcomes.dropna(subset=["sku", "location_id"]), inbox.dropna(subset=["sku", "location_id"]), requested]))
    actor = f"replan:{run_id}"
    if scope is None or len(scope):
        refresh_projection(warehouse, settings, now, scope, run_id=run_id)
        lifecycle, actions = refresh_decisions(warehouse, policy, settings, now, scope, actor=actor)
        auto_approve(warehouse.engine, now, failed_gates=list(failed_gates), policy=policy)
    else:
        lifecycle, actions = pd.DataFrame(columns=["last_change"]), pd.DataFrame()

    outcomes = applied.outcomes.set_index("inbox_id")["outcome"]
    with warehouse.engine.begin() as conn:
        for inbox_id, outcome in outcomes.items():
            conn.execute(
                update(inbox_table).where(inbox_table.c.inbox_id == int(inbox_id)).values(processed_at=now, process_run_id=run_id, process_outcome=outcome)
            )
        if len(inbox):
            append(conn, [
                AuditEntry(actor, "event_applied", webhook_id, {"inbox_id": int(i), "outcome": outcomes.get(i, "")}, now)
                for i, webhook_id in zip(inbox["inbox_id"], inbox["webhook_id"])
            ])
    return InboxReplan(events=len(inbox), scope=scope, lifecycle=lifecycle, actions=actions)


# The tables a replan rewrites for its scope; the full plan's assets own them, the replan only observes them.
REPLANNED_TABLES = ("projected_inventory", "planning_exceptions", "allocation_scenarios", "recommended_actions")


def record_replan(
    warehouse: Warehouse, done: InboxReplan, inbox_from: int, inbox_to: int, erp_sku_locations: int, run_id: str | None, now: datetime
) -> dict[str, Any]:
    """Append what one replan applied and changed to `replan_log` and return that row."""
    changes = done.lifecycle["last_change"].value_counts() if len(done.lifecycle) else pd.Series(dtype=int)
    row = {
        "run_id": run_id, "inbox_from": int(inbox_from), "inbox_to": int(inbox_to), "events": int(done.events),
        "erp_sku_locations": int(erp_sku_locations), "sku_locations": None if done.scope is None else len(done.scope),
        "exceptions_opened": int(changes.get("opened", 0) + changes.get("reopened", 0)),
        "exceptions_updated": int(changes.get("updated", 0)), "exceptions_resolved": int(changes.get("auto_resolved", 0)),
        "actions": len(done.actions), "replanned_at": now,
    }
    warehouse.append_rows("replan_log", pd.DataFrame([row]))
    return row


def replanned_rows(warehouse: Warehouse, scope: Scope) -> dict[str, tuple[int, int]]:
    """For each table a replan rewrites: (rows of the scope, rows of the whole table) after the replan."""
    return {name: (warehouse.count(name, where=scope_clause(name, scope)), warehouse.count(name)) for name in REPLANNED_TABLES}
