"""Exceptions, actions and KPIs (groups `exceptions`, `actions`, `kpis`): what a planner must act on, who
owns it, what to do about it, and how the coordination performs.

Thin assets over `planning.exceptions`, `planning.lifecycle`, `planning.allocation`, `planning.actions` and
`planning.policy`. `planning_exceptions` keeps the operational `exception_lifecycle` table across runs and
publishes the active snapshot; `allocation_scenarios` compares ways to split short supply;
`recommended_actions` proposes the moves and records the policy's decision on each.
"""

from datetime import UTC, date, datetime

import dagster as dg
import pandas as pd

from demand_control import contracts, tables
from demand_control.demand_assets.inventory import InventoryPolicyConfig
from demand_control.demand_assets.metadata import TEAM_PLANNING, preview, table_schema_of
from demand_control.planning.actions import ActionSettings, recommend_actions
from demand_control.planning.allocation import allocation_scenarios
from demand_control.planning.exceptions import (
    ExceptionThresholds,
    PlanningInputs,
    degraded_forecasts,
    detect_exceptions,
    open_orders,
    order_lines_at_risk,
    sku_location_context,
    supply_for_open_orders,
)
from demand_control.planning.kpis import coordination_kpis
from demand_control.planning.lifecycle import ACTIVE_STATES, update_lifecycle
from demand_control.planning.policy import Policy, assign_owners, decide_autonomy, severity_from, sla_due_at
from demand_control.resources.forecast import ForecastSettingsResource
from demand_control.resources.policy import PlanningPolicy
from demand_control.resources.warehouse import Warehouse

KINDS = {"pandas", "sqlalchemy"}
# The objects a plan reads: a stale one among them means the plan rests on old facts (no auto-approval).
PLAN_INPUTS = (
    "product", "location", "customer", "supplier", "sourcing", "inventory_position",
    "customer_order_line", "purchase_order_line", "demand_history", "pipeline_opportunity",
)


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


def planning_inputs(warehouse: Warehouse, now: datetime) -> PlanningInputs:
    read = warehouse.read
    projection = read("projected_inventory")
    if projection.empty:
        raise dg.Failure(description="projected_inventory is empty: materialize the inventory group first")
    return PlanningInputs(
        projection=projection,
        policy=read("inventory_policy"),
        product=read("product"),
        location=read("location"),
        customer=read("customer"),
        order_lines=read("customer_order_line"),
        purchase_lines=read("purchase_order_line"),
        forecast=read("demand_forecast"),
        demand_history=read("demand_history"),
        pipeline=read("pipeline_opportunity"),
        supplier=read("supplier"),
        accuracy=read("forecast_accuracy"),
        feeds=feed_health(warehouse, now),
    )


def detector_thresholds(policy: Policy, forecast_settings: ForecastSettingsResource, review_period_days: float) -> ExceptionThresholds:
    kwargs = policy.thresholds.detector_kwargs()
    # One definition of "degraded" for the forecast_degraded check, this exception and the autonomy rule.
    kwargs["forecast_degradation_ratio"] = forecast_settings.degradation_factor
    kwargs["review_period_days"] = review_period_days
    return ExceptionThresholds(**kwargs)


def horizon_start(projection: pd.DataFrame) -> date:
    return pd.Timestamp(projection.loc[projection["bucket"] == 0, "period_start"].min()).date()


