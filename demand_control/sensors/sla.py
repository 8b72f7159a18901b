"""SLA escalation: exceptions still active past their SLA due time are escalated along the policy's chain
(`escalation.steps`, by hours overdue), once per exception occurrence and step.

The `escalations` row is the idempotency key: the op inserts it, the `notifications` row and the audit entry
in one transaction, and only when the insert took, so a repeated evaluation, a second run or a retried run
escalates nothing twice. Overdue is a time condition, not a change to follow, so the sensor reads without a
cursor and keys each run by the (exception, occurrence, step) items it asks for. A failed run's key is not
reused (RELIABILITY §15): its steps are escalated by the next run whose batch differs, or by re-executing it.
Snoozed and closed exceptions do not escalate.

`decisions_out_defs` registers this sensor and job with the customer-notice sensor and job and the mailer.
"""

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import dagster as dg
import pandas as pd
from sqlalchemy.dialects import postgresql, sqlite

from demand_control.infra import clock as planning_clock
from demand_control.schema import tables
from demand_control.services.audit import AuditEntry, append
from demand_control.ops.customer_notices import customer_notice_sensor, notify_customers_job
from demand_control.planning.policy import Policy, escalation_steps
from demand_control.resources.clock import PlanningClock
from demand_control.resources.mail import mailer_from_env
from demand_control.resources.planning_policy import PlanningPolicy
from demand_control.resources.warehouse import Warehouse

ESCALATE_JOB_NAME = "escalate_overdue"
# Snoozed is active but parked by a planner until snoozed_until; the lifecycle reopens it when that passes.
ESCALATING_STATES: tuple[str, ...] = ("open", "acknowledged", "in_progress")
ITEM_SEPARATOR = "#"
MAX_ITEMS_PER_RUN = 200
DUE_COLUMNS: tuple[str, ...] = (
    "exception_key", "occurrence", "step", "steps", "after_hours", "hours_overdue", "notify_role", "channel", "user",
    "notified", "severity", "sentence", "owner_team", "owner_channel", "sla_due_at",
)


def item_of(exception_key: str, occurrence: int, step: int) -> str:
    return f"{exception_key}{ITEM_SEPARATOR}{int(occurrence)}{ITEM_SEPARATOR}{int(step)}"


def parse_item(item: str) -> tuple[str, int, int]:
    key, occurrence, step = item.rsplit(ITEM_SEPARATOR, 2)  # the key itself may hold the separator
    return key, int(occurrence), int(step)


def _notified(policy: Policy, notify_role: str | None, channel: str | None, user: str | None) -> str:
    """Who a step tells, as one line: the channel, the role with its members, the user."""
    parts = []
    if channel:
        parts.append(channel)
    if notify_role:
        members = policy.roles[notify_role].members if notify_role in policy.roles else []
        parts.append(f"role:{notify_role}" + (f" ({', '.join(members)})" if members else ""))
    if user:
        parts.append(f"@{user}")
    return ", ".join(parts)


def due_escalations(lifecycle: pd.DataFrame, escalated: pd.DataFrame, policy: Policy, now: datetime) -> pd.DataFrame:
    """The escalation steps due now and not recorded yet, one row per (exception_key, occurrence, step).

    An exception escalates while it is open, acknowledged or in progress past its `sla_due_at`; every step
    whose `after_hours` it has passed is due (one first seen 30 hours late is due for all three default
    steps at once: each tells someone else).
    """
    if lifecycle.empty or not policy.escalation.steps:
        return pd.DataFrame(columns=list(DUE_COLUMNS))
    active = lifecycle[lifecycle["state"].isin(ESCALATING_STATES)].copy()
    due_at = pd.to_datetime(active["sla_due_at"], utc=True)
    active["hours_overdue"] = (pd.Timestamp(now).tz_convert(UTC) - due_at) / pd.Timedelta(hours=1)
    overdue = active[due_at.notna() & (active["hours_overdue"] >= 0)]
    done = set(zip(escalated["exception_key"], escalated["occurrence"].astype(int), escalated["step"].astype(int))) if len(escalated) else set()
    steps = list(policy.escalation.steps)
    rows = []
    for r in overdue.itertuples(index=False):
        for step in escalation_steps(policy, float(r.hours_overdue)):
            index = steps.index(step)
            if (r.exception_key, int(r.occurrence), index) in done:
                continue
            rows.append({
                "exception_key": r.exception_key, "occurrence": int(r.occurrence), "step": index, "steps": len(steps),
                "after_hours": step.after_hours, "hours_overdue": float(r.hours_overdue), "notify_role": step.notify_role,
                "channel": step.channel, "user": step.user, "notified": _notified(policy, step.notify_role, step.channel, step.user),
                "severity": getattr(r, "severity", None), "sentence": getattr(r, "sentence", None),
                "owner_team": getattr(r, "owner_team", None), "owner_channel": getattr(r, "owner_channel", None),
                "sla_due_at": r.sla_due_at,
            })
    return pd.DataFrame(rows, columns=list(DUE_COLUMNS))


