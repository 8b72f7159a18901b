"""The `decide_pending_clicks` job: decide the Slack and CLI clicks that were stored but never decided (the
policy file was invalid, the gateway stopped), with backoff, and tell the operations channel once about a
click that keeps failing, through `demand_control.services.pending_clicks.sweep_pending_clicks`."""

import dagster as dg

from demand_control.resources.clock import PlanningClock
from demand_control.resources.planning_policy import PlanningPolicy
from demand_control.resources.warehouse import Warehouse
from demand_control.services.pending_clicks import (
    SweepSettings,
    pending_click_alert_after,
    sweep_pending_clicks,
)

PENDING_CLICKS_JOB_NAME = "decide_pending_clicks"


class PendingClicksConfig(dg.Config):
    # Failed attempts before the operations channel hears (default: DEMAND_CONTROL_PENDING_CLICK_ALERT_AFTER, else 5).
    alert_after: int = 0
    grace_seconds: float = SweepSettings.grace_seconds
    backoff_seconds: float = SweepSettings.backoff_seconds
    backoff_max_seconds: float = SweepSettings.backoff_max_seconds
    limit: int = SweepSettings.limit


@dg.op(
    description="Decide stored clicks nobody decided, each once; a click that cannot be decided is retried with "
    "backoff and reported to the operations channel after alert_after attempts.",
    tags={"kind": "approvals"},
)
def decide_stored_clicks(
    context: dg.OpExecutionContext, config: PendingClicksConfig, warehouse: Warehouse, planning_policy: PlanningPolicy, clock: PlanningClock
) -> dg.Output[None]:
    sweep = SweepSettings(alert_after=pending_click_alert_after(config.alert_after or None), grace_seconds=config.grace_seconds,
                          backoff_seconds=config.backoff_seconds, backoff_max_seconds=config.backoff_max_seconds, limit=config.limit)
    # The policy is loaded inside the sweep: an invalid file is recorded on each click it holds up, not a crash.
    summary = sweep_pending_clicks(warehouse.engine, planning_policy.load, clock.now(), sweep, actor=f"pending_clicks:{context.run_id}")
    for error in summary.errors:
        context.log.warning(error)
    context.log.info(f"pending clicks: {summary.as_metadata()}")
    return dg.Output(None, metadata={k: v for k, v in summary.as_metadata().items() if v != ""})


@dg.job(
    name=PENDING_CLICKS_JOB_NAME,
    description="Decide the approval clicks that were stored but never decided; alert the operations channel about stuck ones.",
    executor_def=dg.in_process_executor,
    tags={"dagster/max_runtime": 300},
)
def decide_pending_clicks_job() -> None:
    decide_stored_clicks()
