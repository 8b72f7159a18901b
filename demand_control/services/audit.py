"""The audit log: one append-only, hash-chained table every step writes through this module (received
events, recommendations, policy decisions, approvals, ERP writes, notifications).

Each row stores the SHA-256 of its canonical JSON payload and a `row_hash` over the previous row's hash and
its own fields, so changing, inserting or deleting any row breaks the chain from there on; `verify_chain`
names the first broken link. Appends take a lock so two writers cannot fork the chain: a transaction-level
advisory lock on PostgreSQL, the database write lock on SQLite. Triggers refuse UPDATE and DELETE on both
(and TRUNCATE on PostgreSQL). Append inside the caller's transaction, so the audited step and its audit row
commit together.

Keyed: with `DEMAND_CONTROL_AUDIT_KEY` (or `..._KEY_FILE`) set, `row_hash` is an HMAC-SHA256 under that key,
which is not in the database: someone who can write the database (even with the trigger disabled) cannot
recompute a link. Without a key the link is a plain SHA-256 (the demo's unkeyed mode, logged once per
process); rows written before a key was set stay unkeyed, and once a keyed row is in the chain every later
row must be keyed.

Anchored: each plan appends the chain's head (audit_id, row_hash) to an append-only checkpoint file outside
the database (`anchor`); `verify_chain` given those anchors tells a cut tail (`truncated`: rows at or after an
anchor are missing) from a changed row (`rewritten`: a hash does not match).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, text

from demand_control.infra import clock, settings
from demand_control.infra.clock import as_utc
from demand_control.schema.tables import audit_log

log = logging.getLogger("demand_control.audit")

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


class _FromEnvironment:
    """The default `key`: read the configured key (settings.audit_key) at the time of the call."""


FROM_ENVIRONMENT = _FromEnvironment()
_warned_unkeyed = False


def configured_key() -> bytes | None:
    """The audit key the environment configures, None in unkeyed mode (logged once per process)."""
    global _warned_unkeyed
    key = settings.audit_key()
    if key is None and not _warned_unkeyed:
        _warned_unkeyed = True
        log.warning("audit chain UNKEYED: %s is not set, so anyone who can write the database can recompute the "
                    "chain; anchors still catch changes up to the last plan (fine for a demo, not for production)",
                    settings.AUDIT_KEY_ENV)
    return key


def _resolve(key: bytes | None | _FromEnvironment) -> bytes | None:
    return configured_key() if isinstance(key, _FromEnvironment) else key


def _link_message(prev_hash: str, occurred_at: datetime, actor: str, event_type: str, subject: str, payload_hash: str) -> bytes:
    return "|".join((prev_hash, _timestamp(occurred_at), actor, event_type, subject, payload_hash)).encode()


def link_hash(prev_hash: str, occurred_at: datetime, actor: str, event_type: str, subject: str, payload_hash: str,
              key: bytes | None | _FromEnvironment = FROM_ENVIRONMENT) -> str:
    """The chain link: HMAC-SHA256 under `key` (default: the configured key), plain SHA-256 without one."""
    message = _link_message(prev_hash, occurred_at, actor, event_type, subject, payload_hash)
    key = _resolve(key)
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sql_link_params(key: bytes | None | _FromEnvironment = FROM_ENVIRONMENT) -> dict[str, bytes | None]:
    """HMAC's inner and outer padded keys (RFC 2104), for writers that compute the link inside PostgreSQL
    (`SQL_LINK_HASH`): HMAC(K, m) = SHA256((K ^ opad) || SHA256((K ^ ipad) || m)). None, None: unkeyed."""
    key = _resolve(key)
    if key is None:
        return {"link_key_inner": None, "link_key_outer": None}
    block = hashlib.sha256(key).digest() if len(key) > 64 else key
    block = block.ljust(64, b"\0")
    return {"link_key_inner": bytes(b ^ 0x36 for b in block), "link_key_outer": bytes(b ^ 0x5C for b in block)}


# `link_hash` in PostgreSQL SQL, over the UTF-8 of `{message}` (an SQL text expression), with the parameters
# of `sql_link_params` (psycopg2 style).
SQL_LINK_HASH = (
    "encode(CASE WHEN %(link_key_inner)s::bytea IS NULL THEN sha256(convert_to({message}, 'UTF8')) "
    "ELSE sha256(%(link_key_outer)s::bytea || sha256(%(link_key_inner)s::bytea || convert_to({message}, 'UTF8'))) END, 'hex')"
)


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
    key = configured_key()
    prev = _lock_and_tail(conn)
    rows, hashes = [], []
    now = clock.now()
    for entry in entries:
        occurred = as_utc(entry.occurred_at) or now
        body = canonical_json(entry.payload)
        payload_hash = sha256(body)
        row_hash = link_hash(prev, occurred, entry.actor, entry.event_type, entry.subject, payload_hash, key)
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
class Anchor:
    """The chain's head as a plan saw it: the last row's audit_id and row_hash (0 and the genesis hash for an
    empty chain), whether it is keyed and from which row on the chain is keyed."""

    audit_id: int
    row_hash: str
    keyed_from: int | None
    anchored_at: str
    by: str = ""

    def line(self) -> str:
        return json.dumps({"audit_id": self.audit_id, "row_hash": self.row_hash, "keyed_from": self.keyed_from,
                           "anchored_at": self.anchored_at, "by": self.by}, sort_keys=True)


def head(conn: Connection, key: bytes | None | _FromEnvironment = FROM_ENVIRONMENT) -> tuple[int, str, int | None]:
    """(audit_id, row_hash, keyed_from) of the chain's last row; (0, GENESIS_HASH, None) when empty.
    keyed_from: the first row linked under `key`, found by walking the chain (None without a key)."""
    last = conn.execute(select(audit_log.c.audit_id, audit_log.c.row_hash).order_by(audit_log.c.audit_id.desc()).limit(1)).first()
    if last is None:
        return 0, GENESIS_HASH, None
    return last.audit_id, last.row_hash, _first_keyed_row(conn, _resolve(key))


def _first_keyed_row(conn: Connection, key: bytes | None) -> int | None:
    """The first row whose link is an HMAC under `key` (rows are keyed from there on, or the chain is broken)."""
    if key is None:
        return None
    cols = [audit_log.c[c] for c in _LINK_COLUMNS]
    last_id = 0
    while True:
        batch = conn.execute(select(*cols).where(audit_log.c.audit_id > last_id).order_by(audit_log.c.audit_id).limit(10_000)).all()
        if not batch:
            return None
        for row in batch:
            if link_hash(row.prev_hash, row.occurred_at, row.actor, row.event_type, row.subject, row.payload_hash, key) == row.row_hash:
                return row.audit_id
            last_id = row.audit_id


def anchor(engine: Engine, checkpoint_file: Path, by: str = "", key: bytes | None | _FromEnvironment = FROM_ENVIRONMENT) -> Anchor:
    """Append the chain's head to `checkpoint_file` (created if missing; opened for append only, flushed to
    disk before returning) and return it. The file lives outside the database: keep it where the database's
    administrators cannot rewrite it (another host, a WORM bucket synced from it, …)."""
    key = _resolve(key)
    previous = read_anchors(checkpoint_file)
    with engine.connect() as conn:
        audit_id, row_hash, keyed_from = _head_after(conn, key, previous)
    mark = Anchor(audit_id, row_hash, keyed_from, as_utc(clock.now()).isoformat(), by)
    highest = max((a.audit_id for a in previous), default=0)
    if audit_id < highest:  # recorded all the same: the file is the evidence `verify_chain` reads
        log.error("audit chain head is row %s but %s already anchored row %s: rows were deleted", audit_id, checkpoint_file, highest)
    checkpoint_file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(checkpoint_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(descriptor, (mark.line() + "\n").encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return mark


def _head_after(conn: Connection, key: bytes | None, previous: Sequence[Anchor]) -> tuple[int, str, int | None]:
    """The head, with keyed_from carried over from the last anchor that had one (no walk of the whole chain
    per plan, and an unkeyed process does not drop the claim); else found by walking to the first keyed row,
    or, with a key and no keyed row yet, the row after the head."""
    known = next((a.keyed_from for a in reversed(previous) if a.keyed_from is not None), None)
    if known is not None:
        last = conn.execute(select(audit_log.c.audit_id, audit_log.c.row_hash).order_by(audit_log.c.audit_id.desc()).limit(1)).first()
        return (last.audit_id, last.row_hash, known) if last is not None else (0, GENESIS_HASH, known)
    audit_id, row_hash, keyed_from = head(conn, key)
    if key is not None and keyed_from is None:
        # The re-anchor after a key is first set: every row after this head must be keyed.
        keyed_from = audit_id + 1
    return audit_id, row_hash, keyed_from


def read_anchors(checkpoint_file: Path) -> list[Anchor]:
    """The anchors in the checkpoint file, oldest first; none when the file does not exist. A line that is
    not an anchor is an error naming the file and line (the file is evidence: never skip what it says)."""
    if not checkpoint_file.exists():
        return []
    anchors = []
    for number, line in enumerate(checkpoint_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            keyed_from = data.get("keyed_from")
            anchors.append(Anchor(int(data["audit_id"]), str(data["row_hash"]), None if keyed_from is None else int(keyed_from),
                                  str(data.get("anchored_at", "")), str(data.get("by", ""))))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"audit checkpoint file {checkpoint_file} line {number} is not an anchor: {line[:80]!r}") from exc
    return anchors


INTACT, REWRITTEN, TRUNCATED = "intact", "rewritten", "truncated"


@dataclass(frozen=True)
class ChainReport:
    rows: int
    broken_at: int | None  # audit_id of the first row whose link does not hold (or the anchor's missing row)
    reason: str
    kind: str = INTACT  # intact, rewritten (a hash does not match) or truncated (rows at/after an anchor missing)
    keyed_from: int | None = None  # first keyed row; None: the chain holds no keyed row
    anchors_checked: int = 0
    last_anchor: Anchor | None = field(default=None)

    @property
    def ok(self) -> bool:
        return self.broken_at is None


_LINK_COLUMNS = ("audit_id", "occurred_at", "actor", "event_type", "subject", "payload", "payload_hash", "prev_hash", "row_hash")


def verify_chain(engine: Engine, page: int = 10_000, key: bytes | None | _FromEnvironment = FROM_ENVIRONMENT,
                 anchors: Sequence[Anchor] = ()) -> ChainReport:
    """Walk the chain in order: each row's payload must hash to payload_hash, its prev_hash must be the
    previous row's row_hash, its row_hash must be recomputable from its fields (under `key` once the chain is
    keyed), and each anchor's row must be there with the anchored hash."""
    key = _resolve(key)
    by_id = {a.audit_id: a for a in anchors if a.audit_id > 0}
    last_anchor = max(anchors, key=lambda a: a.audit_id, default=None)
    claimed_keyed_from = min((a.keyed_from for a in anchors if a.keyed_from is not None), default=None)
    prev, count, last_id, keyed_from = GENESIS_HASH, 0, 0, None
    checked = 0

    def broken(at: int, kind: str, reason: str) -> ChainReport:
        return ChainReport(count, at, reason, kind, keyed_from, checked, last_anchor)

    cols = [audit_log.c[c] for c in _LINK_COLUMNS]
    with engine.connect() as conn:
        while True:
            batch = conn.execute(select(*cols).where(audit_log.c.audit_id > last_id).order_by(audit_log.c.audit_id).limit(page)).all()
            if not batch:
                break
            for row in batch:
                skipped = [a for a in by_id if last_id < a < row.audit_id]
                if skipped:
                    a = by_id[min(skipped)]
                    return broken(a.audit_id, TRUNCATED, f"row {a.audit_id}, anchored at {a.anchored_at}, is missing (rows were deleted)")
                if sha256(row.payload) != row.payload_hash:
                    return broken(row.audit_id, REWRITTEN, f"row {row.audit_id}: payload does not match its payload_hash (payload changed)")
                if row.prev_hash != prev:
                    return broken(row.audit_id, REWRITTEN, f"row {row.audit_id}: prev_hash does not match row {last_id}'s row_hash (a row was removed, inserted or changed before it)")
                fields = (row.prev_hash, row.occurred_at, row.actor, row.event_type, row.subject, row.payload_hash)
                keyed = key is not None and link_hash(*fields, key=key) == row.row_hash
                if not keyed and link_hash(*fields, key=None) != row.row_hash:
                    hint = "" if key is not None else f" (a keyed chain verifies only with {settings.AUDIT_KEY_ENV} set)"
                    return broken(row.audit_id, REWRITTEN, f"row {row.audit_id}: row_hash does not match its fields (actor, time, type or subject changed, or the link was forged){hint}")
                if keyed and keyed_from is None:
                    keyed_from = row.audit_id
                if not keyed and (keyed_from is not None or (claimed_keyed_from is not None and row.audit_id >= claimed_keyed_from)):
                    since = keyed_from if keyed_from is not None else claimed_keyed_from
                    return broken(row.audit_id, REWRITTEN, f"row {row.audit_id}: unkeyed link in a chain keyed since row {since} (written without the key)")
                anchored = by_id.get(row.audit_id)
                if anchored is not None:
                    checked += 1
                    if anchored.row_hash != row.row_hash:
                        return broken(row.audit_id, REWRITTEN, f"row {row.audit_id}: row_hash differs from the anchor taken at {anchored.anchored_at} (the chain was rewritten up to here)")
                prev, last_id, count = row.row_hash, row.audit_id, count + 1
    beyond = [a for a in by_id if a > last_id]
    if beyond:
        a = by_id[max(beyond)]
        return broken(last_id + 1, TRUNCATED, f"the chain ends at row {last_id} but the anchor taken at {a.anchored_at} names row {a.audit_id}: rows {last_id + 1}..{a.audit_id} at least were deleted")
    return ChainReport(count, None, "chain intact", INTACT, keyed_from, checked, last_anchor)
