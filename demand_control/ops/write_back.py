"""The `write_back` job: drain the ERP outbox into the ERP through `demand_control.services.outbox`, exactly
once per approved action; `dry_run` only reports what is due."""

import dagster as dg

from demand_control.resources.clock import PlanningClock
from demand_control.resources.erp.base import Erp
from demand_control.resources.warehouse import Warehouse
from demand_control.services.outbox import WriteBackSettings, drain_outbox, due_rows

WRITE_BACK_JOB_NAME = "write_back"


class WriteBackConfig(dg.Config):
    limit: int = 500  # rows per run; the sensor requests another run while rows are due
    max_attempts: int = WriteBackSettings.max_attempts
    backoff_seconds: float = WriteBackSettings.backoff_seconds
    backoff_max_seconds: float = WriteBackSettings.backoff_max_seconds
    lease_seconds: float = WriteBackSettings.lease_seconds
    breaker_failures: int = WriteBackSettings.breaker_failures
    breaker_cooldown_seconds: float = WriteBackSettings.breaker_cooldown_seconds
    dry_run: bool = False  # report what is due without calling the ERP


@dg.op(
    description="Drain the ERP outbox: write each due approved action to the ERP once, retry with backoff, "
    "dead-letter business errors and exhausted retries, pause while the ERP is down.",
    tags={"kind": "erp"},
    out={},
)
def write_back_outbox(context: dg.OpExecutionContext, config: WriteBackConfig, warehouse: Warehouse, erp: Erp, clock: PlanningClock):
    settings = WriteBackSettings(
        max_attempts=config.max_attempts, backoff_seconds=config.backoff_seconds, backoff_max_seconds=config.backoff_max_seconds,
        lease_seconds=config.lease_seconds, breaker_failures=config.breaker_failures,
        breaker_cooldown_seconds=config.breaker_cooldown_seconds,
    )
    now = clock.now()
    if config.dry_run:
        count, head = due_rows(warehouse, now, settings.lease_seconds, page=20)
        context.log.info(f"dry run: {count} outbox rows due; first: {[r[0] for r in head]}")
        return
    summary = drain_outbox(warehouse, erp, now, config.limit, settings, actor=f"write_back:{context.run_id}", log=context.log.warning)
    for error in summary.errors:
        context.log.warning(error)
    context.log.info(f"write-back to {erp.describe()}: {summary.as_metadata()}")
    context.instance.add_run_tags(context.run_id, {
        f"demand_control/{k}": str(v) for k, v in summary.as_metadata().items()
        if k in ("written", "created", "retry_scheduled", "dead_lettered", "deferred", "circuit")
    })


@dg.job(
    name=WRITE_BACK_JOB_NAME,
    description="Write approved and auto-approved actions from the ERP outbox into the ERP, exactly once each.",
    executor_def=dg.in_process_executor,
    # A hung run ends (run monitoring); its in_progress rows are retried once their lease expires.
    tags={"dagster/max_runtime": 900},
)
def write_back_job():
    write_back_outbox()
