"""KPIs (group `kpis`): how the coordination performs, in long form analysts chart, plan after plan.

A thin asset over `planning.kpis.coordination_kpis`, reading the exception snapshot and lifecycle, the
actions, the decisions, the outbox, the notices and the escalations. It records the figures as the newest
plan's slice of `kpi_history`, rewrites `coordination_kpis` as that slice, renders the dashboard page and
reports the overall figures as numbers Dagster plots run over run. As the plan's last step it anchors the
audit chain.
"""

import dagster as dg
import pandas as pd

from demand_control.demand_assets.exceptions import KINDS
from demand_control.infra import settings
from demand_control.planning.advisor_kpis import advisor_kpis
from demand_control.planning.kpis import coordination_kpis, headline_figures
from demand_control.resources.clock import PlanningClock
from demand_control.resources.warehouse import Warehouse
from demand_control.schema import tables
from demand_control.schema.asset_metadata import TEAM_PLANNING, plot_metadata, preview, table_schema_of
from demand_control.services import audit
from demand_control.services.dashboard import dashboard_path, write_dashboard
from demand_control.services.kpi_history import latest_plan, record_kpis


@dg.asset(
    name="coordination_kpis",
    group_name="kpis",
    deps=["planning_exceptions", "recommended_actions", "advisor_calls", "forecast_accuracy", "purchase_order_line"],  # plus the operational decision, outbox, notice and escalation tables
    owners=[TEAM_PLANNING],
    kinds=KINDS,
    description="Coordination KPIs by type, severity, owner, class and supplier: open exceptions, money at risk, overdue, cycle time, autonomy, accuracy, on-time rate.",
    metadata={"dagster/column_schema": table_schema_of(tables.coordination_kpis), "dagster/table_name": "coordination_kpis"},
)
def coordination_kpis_asset(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PlanningClock) -> dg.MaterializeResult:
    now = pd.Timestamp(clock.now())
    decisions = warehouse.read("action_decisions")
    kpis = coordination_kpis(
        warehouse.read("exception_lifecycle"),
        warehouse.read("recommended_actions"),
        warehouse.read("forecast_accuracy"),
        warehouse.read("purchase_order_line"),
        now,
        decisions=decisions,
        outbox=warehouse.read("erp_outbox"),
        notices=warehouse.read("customer_notices", columns=["notice_id", "status"]),
        escalations=warehouse.read("escalations"),
        snapshot=warehouse.read("planning_exceptions"),
    )
    # The optional advisor's acceptance, overrides and cost sit beside the other figures (none while it is off).
    advisor = advisor_kpis(warehouse.read("advisor_calls"), decisions)
    if len(advisor):
        kpis = pd.concat([kpis, advisor], ignore_index=True)
    plan = latest_plan(warehouse)
    if plan is None:
        context.log.warning("no plan in plan_runs yet: coordination_kpis written, kpi_history not (materialize projected_inventory first)")
    history = record_kpis(warehouse, kpis, plan, now)
    headline = kpis[kpis["dimension"] == "all"][["kpi", "value", "unit"]]
    # The plan's last step anchors the audit chain: its head goes to the checkpoint file outside the database
    # and into this materialization's metadata, so `audit verify` can tell a cut or rewritten chain.
    head = audit.anchor(warehouse.engine, settings.audit_checkpoint_path(warehouse.state_home), by=f"run {context.run_id}")
    page = write_dashboard(history, dashboard_path(warehouse.state_home))  # after the anchor: a full disk must not skip it
    plan_metadata = {"plan_id": plan.plan_id, "plan_as_of": plan.as_of.isoformat(), "plans_in_history": int(history["plan_id"].nunique())} if plan else {}
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(kpis), "headline": preview(headline, rows=20),
        **plot_metadata(headline_figures(kpis)),
        **plan_metadata,
        "dashboard": dg.MetadataValue.path(str(page)),
        "audit_head_sequence": head.audit_id, "audit_head_hash": head.row_hash,
        "audit_keyed_from": head.keyed_from if head.keyed_from is not None else 0,
    })


defs = dg.Definitions(assets=[coordination_kpis_asset])
