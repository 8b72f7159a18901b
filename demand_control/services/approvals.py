"""Approvals: turn a stored approve / reject / snooze click into the one decision per recommended action, and
an approved action into its pending ERP write, in one transaction with its audit row (RELIABILITY.md §8, §12,
§19, §20).

A click is stored first (`record_click`, deduplicated by its request reference) and evaluated once later
(`decide`), so the Slack gateway can answer within 3 s and the CLI shares the same path. Authority comes from
the policy's roles; the requester never approves their own request. `action_decisions` holds one row per
action (its primary key settles a race between two approvers); `erp_outbox` gets the ERP write in the same
transaction, and the write-back job drains it. `auto_approve` does the same for what the policy approved.

Requester: recommended actions carry no requester column yet. The requester of an action is, in order, a
`requested_by` column on the row (should one be added), the `requested_by` key of its `details` JSON (a
manually requested action), else `planner-engine`, the system that recommends. It is always read from the
stored action, never from the click: a clicker could leave out anything the click itself claims.

No Dagster import here: the gateway and the CLI use this module directly.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, Engine, and_, select, update
from sqlalchemy.exc import IntegrityError

from demand_control.infra import clock
from demand_control.infra.clock import as_utc
from demand_control.infra.sql import insert_ignoring_conflicts
from demand_control.planning.policy import Policy, may_approve
from demand_control.planning.policy.rules import (
    SYSTEM_REQUESTER as RULES_SYSTEM_REQUESTER,
)
from demand_control.planning.vocabulary import ACTION_TYPES
from demand_control.schema.tables import (
    action_decisions,
    approval_clicks,
    erp_outbox,
    exception_lifecycle,
    notifications,
    planning_exceptions,
    recommended_actions,
    slack_messages,
)
from demand_control.services import audit

if TYPE_CHECKING:  # resources/__init__ imports Dagster; the models are imported where an ERP write is built
    from demand_control.resources.erp.base import ErpAction


Outcome = Literal["decided", "duplicate", "refused"]


CLICK_DECISIONS: dict[str, str] = {"approve": "approved", "reject": "rejected", "snooze": "snoozed"}


AUDIT_EVENTS: dict[str, str] = {"approve": "approval", "reject": "rejection", "snooze": "snooze"}


VIAS: tuple[str, ...] = ("slack", "cli")


SYSTEM_REQUESTER = RULES_SYSTEM_REQUESTER  # the planner recommends: the requester of every action nobody asked for


POLICY_ACTOR = "policy"


SNOOZE_HOURS_ENV = "DEMAND_CONTROL_SNOOZE_HOURS"


DEFAULT_SNOOZE_HOURS = 24.0


# States in which an exception can be snoozed (lifecycle.ACTIVE_STATES; resolved ones have nothing to snooze).
SNOOZABLE_STATES: tuple[str, ...] = ("open", "acknowledged", "in_progress", "snoozed")


NO_ERP_WRITE = "no ERP write for {action_type} yet: it is carried out outside the ERP"


@dataclass(frozen=True)
class StoredClick:
    click_id: int
    duplicate: bool  # the request reference was stored before: nothing new was stored


@dataclass(frozen=True)
class SlackThread:
    """Where the result of a Slack click is answered: the channel and the parent message's ts."""

    channel: str
    thread_ts: str | None = None


@dataclass(frozen=True)
class DecisionOutcome:
    click_id: int
    action_id: str
    outcome: Outcome
    reason: str
    decision: str | None = None  # the action's decision after evaluation (for a duplicate: the one already taken)
    decided_by: str | None = None
    role: str | None = None
    queued_erp_write: bool = False  # this evaluation put the action in erp_outbox

    @property
    def refused(self) -> bool:
        return self.outcome == "refused"


class _Refusal(Exception):
    pass


class _Lost(Exception):
    """Another approver's decision committed first."""


def _require(row: Mapping[str, Any], *names: str) -> list[Any]:
    values = [row.get(n) for n in names]
    missing = [n for n, v in zip(names, values) if v is None or (isinstance(v, float) and math.isnan(v))]
    if missing:
        raise ValueError(f"{row.get('action_type')} {row.get('action_id')} has no {', '.join(missing)}")
    return values


