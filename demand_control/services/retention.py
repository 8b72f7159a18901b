"""Retention: personal data is kept for the policy's `retention.personal_data_days`, then redacted.

What is redacted (the columns `schema.tables.CLASSIFICATION` marks personal, in the tables that keep them
past their use):
- `inbox_events.payload` of events a replan has applied (an unapplied event is still work);
- `notifications.text` and `.payload` of notices no longer pending;
- `customer_notices.email`, `.subject` and `.body` of notices no longer pending or being sent.

What stays: ids, types, statuses, times and the digests (`inbox_events.payload_sha256`, the notices'
`body_sha256` in the audit log). The audit chain hashes those digests, never the personal text, so it still
verifies after a redaction; the redaction itself is one audit row with its cutoff and counts, committed with
the updates. Each redacted row gets `redacted_at`, so a row is redacted once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, update

from demand_control.infra import clock
from demand_control.infra.clock import as_utc
from demand_control.schema.tables import customer_notices, inbox_events, notifications
from demand_control.services import audit

REDACTED_TEXT = "[redacted: retention]"
REDACTED_PAYLOAD = json.dumps({"redacted": "retention"})
ACTOR = "retention"
# Notices still on their way keep their text until they are delivered or given up on.
NOTIFICATIONS_IN_FLIGHT = ("pending",)
CUSTOMER_NOTICES_IN_FLIGHT = ("pending", "sending")


@dataclass(frozen=True)
class RetentionReport:
    cutoff: datetime
    inbox_events: int
    notifications: int
    customer_notices: int

    @property
    def total(self) -> int:
        return self.inbox_events + self.notifications + self.customer_notices

    def summary(self) -> str:
        return (f"redacted personal data recorded before {self.cutoff:%Y-%m-%d %H:%M} UTC: {self.inbox_events} inbox events, "
                f"{self.notifications} notifications, {self.customer_notices} customer notices")


def redact_personal_data(engine: Engine, personal_data_days: int, now: datetime | None = None, actor: str = ACTOR) -> RetentionReport:
    """Redact the personal data older than `personal_data_days` (see the module docstring); one transaction."""
    if personal_data_days < 1:
        raise ValueError(f"retention.personal_data_days must be at least 1, got {personal_data_days}")
    now = as_utc(now) or clock.now()
    cutoff = now - timedelta(days=personal_data_days)
    with engine.begin() as conn:
        inbox = conn.execute(
            update(inbox_events)
            .where(and_(inbox_events.c.redacted_at.is_(None), inbox_events.c.received_at < cutoff,
                        inbox_events.c.processed_at.is_not(None)))
            .values(payload=REDACTED_PAYLOAD, redacted_at=now)
        ).rowcount
        notes = conn.execute(
            update(notifications)
            .where(and_(notifications.c.redacted_at.is_(None), notifications.c.created_at < cutoff,
                        notifications.c.status.not_in(NOTIFICATIONS_IN_FLIGHT)))
            .values(text=REDACTED_TEXT, payload=None, redacted_at=now)
        ).rowcount
        notices = conn.execute(
            update(customer_notices)
            .where(and_(customer_notices.c.redacted_at.is_(None), customer_notices.c.created_at < cutoff,
                        customer_notices.c.status.not_in(CUSTOMER_NOTICES_IN_FLIGHT)))
            .values(email=None, subject=REDACTED_TEXT, body=REDACTED_TEXT, redacted_at=now)
        ).rowcount
        report = RetentionReport(cutoff, inbox, notes, notices)
        if report.total:
            audit.append(conn, [audit.AuditEntry(actor, "retention_redaction", f"personal_data<{cutoff.isoformat()}", {
                "cutoff": cutoff, "personal_data_days": personal_data_days, "inbox_events": inbox,
                "notifications": notes, "customer_notices": notices}, now)])
    return report
