"""After each successful `sync_erp_orders` run, one `replan` run scoped to the SKU-locations whose order or
purchase lines that sync extracted (or the ERP change sensor saw change). It writes nowhere."""

from __future__ import annotations

import dagster as dg
from sqlalchemy import select

from demand_control.demand_assets.jobs import sync_erp_orders_job
from demand_control.ops.replan import replan_job
from demand_control.resources.warehouse import Warehouse
from demand_control.schema import tables
from demand_control.sensors.erp_changes import SKU_LOCATIONS_TAG, parse_sku_locations

RAW_ORDER_TABLES = ("raw_customer_order_line", "raw_purchase_order_line")


def extracted_sku_locations(instance: dg.DagsterInstance, run_id: str, warehouse: Warehouse) -> tuple[set[str], list[str]]:
    """The "SKU@LOCATION"s of the order and purchase lines a sync run extracted, from the raw tables' rows of
    the loads it made (their load_id is in the run's materialization metadata), and notes on loads whose
    rows a later extract has already replaced."""
    loads: dict[str, int] = {}
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.asset_materialization
        if materialization is None or materialization.asset_key.to_user_string() not in RAW_ORDER_TABLES:
            continue
        load_id = materialization.metadata.get("load_id")
        if load_id is not None:
            loads[materialization.asset_key.to_user_string()] = int(load_id.value)
    found: set[str] = set()
    notes: list[str] = []
    with warehouse.engine.connect() as conn:
        for name, load_id in sorted(loads.items()):
            raw = tables.metadata.tables[name]
            rows = conn.execute(
                select(raw.c.sku, raw.c.location_id, raw.c.change).where(raw.c.load_id == load_id)
            ).all()
            found |= {f"{sku}@{location}" for sku, location, change in rows if change == "upsert" and sku and location}
            extracted = conn.execute(
                select(tables.feed_load.c.rows_extracted).where(tables.feed_load.c.load_id == load_id)
            ).scalar_one_or_none()
            if not rows and extracted:
                notes.append(f"{name} load {load_id} was replaced by a later extract")
    return found, notes


@dg.run_status_sensor(
    name="erp_sync_replan",
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[sync_erp_orders_job],
    request_job=replan_job,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After each successful sync_erp_orders run, requests one replan run for the SKU-locations "
    "whose order or purchase lines that sync extracted or the ERP change sensor saw change.",
)
def erp_sync_replan(context: dg.RunStatusSensorContext, warehouse: Warehouse) -> dg.RunRequest | dg.SkipReason:
    run = context.dagster_run
    extracted, notes = extracted_sku_locations(context.instance, run.run_id, warehouse)
    # The sensor's tag adds what the extracts cannot show: the SKU-location of a removed (cancelled,
    # shipped) line, whose raw row carries only its key, and lines whose change was on the order header.
    tagged = parse_sku_locations(run.tags.get(SKU_LOCATIONS_TAG)) or set()
    sku_locations = sorted(extracted | tagged)
    if not sku_locations:
        return dg.SkipReason(
            f"sync run {run.run_id} extracted no changed order or purchase line"
            + (f" ({'; '.join(notes)}, and its tag names no SKU-location)" if notes else "")
        )
    if notes:
        context.log.warning(f"sync run {run.run_id}: {'; '.join(notes)}; re-planning what its tag names as well")
    return dg.RunRequest(
        run_key=f"erp-replan:{run.run_id}",
        run_config={
            "ops": {"replan_from_inbox": {"config": {"inbox_from": 0, "inbox_to": 0, "sku_locations": sku_locations}}}
        },
        tags={"demand_control/erp_sync_run": run.run_id, "demand_control/sku_location_count": str(len(sku_locations))},
    )
