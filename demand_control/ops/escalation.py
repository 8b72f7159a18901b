"""The `escalate_overdue` job: escalate exceptions past their SLA along the policy's chain, once per exception
occurrence and step, through `demand_control.services.escalation`."""

import dagster as dg

from demand_control.resources.clock import PlanningClock
from demand_control.resources.planning_policy import PlanningPolicy
from demand_control.resources.warehouse import Warehouse
from demand_control.services.escalation import escalate

ESCALATE_JOB_NAME = "escalate_overdue"


class EscalateConfig(dg.Config):
    items: list[str] = []  # "exception_key#occurrence#step" to escalate; empty: every step due now


@dg.op(description="Escalate exceptions past their SLA along the policy's chain, once per exception occurrence and step.", tags={"kind": "notification"})
def escalate_overdue_exceptions(
    context: dg.OpExecutionContext, config: EscalateConfig, warehouse: Warehouse, planning_policy: PlanningPolicy, clock: PlanningClock
) -> dg.Output[None]:
    done = escalate(warehouse, planning_policy.load(), f"escalate_overdue:{context.run_id}", config.items, now=clock.now(), log=context.log.warning)
    skipped = len(config.items) - len(done) if config.items else 0
    context.log.info(f"escalated {len(done)} step(s)" + (f"; {skipped} requested step(s) no longer due or already escalated" if skipped else ""))
    return dg.Output(None, metadata={"escalated": len(done), "skipped": skipped})


@dg.job(
    name=ESCALATE_JOB_NAME,
    description="Escalate overdue exceptions along the policy's chain: one notice per exception occurrence and step.",
    executor_def=dg.in_process_executor,
    tags={"dagster/max_runtime": 300},
)
def escalate_overdue_job() -> None:
    escalate_overdue_exceptions()
