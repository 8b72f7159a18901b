"""Software-defined assets, one module per stage of the flow (ingestion, forecasts, inventory, exceptions,
actions, kpis) and the digital twin's decision scorecard, each asset writing the table it is named after;
`jobs` selects stages to run together."""

import dagster as dg

from demand_control.demand_assets import actions, advisor, exceptions, forecasts, ingestion, inventory, jobs, kpis, scorecard

defs = dg.Definitions.merge(
    ingestion.defs, forecasts.defs, inventory.defs, exceptions.defs, actions.defs, advisor.defs, kpis.defs, scorecard.defs, jobs.defs
)
