"""The `replan` job: apply a batch of inbox events and re-plan only the SKU-locations they touch
(`services.replan.replan_inbox_batch`), then tell the owners of the exceptions it touched.

One op per step, executed in process (no per-step subprocess), so a supplier delay reaches the exception
tables seconds after the gateway stored it. Re-running a batch is safe: processed events are skipped.
"""

from datetime import date

import dagster as dg
import pandas as pd

from demand_control.quality.gates import code_location_asset_graph, failed_gates_upstream
from demand_control.services.notifier import notify_exceptions
from demand_control.demand_assets.replan_log import REPLAN_LOG
from demand_control.services.replan import PlanSettings, record_replan, replan_inbox_batch, replanned_rows
from demand_control.resources.clock import PlanningClock
from demand_control.resources.forecast import ForecastSettingsResource
from demand_control.resources.planning_policy import PlanningPolicy
from demand_control.resources.slack import SlackNotifier
from demand_control.resources.warehouse import Warehouse

REPLAN_JOB_NAME = "replan"


class ReplanConfig(dg.Config):
    inbox_from: int = 0  # first inbox_id of the batch (inclusive)
    inbox_to: int = 0  # last inbox_id of the batch (inclusive)
    sku_locations: list[str] = []  # "SKU@LOCATION" to re-plan besides the events' (e.g. changed in the ERP)
    bucket_days: int = 7
    review_period_days: float = 7.0
    horizon_start: str = ""  # ISO date; empty: the run's as-of (the `clock` resource)


def _horizon_start(configured: str, today: date) -> date:
    if not configured:
        return today
    try:
        return date.fromisoformat(configured)
    except ValueError as exc:
        raise dg.Failure(description=f"horizon_start must be a date like 2026-11-30, got {configured!r}") from exc


@dg.op(
    description="Apply a batch of inbox events to open orders and PO lines, then re-plan the SKU-locations they touch.",
    tags={"kind": "planning"},
    out={"touched_exceptions": dg.Out(list, description="Exception keys this run evaluated or changed.")},
)
def replan_from_inbox(
    context: dg.OpExecutionContext,
    config: ReplanConfig,
    warehouse: Warehouse,
    planning_policy: PlanningPolicy,
    forecast_settings: ForecastSettingsResource,
    clock: PlanningClock,
):
    requested = pd.DataFrame([k.split("@", 1) for k in config.sku_locations], columns=["sku", "location_id"]) if config.sku_locations else None
    settings = PlanSettings(
        horizon_start=_horizon_start(config.horizon_start, clock.today()),
        bucket_days=config.bucket_days,
        review_period_days=config.review_period_days,
        degradation_factor=forecast_settings.degradation_factor,
    )
    # The replan decides like the plan: a failed blocking gate upstream of the actions withholds auto-approval.
    gates = failed_gates_upstream(context.instance, code_location_asset_graph(), dg.AssetKey("recommended_actions"))
    for gate in gates:
        context.log.warning(f"auto-approval withheld: data-quality gate {gate} failed")
    done = replan_inbox_batch(
        warehouse, planning_policy.load(), settings, clock.now(), config.inbox_from, config.inbox_to, requested, context.run_id, failed_gates=gates
    )
    if not done.events and requested is None:
        context.log.info(f"inbox {config.inbox_from}..{config.inbox_to}: already processed")
        yield dg.Output([], "touched_exceptions")
        return
    changes = done.lifecycle["last_change"].value_counts().to_dict() if len(done.lifecycle) else {}
    scope_size = "all" if done.scope is None else len(done.scope)
    context.log.info(f"applied {done.events} events; re-planned {scope_size} SKU-locations; exceptions {changes}")
    erp_count = 0 if requested is None else len(requested)
    row = record_replan(warehouse, done, config.inbox_from, config.inbox_to, erp_count, context.run_id, clock.now())
    what = f"re-planned {scope_size} SKU-locations after inbox events {config.inbox_from}..{config.inbox_to}" + (
        f" and {erp_count} changed in the ERP" if erp_count else ""
    )
    # The replan materializes its own record and only observes the planning tables it rewrote for its
    # scope, so their latest materialization stays the full plan's (see demand_assets/replan_log.py).
    yield dg.AssetMaterialization(
        asset_key=REPLAN_LOG,
        description=what,
        metadata={
            "dagster/row_count": warehouse.count(REPLAN_LOG),
            **{k: v for k, v in row.items() if k not in ("run_id", "replanned_at")},
            "sku_locations": scope_size,
        },
    )
    for name, (scoped, total) in replanned_rows(warehouse, done.scope).items():
        yield dg.AssetObservation(
            asset_key=name,
            description=what,
            metadata={"dagster/row_count": total, "replanned_rows": scoped, "sku_locations": scope_size, "events": done.events},
        )
    yield dg.Output(done.touched_exceptions, "touched_exceptions")


@dg.op(description="Tell the owners of the exceptions a replan touched: new Slack messages, updates in their threads.", tags={"kind": "slack"})
def notify_touched_owners(
    context: dg.OpExecutionContext, touched_exceptions: list, warehouse: Warehouse, slack_notifier: SlackNotifier, clock: PlanningClock
) -> None:
    if not touched_exceptions:
        context.log.info("no exception changed: nobody to tell")
        return
    summary = notify_exceptions(warehouse, slack_notifier, clock.now(), keys=touched_exceptions, actor=f"replan:{context.run_id}", log=context.log.info)
    context.log.info(f"notify ({summary.mode}): {summary.as_metadata()}")


@dg.job(
    name=REPLAN_JOB_NAME,
    description="Apply inbox events and re-plan only the SKU-locations they touch (projection, exceptions, allocations, actions); "
    "records itself in replan_log and observes, rather than re-materializes, the full plan's tables.",
    executor_def=dg.in_process_executor,
    tags={"dagster/max_runtime": 600},
)
def replan_job():
    notify_touched_owners(replan_from_inbox())