@dg.asset(
    name="planning_exceptions",
    group_name="exceptions",
    deps=["projected_inventory", "inventory_policy", "forecast_accuracy", "customer_order_line", "purchase_order_line", "pipeline_opportunity", "supplier"],
    owners=[TEAM_PLANNING],
    kinds=KINDS,
    description="Planning exceptions a planner must act on, with severity, owner, SLA and the numbers that triggered them.",
    metadata={"dagster/column_schema": table_schema_of(tables.planning_exceptions), "dagster/table_name": "planning_exceptions"},
)
def planning_exceptions_asset(
    context: dg.AssetExecutionContext,
    config: InventoryPolicyConfig,
    warehouse: Warehouse,
    planning_policy: PlanningPolicy,
    forecast_settings: ForecastSettingsResource,
) -> dg.MaterializeResult:
    now = datetime.now(UTC)
    policy = planning_policy.load()
    inputs = planning_inputs(warehouse, now)
    start = horizon_start(inputs.projection)
    thresholds = detector_thresholds(policy, forecast_settings, config.review_period_days)
    detected = detect_exceptions(inputs, thresholds, start, as_of=config.start(), bucket_days=config.bucket_days)
    detected["severity"] = severity_from(detected["money_at_risk"], detected["customer_tier"], policy, detected["exception_type"]).to_numpy()
    detected = assign_owners(detected, policy)

    lifecycle = update_lifecycle(warehouse.read("exception_lifecycle"), detected, now)
    active = lifecycle["state"].isin(ACTIVE_STATES)
    lifecycle.loc[active, "sla_due_at"] = sla_due_at(lifecycle.loc[active, "severity"], lifecycle.loc[active, "opened_at"], policy).to_numpy()
    warehouse.replace_rows("exception_lifecycle", lifecycle)
    snapshot = lifecycle[active].sort_values(["money_at_risk", "exception_key"], ascending=[False, True])
    rows = warehouse.replace_rows("planning_exceptions", snapshot)

    changes = lifecycle["last_change"].value_counts().to_dict()
    by_type = snapshot.groupby(["exception_type", "severity"]).size().unstack(fill_value=0).reset_index()
    context.log.info(f"exceptions: {changes}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "policy": policy.source,
            "opened": int(changes.get("opened", 0)),
            "reopened": int(changes.get("reopened", 0)),
            "updated": int(changes.get("updated", 0)),
            "auto_resolved": int(changes.get("auto_resolved", 0)),
            "money_at_risk": float(snapshot["money_at_risk"].sum()),
            "by_type_and_severity": preview(by_type, rows=20),
            "top": preview(snapshot[["exception_key", "severity", "money_at_risk", "owner_team", "sentence"]], rows=10),
        }
    )


def _priced_orders(inputs: PlanningInputs) -> pd.DataFrame:
    orders = open_orders(inputs.order_lines, inputs.customer)
    prices = inputs.product[["sku", "unit_price"]].drop_duplicates("sku")
    return orders.merge(prices, on="sku", how="left").assign(unit_price=lambda f: f["unit_price"].astype(float).fillna(0.0))


@dg.asset(
    name="allocation_scenarios",
    group_name="actions",
    deps=["planning_exceptions"],
    owners=[TEAM_PLANNING],
    kinds=KINDS,
    description="Ways to split short supply across open customer orders, compared on fill rate by tier, revenue at risk and customers affected.",
    metadata={"dagster/column_schema": table_schema_of(tables.allocation_scenarios), "dagster/table_name": "allocation_scenarios"},
)
def allocation_scenarios_asset(config: InventoryPolicyConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    now = datetime.now(UTC)
    inputs = planning_inputs(warehouse, now)
    orders = _priced_orders(inputs)
    # Only SKU-locations with an active exception are worth a manager's comparison.
    active = warehouse.read("planning_exceptions", columns=["sku", "location_id", "exception_type"])
    hit = active[active["exception_type"].isin(["order_at_risk", "projected_stockout", "supplier_delay", "demand_spike"])][["sku", "location_id"]].drop_duplicates()
    orders = orders.merge(hit, on=["sku", "location_id"], how="inner")
    supply = supply_for_open_orders(inputs.projection, orders, config.bucket_days)
    summary, lines = allocation_scenarios(orders, supply)
    summary = summary.assign(computed_at=now)
    lines = lines.assign(computed_at=now)
    rows = warehouse.replace_rows("allocation_scenarios", summary)
    warehouse.replace_rows("allocation_lines", lines[[c.name for c in tables.allocation_lines.columns]])
    recommended = summary[summary["recommended"]]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "constrained_sku_locations": int(recommended.shape[0]),
            "allocation_lines_rows": int(len(lines)),
            "recommended_by_scenario": preview(recommended.groupby("scenario").size().rename("sku_locations").reset_index(), rows=10),
            "preview": preview(summary.drop(columns=["computed_at"]), rows=8),
        }
    )


