"""Auto-approval: what the policy approved is decided by `policy`, its ERP write queued and audited in one
transaction (the same rows a person's approval writes), unless a blocking data-quality gate upstream failed:
then every candidate waits for the role the policy routes it to, the gate named (RELIABILITY.md §21). No
Dagster import: the plan's asset, the replan, the demo and the twin call it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, select, update

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
        entries = []
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
            row = {"action_id": action["action_id"], "decision": AUTO_APPROVED, "decided_by": POLICY_ACTOR, "role": None,
                   "decided_at": now, "recommended_at": action["created_at"], "value": action_value(action), "note": "; ".join(notes)}
            if conn.execute(insert_ignoring_conflicts(conn, action_decisions, ["action_id"]).values(**row)
                            .returning(action_decisions.c.action_id)).scalar_one_or_none() is None:
                continue  # a human or a concurrent run decided it meanwhile
            queued = False
            if erp_action is not None:
                queued = conn.execute(insert_ignoring_conflicts(conn, erp_outbox, ["action_id"]).values(**outbox_row(erp_action, now))
                                      .returning(erp_outbox.c.action_id)).scalar_one_or_none() is not None
            entries.append(audit.AuditEntry(POLICY_ACTOR, "approval", action["action_id"], {
                "action_id": action["action_id"], "decision": AUTO_APPROVED, "action_type": action["action_type"],
                "exception_key": action["exception_key"], "value": action_value(action), "reason": action["policy_reasons"],
                "erp_kind": erp_action.kind if erp_action is not None else None, "erp_queued": queued,
            }, now))
            decided.append(action["action_id"])
        if entries:
            audit.append(conn, entries)
    return decided
