"""Tell customers soon after an action is approved: one `notify_customers` run per batch of newly approved
delay, substitution and allocation actions, and a retry run for notices a mail server left pending."""

import hashlib
import json
from datetime import datetime, timedelta

import dagster as dg

from demand_control.infra import clock
from demand_control.ops.customer_notices import NOTIFY_CUSTOMERS_JOB_NAME
from demand_control.resources.warehouse import Warehouse
from demand_control.services.notices import LOOKBACK_SECONDS, new_decisions, retry_due

SENSOR_BATCH = 100
MAX_BATCHES_PER_TICK = 20
# Notices left `pending` by a refused or unreachable server are retried by one run per this many seconds.
RETRY_SECONDS = 900


@dg.sensor(
    job_name=NOTIFY_CUSTOMERS_JOB_NAME,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a notify_customers run for each batch of newly approved delay, substitution and allocation actions "
    "(cursor: decided_at high-water mark plus the action ids requested near it), and a retry run for notices left pending.",
)
def customer_notice_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse) -> dg.SensorResult | dg.SkipReason:
    cursor = json.loads(context.cursor) if context.cursor else {}
    since = datetime.fromisoformat(cursor["decided_at"]) if cursor.get("decided_at") else None
    seen: dict[str, str] = dict(cursor.get("seen", {}))  # action id → its decided_at (ISO)
    found = new_decisions(warehouse, since, seen, SENSOR_BATCH * MAX_BATCHES_PER_TICK)
    now = clock.now()
    requests = []
    for start in range(0, len(found), SENSOR_BATCH):
        ids = sorted(a for a, _ in found[start : start + SENSOR_BATCH])
        batch = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
        # The run key is the batch's action ids: the same batch is requested once, even across ticks.
        requests.append(dg.RunRequest(
            run_key=f"customer-notices:{batch}",
            run_config={"ops": {"send_customer_notices": {"config": {"action_ids": ids}}}},
            tags={"demand_control/notice_batch": batch, "demand_control/actions": str(len(ids))},
        ))
    retry = retry_due(warehouse, now) if not requests else 0
    if retry:
        # No new decisions, but notices a server refused for now: one retry run per window.
        window = int(now.timestamp()) // RETRY_SECONDS
        requests.append(dg.RunRequest(run_key=f"customer-notices:retry:{window}", run_config={"ops": {"send_customer_notices": {"config": {"record": False}}}},
                                      tags={"demand_control/notice_retry": str(window)}))
    if not requests:
        return dg.SkipReason(f"no approved customer-facing actions decided since {since.isoformat() if since else 'the start'} without a notice")
    # Remember what was requested within the lookback of the new high-water mark; forget the rest, which
    # the query no longer reaches.
    requested = {**seen, **{a: d.isoformat() for a, d in found}}
    high = max([d for _, d in found] + ([since] if since else [])) if (since or found) else None
    floor = high - timedelta(seconds=LOOKBACK_SECONDS) if high else None
    keep = {a: d for a, d in requested.items() if floor is None or datetime.fromisoformat(d) >= floor}
    return dg.SensorResult(run_requests=requests, cursor=json.dumps({"decided_at": high.isoformat() if high else None, "seen": keep}, sort_keys=True))
