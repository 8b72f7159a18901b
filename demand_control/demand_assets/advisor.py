"""The optional advisor (group `actions`): after the plan has recommended its actions, the configured model
reviews the most valuable cases; what passes its checks is applied and every call recorded. Thin asset over
`services.advisor.service.advise_cases`; without DEMAND_CONTROL_ADVISOR_MODEL it does nothing."""

import dagster as dg

from demand_control.demand_assets.exceptions import KINDS
from demand_control.quality.gates import code_location_asset_graph, failed_gates_upstream
from demand_control.resources.advisor import AdvisorResource
from demand_control.resources.clock import PlanningClock
from demand_control.resources.planning_policy import PlanningPolicy
from demand_control.resources.warehouse import Warehouse
from demand_control.schema import tables
from demand_control.schema.asset_metadata import TEAM_PLANNING, table_schema_of
from demand_control.services.advisor.service import advise_cases


@dg.asset(
    name="advisor_calls",
    group_name="actions",
    deps=["recommended_actions"],
    owners=[TEAM_PLANNING],
    kinds=KINDS,
    description="Every call of the optional model-backed advisor on the plan's cases: what it answered, what was used, cost and latency.",
    metadata={"dagster/column_schema": table_schema_of(tables.advisor_calls), "dagster/table_name": "advisor_calls"},
)
def advisor_calls_asset(context: dg.AssetExecutionContext, warehouse: Warehouse, planning_policy: PlanningPolicy,
                        advisor: AdvisorResource, clock: PlanningClock) -> dg.MaterializeResult:
    settings = advisor.settings()
    if settings is None:
        return dg.MaterializeResult(metadata={"advisor": "off (DEMAND_CONTROL_ADVISOR_MODEL unset)",
                                              "dagster/row_count": warehouse.count("advisor_calls")})
    # The advisor's auto-approvals honour the same blocking data-quality gates as the planner's.
    gates = failed_gates_upstream(context.instance, code_location_asset_graph(), context.asset_key)
    summary = advise_cases(warehouse, planning_policy.load(), clock.now(), settings=settings, failed_gates=gates)
    if summary.stepped_aside:
        context.log.warning(f"advisor stepped aside: {summary.stepped_aside}")
    return dg.MaterializeResult(metadata={**summary.as_metadata(), "dagster/row_count": warehouse.count("advisor_calls")})


defs = dg.Definitions(assets=[advisor_calls_asset])
