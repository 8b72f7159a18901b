"""The `notify_owners` job: bring the owners' Slack messages (or the console) in line with the exception
tables through `demand_control.services.notifier`."""

from dataclasses import asdict

import dagster as dg

from demand_control.resources.clock import PlanningClock
from demand_control.resources.slack import SlackNotifier
from demand_control.resources.warehouse import Warehouse
from demand_control.services.notifier import notify_exceptions

NOTIFY_JOB_NAME = "notify_owners"


class NotifyConfig(dg.Config):
    exception_keys: list[str] = []  # only these exceptions (empty: all, and the low-severity digests)


@dg.op(
    description="Post, update and thread the owners' Slack messages for the active exceptions (console and the notifications table without a token).",
    tags={"kind": "slack"},
    ins={"after": dg.In(dg.Nothing)},
)
def notify_exception_owners(
    context: dg.OpExecutionContext, config: NotifyConfig, warehouse: Warehouse, slack_notifier: SlackNotifier, clock: PlanningClock
) -> dg.Output[dict]:
    summary = notify_exceptions(warehouse, slack_notifier, clock.now(), keys=config.exception_keys or None,
                                actor=f"notify:{context.run_id}", log=context.log.info)
    context.log.info(f"notify ({summary.mode}): {summary.as_metadata()}")
    return dg.Output(asdict(summary), metadata={k: v for k, v in summary.as_metadata().items() if v not in ("", None)})


@dg.job(
    name=NOTIFY_JOB_NAME,
    description="Bring the owners' Slack messages in line with the exception tables: new parents, updates with a thread reply, resolutions, daily low-severity digests.",
    executor_def=dg.in_process_executor,
    tags={"dagster/max_runtime": 900},
)
def notify_owners_job():
    notify_exception_owners()
