"""The asset jobs: ingestion, forecasting, inventory planning, the full decision plan, and the ERP order sync.

Each selects asset groups (the stages of the flow); the sensors start some of them (file drop → ingestion,
ERP changes → order sync, a finished plan → notify owners).
"""

import dagster as dg

from demand_control.demand_assets.regions import WHOLE_PANEL_TAGS

INGEST_JOB_NAME = "ingest_signals"
FORECAST_JOB_NAME = "forecast_demand"
INVENTORY_JOB_NAME = "plan_inventory"
DECISION_JOB_NAME = "plan_decisions"
ERP_SYNC_JOB_NAME = "sync_erp_orders"

ingest_signals_job = dg.define_asset_job(
    INGEST_JOB_NAME,
    selection=dg.AssetSelection.groups("signals", "staged"),
    description="Extract every feed, validate it against its contract and refresh the staged tables.",
)

forecast_demand_job = dg.define_asset_job(
    FORECAST_JOB_NAME,
    selection=dg.AssetSelection.groups("forecasts"),
    description="Profile the staged demand history, forecast every SKU-location and backtest the forecast.",
    # The whole panel in one engine run: every region's partition (one region alone: the plan_region job).
    tags=WHOLE_PANEL_TAGS,
)

plan_inventory_job = dg.define_asset_job(
    INVENTORY_JOB_NAME,
    selection=dg.AssetSelection.groups("inventory"),
    description="Set each SKU-location's inventory policy and project its available balance over the horizon.",
    tags=WHOLE_PANEL_TAGS,
)

plan_decisions_job = dg.define_asset_job(
    DECISION_JOB_NAME,
    # The decision scorecard is a KPI too, but a digital-twin replay of a year: it runs in its own job.
    selection=dg.AssetSelection.groups("inventory", "exceptions", "actions", "kpis") - dg.AssetSelection.assets("decision_scorecard"),
    description="Re-plan inventory, raise and route the planning exceptions, recommend actions with their policy decision, and refresh the KPIs.",
    # The whole panel in one run: every region's partition (one region at a time: the plan_region job).
    tags=WHOLE_PANEL_TAGS,
)

sync_erp_orders_job = dg.define_asset_job(
    ERP_SYNC_JOB_NAME,
    selection=dg.AssetSelection.assets(
        "raw_customer_order_line", "customer_order_line", "raw_purchase_order_line", "purchase_order_line"
    ),
    description="Pull the order and purchase lines that changed in the ERP since the last cursor (the ERP change sensor starts it).",
)


defs = dg.Definitions(jobs=[ingest_signals_job, forecast_demand_job, plan_inventory_job, plan_decisions_job, sync_erp_orders_job])
