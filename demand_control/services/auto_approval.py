"""Auto-approval: what the policy approved is decided by `policy`, its ERP write queued and audited in one
transaction (the same rows a person's approval writes), unless a blocking data-quality gate upstream failed:
then every candidate waits for the role the policy routes it to, the gate named (RELIABILITY.md §21). No
Dagster import: the plan's asset, the replan, the demo and the twin call it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, select, update

from demand_control.infra import clock
from demand_control.infra.clock import as_utc
from demand_control.infra.sql import insert_ignoring_conflicts
from demand_control.planning.policy import Policy, approver_role_for
from demand_control.planning.vocabulary import (
    AUTO_APPROVED,
    AWAITING_APPROVAL,
)
from demand_control.schema.tables import (
    action_decisions,
    erp_outbox,
    recommended_actions,
)
from demand_control.services import audit
from demand_control.services.approvals import (
    NO_ERP_WRITE,
    POLICY_ACTOR,
    action_value,
    category_of,
    erp_action_for,
    outbox_row,
    requester_of,
)

GATE_FAILED = "data-quality gate failed: {gates}"
_BATCH = 1_000  # rows per multi-row insert


def withhold_auto_approval(conn: Connection, candidates: list[Mapping[str, Any]], failed_gates: list[str],
                           policy: Policy | None, now: datetime) -> list[audit.AuditEntry]:
    """A failed blocking data-quality gate upstream: the actions the policy would have auto-approved await a
    person instead (routed to the approving role, the gate named in their reasons), each refusal audited."""
    reason = GATE_FAILED.format(gates="; ".join(failed_gates))
    entries = []
    for action in candidates:
        role = (approver_role_for(policy, action["action_type"], action_value(action), requester_of(action), category_of(action))
                if policy is not None else None)
        conn.execute(update(recommended_actions)
                     .where(and_(recommended_actions.c.action_id == action["action_id"], recommended_actions.c.policy_decision == AUTO_APPROVED))
                     .values(policy_decision=AWAITING_APPROVAL, approver_role=role,
                             policy_reasons=f"{reason}; {action['policy_reasons'] or ''}".rstrip("; ")))
        entries.append(audit.AuditEntry(POLICY_ACTOR, "refusal", action["action_id"], {
            "action_id": action["action_id"], "decision": AUTO_APPROVED, "action_type": action["action_type"],
            "reason": reason, "failed_gates": failed_gates, "approver_role": role}, now))
    return entries


def auto_approve(engine: Engine, now: datetime | None = None, *, failed_gates: Sequence[str] = (),
                 policy: Policy | None = None) -> list[str]:
    """Decide every action the policy auto-approved that has no decision yet: decision auto_approved by
    `policy`, its ERP write queued and audited, in one transaction. Returns the action ids decided now; a
    second call (or a concurrent one) decides nothing again.

    `failed_gates` (blocking data-quality checks upstream whose latest evaluation failed, RELIABILITY §21):
    when any is given nothing is auto-approved; the candidates await the role `policy` routes them to."""
    now = as_utc(now) or clock.now()
    undecided = (select(recommended_actions)
                 .outerjoin(action_decisions, action_decisions.c.action_id == recommended_actions.c.action_id)
                 .where(and_(recommended_actions.c.policy_decision == AUTO_APPROVED, action_decisions.c.action_id.is_(None)))
                 .order_by(recommended_actions.c.action_id))
    decided: list[str] = []
    with engine.begin() as conn:
        # The read may be overtaken by a human or a concurrent run: the conditional insert below settles it.
        candidates = conn.execute(undecided).mappings().all()
        if failed_gates:
            entries = withhold_auto_approval(conn, list(candidates), list(failed_gates), policy, now)
            if entries:
                audit.append(conn, entries)
            return []
        entries: list[audit.AuditEntry] = []
        rows, erp_actions = [], {}
        for action in candidates:
            try:
                erp_action = erp_action_for(action)
            except ValueError as exc:
                entries.append(audit.AuditEntry(POLICY_ACTOR, "refusal", action["action_id"],
                                                {"action_id": action["action_id"], "decision": AUTO_APPROVED, "reason": str(exc)}, now))
                continue
            notes = [action["policy_reasons"]]
            if erp_action is None:
                notes.append(NO_ERP_WRITE.format(action_type=action["action_type"]))
            erp_actions[action["action_id"]] = erp_action
            rows.append({"action_id": action["action_id"], "decision": AUTO_APPROVED, "decided_by": POLICY_ACTOR, "role": None,
                         "decided_at": now, "recommended_at": action["created_at"], "value": action_value(action), "note": "; ".join(notes)})
        # Set-based: one conditional insert for the decisions (a human or a concurrent run may have decided some
        # meanwhile: those rows are skipped and not returned), one for the ERP writes of the decided ones. A
        # plan's first run can auto-approve thousands of actions; a statement per action took minutes.
        won = _inserted(conn, action_decisions, rows)
        outbox = [outbox_row(erp_actions[a], now) for a in won if erp_actions[a] is not None]
        queued = _inserted(conn, erp_outbox, outbox)
        for action in candidates:
            action_id = action["action_id"]
            if action_id not in won:
                continue
            erp_action = erp_actions[action_id]
            entries.append(audit.AuditEntry(POLICY_ACTOR, "approval", action_id, {
                "action_id": action_id, "decision": AUTO_APPROVED, "action_type": action["action_type"],
                "exception_key": action["exception_key"], "value": action_value(action), "reason": action["policy_reasons"],
                "erp_kind": erp_action.kind if erp_action is not None else None, "erp_queued": action_id in queued,
            }, now))
            decided.append(action_id)
        if entries:
            audit.append(conn, entries)
    return decided


def _inserted(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> set[str]:
    """Insert `rows` keyed by action_id, skipping those already there; the action ids actually inserted."""
    if not rows:
        return set()
    statement = insert_ignoring_conflicts(conn, table, ["action_id"]).returning(table.c.action_id)
    inserted: set[str] = set()
    for start in range(0, len(rows), _BATCH):
        inserted.update(conn.execute(statement, rows[start : start + _BATCH]).scalars().all())
    return inserted
