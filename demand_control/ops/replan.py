"""The `replan` job: apply a batch of inbox events and re-plan only the SKU-locations they touch.

One op, executed in process (no per-step subprocess), so a supplier delay reaches the exception tables
seconds after the gateway stored it. It writes the event's effect to the staged tables (the next extract
from the source brings the same fact and supersedes it), re-projects, re-detects, re-allocates and
re-recommends for the affected scope through `demand_control.services.replan` — the same functions the assets call —
and marks the events processed. Re-running a batch is safe: processed events are skipped.
"""

from datetime import date, datetime

import dagster as dg
import pandas as pd
from sqlalchemy import tuple_, update

from demand_control.schema import tables
from demand_control.services.approvals import auto_approve
from demand_control.services.audit import AuditEntry, append
from demand_control.services.notifier import notify_exceptions
from demand_control.planning.event_effects import ORDER_KEY, PO_KEY, apply_events
from demand_control.services.replan import PlanSettings, normalise_scope, planning_inputs, refresh_actions, refresh_allocations, refresh_exceptions, refresh_projection, scope_of
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


def _by_key(warehouse: Warehouse, name: str, key: list[str], keys: pd.DataFrame) -> pd.DataFrame:
    if keys.empty:
        return warehouse.read(name).iloc[0:0]
    table = tables.STAGED[name]
    pairs = list(zip(keys[key[0]], keys[key[1]].astype(int)))
    return warehouse.read(name, where=tuple_(table.c[key[0]], table.c[key[1]]).in_(pairs))


def _replace_by_key(warehouse: Warehouse, name: str, key: list[str], changed: pd.DataFrame, removed: pd.DataFrame, now: datetime) -> None:
    keys = pd.concat([changed[key] if not changed.empty else pd.DataFrame(columns=key), removed], ignore_index=True)
    if keys.empty:
        return
    table = tables.STAGED[name]
    pairs = list({(k0, int(k1)) for k0, k1 in zip(keys[key[0]], keys[key[1]])})
    rows = changed.assign(source_system="gateway", loaded_at=now) if not changed.empty else changed
    warehouse.replace_rows(name, rows, where=tuple_(table.c[key[0]], table.c[key[1]]).in_(pairs))


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
    now = clock.now()
    inbox_table = tables.inbox_events
    inbox = warehouse.read(
        "inbox_events",
        where=inbox_table.c.inbox_id.between(config.inbox_from, config.inbox_to) & inbox_table.c.processed_at.is_(None),
    )
    requested = pd.DataFrame([k.split("@", 1) for k in config.sku_locations], columns=["sku", "location_id"]) if config.sku_locations else pd.DataFrame(columns=["sku", "location_id"])
    if inbox.empty and requested.empty:
        context.log.info(f"inbox {config.inbox_from}..{config.inbox_to}: already processed")
        yield dg.Output([], "touched_exceptions")
        return
    supplier = inbox["event_type"].str.startswith("supplier.")
    po_keys = inbox.loc[supplier & inbox["po_id"].notna(), ["po_id", "po_line_no"]].rename(columns={"po_line_no": "line_no"}).dropna()
    so_keys = inbox.loc[~supplier & inbox["order_id"].notna(), ["order_id", "order_line_no"]].rename(columns={"order_line_no": "line_no"}).dropna()
    applied = apply_events(
        inbox, _by_key(warehouse, "purchase_order_line", PO_KEY, po_keys), _by_key(warehouse, "customer_order_line", ORDER_KEY, so_keys), now
    )
    _replace_by_key(warehouse, "purchase_order_line", PO_KEY, applied.purchase_lines, applied.purchase_removed, now)
    _replace_by_key(warehouse, "customer_order_line", ORDER_KEY, applied.order_lines, applied.order_removed, now)
    for name, frame in (("supplier_event", applied.supplier_events), ("order_event", applied.order_events)):
        if not frame.empty:
            warehouse.replace_rows(name, frame, where=tables.STAGED[name].c.event_id.in_(list(frame["event_id"])))

    # Re-plan the SKU-locations the events touched, plus those the inbox resolved at the gateway (e.g. a new
    # order for a SKU-location whose line did not exist yet).
    scope = normalise_scope(scope_of([applied.outcomes.dropna(subset=["sku", "location_id"]), inbox.dropna(subset=["sku", "location_id"]), requested]))
    settings = PlanSettings(
        horizon_start=_horizon_start(config.horizon_start, clock.today()),
        bucket_days=config.bucket_days,
        review_period_days=config.review_period_days,
        degradation_factor=forecast_settings.degradation_factor,
    )
    policy = planning_policy.load()
    if scope is None or len(scope):
        refresh_projection(warehouse, settings, now, scope, run_id=context.run_id)
        # Read once for the three steps: none of them writes what the others read from it.
        inputs = planning_inputs(warehouse, now, scope)
        lifecycle = refresh_exceptions(warehouse, policy, settings, now, scope, inputs=inputs)
        refresh_allocations(warehouse, settings, now, scope, inputs=inputs)
        actions = refresh_actions(warehouse, policy, settings, now, scope, actor=f"replan:{context.run_id}", inputs=inputs)
        auto_approve(warehouse.engine, now)
    else:
        lifecycle, actions = pd.DataFrame(columns=["last_change"]), pd.DataFrame()

    outcomes = applied.outcomes.set_index("inbox_id")["outcome"]
    with warehouse.engine.begin() as conn:
        for inbox_id, outcome in outcomes.items():
            conn.execute(
                update(inbox_table).where(inbox_table.c.inbox_id == int(inbox_id)).values(processed_at=now, process_run_id=context.run_id, process_outcome=outcome)
            )
        if len(inbox):
            append(conn, [
                AuditEntry(f"replan:{context.run_id}", "event_applied", webhook_id, {"inbox_id": int(i), "outcome": outcomes.get(i, "")}, now)
                for i, webhook_id in zip(inbox["inbox_id"], inbox["webhook_id"])
            ])

    changes = lifecycle["last_change"].value_counts().to_dict() if len(lifecycle) else {}
    scope_size = "all" if scope is None else len(scope)
    context.log.info(f"applied {len(inbox)} events; re-planned {scope_size} SKU-locations; exceptions {changes}")
    for key in ("projected_inventory", "planning_exceptions", "recommended_actions"):
        yield dg.AssetMaterialization(
            asset_key=key,
            description=f"re-planned {scope_size} SKU-locations after inbox events {config.inbox_from}..{config.inbox_to}"
            + (f" and {len(requested)} changed in the ERP" if len(requested) else ""),
            metadata={"sku_locations": scope_size, "events": len(inbox), "exception_changes": str(changes), "actions": len(actions)},
        )
    touched = [] if lifecycle.empty else lifecycle.loc[lifecycle["last_change"] != "untouched", "exception_key"].tolist()
    yield dg.Output(touched, "touched_exceptions")


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
    description="Apply inbox events and re-plan only the SKU-locations they touch (projection, exceptions, allocations, actions).",
    executor_def=dg.in_process_executor,
    tags={"dagster/max_runtime": 600},
)
def replan_job():
    notify_touched_owners(replan_from_inbox())
