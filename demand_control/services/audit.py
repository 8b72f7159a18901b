"""The audit log: one append-only, hash-chained table every step writes through this module (received
events, recommendations, policy decisions, approvals, ERP writes, notifications).

Each row stores the SHA-256 of its canonical JSON payload and a `row_hash` over the previous row's hash and
its own fields, so changing, inserting or deleting any row breaks the chain from there on; `verify_chain`
names the first broken link. Appends take a lock so two writers cannot fork the chain: a transaction-level
advisory lock on PostgreSQL (whose trigger also refuses UPDATE and DELETE), the database write lock on
SQLite. Append inside the caller's transaction, so the audited step and its audit row commit together.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, text

from demand_control.infra import clock
from demand_control.infra.clock import as_utc
from demand_control.schema.tables import audit_log

GENESIS_HASH = "0" * 64
# Any constant works; it only has to be the same for every writer of this database.
ADVISORY_LOCK_KEY = 0x64656D616E64  # "demand"


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"audit payload value of type {type(value).__name__} is not JSON-serialisable: {value!r}")


def canonical_json(payload: Mapping[str, Any]) -> str:
    """Sorted keys, no whitespace, UTC ISO datetimes: the same payload always hashes the same."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=_default, ensure_ascii=False)


def sha256(text_value: str) -> str:
    return hashlib.sha256(text_value.encode()).hexdigest()


def _timestamp(value: datetime) -> str:
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def link_hash(prev_hash: str, occurred_at: datetime, actor: str, event_type: str, subject: str, payload_hash: str) -> str:
    return sha256("|".join((prev_hash, _timestamp(occurred_at), actor, event_type, subject, payload_hash)))


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    event_type: str
    subject: str
    payload: Mapping[str, Any]
    occurred_at: datetime | None = None


def _lock_and_tail(conn: Connection) -> str:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    else:
        # SQLite: a write takes the database lock until commit; touching the table first takes it now, so
        # the tail read below and the insert are not interleaved with another writer's.
        conn.execute(text("UPDATE audit_log SET audit_id = audit_id WHERE 0"))
    last = conn.execute(select(audit_log.c.row_hash).order_by(audit_log.c.audit_id.desc()).limit(1)).scalar_one_or_none()
    return last or GENESIS_HASH


def append(conn: Connection, entries: Iterable[AuditEntry]) -> list[str]:
    """Append entries in order inside the caller's transaction; returns their row hashes."""
    prev = _lock_and_tail(conn)
    rows, hashes = [], []
    now = clock.now()
    for entry in entries:
        occurred = as_utc(entry.occurred_at) or now
        body = canonical_json(entry.payload)
        payload_hash = sha256(body)
        row_hash = link_hash(prev, occurred, entry.actor, entry.event_type, entry.subject, payload_hash)
        rows.append(
            {"occurred_at": occurred, "actor": entry.actor, "event_type": entry.event_type, "subject": entry.subject,
             "payload": body, "payload_hash": payload_hash, "prev_hash": prev, "row_hash": row_hash}
        )
        hashes.append(row_hash)
        prev = row_hash
    if rows:
        conn.execute(insert(audit_log), rows)
    return hashes


def record(engine: Engine, actor: str, event_type: str, subject: str, payload: Mapping[str, Any]) -> str:
    """Append one entry in its own transaction (for steps that have no transaction of their own)."""
    with engine.begin() as conn:
        return append(conn, [AuditEntry(actor, event_type, subject, payload)])[0]


@dataclass(frozen=True)
class ChainReport:
    rows: int
    broken_at: int | None  # audit_id of the first row whose link does not hold
    reason: str

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify_chain(engine: Engine, page: int = 10_000) -> ChainReport:
    """Walk the chain in order: each row's payload must hash to payload_hash, its prev_hash must be the
    previous row's row_hash, and its row_hash must be recomputable from its fields."""
    prev, count, last_id = GENESIS_HASH, 0, 0
    cols = [audit_log.c[c] for c in ("audit_id", "occurred_at", "actor", "event_type", "subject", "payload", "payload_hash", "prev_hash", "row_hash")]
    with engine.connect() as conn:
        while True:
            batch = conn.execute(select(*cols).where(audit_log.c.audit_id > last_id).order_by(audit_log.c.audit_id).limit(page)).all()
            if not batch:
                return ChainReport(count, None, "chain intact")
            for row in batch:
                if sha256(row.payload) != row.payload_hash:
                    return ChainReport(count, row.audit_id, f"row {row.audit_id}: payload does not match its payload_hash (payload changed)")
                if row.prev_hash != prev:
                    return ChainReport(count, row.audit_id, f"row {row.audit_id}: prev_hash does not match row {last_id}'s row_hash (a row was removed, inserted or changed before it)")
                expected = link_hash(row.prev_hash, row.occurred_at, row.actor, row.event_type, row.subject, row.payload_hash)
                if expected != row.row_hash:
                    return ChainReport(count, row.audit_id, f"row {row.audit_id}: row_hash does not match its fields (actor, time, type or subject changed)")
                prev, last_id, count = row.row_hash, row.audit_id, count + 1
