"""The `notify_customers` job: record one notice per customer per approved change and send the pending ones at
most once, through `demand_control.services.notices`; `resend` is the manual path for notices a human checked."""

import dagster as dg

from demand_control.resources.clock import PlanningClock
from demand_control.resources.mail import Mailer
from demand_control.resources.warehouse import Warehouse
from demand_control.services.notices import deliver_pending, notify_customers_for, requeue_notices

NOTIFY_CUSTOMERS_JOB_NAME = "notify_customers"


class NotifyCustomersConfig(dg.Config):
    action_ids: list[str] = []  # approved actions to tell customers about; empty: every one not told yet
    resend: list[str] = []  # notice ids a human checked never arrived (`sending` or `failed`): back to pending
    record: bool = True  # false: only deliver notices already pending (the sensor's retry run)


@dg.op(
    description="Record one notice per customer per approved delay, substitution or allocation, then send the pending ones at most once (SMTP, or console).",
    tags={"kind": "email"},
)
def send_customer_notices(
    context: dg.OpExecutionContext, config: NotifyCustomersConfig, warehouse: Warehouse, mailer: Mailer, clock: PlanningClock
) -> dg.Output[None]:
    del clock  # a resource, not a value: it sets the run's as-of for the services this op calls
    actor = f"notify_customers:{context.run_id}"
    warehouse.ensure_schema()  # requeue_notices and deliver_pending work on the engine directly
    if config.resend:
        moved = requeue_notices(warehouse.engine, config.resend, actor)
        context.log.warning(f"requeued {len(moved)} of {len(config.resend)} notices for resend: {moved}")
    if config.record:
        counts = notify_customers_for(warehouse, mailer, actor, config.action_ids, log=context.log.info)
    else:
        counts = deliver_pending(warehouse.engine, mailer, actor, log=context.log.info)
    context.log.info(f"customer notices via {mailer.channel}: {counts}")
    return dg.Output(None, metadata={**{k: int(v) for k, v in counts.items()}, "channel": mailer.channel})


@dg.job(
    name=NOTIFY_CUSTOMERS_JOB_NAME,
    description="Tell customers about approved changes to their orders: one email per customer per change, never twice.",
    executor_def=dg.in_process_executor,
    tags={"dagster/max_runtime": 600},
)
def notify_customers_job() -> None:
    send_customer_notices()
