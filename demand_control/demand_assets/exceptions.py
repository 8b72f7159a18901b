"""Exceptions (group `exceptions`): what a planner must act on, who owns it and by when.

A thin asset over `services.replan.refresh_exceptions` (which the event-driven `replan` job calls for a few
SKU-locations): it keeps the operational `exception_lifecycle` table across runs and publishes the active
snapshot `planning_exceptions`.
"""

import dagster as dg
import pandas as pd

from demand_control.demand_assets.inventory import InventoryPolicyConfig
from demand_control.demand_assets.regions import PLANNING_REGIONS, region_metadata, region_scope
from demand_control.resources.clock import PlanningClock
from demand_control.resources.forecast import ForecastSettingsResource
from demand_control.resources.planning_policy import PlanningPolicy
from demand_control.resources.warehouse import Warehouse
from demand_control.schema import tables
from demand_control.schema.asset_metadata import TEAM_PLANNING, plot_metadata, preview, table_schema_of
from demand_control.planning.kpis import exception_figures
from demand_control.services.replan import PlanSettings, refresh_exceptions, scope_clause

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
    # transfer_sources: the cross-region step, which a region's exceptions and actions read (a whole-panel run sees every DC itself).
    deps=["projected_inventory", "inventory_policy", "forecast_accuracy", "customer_order_line", "purchase_order_line", "pipeline_opportunity", "supplier", "transfer_sources"],
    partitions_def=PLANNING_REGIONS,
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
    scope = region_scope(context, warehouse)
    lifecycle = refresh_exceptions(warehouse, policy, plan_settings(config, forecast_settings, clock), clock.now(), scope)
    snapshot = warehouse.read("planning_exceptions", where=scope_clause("planning_exceptions", scope))
    changes = lifecycle["last_change"].value_counts().to_dict() if len(lifecycle) else {}
    context.log.info(f"exceptions: {changes}")
    by_type = snapshot.groupby(["exception_type", "severity"]).size().unstack(fill_value=0).reset_index() if len(snapshot) else snapshot
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(snapshot),
            **region_metadata(scope),
            "policy": policy.source,
            "opened": int(changes.get("opened", 0)),
            "reopened": int(changes.get("reopened", 0)),
            "updated": int(changes.get("updated", 0)),
            "auto_resolved": int(changes.get("auto_resolved", 0)),
            # open exceptions in all and by severity, money at risk, overdue, human touches: plotted run over run
            **plot_metadata(exception_figures(snapshot, pd.Timestamp(clock.now()))),
            "by_type_and_severity": preview(by_type, rows=20),
            "by_root_cause": preview(snapshot.groupby(["exception_type", "root_cause"]).size().rename("cases").reset_index() if len(snapshot) else snapshot, rows=30),
            "top": preview(snapshot[["exception_key", "severity", "money_at_risk", "owner_team", "sentence"]], rows=10),
        }
    )



defs = dg.Definitions(assets=[planning_exceptions_asset])
