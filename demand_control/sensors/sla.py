"""Escalate exceptions past their SLA: request an `escalate_overdue` run for the escalation steps now due.

Overdue is a time condition, not a change to follow, so the sensor reads without a cursor and keys each run by
the (exception, occurrence, step) items it asks for. A failed run's key is not reused (RELIABILITY §15): its
steps are escalated by the next run whose batch differs, or by re-executing it.
"""

import hashlib

import dagster as dg

from demand_control.infra import clock as planning_clock
from demand_control.ops.escalation import ESCALATE_JOB_NAME
from demand_control.resources.planning_policy import PlanningPolicy
from demand_control.resources.warehouse import Warehouse
from demand_control.services.escalation import due_escalations, item_of, read_state

MAX_ITEMS_PER_RUN = 200


@dg.sensor(
    job_name=ESCALATE_JOB_NAME,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests an escalate_overdue run when active exceptions pass an escalation step of the policy (run key: the steps requested).",
)
def sla_escalation_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse, planning_policy: PlanningPolicy) -> dg.SensorResult | dg.SkipReason:
    policy = planning_policy.load()
    lifecycle, escalated = read_state(warehouse)
    due = due_escalations(lifecycle, escalated, policy, planning_clock.now())
    if due.empty:
        return dg.SkipReason(f"{len(lifecycle)} active exception(s) past their SLA, no escalation step due that is not already escalated")
    items = sorted(item_of(k, o, s) for k, o, s in zip(due["exception_key"], due["occurrence"], due["step"]))
    requests = []
    for start in range(0, len(items), MAX_ITEMS_PER_RUN):
        batch = items[start : start + MAX_ITEMS_PER_RUN]
        digest = hashlib.sha256("\n".join(batch).encode()).hexdigest()[:16]
        # Keyed by the steps it escalates: evaluations until the run records them ask for the same key,
        # which Dagster requests once.
        requests.append(dg.RunRequest(run_key=f"escalation:{digest}", run_config={"ops": {"escalate_overdue_exceptions": {"config": {"items": batch}}}},
                                      tags={"demand_control/escalations": str(len(batch))}))
    return dg.SensorResult(run_requests=requests)
