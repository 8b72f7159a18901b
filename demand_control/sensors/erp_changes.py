"""Watch Tryton's order and purchase lines: `erp_change_sensor` asks the ERP what changed since its cursor (the
newest ERP timestamp already requested) and requests one `sync_erp_orders` run per batch of changes, tagged
with the SKU-locations it saw change; `sensors.erp_sync_replan` then re-plans them. It writes nowhere.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg

from demand_control.demand_assets.jobs import ERP_SYNC_JOB_NAME
from demand_control.resources.erp.client import TrytonServerError, TrytonTransportError, TrytonUnavailableError
from demand_control.resources.erp.write import TrytonErp

# Lines listed per query (four queries per evaluation). A burst beyond it still gets one sync run: the run
# extracts everything after its own cursor; only the SKU-location tag degrades to "many".
PAGE = 500
# Per-request timeout towards Tryton: at most six requests (login, preferences, four reads) stay far below the
# 60 s evaluation limit even when the ERP hangs.
ERP_TIMEOUT_SECONDS = 5.0
# Run tags live in the run storage and the UI: beyond this the tag says "many" and the replan reads the
# sync run's own extracts instead.
MAX_TAG_CHARS = 1000
SKU_LOCATIONS_TAG = "demand_control/erp_sku_locations"
CHANGED_LINES_TAG = "demand_control/erp_changed_lines"
MANY = "many"
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def sku_locations_tag(sku_locations: set[str], complete: bool) -> str:
    """The changed "SKU@LOCATION"s as one tag value, or "many" when they are incomplete or too long."""
    value = ",".join(sorted(sku_locations))
    return value if complete and len(value) <= MAX_TAG_CHARS else MANY


def parse_sku_locations(tag: str | None) -> set[str] | None:
    """The SKU-locations a sync run's tag names; None when it names none precisely ("many" or absent)."""
    if tag is None or tag == MANY:
        return None
    return {s for s in tag.split(",") if s}


@dg.sensor(
    job_name=ERP_SYNC_JOB_NAME,
    minimum_interval_seconds=10,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Requests one sync_erp_orders run per batch of sale and purchase lines changed in Tryton "
    "(cursor: newest ERP timestamp requested). Off by default (it needs a reachable Tryton): with DEMAND_CONTROL_SOURCE=tryton, "
    "turn it on in the UI (Automation → erp_change_sensor).",
)
def erp_change_sensor(context: dg.SensorEvaluationContext, erp: TrytonErp) -> dg.SensorResult | dg.SkipReason:
    state = json.loads(context.cursor) if context.cursor else None
    # One sync at a time: concurrent syncs would merge the same staged tables from the same cursor. The
    # cursor stays put, so what changes meanwhile is requested as soon as the running sync is done.
    running = context.instance.get_runs(filters=dg.RunsFilter(job_name=ERP_SYNC_JOB_NAME, statuses=IN_FLIGHT), limit=1)
    if state is not None and running:
        return dg.SkipReason(
            f"sync run {running[0].run_id} is {running[0].status.value}; ERP changes after {state['since']} wait for it"
        )
    since = datetime.fromisoformat(state["since"]) if state and state.get("since") else None
    try:
        changes = erp.changed_order_lines(since, 1 if state is None else PAGE, timeout_seconds=ERP_TIMEOUT_SECONDS)
    except (TrytonTransportError, TrytonUnavailableError, TrytonServerError) as exc:
        return dg.SkipReason(f"Tryton at {erp.url} (database {erp.database}) not reachable: {exc}; will ask again")
    newest: datetime | None = changes["newest"]

    if state is None:
        # First start: begin at the ERP's own newest change (its clock, not ours), so nothing that changed
        # before the sensor was switched on is re-synced or re-planned.
        start = newest.isoformat() if newest else None
        return dg.SensorResult(
            skip_reason=dg.SkipReason(
                f"first evaluation: watching {erp.describe()} for order and purchase lines changed after "
                f"{start or 'the first line it records'}; earlier changes are not re-planned"
            ),
            cursor=json.dumps({"since": start}),
        )
    if not changes["lines"] or newest is None:
        return dg.SkipReason(
            f"no sale or purchase line changed in {erp.describe()} since {since.isoformat() if since else 'the start'}"
        )

    sku_locations = {f"{line['sku']}@{line['location_id']}" for line in changes["lines"] if line["sku"] and line["location_id"]}
    run_key = f"erp:{newest.isoformat()}"
    context.log.info(
        f"{len(changes['lines'])} lines changed in {erp.describe()} up to {newest.isoformat()}"
        + (" (more than one page: the sync run extracts them all)" if changes["truncated"] else "")
    )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                # The newest ERP timestamp names the batch: the same changes give the same key, so a tick that
                # is evaluated again (its cursor not committed) never starts a second sync for them.
                run_key=run_key,
                tags={
                    SKU_LOCATIONS_TAG: sku_locations_tag(sku_locations, complete=not changes["truncated"]),
                    CHANGED_LINES_TAG: str(len(changes["lines"])) + ("+" if changes["truncated"] else ""),
                },
            )
        ],
        cursor=json.dumps({"since": newest.astimezone(UTC).isoformat()}),
    )
