"""Re-plan as soon as verified events land in the inbox: one `replan` run per batch of inbox ids."""

import os
import time

import dagster as dg
from sqlalchemy import func, select

from demand_control.schema import tables
from demand_control.ops.replan import REPLAN_JOB_NAME
from demand_control.resources.warehouse import Warehouse

# Events per run: small batches keep one event's latency low; a backlog drains in a few dozen runs.
BATCH = 200
# Batches requested per evaluation: a 10k backlog is paged through in one tick, far below the 60 s limit.
MAX_BATCHES_PER_TICK = 100
# The daemon evaluates sensors at most every 5 s. An idle evaluation watches the inbox for this long before
# it skips, so an event that arrives meanwhile is requested within a poll interval instead of waiting for
# the next tick; still far below the 60 s evaluation limit.
WAIT_ENV = "DEMAND_CONTROL_INBOX_WAIT_SECONDS"
DEFAULT_WAIT_SECONDS = 4.0
POLL_SECONDS = 0.1


def wait_seconds() -> float:
    return float(os.environ.get(WAIT_ENV) or DEFAULT_WAIT_SECONDS)


def pending_batches(warehouse: Warehouse, after: int, batch: int = BATCH, max_batches: int = MAX_BATCHES_PER_TICK) -> list[tuple[int, int]]:
    """(first, last) inbox ids of up to `max_batches` batches of events stored after id `after`, in order."""
    inbox = tables.inbox_events
    warehouse.ensure_schema()  # read on the engine directly
    with warehouse.engine.connect() as conn:
        ids = conn.execute(
            select(inbox.c.inbox_id).where(inbox.c.inbox_id > after).order_by(inbox.c.inbox_id).limit(batch * max_batches)
        ).scalars().all()
    return [(ids[i], ids[min(i + batch, len(ids)) - 1]) for i in range(0, len(ids), batch)]


@dg.sensor(
    job_name=REPLAN_JOB_NAME,
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a replan run for each new batch of verified events in the inbox (cursor: last inbox id requested).",
)
def inbox_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse) -> dg.SensorResult | dg.SkipReason:
    after = int(context.cursor or 0)
    batches = pending_batches(warehouse, after)
    deadline = time.monotonic() + wait_seconds()
    while not batches and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        batches = pending_batches(warehouse, after)
    if not batches:
        with warehouse.engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(tables.inbox_events)).scalar_one()
        return dg.SkipReason(f"no inbox events after id {after} ({stored} stored in all)")
    requests = [
        # The run key is the batch's id range: a batch is requested once, even across failed ticks.
        dg.RunRequest(
            run_key=f"inbox:{first}-{last}",
            run_config={"ops": {"replan_from_inbox": {"config": {"inbox_from": first, "inbox_to": last}}}},
            tags={"demand_control/inbox": f"{first}-{last}"},
        )
        for first, last in batches
    ]
    return dg.SensorResult(run_requests=requests, cursor=str(batches[-1][1]))