@dg.asset(
    name="recommended_actions",
    group_name="actions",
    deps=["planning_exceptions", "allocation_scenarios"],
    owners=[TEAM_PLANNING],
    kinds=KINDS,
    description="Recommended actions per active exception, with impact, confidence and whether policy auto-approves them.",
    metadata={"dagster/column_schema": table_schema_of(tables.recommended_actions), "dagster/table_name": "recommended_actions"},
)
def recommended_actions_asset(
    config: InventoryPolicyConfig,
    warehouse: Warehouse,
    planning_policy: PlanningPolicy,
    forecast_settings: ForecastSettingsResource,
) -> dg.MaterializeResult:
    now = datetime.now(UTC)
    policy = planning_policy.load()
    inputs = planning_inputs(warehouse, now)
    thresholds = detector_thresholds(policy, forecast_settings, config.review_period_days)
    exceptions = warehouse.read("planning_exceptions")
    ctx = sku_location_context(inputs, thresholds)
    risky = order_lines_at_risk(inputs.projection, open_orders(inputs.order_lines, inputs.customer), config.bucket_days)
    actions = recommend_actions(
        exceptions,
        ctx,
        inputs.projection,
        inputs.purchase_lines,
        risky,
        inputs.product,
        inputs.supplier,
        inputs.accuracy,
        warehouse.read("allocation_scenarios"),
        as_of=config.start(),
        settings=ActionSettings(review_period_days=config.review_period_days, bucket_days=config.bucket_days, excess_days_of_cover=thresholds.excess_days_of_cover),
    )
    feeds = inputs.feeds
    stale = feeds[feeds["object"].isin(PLAN_INPUTS) & (feeds["age_hours"] > feeds["freshness_hours"])]
    degraded = degraded_forecasts(inputs.accuracy, thresholds.forecast_degradation_ratio)[["sku", "location_id"]].assign(forecast_degraded=True)
    actions = actions.merge(degraded, on=["sku", "location_id"], how="left")
    actions["forecast_degraded"] = actions["forecast_degraded"].astype("boolean").fillna(False).astype(bool)
    actions["data_fresh"] = stale.empty
    actions = decide_autonomy(actions, policy)
    owners = exceptions[["exception_key", "owner_team", "owner_channel"]]
    actions = actions.merge(owners, on="exception_key", how="left")
    previous = warehouse.read("recommended_actions", columns=["action_id", "created_at"])
    actions = actions.merge(previous, on="action_id", how="left")
    actions["created_at"] = pd.to_datetime(actions["created_at"], utc=True).fillna(pd.Timestamp(now))
    actions["updated_at"] = now
    rows = warehouse.replace_rows("recommended_actions", actions[[c.name for c in tables.recommended_actions.columns]])

    primary = actions[actions["rank"] == 1]
    decisions = actions.groupby(["action_type", "policy_decision"]).size().unstack(fill_value=0).reset_index()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "policy": policy.source,
            "auto_approved": int((actions["policy_decision"] == "auto_approved").sum()),
            "awaiting_approval": int((actions["policy_decision"] == "awaiting_approval").sum()),
            "data_fresh": bool(stale.empty),
            "value_recommended": float(primary["value"].sum()),
            "by_type_and_decision": preview(decisions, rows=12),
            "preview": preview(primary[["action_id", "action_type", "quantity", "value", "confidence", "policy_decision", "expected_impact"]], rows=10),
        }
    )


exception_assets = [planning_exceptions_asset, allocation_scenarios_asset, recommended_actions_asset]


@dg.asset(
    name="coordination_kpis",
    group_name="kpis",
    deps=["planning_exceptions", "recommended_actions", "forecast_accuracy", "purchase_order_line"],
    owners=[TEAM_PLANNING],
    kinds=KINDS,
    description="Coordination KPIs by type, severity, owner, class and supplier: open exceptions, money at risk, overdue, cycle time, autonomy, accuracy, on-time rate.",
    metadata={"dagster/column_schema": table_schema_of(tables.coordination_kpis), "dagster/table_name": "coordination_kpis"},
)
def coordination_kpis_asset(warehouse: Warehouse) -> dg.MaterializeResult:
    now = pd.Timestamp(datetime.now(UTC))
    kpis = coordination_kpis(
        warehouse.read("exception_lifecycle"),
        warehouse.read("recommended_actions"),
        warehouse.read("forecast_accuracy"),
        warehouse.read("purchase_order_line"),
        now,
    ).assign(computed_at=now)
    rows = warehouse.replace_rows("coordination_kpis", kpis)
    headline = kpis[kpis["dimension"] == "all"][["kpi", "value", "unit"]]
    return dg.MaterializeResult(metadata={"dagster/row_count": rows, "headline": preview(headline, rows=20)})


exception_assets.append(coordination_kpis_asset)
