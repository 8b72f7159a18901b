"""Exceptions, actions and KPIs (groups `exceptions`, `actions`, `kpis`): what a planner must act on, who
owns it, what to do about it, and how the coordination performs.

Thin assets over `demand_control.services.replan` (which the event-driven `replan` job calls for a few SKU-locations)
and `planning.kpis`. `planning_exceptions` keeps the operational `exception_lifecycle` table across runs
and publishes the active snapshot; `allocation_scenarios` compares ways to split short supply;
`recommended_actions` proposes the moves and records the policy's decision on each.
"""

import dagster as dg
import pandas as pd

from demand_control.schema import tables
from demand_control.services.approvals import auto_approve
from demand_control.demand_assets.inventory import InventoryPolicyConfig
from demand_control.demand_assets.metadata import TEAM_PLANNING, preview, table_schema_of
from demand_control.planning.kpis import coordination_kpis
from demand_control.services.replan import PlanSettings, refresh_actions, refresh_allocations, refresh_exceptions
from demand_control.resources.clock import PlanningClock
from demand_control.resources.forecast import ForecastSettingsResource
from demand_control.resources.planning_policy import PlanningPolicy
from demand_control.resources.warehouse import Warehouse

KINDS = {"pandas", "sqlalchemy"}


def plan_settings(config: InventoryPolicyConfig, forecast_settings: ForecastSettingsResource, clock: PlanningClock) -> PlanSettings:
    return PlanSettings(
        horizon_start=config.start(clock.today()),
        bucket_days=config.bucket_days,
        review_period_days=config.review_period_days,
        degradation_factor=forecast_settings.degradation_factor,
    )


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
    clock: PlanningClock,
) -> dg.MaterializeResult:
    if warehouse.count("projected_inventory") == 0:
        raise dg.Failure(description="projected_inventory is empty: materialize the inventory group first")
    policy = planning_policy.load()
    lifecycle = refresh_exceptions(warehouse, policy, plan_settings(config, forecast_settings, clock), clock.now())
    snapshot = warehouse.read("planning_exceptions")
    changes = lifecycle["last_change"].value_counts().to_dict()
    context.log.info(f"exceptions: {changes}")
    by_type = snapshot.groupby(["exception_type", "severity"]).size().unstack(fill_value=0).reset_index() if len(snapshot) else snapshot
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(snapshot),
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


@dg.asset(
    name="allocation_scenarios",
    group_name="actions",
    deps=["planning_exceptions"],
    owners=[TEAM_PLANNING],
    kinds=KINDS,
    description="Ways to split short supply across open customer orders, compared on fill rate by tier, revenue at risk and customers affected.",
    metadata={"dagster/column_schema": table_schema_of(tables.allocation_scenarios), "dagster/table_name": "allocation_scenarios"},
)
def allocation_scenarios_asset(
    config: InventoryPolicyConfig, warehouse: Warehouse, forecast_settings: ForecastSettingsResource, clock: PlanningClock
) -> dg.MaterializeResult:
    summary = refresh_allocations(warehouse, plan_settings(config, forecast_settings, clock), clock.now())
    recommended = summary[summary["recommended"]]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(summary),
            "constrained_sku_locations": int(recommended.shape[0]),
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
    clock: PlanningClock,
) -> dg.MaterializeResult:
    policy = planning_policy.load()
    now = clock.now()
    actions = refresh_actions(warehouse, policy, plan_settings(config, forecast_settings, clock), now)
    # Within the autonomy limits the policy's decision is the decision: record it and queue the ERP write.
    auto_queued = auto_approve(warehouse.engine, now)
    primary = actions[actions["rank"] == 1]
    decisions = actions.groupby(["action_type", "policy_decision"]).size().unstack(fill_value=0).reset_index() if len(actions) else actions
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(actions),
            "policy": policy.source,
            "auto_approved": int((actions["policy_decision"] == "auto_approved").sum()),
            "auto_approved_queued_now": len(auto_queued),
            "awaiting_approval": int((actions["policy_decision"] == "awaiting_approval").sum()),
            "data_fresh": bool(actions["data_fresh"].all()) if len(actions) else True,
            "value_recommended": float(primary["value"].sum()),
            "by_type_and_decision": preview(decisions, rows=12),
            "preview": preview(primary[["action_id", "action_type", "quantity", "value", "confidence", "policy_decision", "expected_impact"]], rows=10),
        }
    )


@dg.asset(
    name="coordination_kpis",
    group_name="kpis",
    deps=["planning_exceptions", "recommended_actions", "forecast_accuracy", "purchase_order_line"],  # plus the operational decision, outbox, notice and escalation tables
    owners=[TEAM_PLANNING],
    kinds=KINDS,
    description="Coordination KPIs by type, severity, owner, class and supplier: open exceptions, money at risk, overdue, cycle time, autonomy, accuracy, on-time rate.",
    metadata={"dagster/column_schema": table_schema_of(tables.coordination_kpis), "dagster/table_name": "coordination_kpis"},
)
def coordination_kpis_asset(warehouse: Warehouse, clock: PlanningClock) -> dg.MaterializeResult:
    now = pd.Timestamp(clock.now())
    kpis = coordination_kpis(
        warehouse.read("exception_lifecycle"),
        warehouse.read("recommended_actions"),
        warehouse.read("forecast_accuracy"),
        warehouse.read("purchase_order_line"),
        now,
        decisions=warehouse.read("action_decisions"),
        outbox=warehouse.read("erp_outbox"),
        notices=warehouse.read("customer_notices", columns=["notice_id", "status"]),
        escalations=warehouse.read("escalations"),
    ).assign(computed_at=now)
    rows = warehouse.replace_rows("coordination_kpis", kpis)
    headline = kpis[kpis["dimension"] == "all"][["kpi", "value", "unit"]]
    return dg.MaterializeResult(metadata={"dagster/row_count": rows, "headline": preview(headline, rows=20)})


exception_assets = [planning_exceptions_asset, allocation_scenarios_asset, recommended_actions_asset, coordination_kpis_asset]
