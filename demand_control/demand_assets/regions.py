"""Planning regions as Dagster partitions: the forecasts → inventory → exceptions → actions assets are partitioned by
region (a region groups DCs: `location.region`), a full plan is a run per region (a backfill), and the
one global step, `transfer_sources`, decides what crosses regions from the regions' summaries.

A run with a region partition reads and replaces only its DCs' rows; a run without one (the demo, the
digital twin, `plan_decisions` launched as before) plans the whole panel, as it always did. The partition
keys are static (Dagster's partitions are known when the code location loads): the regions listed in
DEMAND_CONTROL_PLANNING_REGIONS, else the sample distributor's.

The engine that runs a region's steps is chosen when the code location loads, too
(DEMAND_CONTROL_REGION_EXECUTOR): Dagster's multiprocess executor, or the dagster-dask executor on a remote
Dask scheduler (DEMAND_CONTROL_REGION_DASK_SCHEDULER) or a LocalCluster of the run's own.
"""


import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition  # what define_asset_job returns; not exported

from demand_control.infra import settings
from demand_control.resources.clock import PlanningClock
from demand_control.resources.warehouse import Warehouse
from demand_control.sample.catalogue import REGIONS
from demand_control.schema import tables
from demand_control.schema.asset_metadata import TEAM_PLANNING, preview, table_schema_of
from demand_control.services.regions import RegionScope, refresh_cross_region

PLANNING_REGIONS = dg.StaticPartitionsDefinition(list(settings.planning_regions(REGIONS)))
REGION_TAG = "demand_control/region"
PLAN_REGION_JOB_NAME = "plan_region"
# A run over every region's partition at once is the whole-panel plan (the `plan_decisions` job's default).
WHOLE_PANEL_TAGS = {
    "dagster/asset_partition_range_start": PLANNING_REGIONS.get_partition_keys()[0],
    "dagster/asset_partition_range_end": PLANNING_REGIONS.get_partition_keys()[-1],
}


def region_scope(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext, warehouse: Warehouse) -> RegionScope | None:
    """The regions of the run's partitions, or None when the run covers every region (or has no partition):
    the whole panel, planned in one go as before regions existed."""
    if not (context.has_partition_key or context.has_partition_key_range):
        return None
    keys = list(context.partition_keys)
    if set(keys) >= set(PLANNING_REGIONS.get_partition_keys()):
        return None
    scope = RegionScope.of(warehouse, keys)
    if not scope.location_ids:
        context.log.warning(f"no location of the location table is in {scope.name}: nothing to plan")
    return scope


def region_metadata(scope: RegionScope | None) -> dict[str, object]:
    """What a materialization says about its regions (empty for a whole-panel run)."""
    if scope is None:
        return {}
    return {"region": scope.name, "region_dcs": ", ".join(scope.location_ids) or "none"}


@dg.asset(
    name="transfer_sources",
    group_name="inventory",
    deps=["projected_inventory"],
    owners=[TEAM_PLANNING],
    kinds={"pandas", "sqlalchemy"},
    description="The cross-region step: each SKU's spare shared among the DCs of any region short of it (a sender and the units allotted to each, fair share); and the panel-wide rank of every SKU-location's forecast value.",
    metadata={"dagster/column_schema": table_schema_of(tables.transfer_sources), "dagster/table_name": "transfer_sources"},
)
def transfer_sources_asset(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PlanningClock) -> dg.MaterializeResult:
    decided = refresh_cross_region(warehouse, clock.now())
    sources = decided.transfer_sources
    across = sources[sources["region"] != sources["from_region"]]
    shared = sources.groupby(["sku", "from_location_id"])["location_id"].transform("size") > 1
    context.log.info(f"{len(sources)} short SKU-locations have a sender, {len(across)} of them in another region, {int(shared.sum())} sharing a sender's spare")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(sources),
            "across_regions": len(across),
            "sharing_a_sender": int(shared.sum()),
            "units_allotted": float(sources["allotted"].sum()),
            "sku_locations_ranked_by_value": len(decided.value_ranks),
            "by_region_pair": preview(across.groupby(["from_region", "region"]).size().rename("sku_locations").reset_index(), rows=25),
            "preview": preview(sources.drop(columns=["decided_at"]), rows=10),
        }
    )


def region_executor() -> dg.ExecutorDefinition:
    """The executor of the plan_region job, from the environment (see settings.region_executor_name).

    A Dask run submits each step to the cluster as a task whose worker rebuilds the job from the code
    location and writes its events to the Dagster instance: the workers need this package installed, the
    run's environment variables, and access to the instance's storage and the warehouse."""
    if settings.region_executor_name() == "multiprocess":
        return dg.multiprocess_executor
    from dagster_dask import dask_executor

    address = settings.region_dask_scheduler()
    # Without an address each run starts a LocalCluster of its own (dagster-dask gives each worker one
    # thread: Dagster's step execution is not thread-safe).
    cluster = {"existing": {"address": address}} if address else {"local": {}}
    return dask_executor.configured({"cluster": cluster}, name="dask")


def define_plan_region_job(executor_def: dg.ExecutorDefinition) -> UnresolvedAssetJobDefinition:
    """The plan_region job on `executor_def`."""
    return dg.define_asset_job(
        PLAN_REGION_JOB_NAME,
        # One region's re-plan, from its forecast to its actions, with the global step's last decision; a full
        # plan is the backfill of the forecast and decision assets over every region (Dagster runs the global
        # step once, between the regions' projections and their exceptions).
        selection=dg.AssetSelection.groups("forecasts", "inventory", "exceptions", "actions") - dg.AssetSelection.assets("transfer_sources"),
        partitions_def=PLANNING_REGIONS,
        config=dg.PartitionedConfig(
            partitions_def=PLANNING_REGIONS,
            run_config_for_partition_key_fn=lambda _key: {},
            # The UI's run list, run monitoring and the run coordinator's tag concurrency limits go by region.
            tags_for_partition_key_fn=lambda key: {REGION_TAG: key},
        ),
        executor_def=executor_def,
        description="Re-plan one planning region (a partition): demand profile, forecast and backtest, inventory policy, projection, exceptions, allocation and actions of its DCs only.",
    )


plan_region_job = define_plan_region_job(region_executor())

defs = dg.Definitions(assets=[transfer_sources_asset], jobs=[plan_region_job])
