"""Tell the operations channel when a run fails: through the notifier once Slack is configured; until then
(and as the record) the console and the `notifications` table."""


import dagster as dg

from demand_control.infra import clock, settings
from demand_control.infra.sql import insert_ignoring_conflicts
from demand_control.messages.run_failure import run_failure_text
from demand_control.schema import tables
from demand_control.resources.warehouse import Warehouse



def failure_notice(job_name: str, run_id: str, message: str, step: str | None) -> dict:
    channel = settings.ops_channel()
    return {
        "notification_id": f"run-failure:{run_id}",
        "kind": "run_failure",
        "channel": channel,
        "subject": run_id,
        "text": run_failure_text(job_name, run_id, message, step),
        "status": "console",
        "created_at": clock.now(),
    }


def record_notice(warehouse: Warehouse, notice: dict) -> None:
    """Insert once per run: a second evaluation of the same failure changes nothing."""
    warehouse.ensure_schema()  # written on the engine directly
    with warehouse.engine.begin() as conn:
        conn.execute(insert_ignoring_conflicts(conn, tables.notifications, ["notification_id"]).values(**notice))


@dg.run_failure_sensor(
    name="run_failure_notice",
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records every failed run as a notice to the operations channel (console and the notifications table).",
)
def run_failure_notice(context: dg.RunFailureSensorContext, warehouse: Warehouse) -> None:
    step = context.failure_event.step_key if context.failure_event else None
    message = context.failure_event.message if context.failure_event and context.failure_event.message else "see the run's log"
    notice = failure_notice(context.dagster_run.job_name, context.dagster_run.run_id, message, step)
    record_notice(warehouse, notice)
    context.log.error(f"{notice['channel']}: {notice['text']}")