def erp_action_for(action_row: Mapping[str, Any]) -> ErpAction | None:
    """The ERP write an approved recommendation means, keyed by the recommendation's action id (the write's
    idempotency key); None for action types that have no ERP write yet. Raises ValueError when the row lacks
    what the write needs.

    replenish → a purchase request; expedite → the PO line's delivery date moves to the date it is needed by;
    reschedule_out → to the later date; notify_customer with a revised date → the order line's promise moves.
    """
    from demand_control.resources.erp.base import (
        PromiseRevision,
        ReplenishOrder,
        SupplierDelay,
    )

    row = dict(action_row)
    action_type, action_id = row.get("action_type"), row.get("action_id")
    if action_type == "replenish":
        sku, location_id, quantity, needed_by = _require(row, "sku", "location_id", "quantity", "needed_by")
        return ReplenishOrder(action_id=action_id, sku=sku, location_id=location_id, quantity=quantity,
                              needed_by=needed_by, supplier_id=row.get("supplier_id"))
    if action_type == "notify_customer" and row.get("new_date") is not None:
        order_id, line_no, new_date = _require(row, "order_id", "order_line_no", "new_date")
        return PromiseRevision(action_id=action_id, order_id=order_id, line_no=int(line_no), new_date=new_date)
    if action_type in ("expedite", "reschedule_out"):
        date_column = "needed_by" if action_type == "expedite" else "new_date"
        po_id, line_no, new_date = _require(row, "po_id", "po_line_no", date_column)
        return SupplierDelay(action_id=action_id, po_id=po_id, line_no=int(line_no), new_date=new_date)
    return None


def requester_of(action_row: Mapping[str, Any]) -> str:
    """Who requested the action (see the module docstring): never allowed to approve it."""
    if action_row.get("requested_by"):
        return str(action_row["requested_by"])
    try:
        details = json.loads(action_row.get("details") or "null")
    except (TypeError, ValueError):
        details = None
    if isinstance(details, dict) and isinstance(details.get("requested_by"), str) and details["requested_by"]:
        return details["requested_by"]
    return SYSTEM_REQUESTER


def category_of(action: Mapping[str, Any]) -> str | None:
    category = action.get("category")
    return category if isinstance(category, str) and category else None


def acting_role(policy: Policy, user: str, action_type: str, value: float | None, category: str | None = None) -> str | None:
    """The role `user` acts under for this action: among their roles that may approve its type and cover its
    value and category, the one with the smallest band (the same choice `may_approve` reports)."""
    v = math.inf if value is None or math.isnan(value) else float(value)
    covering = sorted((role.band, name) for name, role in policy.roles.items()
                      if user in role.members and action_type in role.may_approve and v <= role.band
                      and role.covers_category(category))
    return covering[0][1] if covering else None


def snooze_hours(hours: float | None = None) -> float:
    """Hours a snooze lasts: the argument, else $DEMAND_CONTROL_SNOOZE_HOURS, else 24."""
    if hours is None:
        raw = os.environ.get(SNOOZE_HOURS_ENV)
        hours = float(raw) if raw else DEFAULT_SNOOZE_HOURS
    if not (hours > 0 and math.isfinite(hours)):
        raise ValueError(f"snooze hours must be a positive number, got {hours!r}")
    return hours


def store_click(engine: Engine, action_id: str, decision: str, user_id: str, via: str, request_ref: str,
                now: datetime | None = None) -> StoredClick:
    """Store a click durably; a request reference stored before returns that click and stores nothing."""
    if decision not in CLICK_DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(CLICK_DECISIONS)}, got {decision!r}")
    if via not in VIAS:
        raise ValueError(f"via must be one of {', '.join(VIAS)}, got {via!r}")
    for name, value, limit in (("action_id", action_id, None), ("user_id", user_id, 128), ("request_ref", request_ref, 255)):
        if not isinstance(value, str) or not value.strip() or (limit and len(value) > limit):
            raise ValueError(f"{name} must be non-empty text{f' of at most {limit} characters' if limit else ''}, got {value!r}")
    row = {"action_id": action_id, "decision": decision, "user_id": user_id, "via": via,
           "received_at": as_utc(now) or clock.now(), "request_ref": request_ref}
    with engine.begin() as conn:
        stmt = insert_ignoring_conflicts(conn, approval_clicks, ["request_ref"]).values(**row)
        click_id = conn.execute(stmt.returning(approval_clicks.c.click_id)).scalar_one_or_none()
        if click_id is not None:
            return StoredClick(click_id, False)
        existing = conn.execute(select(approval_clicks.c.click_id).where(approval_clicks.c.request_ref == request_ref)).scalar_one()
        return StoredClick(existing, True)


