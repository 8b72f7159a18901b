"""Software-defined assets, one module per stage of the flow; each asset writes the table it is named after."""

import dagster as dg

from demand_control.demand_assets.ingestion import raw_assets, staged_assets

INGEST_JOB_NAME = "ingest_signals"

ingest_signals_job = dg.define_asset_job(
    INGEST_JOB_NAME,
    selection=dg.AssetSelection.groups("signals", "staged"),
    description="Extract every feed, validate it against its contract and refresh the staged tables.",
)

defs = dg.Definitions(assets=[*raw_assets, *staged_assets], jobs=[ingest_signals_job])
