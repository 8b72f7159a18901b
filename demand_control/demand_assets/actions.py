"""Actions (group `actions`): what to do about each exception, and how to split short supply.

Thin assets over `services.replan`: `allocation_scenarios` compares ways to split short supply across open
orders; `recommended_actions` proposes the moves, records the policy's decision on each and queues the
auto-approved ones for the ERP.
"""

import dagster as dg

from demand_control.planning.vocabulary import AUTO_APPROVED
from demand_control.demand_assets.exceptions import KINDS, plan_settings
from demand_control.demand_assets.inventory import InventoryPolicyConfig
from demand_control.demand_assets.regions import PLANNING_REGIONS, region_metadata, region_scope
from demand_control.resources.clock import PlanningClock
from demand_control.resources.forecast import ForecastSettingsResource
from demand_control.resources.planning_policy import PlanningPolicy
from demand_control.resources.warehouse import Warehouse
from demand_control.schema import tables
from demand_control.schema.asset_metadata import TEAM_PLANNING, plot_metadata, preview, table_schema_of
from demand_control.planning.kpis import action_figures, allocation_figures
from demand_control.quality.gates import code_location_asset_graph, failed_gates_upstream
from demand_control.services.auto_approval import auto_approve
from demand_control.services.replan import refresh_actions, refresh_allocations

@dg.asset(
    name="allocation_scenarios",
    group_name="actions",
    deps=["planning_exceptions"],
    partitions_def=PLANNING_REGIONS,
    owners=[TEAM_PLANNING],
    kinds=KINDS,
    description="Ways to split short supply across open customer orders, compared on fill rate by tier, revenue at risk and customers affected.",
    metadata={"dagster/column_schema": table_schema_of(tables.allocation_scenarios), "dagster/table_name": "allocation_scenarios"},
)
def allocation_scenarios_asset(
    context: dg.AssetExecutionContext, config: InventoryPolicyConfig, warehouse: Warehouse, forecast_settings: ForecastSettingsResource, clock: PlanningClock
) -> dg.MaterializeResult:
    scope = region_scope(context, warehouse)
    summary = refresh_allocations(warehouse, plan_settings(config, forecast_settings, clock), clock.now(), scope)
    recommended = summary[summary["recommended"]]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(summary),
            **region_metadata(scope),
            "constrained_sku_locations": int(recommended.shape[0]),
            **plot_metadata(allocation_figures(summary)),
            "recommended_by_scenario": preview(recommended.groupby("scenario").size().rename("sku_locations").reset_index(), rows=10),
            "preview": preview(summary.drop(columns=["computed_at"]), rows=8),
        }
    )


@dg.asset(
    name="recommended_actions",
    group_name="actions",
    deps=["planning_exceptions", "allocation_scenarios"],
    partitions_def=PLANNING_REGIONS,
    owners=[TEAM_PLANNING],
    kinds=KINDS,
    description="Recommended actions per active exception, with impact, confidence and whether policy auto-approves them.",
    metadata={"dagster/column_schema": table_schema_of(tables.recommended_actions), "dagster/table_name": "recommended_actions"},
)
def recommended_actions_asset(
    context: dg.AssetExecutionContext,
    config: InventoryPolicyConfig,
    warehouse: Warehouse,
    planning_policy: PlanningPolicy,
    forecast_settings: ForecastSettingsResource,
    clock: PlanningClock,
) -> dg.MaterializeResult:
    policy = planning_policy.load()
    now = clock.now()
    scope = region_scope(context, warehouse)
    actions = refresh_actions(warehouse, policy, plan_settings(config, forecast_settings, clock), now, scope)
    # Within the autonomy limits the policy's decision is the decision: record it and queue the ERP write -
    # unless a blocking data-quality check upstream failed (RELIABILITY §21): then a person decides.
    gates = failed_gates_upstream(context.instance, code_location_asset_graph(), context.asset_key)
    for gate in gates:
        context.log.warning(f"auto-approval withheld: data-quality gate {gate} failed")
    auto_queued = auto_approve(warehouse.engine, now, failed_gates=gates, policy=policy)
    primary = actions[actions["rank"] == 1]
    decisions = actions.groupby(["action_type", "policy_decision"]).size().unstack(fill_value=0).reset_index() if len(actions) else actions
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(actions),
            **region_metadata(scope),
            "policy": policy.source,
            "auto_approved": 0 if gates else int((actions["policy_decision"] == AUTO_APPROVED).sum()),
            "auto_approved_queued_now": len(auto_queued),
            "failed_gates": "; ".join(gates) or "none",
            **plot_metadata(action_figures(actions)),  # actions, auto_approved_share, awaiting_approval (human touches), value awaiting
            "data_fresh": bool(actions["data_fresh"].all()) if len(actions) else True,
            "value_recommended": float(primary["value"].sum()),
            "by_type_and_decision": preview(decisions, rows=12),
            "preview": preview(primary[["action_id", "action_type", "quantity", "value", "confidence", "policy_decision", "expected_impact"]], rows=10),
        }
    )


defs = dg.Definitions(assets=[allocation_scenarios_asset, recommended_actions_asset])