def record_click(engine: Engine, action_id: str, decision: str, user_id: str, via: str, request_ref: str,
                 now: datetime | None = None) -> int:
    """Store a click durably and return its click_id (an already stored request_ref: the existing click)."""
    return store_click(engine, action_id, decision, user_id, via, request_ref, now).click_id


def _existing_outcome(conn: Connection, click: Any) -> DecisionOutcome:
    decided = conn.execute(select(action_decisions).where(action_decisions.c.action_id == click.action_id)).mappings().first()
    return DecisionOutcome(
        click.click_id, click.action_id, click.outcome or "duplicate", click.reason or "",
        decision=decided["decision"] if decided else None, decided_by=decided["decided_by"] if decided else None,
        role=decided["role"] if decided else None,
    )


def _reply_thread(conn: Connection, action: Mapping[str, Any] | None) -> SlackThread | None:
    if action is None:
        return None
    parent = conn.execute(select(slack_messages.c.channel, slack_messages.c.ts)
                          .where(slack_messages.c.exception_key == action["exception_key"])).first()
    return SlackThread(parent.channel, parent.ts) if parent else None


def _mention(user_id: str, via: str) -> str:
    return f"<@{user_id}>" if via == "slack" else user_id


def _result_text(click: Any, result: DecisionOutcome) -> str:
    who = _mention(click.user_id, click.via)
    if result.outcome == "refused":
        return f"Refused: {who} cannot {click.decision} {click.action_id}: {result.reason}"
    if result.outcome == "duplicate":
        return f"No change: {click.action_id} was already {result.decision} by {result.decided_by} ({who}'s {click.decision} ignored)."
    role = f" as {result.role}" if result.role else ""
    return f"{result.decision.capitalize() if result.decision else 'Decided'} by {who}{role}: {result.reason}"


def _write_reply(conn: Connection, click: Any, result: DecisionOutcome, thread: SlackThread | None, now: datetime) -> None:
    """The answer to a click in the exception's Slack thread, recorded with the decision so it is never lost
    (the notifier delivers it); one per click."""
    if thread is None:
        return
    payload = {"channel": thread.channel, "thread_ts": thread.thread_ts, "click_id": click.click_id,
               "action_id": click.action_id, "user_id": click.user_id, "via": click.via, "click": click.decision,
               "outcome": result.outcome, "decision": result.decision, "role": result.role, "reason": result.reason}
    stmt = insert_ignoring_conflicts(conn, notifications, ["notification_id"]).values(
        notification_id=f"approval-result:{click.click_id}", kind="approval_result", channel=thread.channel[:128],
        subject=click.action_id[:255], text=_result_text(click, result), payload=audit.canonical_json(payload),
        status="pending", created_at=now,
    )
    conn.execute(stmt)


