"""Exceptions (group `exceptions`): what a planner must act on, who owns it and by when.

A thin asset over `services.replan.refresh_exceptions` (which the event-driven `replan` job calls for a few
SKU-locations): it keeps the operational `exception_lifecycle` table across runs and publishes the active
snapshot `planning_exceptions`.
"""

import dagster as dg

from demand_control.demand_assets.inventory import InventoryPolicyConfig
from demand_control.resources.clock import PlanningClock
from demand_control.resources.forecast import ForecastSettingsResource
from demand_control.resources.planning_policy import PlanningPolicy
from demand_control.resources.warehouse import Warehouse
from demand_control.schema import tables
from demand_control.schema.asset_metadata import TEAM_PLANNING, preview, table_schema_of
from demand_control.services.replan import PlanSettings, refresh_exceptions

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
    description="Planning exceptions a planner must act on, with severity, owner, SLA, the numbers that triggered them and why they happened.",
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
            "by_root_cause": preview(snapshot.groupby(["exception_type", "root_cause"]).size().rename("cases").reset_index() if len(snapshot) else snapshot, rows=30),
            "top": preview(snapshot[["exception_key", "severity", "money_at_risk", "owner_team", "sentence"]], rows=10),
        }
    )



defs = dg.Definitions(assets=[planning_exceptions_asset])
