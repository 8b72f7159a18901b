"""Re-plan as soon as verified events land in the inbox: one `replan` run per batch of inbox ids; and again,
under a new run key, for a batch whose run failed (RELIABILITY.md §15).

The cursor is the last inbox id requested, so a batch is requested once. When its run fails, its events stay
unprocessed (`processed_at` empty) behind the cursor: once they are $DEMAND_CONTROL_INBOX_RETRY_SECONDS (60) old and no replan
run covering them is queued or running, the sensor requests them again as `inbox-retry:{first}-{last}:{n}`
(n = 1, 2, … up to `MAX_RETRIES`; each retry waits as long after the previous one ended). A run
key is never reused; a batch that fails every retry is left for a person (the run-failure notice names it).
"""

import os
import time
from datetime import timedelta

import dagster as dg
from sqlalchemy import and_, func, select

from demand_control.infra import clock
from demand_control.infra.settings import env_number
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


# How old unprocessed events behind the cursor must be, and how long after a failed retry, before they are
# asked again (a replan takes seconds; a minute leaves a queued run time to start).
RETRY_ENV = "DEMAND_CONTROL_INBOX_RETRY_SECONDS"
DEFAULT_RETRY_SECONDS = 60.0
MAX_RETRIES = 5


def retry_after_seconds() -> float:
    seconds = env_number(RETRY_ENV, DEFAULT_RETRY_SECONDS, float, "a number of seconds")
    if seconds < 0:
        raise ValueError(f"{RETRY_ENV} must not be negative, got {os.environ.get(RETRY_ENV)!r}")
    return seconds
INBOX_TAG = "demand_control/inbox"
RUN_KEY_TAG = "dagster/run_key"
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def stranded_batches(warehouse: Warehouse, up_to: int, older_than_seconds: float, batch: int = BATCH) -> list[tuple[int, int]]:
    """(first, last) of batches of events already requested (id ≤ `up_to`) that no run processed and that
    were stored more than `older_than_seconds` ago: their run failed, or was lost."""
    inbox = tables.inbox_events
    cutoff = clock.now() - timedelta(seconds=older_than_seconds)
    with warehouse.engine.connect() as conn:
        ids = conn.execute(select(inbox.c.inbox_id).where(and_(
            inbox.c.inbox_id <= up_to, inbox.c.processed_at.is_(None), inbox.c.received_at <= cutoff,
        )).order_by(inbox.c.inbox_id).limit(batch * MAX_BATCHES_PER_TICK)).scalars().all()
    return [(ids[i], ids[min(i + batch, len(ids)) - 1]) for i in range(0, len(ids), batch)]


def _covered(tag: str | None) -> tuple[int, int] | None:
    try:
        first, last = (int(part) for part in (tag or "").split("-"))
    except ValueError:
        return None
    return first, last


def retry_requests(instance: dg.DagsterInstance, stranded: list[tuple[int, int]], pause_seconds: float) -> tuple[list[dg.RunRequest], list[str]]:
    """Run requests re-processing the stranded batches under new keys, and why others wait."""
    in_flight = [_covered(run.tags.get(INBOX_TAG)) for run in instance.get_runs(dg.RunsFilter(job_name=REPLAN_JOB_NAME, statuses=IN_FLIGHT), limit=200)]
    requests, waiting = [], []
    for first, last in stranded:
        if any(span and span[0] <= last and first <= span[1] for span in in_flight):
            waiting.append(f"{first}-{last}: a replan run covering them is still queued or running")
            continue
        for attempt in range(1, MAX_RETRIES + 1):
            key = f"inbox-retry:{first}-{last}:{attempt}"
            previous = instance.get_run_records(dg.RunsFilter(tags={RUN_KEY_TAG: key}), limit=1)
            if not previous:
                requests.append(dg.RunRequest(
                    run_key=key,
                    run_config={"ops": {"replan_from_inbox": {"config": {"inbox_from": first, "inbox_to": last}}}},
                    tags={INBOX_TAG: f"{first}-{last}", "demand_control/inbox_retry": str(attempt)},
                ))
                break
            ended = previous[0].end_time
            # Dagster stamps runs with the wall clock: the pause is measured on it, not on the planning clock.
            if ended is None or time.time() - ended < pause_seconds:
                waiting.append(f"{first}-{last}: retry {attempt} ended less than {pause_seconds:.0f} s ago")
                break
        else:
            waiting.append(f"{first}-{last}: failed {MAX_RETRIES} retries; re-execute a failed run once the cause is fixed")
    return requests, waiting


@dg.sensor(
    job_name=REPLAN_JOB_NAME,
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a replan run for each new batch of verified events in the inbox (cursor: last inbox id requested), and again under a new key for a batch whose run failed.",
)
def inbox_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse) -> dg.SensorResult | dg.SkipReason:
    after = int(context.cursor or 0)
    pause = retry_after_seconds()
    retries, waiting = retry_requests(context.instance, stranded_batches(warehouse, after, pause), pause) if after else ([], [])
    for reason in waiting:
        context.log.info(f"inbox events {reason}")
    if retries:
        # Re-process first; new events are requested on the next tick (a second later).
        return dg.SensorResult(run_requests=retries, cursor=str(after))
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
            tags={INBOX_TAG: f"{first}-{last}"},
        )
        for first, last in batches
    ]
    return dg.SensorResult(run_requests=requests, cursor=str(batches[-1][1]))