def escalation_notice(row: pd.Series | dict, now: datetime) -> dict:
    """The `notifications` row of one escalation step (kind `escalation`)."""
    key, occurrence, step = row["exception_key"], int(row["occurrence"]), int(row["step"])
    due = pd.Timestamp(row["sla_due_at"])
    due = due.tz_localize(UTC) if due.tzinfo is None else due.tz_convert(UTC)
    channel = row["channel"] or (f"role:{row['notify_role']}" if row["notify_role"] else f"@{row['user']}")
    what = row["sentence"] if isinstance(row["sentence"], str) and row["sentence"] else key
    text = (
        f"Escalation step {step + 1} of {int(row['steps'])}: {what} "
        f"({row['severity'] or 'unrated'}; owner {row['owner_team'] or 'unassigned'} {row['owner_channel'] or ''}".rstrip()
        + f") was due {due:%Y-%m-%d %H:%M} UTC and is {row['hours_overdue']:.1f} h overdue. Telling {row['notified']}."
    )
    payload = {k: (None if not isinstance(row[k], str) and pd.isna(row[k]) else row[k]) for k in ("notify_role", "channel", "user", "notified", "owner_team", "owner_channel", "severity")}
    payload.update(exception_key=key, occurrence=occurrence, step=step, hours_overdue=round(float(row["hours_overdue"]), 2), sla_due_at=due.isoformat())
    return {
        "notification_id": "esc-" + hashlib.sha256(item_of(key, occurrence, step).encode()).hexdigest()[:40],
        "kind": "escalation", "channel": channel[:128], "subject": key[:255], "text": text,
        "payload": json.dumps(payload, sort_keys=True), "status": "console", "created_at": now, "sent_at": None,
    }


def read_state(warehouse: Warehouse) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Active exceptions past their SLA due time, and the escalations already recorded."""
    lc = tables.exception_lifecycle
    lifecycle = warehouse.read("exception_lifecycle", where=lc.c.state.in_(ESCALATING_STATES) & lc.c.sla_due_at.isnot(None))
    return lifecycle, warehouse.read("escalations")


def escalate(warehouse: Warehouse, policy: Policy, actor: str, items: Sequence[str] = (), now: datetime | None = None,
             log: Callable[[str], None] = print) -> list[str]:
    """Record and announce the due escalation steps (those named in `items`, or all); returns the items
    escalated by this call. Each step commits with its notice and audit entry, or not at all."""
    now = now or planning_clock.now()
    lifecycle, escalated = read_state(warehouse)
    due = due_escalations(lifecycle, escalated, policy, now)
    if items:
        wanted = {parse_item(i) for i in items}
        due = due[[(k, o, s) in wanted for k, o, s in zip(due["exception_key"], due["occurrence"], due["step"])]]
    dialect = postgresql if warehouse.dialect == "postgresql" else sqlite
    done = []
    for _, row in due.iterrows():
        with warehouse.engine.begin() as conn:
            taken = conn.execute(dialect.insert(tables.escalations).values(
                exception_key=row["exception_key"], occurrence=int(row["occurrence"]), step=int(row["step"]),
                notified=row["notified"][:255], escalated_at=now,
            ).on_conflict_do_nothing()).rowcount == 1
            if not taken:
                continue  # another run escalated this step first
            notice = escalation_notice(row, now)
            conn.execute(dialect.insert(tables.notifications).values(**notice).on_conflict_do_nothing())
            append(conn, [AuditEntry(actor, "escalation", row["exception_key"], {**json.loads(notice["payload"]), "notification_id": notice["notification_id"]}, now)])
        log(f"{notice['channel']}: {notice['text']}")
        done.append(item_of(row["exception_key"], row["occurrence"], row["step"]))
    return done


class EscalateConfig(dg.Config):
    items: list[str] = []  # "exception_key#occurrence#step" to escalate; empty: every step due now


@dg.op(description="Escalate exceptions past their SLA along the policy's chain, once per exception occurrence and step.", tags={"kind": "notification"})
def escalate_overdue_exceptions(
    context: dg.OpExecutionContext, config: EscalateConfig, warehouse: Warehouse, planning_policy: PlanningPolicy, clock: PlanningClock
) -> dg.Output[None]:
    warehouse.migrate()
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


@dg.sensor(
    job_name=ESCALATE_JOB_NAME,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests an escalate_overdue run when active exceptions pass an escalation step of the policy (run key: the steps requested).",
)
def sla_escalation_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse, planning_policy: PlanningPolicy) -> dg.SensorResult | dg.SkipReason:
    warehouse.migrate()
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


decisions_out_defs = dg.Definitions(
    sensors=[customer_notice_sensor, sla_escalation_sensor],
    jobs=[notify_customers_job, escalate_overdue_job],
    resources={"mailer": mailer_from_env()},
)
