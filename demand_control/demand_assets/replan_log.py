"""`replan_log`: the event path's record, an asset the `replan` job materializes (it has no function of its own).

Why a separate asset: a replan rewrites the rows of a few SKU-locations in `projected_inventory`,
`planning_exceptions`, `allocation_scenarios` and `recommended_actions`. Had it materialized those assets, their latest
materialization (what the UI shows first, what row-count plots and staleness read) would be the replan's
one SKU-location instead of the full plan, and everything downstream would turn "unsynced". So the replan
job materializes `replan_log` (one row per replan, with a row count) and only *observes* those four
tables (an `AssetObservation` with the scope's rows and the table's), which the UI lists on their pages
without replacing the full plan's materialization. A partition per SKU-location would make every full plan
a backfill of hundreds of partitions of tables written in one transaction.
"""

import dagster as dg

from demand_control.demand_assets.exceptions import KINDS
from demand_control.schema import tables
from demand_control.schema.asset_metadata import TEAM_PLANNING, table_schema_of

REPLAN_LOG = "replan_log"

# Not executable on its own (no function): only the replan job reports it, as a materialization.
replan_log = dg.AssetsDefinition(specs=[dg.AssetSpec(
    REPLAN_LOG,
    group_name="exceptions",
    owners=[TEAM_PLANNING],
    kinds=KINDS,
    description="One row per event-scoped replan: the inbox events it applied, the SKU-locations it re-planned, the exceptions it opened, updated or resolved.",
    metadata={"dagster/column_schema": table_schema_of(tables.replan_log), "dagster/table_name": REPLAN_LOG},
)])

defs = dg.Definitions(assets=[replan_log])
