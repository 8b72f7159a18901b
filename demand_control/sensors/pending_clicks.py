"""Request a `decide_pending_clicks` run while stored clicks wait undecided past the gateway's grace period and
their backoff (RELIABILITY.md §7); skip, saying why, when none do.

Run key: a fingerprint of the due clicks and their failed attempts. A run that tried them changes the
attempts (or decides them), so the next key differs; a run that ended without touching them (it crashed at
start) leaves the same fingerprint, and the sensor then asks for the next key in the sequence (`…:2`) after a
pause, as the outbox sensor does. One sweep at a time: while one is queued or running, the sensor waits.
"""

import hashlib
import json
import time

import dagster as dg

from demand_control.infra import clock
from demand_control.ops.pending_clicks import PENDING_CLICKS_JOB_NAME
from demand_control.resources.warehouse import Warehouse
from demand_control.services.pending_clicks import SweepSettings, due_pending_clicks

RUN_KEY_TAG = "dagster/run_key"
RERUN_PAUSE_SECONDS = 30.0
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def due_fingerprint(due: list[tuple[int, int]]) -> str:
    digest = hashlib.sha256("|".join(f"{click_id}:{attempts}" for click_id, attempts in due).encode())
    return f"pending_clicks:{len(due)}:{digest.hexdigest()[:16]}"


@dg.sensor(
    job_name=PENDING_CLICKS_JOB_NAME,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a decide_pending_clicks run while stored approval clicks wait undecided (run key: the due clicks and their attempts).",
)
def pending_clicks_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse) -> dg.SensorResult | dg.SkipReason:
    now = clock.now()
    due = due_pending_clicks(warehouse.engine, now, SweepSettings(alert_after=1))
    if not due:
        return dg.SkipReason("no stored click waits to be decided (past the gateway's grace period and its backoff)")
    instance = context.instance
    running = instance.get_runs(dg.RunsFilter(job_name=PENDING_CLICKS_JOB_NAME, statuses=IN_FLIGHT), limit=1)
    if running:
        return dg.SkipReason(f"{len(due)} clicks due; decide_pending_clicks run {running[0].run_id[:8]} is still {running[0].status.value.lower()}")
    base = key = due_fingerprint(due)
    sequence = 1
    while previous := instance.get_run_records(dg.RunsFilter(tags={RUN_KEY_TAG: key}), limit=1):
        ended = previous[0].end_time
        # Dagster stamps runs with the wall clock: the pause is measured on it, not on the planning clock.
        since_end = time.time() - ended if ended is not None else None
        if since_end is not None and since_end < RERUN_PAUSE_SECONDS:
            return dg.SkipReason(f"{len(due)} clicks due, unchanged by run {previous[0].dagster_run.run_id[:8]} that ended "
                                 f"{since_end:.0f} s ago; asking again after {RERUN_PAUSE_SECONDS:.0f} s")
        sequence += 1
        key = f"{base}:{sequence}"
    request = dg.RunRequest(run_key=key, tags={"demand_control/pending_clicks": str(len(due))})
    return dg.SensorResult(run_requests=[request], cursor=json.dumps({"run_key": key, "due": len(due), "at": now.isoformat()}))
