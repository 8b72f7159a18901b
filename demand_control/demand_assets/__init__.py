"""Software-defined assets, one module per stage of the flow (ingestion, forecasts, inventory, exceptions,
actions, kpis) and the digital twin's decision scorecard, each asset writing the table it is named after;
`jobs` selects stages to run together, `automation` makes the chain run itself daily, and `replan_log` is
the event path's record."""

import dagster as dg

from demand_control.demand_assets import actions, advisor, automation, exceptions, forecasts, ingestion, inventory, jobs, kpis, regions, replan_log, scorecard

_stages = dg.Definitions.merge(
    ingestion.defs, forecasts.defs, inventory.defs, exceptions.defs, actions.defs, advisor.defs, kpis.defs, scorecard.defs, regions.defs
)

defs = dg.Definitions.merge(
    dg.Definitions(assets=automation.automate(list(_stages.assets or [])), asset_checks=_stages.asset_checks, jobs=_stages.jobs, sensors=[automation.daily_plan_sensor]),
    replan_log.defs,
    jobs.defs,
)
