"""Request a `write_back` run whenever ERP outbox rows are due (new approvals, retries whose backoff has
passed, claims of a dead run whose lease expired); skip, saying why, when none are.

Run keys. Dagster never launches a run key twice, so a key must name the *work as it stands*, and must change
whenever work is left after a run with that key ended. The key is a fingerprint of the due rows at the head of
the queue (action id, status, attempts, updated_at — the rows a drain takes first) and their count:
- new work (an approval adds a row) changes the set, so it gets a new key — a watermark plus a count would
  not do: a row that fails, waits out its backoff and is due again alone would bring back an old key;
- every attempt a run makes changes the row it tried (attempts, updated_at), and a run that found the ERP
  down moves the rows it deferred out of the due set, so the next key differs after any run that did work;
- a run that ended without touching the rows (it crashed at start, or was cancelled) leaves the same
  fingerprint: the sensor then finds a run already carrying that key and requests the next key in the
  sequence (`…:2`, `…:3`), after a short pause so a run that fails at once does not spin.
So a key is never reused after a failure, and evaluating the same state twice asks for the same key. One
write-back run at a time: while one is queued or running, the sensor waits (two drains would be safe — rows
are claimed with SKIP LOCKED — but the second would find nothing).
"""

import hashlib
import json
import time

import dagster as dg
from sqlalchemy import func, select

from demand_control.infra import clock
from demand_control.schema import tables
from demand_control.ops.write_back import WRITE_BACK_JOB_NAME
from demand_control.services.outbox import WriteBackSettings, due_rows
from demand_control.resources.warehouse import Warehouse

RUN_KEY_TAG = "dagster/run_key"
# After a run that left the due rows exactly as they were, wait this long before asking again.
RERUN_PAUSE_SECONDS = 30.0
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def due_fingerprint(count: int, head: list[tuple]) -> str:
    digest = hashlib.sha256(str(count).encode())
    for action_id, status, attempts, updated_at in head:
        stamp = updated_at.replace(tzinfo=None).isoformat() if updated_at else ""
        digest.update(f"|{action_id}|{status}|{attempts}|{stamp}".encode())
    return f"write_back:{count}:{digest.hexdigest()[:16]}"


def _outbox_status(warehouse: Warehouse) -> str:
    o = tables.erp_outbox
    with warehouse.engine.connect() as conn:
        counts = dict(conn.execute(select(o.c.status, func.count()).group_by(o.c.status)).all())
        waiting = conn.execute(select(func.min(o.c.next_attempt_at)).where(o.c.status.in_(("pending", "failed")))).scalar()
    if not counts:
        return "the outbox is empty"
    text = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return text + (f"; next retry at {waiting:%Y-%m-%d %H:%M:%S} UTC" if waiting else "")


@dg.sensor(
    job_name=WRITE_BACK_JOB_NAME,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a write_back run while ERP outbox rows are due (run key: fingerprint of the due rows).",
)
def outbox_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse) -> dg.SensorResult | dg.SkipReason:
    now = clock.now()
    count, head = due_rows(warehouse, now, WriteBackSettings.lease_seconds)
    if not count:
        return dg.SkipReason(f"no ERP outbox rows due ({_outbox_status(warehouse)})")
    instance = context.instance
    running = instance.get_runs(dg.RunsFilter(job_name=WRITE_BACK_JOB_NAME, statuses=IN_FLIGHT), limit=1)
    if running:
        return dg.SkipReason(f"{count} outbox rows due; write_back run {running[0].run_id[:8]} is still {running[0].status.value.lower()}")
    base = key = due_fingerprint(count, head)
    sequence = 1
    while previous := instance.get_run_records(dg.RunsFilter(tags={RUN_KEY_TAG: key}), limit=1):
        ended = previous[0].end_time
        # Dagster stamps runs with the wall clock: the pause is measured on it, not on the planning clock.
        since_end = time.time() - ended if ended is not None else None
        if since_end is not None and since_end < RERUN_PAUSE_SECONDS:
            return dg.SkipReason(
                f"{count} outbox rows due, unchanged by run {previous[0].dagster_run.run_id[:8]} that ended "
                f"{since_end:.0f} s ago; asking again after {RERUN_PAUSE_SECONDS:.0f} s"
            )
        sequence += 1
        key = f"{base}:{sequence}"
    request = dg.RunRequest(run_key=key, tags={"demand_control/outbox_due": str(count)})
    return dg.SensorResult(run_requests=[request], cursor=json.dumps({"run_key": key, "due": count, "at": now.isoformat()}))
