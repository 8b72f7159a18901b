"""Software-defined assets, one module per stage of the flow; each asset writes the table it is named after."""

import dagster as dg

from demand_control.demand_assets.forecasts import forecast_assets
from demand_control.demand_assets.ingestion import raw_assets, staged_assets
from demand_control.demand_assets.inventory import inventory_assets
from demand_control.quality.forecast_checks import forecast_checks
from demand_control.resources.forecast import ForecastSettingsResource

INGEST_JOB_NAME = "ingest_signals"
FORECAST_JOB_NAME = "forecast_demand"
INVENTORY_JOB_NAME = "plan_inventory"

ingest_signals_job = dg.define_asset_job(
    INGEST_JOB_NAME,
    selection=dg.AssetSelection.groups("signals", "staged"),
    description="Extract every feed, validate it against its contract and refresh the staged tables.",
)

forecast_demand_job = dg.define_asset_job(
    FORECAST_JOB_NAME,
    selection=dg.AssetSelection.groups("forecasts"),
    description="Profile the staged demand history, forecast every SKU-location and backtest the forecast.",
)

plan_inventory_job = dg.define_asset_job(
    INVENTORY_JOB_NAME,
    selection=dg.AssetSelection.groups("inventory"),
    description="Set each SKU-location's inventory policy and project its available balance over the horizon.",
)

defs = dg.Definitions(
    assets=[*raw_assets, *staged_assets, *forecast_assets, *inventory_assets],
    asset_checks=forecast_checks,
    jobs=[ingest_signals_job, forecast_demand_job, plan_inventory_job],
    resources={"forecast_settings": ForecastSettingsResource()},
)
