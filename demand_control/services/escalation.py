"""SLA escalation: exceptions still active past their SLA due time are escalated along the policy's chain
(`escalation.steps`, by hours overdue), once per exception occurrence and step. Snoozed and closed exceptions
do not escalate.

The `escalations` row is the idempotency key: `escalate` inserts it, the `notifications` row and the audit
entry in one transaction, and only when the insert took, so a repeated evaluation, a second run or a retried
run escalates nothing twice. No Dagster import: the `escalate_overdue` job and the SLA sensor call these.
"""

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pandas as pd

from demand_control.infra import clock as planning_clock
from demand_control.infra.clock import as_utc
from demand_control.infra.sql import insert_ignoring_conflicts
from demand_control.messages.escalation import escalation_text, recipients_text
from demand_control.schema import tables
from demand_control.services.audit import AuditEntry, append
from demand_control.planning.policy import Policy, escalation_steps
from demand_control.resources.warehouse import Warehouse

# Snoozed is active but parked by a planner until snoozed_until; the lifecycle reopens it when that passes.
ESCALATING_STATES: tuple[str, ...] = ("open", "acknowledged", "in_progress")
ITEM_SEPARATOR = "#"
DUE_COLUMNS: tuple[str, ...] = (
    "exception_key", "occurrence", "step", "steps", "after_hours", "hours_overdue", "notify_role", "channel", "user",
    "notified", "severity", "sentence", "owner_team", "owner_channel", "sla_due_at",
)


def item_of(exception_key: str, occurrence: int, step: int) -> str:
    return f"{exception_key}{ITEM_SEPARATOR}{int(occurrence)}{ITEM_SEPARATOR}{int(step)}"


def parse_item(item: str) -> tuple[str, int, int]:
    key, occurrence, step = item.rsplit(ITEM_SEPARATOR, 2)  # the key itself may hold the separator
    return key, int(occurrence), int(step)


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
                "channel": step.channel, "user": step.user, "notified": recipients_text(policy, step.notify_role, step.channel, step.user),
                "severity": getattr(r, "severity", None), "sentence": getattr(r, "sentence", None),
                "owner_team": getattr(r, "owner_team", None), "owner_channel": getattr(r, "owner_channel", None),
                "sla_due_at": r.sla_due_at,
            })
    return pd.DataFrame(rows, columns=list(DUE_COLUMNS))


def escalation_notice(row: pd.Series | dict, now: datetime) -> dict:
    """The `notifications` row of one escalation step (kind `escalation`)."""
    key, occurrence, step = row["exception_key"], int(row["occurrence"]), int(row["step"])
    due = as_utc(row["sla_due_at"])
    channel = row["channel"] or (f"role:{row['notify_role']}" if row["notify_role"] else f"@{row['user']}")
    payload = {k: (None if not isinstance(row[k], str) and pd.isna(row[k]) else row[k]) for k in ("notify_role", "channel", "user", "notified", "owner_team", "owner_channel", "severity")}
    payload.update(exception_key=key, occurrence=occurrence, step=step, hours_overdue=round(float(row["hours_overdue"]), 2), sla_due_at=due.isoformat())
    return {
        "notification_id": "esc-" + hashlib.sha256(item_of(key, occurrence, step).encode()).hexdigest()[:40],
        "kind": "escalation", "channel": channel[:128], "subject": key[:255], "text": escalation_text(row, due),
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
    done = []
    for _, row in due.iterrows():
        with warehouse.engine.begin() as conn:
            taken = conn.execute(insert_ignoring_conflicts(conn, tables.escalations).values(
                exception_key=row["exception_key"], occurrence=int(row["occurrence"]), step=int(row["step"]),
                notified=row["notified"][:255], escalated_at=now,
            )).rowcount == 1
            if not taken:
                continue  # another run escalated this step first
            notice = escalation_notice(row, now)
            conn.execute(insert_ignoring_conflicts(conn, tables.notifications).values(**notice))
            append(conn, [AuditEntry(actor, "escalation", row["exception_key"], {**json.loads(notice["payload"]), "notification_id": notice["notification_id"]}, now)])
        log(f"{notice['channel']}: {notice['text']}")
        done.append(item_of(row["exception_key"], row["occurrence"], row["step"]))
    return done
