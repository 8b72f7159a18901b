"""After a planning run (the whole panel or one region), bring the owners' Slack messages in line with the new exception tables."""

import dagster as dg

from demand_control.demand_assets.jobs import plan_decisions_job
from demand_control.demand_assets.regions import plan_region_job
from demand_control.ops.notify import notify_owners_job


@dg.run_status_sensor(
    name="notify_after_planning",
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[plan_decisions_job, plan_region_job],
    request_job=notify_owners_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests one notify_owners run per successful plan_decisions or plan_region run.",
)
def notify_after_planning(context: dg.RunStatusSensorContext) -> dg.RunRequest:
    return dg.RunRequest(run_key=f"notify:{context.dagster_run.run_id}")
