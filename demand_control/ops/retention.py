"""The `redact_personal_data` job, daily: personal data past the policy's retention period is redacted, through
`demand_control.services.retention` (which keeps the digests the audit chain hashes)."""

import dagster as dg

from demand_control.resources.clock import PlanningClock
from demand_control.resources.planning_policy import PlanningPolicy
from demand_control.resources.warehouse import Warehouse
from demand_control.services.retention import redact_personal_data

RETENTION_JOB_NAME = "redact_personal_data"
RETENTION_SCHEDULE_NAME = "redact_personal_data_daily"


@dg.op(description="Redact personal data (inbox payloads, notification texts, customer notice addresses and bodies) older than the policy's retention.personal_data_days.",
       tags={"kind": "governance"})
def redact_expired_personal_data(
    context: dg.OpExecutionContext, warehouse: Warehouse, planning_policy: PlanningPolicy, clock: PlanningClock
) -> dg.Output[None]:
    days = planning_policy.load().retention.personal_data_days
    report = redact_personal_data(warehouse.engine, days, now=clock.now(), actor=f"{RETENTION_JOB_NAME}:{context.run_id}")
    context.log.info(report.summary())
    return dg.Output(None, metadata={"personal_data_days": days, "cutoff": report.cutoff.isoformat(),
                                     "inbox_events": report.inbox_events, "notifications": report.notifications,
                                     "customer_notices": report.customer_notices})


@dg.job(
    name=RETENTION_JOB_NAME,
    description="Redact personal data past the policy's retention period; ids, statuses and digests stay, so the KPIs and the audit chain are unaffected.",
    executor_def=dg.in_process_executor,
    tags={"dagster/max_runtime": 900},
)
def redact_personal_data_job() -> None:
    redact_expired_personal_data()


redact_personal_data_schedule = dg.ScheduleDefinition(
    name=RETENTION_SCHEDULE_NAME,
    job=redact_personal_data_job,
    cron_schedule="30 2 * * *",  # daily at night, when the gateway and the plans are quiet
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily: redact personal data past the policy's retention period.",
)