def outbox_row(erp_action: Any, now: datetime) -> dict[str, Any]:
    return {"action_id": erp_action.action_id, "kind": erp_action.kind, "payload": erp_action.model_dump_json(),
            "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now, "updated_at": now}


def action_value(action: Mapping[str, Any]) -> float | None:
    value = action.get("value")
    return None if value is None else float(value)


def _authorise(policy: Policy, click: Any, action: Mapping[str, Any]) -> tuple[str | None, str]:
    """(role, reason) when the clicker may take this decision; raises _Refusal otherwise.

    approve: a role covering the action's type and value, and not the requester. reject: the same authority,
    but the requester may withdraw their own request. snooze: any role that may approve the type (a snooze
    commits no money, so the value band does not apply)."""
    action_type, value, user, category = action["action_type"], action_value(action), click.user_id, category_of(action)
    if action_type not in ACTION_TYPES:
        raise _Refusal(f"unknown action type {action_type!r}")
    if click.decision == "snooze":
        roles = sorted(name for name, role in policy.roles.items()
                       if user in role.members and action_type in role.may_approve and role.covers_category(category))
        if not roles:
            raise _Refusal(f"{user} holds no role that may approve {action_type}{f' in category {category}' if category else ''}, so may not snooze it")
        return roles[0], f"{user} may snooze {action_type} as {roles[0]}"
    requested_by = requester_of(action) if click.decision == "approve" else None
    allowed, reason = may_approve(policy, user, action_type, value if value is not None else math.nan, requested_by, category)
    if not allowed:
        raise _Refusal(reason)
    return acting_role(policy, user, action_type, value, category), reason


def _take_decision(conn: Connection, row: dict[str, Any], supersede_snooze: bool) -> None:
    """Insert the action's one decision; with `supersede_snooze`, an earlier snooze gives way to it. Raises
    _Lost when another decision holds the action."""
    inserted = conn.execute(insert_ignoring_conflicts(conn, action_decisions, ["action_id"]).values(**row)
                            .returning(action_decisions.c.action_id)).scalar_one_or_none()
    if inserted is not None:
        return
    if supersede_snooze:
        # Conditional on the snooze still being there: of two approvers racing past a snooze, one wins.
        moved = conn.execute(update(action_decisions)
                             .where(and_(action_decisions.c.action_id == row["action_id"], action_decisions.c.decision == "snoozed"))
                             .values(**{k: v for k, v in row.items() if k != "action_id"}))
        if moved.rowcount == 1:
            return
    raise _Lost()


def _snooze_exception(conn: Connection, action: Mapping[str, Any], until: datetime, now: datetime) -> int:
    """Snooze the exception occurrence the action answers, in the lifecycle record and in the analysts'
    snapshot (the next planning run rebuilds the snapshot from the record); returns the records snoozed."""
    snoozed = 0
    for table in (exception_lifecycle, planning_exceptions):
        result = conn.execute(update(table).where(and_(
            table.c.exception_key == action["exception_key"], table.c.occurrence == action["occurrence"],
            table.c.state.in_(SNOOZABLE_STATES),
        )).values(state="snoozed", snoozed_until=until, state_changed_at=now))
        if table is exception_lifecycle:
            snoozed = result.rowcount
    return snoozed


def _evaluate(conn: Connection, policy: Policy, click: Any, action: Mapping[str, Any] | None, now: datetime,
              note: str | None, hours: float) -> tuple[DecisionOutcome, list[audit.AuditEntry]]:
    base = {"click_id": click.click_id, "via": click.via, "click": click.decision, "action_id": click.action_id}
    if action is None:
        reason = f"unknown action {click.action_id}: not among the current recommendations"
        return (DecisionOutcome(click.click_id, click.action_id, "refused", reason),
                [audit.AuditEntry(click.user_id, "refusal", click.action_id, {**base, "reason": reason}, now)])
    existing = conn.execute(select(action_decisions).where(action_decisions.c.action_id == click.action_id)).mappings().first()
    wants = CLICK_DECISIONS[click.decision]
    supersede = existing is not None and existing["decision"] == "snoozed" and click.decision != "snooze"
    if existing is not None and not supersede:
        return (DecisionOutcome(click.click_id, click.action_id, "duplicate",
                                f"already {existing['decision']} by {existing['decided_by']} at {as_utc(existing['decided_at']).isoformat()}",
                                decision=existing["decision"], decided_by=existing["decided_by"], role=existing["role"]), [])
    value = action_value(action)
    particulars = {**base, "action_type": action["action_type"], "exception_key": action["exception_key"],
                   "occurrence": action["occurrence"], "value": value}
    try:
        role, authority = _authorise(policy, click, action)
        erp_action = erp_action_for(action) if click.decision == "approve" else None
    except (_Refusal, ValueError) as refusal:
        reason = str(refusal)
        return (DecisionOutcome(click.click_id, click.action_id, "refused", reason),
                [audit.AuditEntry(click.user_id, "refusal", click.action_id, {**particulars, "reason": reason}, now)])

    notes = [note] if note else []
    if click.decision == "approve" and erp_action is None:
        notes.append(NO_ERP_WRITE.format(action_type=action["action_type"]))
    until = now + timedelta(hours=hours) if click.decision == "snooze" else None
    if until is not None:
        notes.append(f"snoozed until {until.isoformat()}")
    if supersede:
        notes.append(f"supersedes the snooze by {existing['decided_by']}")
    decision_row = {"action_id": click.action_id, "decision": wants, "decided_by": click.user_id, "role": role,
                    "decided_at": now, "recommended_at": action["created_at"], "value": value,
                    "note": "; ".join(notes) or None}
    try:
        with conn.begin_nested():
            _take_decision(conn, decision_row, supersede)
    except (_Lost, IntegrityError):
        # Another approver committed first (IntegrityError: a driver that raises instead of skipping).
        winner = conn.execute(select(action_decisions).where(action_decisions.c.action_id == click.action_id)).mappings().first()
        return (DecisionOutcome(click.click_id, click.action_id, "duplicate",
                                f"already {winner['decision'] if winner else 'decided'} by {winner['decided_by'] if winner else 'another approver'}",
                                decision=winner["decision"] if winner else None,
                                decided_by=winner["decided_by"] if winner else None), [])

    queued = False
    if erp_action is not None:
        # An outbox row left from before (e.g. an earlier auto-approval of the same id) is the same write.
        queued = conn.execute(insert_ignoring_conflicts(conn, erp_outbox, ["action_id"]).values(**outbox_row(erp_action, now))
                              .returning(erp_outbox.c.action_id)).scalar_one_or_none() is not None
    snoozed = _snooze_exception(conn, action, until, now) if until is not None else 0
    summary = "; ".join([authority, *notes])
    if queued:
        summary += f"; ERP write {erp_action.kind} queued"
    payload = {**particulars, "decision": wants, "role": role, "reason": summary, "note": note,
               "erp_kind": erp_action.kind if erp_action is not None else None, "erp_queued": queued,
               "snoozed_until": until, "exceptions_snoozed": snoozed}
    return (DecisionOutcome(click.click_id, click.action_id, "decided", summary, decision=wants,
                            decided_by=click.user_id, role=role, queued_erp_write=queued),
            [audit.AuditEntry(click.user_id, AUDIT_EVENTS[click.decision], click.action_id, payload, now)])


def decide(engine: Engine, policy: Policy, click_id: int, now: datetime | None = None, *, note: str | None = None,
           reply_to: SlackThread | None = None, snooze_for_hours: float | None = None) -> DecisionOutcome:
    """Evaluate one stored click, exactly once, in one transaction with everything it causes.

    Unknown action, no authority, self-approval or an action that cannot be written → refused (audited). An
    action already decided → duplicate, nothing changes (a snooze, though, gives way to a later approve or
    reject: the exception comes back after a snooze and must still be decidable). approve → the decision, the
    ERP write in `erp_outbox` (for types that have one) and the audit row; reject → the decision and audit;
    snooze → the decision, the exception's state snoozed until now + `snooze_hours` and audit. Evaluating a
    click again returns its stored outcome. `reply_to` (else the exception's Slack parent message) receives
    the result as a pending `approval_result` notification in the same transaction."""
    now = as_utc(now) or clock.now()
    hours = snooze_hours(snooze_for_hours)
    with engine.begin() as conn:
        # Write first: the claim takes the row lock (PostgreSQL) or the database write lock (SQLite) before
        # anything is read, so two evaluations of one click serialise and the second sees the first's outcome.
        claimed = conn.execute(update(approval_clicks)
                               .where(and_(approval_clicks.c.click_id == click_id, approval_clicks.c.processed_at.is_(None)))
                               .values(processed_at=now)).rowcount
        click = conn.execute(select(approval_clicks).where(approval_clicks.c.click_id == click_id)).first()
        if click is None:
            raise LookupError(f"no click {click_id}")
        if not claimed:
            return _existing_outcome(conn, click)
        action = conn.execute(select(recommended_actions).where(recommended_actions.c.action_id == click.action_id)).mappings().first()
        result, entries = _evaluate(conn, policy, click, action, now, note, hours)
        conn.execute(update(approval_clicks).where(approval_clicks.c.click_id == click_id)
                     .values(outcome=result.outcome, reason=result.reason))
        if entries:
            audit.append(conn, entries)
        # A Slack click is always answered; a CLI decision is shown in the exception's thread when it has one.
        if reply_to is None and (click.via == "slack" or result.outcome == "decided"):
            reply_to = _reply_thread(conn, action)
        _write_reply(conn, click, result, reply_to, now)
    return result


def decide_pending(engine: Engine, policy: Policy, now: datetime | None = None, limit: int = 500) -> list[DecisionOutcome]:
    """Evaluate stored clicks nobody evaluated yet, oldest first (a gateway that stopped after answering
    leaves its click here); their Slack answers go to the exception's parent message."""
    with engine.connect() as conn:
        ids = list(conn.execute(select(approval_clicks.c.click_id).where(approval_clicks.c.processed_at.is_(None))
                                .order_by(approval_clicks.c.click_id).limit(limit)).scalars())
    return [decide(engine, policy, click_id, now) for click_id in ids]
