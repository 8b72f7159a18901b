"""The inbox writer: each verified event, its audit row and the references it names, committed in one
transaction before the gateway answers; a second delivery of a source's `webhook-id` finds the first. The
dedupe key is (source, webhook-id): senders draw their ids independently, so one source's id never hides
another source's event. The same key with a different body is a conflict: nothing is stored, and an
`inbox_conflict` row in the audit log names both payload hashes for the source's owner. On PostgreSQL a
fast path does it in two round trips with prepared statements."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Select, bindparam, exists, select, text
from sqlalchemy.exc import DBAPIError

from demand_control.services import audit
from demand_control.infra import clock as planning_clock
from demand_control.infra.sql import insert_ignoring_conflicts
from demand_control.gateway.schemas import Event, OrderChange, OrderNew
from demand_control.gateway.signing import TOLERANCE
from demand_control.schema.tables import STAGED, inbox_events

if TYPE_CHECKING:  # the resource module pulls in Dagster; the gateway only needs `.engine` and `.ensure_schema()`
    from demand_control.resources.warehouse import Warehouse

log = logging.getLogger("demand_control.gateway")


@dataclass(frozen=True)
class Stored:
    inbox_id: int
    duplicate: bool
    quality_flags: list[str] = field(default_factory=list)
    same_payload: bool = True
    stored_sha256: str | None = None  # of a duplicate: the payload hash stored first

    @property
    def conflict(self) -> bool:
        """The same (source, webhook-id) was stored with another body (the audit log has an inbox_conflict row)."""
        return self.duplicate and not self.same_payload


CONFLICT_AUDIT_TYPE = "inbox_conflict"


@dataclass(frozen=True)
class _Resolved:
    """What the warehouse knows about the event's references (one round trip of primary-key lookups)."""

    sku: str | None
    location_id: str | None
    quality_flags: list[str]


# The inbox id the write transaction inserted (empty: it inserted nothing), as a session setting, which
# outlives the transaction: how the id gets from inside the transaction to the read after its COMMIT in the
# same round trip (psycopg2 returns only the last statement's result).
_INSERTED_SETTING = "demand_control.gateway_inbox_id"

# Round trip 1 (no transaction): the event's reference lookups and whether its (source, webhook-id) is stored.
_PG_LOOKUP = "SELECT p.*, i.inbox_id AS existing_id, i.payload_sha256 AS existing_sha256 FROM ({probe}) AS p " \
             "LEFT JOIN inbox_events AS i ON i.source = %(source)s AND i.webhook_id = %(webhook_id)s"

# Round trip 2: the whole write transaction. The audit lock is taken first, so the inbox id (the inbox sensor's
# cursor) is drawn in commit order; the inbox row and its audit row are one statement whose snapshot starts
# after the lock, so the chain's tail it reads is the last committed link; the link hash is computed in the
# database (`audit.SQL_LINK_HASH`, the same formula as `audit.link_hash`: HMAC or sha256 of
# prev_hash|time|actor|type|subject|payload_hash); the
# lock is released by the COMMIT inside this round trip, never held while this process waits for the GIL.
# (READ COMMITTED: each statement of the string takes a fresh snapshot, as `audit.append` relies on too.)
# A redelivery racing its original inserts nothing (ON CONFLICT DO NOTHING) and so appends no audit row.
_PG_INSERT = f"""WITH ins AS (
    INSERT INTO inbox_events (webhook_id, source, event_type, received_at, sent_at, payload, payload_sha256, sku,
                              location_id, po_id, po_line_no, order_id, order_line_no, quality_flags)
    VALUES (%(webhook_id)s, %(source)s, %(event_type)s, %(received_at)s, %(sent_at)s, %(payload)s,
            %(payload_sha256)s, %(sku)s, %(location_id)s, %(po_id)s, %(po_line_no)s, %(order_id)s,
            %(order_line_no)s, %(quality_flags)s)
    ON CONFLICT (source, webhook_id) DO NOTHING
    RETURNING inbox_id
), tail AS (
    SELECT coalesce((SELECT row_hash FROM audit_log ORDER BY audit_id DESC LIMIT 1), %(genesis)s) AS prev_hash
), appended AS (
    INSERT INTO audit_log (occurred_at, actor, event_type, subject, payload, payload_hash, prev_hash, row_hash)
    SELECT %(received_at)s, %(actor)s, %(audit_type)s, %(webhook_id)s, %(audit_payload)s, %(audit_payload_hash)s,
           tail.prev_hash, {audit.SQL_LINK_HASH.format(message="tail.prev_hash || %(link_rest)s")}
    FROM ins, tail
)
SELECT set_config('{_INSERTED_SETTING}', coalesce((SELECT inbox_id::text FROM ins), ''), false)"""
_PG_READ_BACK = f"""SELECT current_setting('{_INSERTED_SETTING}'), inbox_id, payload_sha256 FROM inbox_events
WHERE source = %(source)s AND webhook_id = %(webhook_id)s"""


def _prepared(name: str, sql: str) -> tuple[str, str]:
    """(PREPARE statement, EXECUTE statement with psycopg2 %(name)s parameters) for `sql`: prepared once per
    connection, the statements are planned once instead of per event (most of the database's CPU per event).
    Parameter types are inferred from where they are used."""
    names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", sql)))
    body = re.sub(r"%\((\w+)\)s", lambda m: f"${names.index(m[1]) + 1}", sql)
    return f"PREPARE {name} AS {body}", f"EXECUTE {name}({', '.join(f'%({n})s' for n in names)})"


class InboxWriter:
    """Stores verified events: inbox row and audit row in one transaction (blocking; run in a thread)."""

    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse
        self.engine = warehouse.engine
        dialect = self.engine.dialect.name
        if dialect not in ("postgresql", "sqlite"):
            raise ValueError(f"the gateway needs PostgreSQL or SQLite, not {dialect}")
        # PostgreSQL through psycopg2 (client-side parameters, so several statements can go in one round
        # trip): two round trips per event on a raw DBAPI connection. Other drivers take the general path.
        self._fast = dialect == "postgresql" and self.engine.dialect.driver == "psycopg2"
        if self._fast:
            statements = {f"dc_gateway_lookup_{kind}": _PG_LOOKUP.format(probe=probe.compile(dialect=self.engine.dialect))
                          for kind, probe in _PROBES.items()}
            statements |= {"dc_gateway_insert": _PG_INSERT, "dc_gateway_read_back": _PG_READ_BACK}
            prepared = {name: _prepared(name, sql) for name, sql in statements.items()}
            self._prepare = "; ".join(prepare for prepare, _ in prepared.values())
            self._lookups = {kind: prepared[f"dc_gateway_lookup_{kind}"][1] for kind in _PROBES}
            self._write = (f"BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(%(lock_key)s); "
                           f"{prepared['dc_gateway_insert'][1]}; COMMIT; {prepared['dc_gateway_read_back'][1]}")
        # SQLite has one writer at a time and makes waiting writers poll with sleeps of up to 100 ms; queueing
        # this process's writers on a lock instead hands the database over at once (other processes still
        # wait through SQLite's busy timeout). PostgreSQL writers run concurrently.
        self._write_lock: AbstractContextManager[Any] = threading.Lock() if dialect == "sqlite" else nullcontext()
        self._read_apart = dialect == "sqlite"
        self._insert_new = insert_ignoring_conflicts(dialect, inbox_events, ["source", "webhook_id"]).returning(
            inbox_events.c.inbox_id)
        self._find = select(inbox_events.c.inbox_id, inbox_events.c.payload_sha256).where(
            inbox_events.c.source == bindparam("source"), inbox_events.c.webhook_id == bindparam("webhook_id")
        )

    def store(self, source: str, webhook_id: str, sent_at: datetime, event: Event, body_text: str,
              payload_sha256: str, now: datetime) -> Stored:
        if self._fast:
            return self._store_pg(source, webhook_id, sent_at, event, body_text, payload_sha256, now)
        with self.engine.connect() as conn:
            resolved = None
            if self._read_apart:
                # On SQLite a transaction that read before it writes can fail to take the write lock
                # (BUSY_SNAPSHOT) instead of waiting for it: read in a short transaction of its own.
                resolved = _resolve(conn, event, now)
                conn.rollback()
            with self._write_lock, conn.begin():
                if resolved is None:  # PostgreSQL: one transaction, one round trip fewer
                    resolved = _resolve(conn, event, now)
                received_at = planning_clock.now()
                row = {
                    "webhook_id": webhook_id,
                    "source": source,
                    "event_type": event.type,
                    "received_at": received_at,
                    "sent_at": sent_at,
                    "payload": body_text,
                    "payload_sha256": payload_sha256,
                    "sku": resolved.sku,
                    "location_id": resolved.location_id,
                    "quality_flags": "; ".join(resolved.quality_flags) or None,
                    **_line_columns(event),
                }
                # Insert first: a concurrent delivery of the same id waits on the unique key, then finds it.
                inbox_id = conn.execute(self._insert_new, row).scalar_one_or_none()
                if inbox_id is None:
                    existing = conn.execute(self._find, {"source": source, "webhook_id": webhook_id}).one()
                    stored = _duplicate(existing.inbox_id, existing.payload_sha256, payload_sha256)
                    if stored.conflict:
                        audit.append(conn, [_conflict_entry(source, webhook_id, stored, payload_sha256, received_at)])
                    return stored
                audit.append(conn, [audit.AuditEntry(
                    actor=f"gateway:{source}",
                    event_type="event_received",
                    subject=webhook_id,
                    payload={"source": source, "event_type": event.type, "payload_sha256": payload_sha256,
                             "quality_flags": resolved.quality_flags},
                    occurred_at=received_at,
                )])
            # Leaving `conn.begin()` committed: only now may the caller answer 2xx.
            return Stored(inbox_id, False, resolved.quality_flags)

    def _store_pg(self, source: str, webhook_id: str, sent_at: datetime, event: Event, body_text: str,
                  payload_sha256: str, now: datetime) -> Stored:
        # A conflict is recorded after the write path has given its connection back: one connection per
        # event in flight, never two (the gateway admits as many events at once as the pool holds).
        stored = self._write_pg(source, webhook_id, sent_at, event, body_text, payload_sha256, now)
        return self._recorded(source, webhook_id, stored, payload_sha256)

    def _write_pg(self, source: str, webhook_id: str, sent_at: datetime, event: Event, body_text: str,
                  payload_sha256: str, now: datetime) -> Stored:
        """`store` on PostgreSQL in two round trips: lookups (a stored webhook-id ends here), then one string
        that takes the audit lock, inserts inbox and audit rows, commits, and reads back what was stored."""
        raw = self.engine.raw_connection()  # pooled (and pinged) as usual; autocommit only while we hold it
        invalidated = False
        try:
            dbapi = raw.driver_connection
            dbapi.autocommit = True
            try:
                with dbapi.cursor() as cur:
                    if not raw.info.get("dc_gateway_prepared"):  # once per connection (the info goes with it)
                        cur.execute(self._prepare)
                        raw.info["dc_gateway_prepared"] = True
                    kind, params = _probe(event)
                    cur.execute(self._lookups[kind], {**params, "source": source, "webhook_id": webhook_id})
                    found = _Row(cur.description, cur.fetchone())
                    if found.existing_id is not None:
                        return _duplicate(found.existing_id, found.existing_sha256, payload_sha256)
                    resolved = _resolved(event, found, now)
                    received_at = planning_clock.now()
                    actor = f"gateway:{source}"
                    audit_body = audit.canonical_json({
                        "source": source, "event_type": event.type, "payload_sha256": payload_sha256,
                        "quality_flags": resolved.quality_flags})
                    audit_hash = audit.sha256(audit_body)
                    try:
                        cur.execute(self._write, {
                            "lock_key": audit.ADVISORY_LOCK_KEY, "webhook_id": webhook_id, "source": source,
                            "event_type": event.type, "received_at": received_at, "sent_at": sent_at,
                            "payload": body_text, "payload_sha256": payload_sha256, "sku": resolved.sku,
                            "location_id": resolved.location_id, "po_id": None, "po_line_no": None,
                            "order_id": None, "order_line_no": None,
                            "quality_flags": "; ".join(resolved.quality_flags) or None, **_line_columns(event),
                            "genesis": audit.GENESIS_HASH, "actor": actor, "audit_type": "event_received",
                            "audit_payload": audit_body, "audit_payload_hash": audit_hash,
                            # link_hash's fields after prev_hash, with their separators
                            "link_rest": "|" + "|".join((audit._timestamp(received_at), actor, "event_received",
                                                         webhook_id, audit_hash)),
                            **audit.sql_link_params(),
                        })
                    except Exception:
                        if not dbapi.closed:  # end the aborted BEGIN block (in autocommit, rollback() would not)
                            with contextlib.suppress(Exception):
                                cur.execute("ROLLBACK")
                        raise
                    inserted, inbox_id, stored_sha256 = cur.fetchone()
            finally:
                if not dbapi.closed:
                    dbapi.autocommit = False
        except self.engine.dialect.loaded_dbapi.Error as exc:
            # A broken connection goes out of the pool; either way, SQLAlchemy's error type of the driver's
            # error (DataError for a value the database refuses, OperationalError for an outage, ...).
            invalidated = bool(getattr(exc, "pgcode", None) is None)
            if invalidated:
                raw.invalidate(exc)
            raise DBAPIError.instance("gateway store", None, exc, self.engine.dialect.loaded_dbapi.Error,
                                      connection_invalidated=invalidated, dialect=self.engine.dialect) from exc
        finally:
            if not invalidated:
                raw.close()
        if inserted:  # committed by this call: only now may the caller answer 2xx
            return Stored(int(inserted), False, resolved.quality_flags)
        return _duplicate(inbox_id, stored_sha256, payload_sha256)

    def _recorded(self, source: str, webhook_id: str, stored: Stored, payload_sha256: str) -> Stored:
        """A duplicate found by the PostgreSQL path; a conflict is recorded in the audit log before answering
        (rare, so through the general path: its own transaction, under the audit lock)."""
        if stored.conflict:
            with self.engine.begin() as conn:
                audit.append(conn, [_conflict_entry(source, webhook_id, stored, payload_sha256, planning_clock.now())])
        return stored

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))


def _duplicate(inbox_id: int, stored_sha256: str, payload_sha256: str) -> Stored:
    return Stored(int(inbox_id), True, same_payload=stored_sha256 == payload_sha256, stored_sha256=stored_sha256)


def _conflict_entry(source: str, webhook_id: str, stored: Stored, payload_sha256: str, now: datetime) -> audit.AuditEntry:
    """The owner's record of a conflicting delivery (one row per delivery: a retrying sender shows as many)."""
    return audit.AuditEntry(
        actor=f"gateway:{source}",
        event_type=CONFLICT_AUDIT_TYPE,
        subject=webhook_id,
        payload={"source": source, "inbox_id": stored.inbox_id, "stored_payload_sha256": stored.stored_sha256,
                 "received_payload_sha256": payload_sha256},
        occurred_at=now,
    )


class _Row:
    """A DBAPI row with attribute access by column name (what `_resolved` reads)."""

    def __init__(self, description: Any, values: Sequence[Any]):
        self.__dict__.update(zip((d[0] for d in description), values))


def _line_columns(event: Event) -> dict[str, Any]:
    data = event.data
    if event.type.startswith("supplier."):
        return {"po_id": data.po_id, "po_line_no": data.line_no}  # type: ignore[union-attr]
    return {"order_id": data.order_id, "order_line_no": data.line_no}  # type: ignore[union-attr]


def _probes() -> dict[str, Select[Any]]:
    """One statement per kind of event, each column a primary-key lookup: the cost per event stays constant
    however large the staged tables grow. Built once with bind parameters, so SQLAlchemy compiles each once."""
    product, location, supplier, customer = (STAGED[n] for n in ("product", "location", "supplier", "customer"))
    pol, col = STAGED["purchase_order_line"], STAGED["customer_order_line"]
    po_line = (pol.c.po_id == bindparam("po_id")) & (pol.c.line_no == bindparam("line_no"))
    order_line = (col.c.order_id == bindparam("order_id")) & (col.c.line_no == bindparam("line_no"))
    return {
        "supplier": select(
            select(pol.c.sku).where(po_line).scalar_subquery().label("sku"),
            select(pol.c.location_id).where(po_line).scalar_subquery().label("location_id"),
            select(pol.c.supplier_id).where(po_line).scalar_subquery().label("line_supplier"),
            exists().where(po_line).label("line_known"),
            exists().where(supplier.c.supplier_id == bindparam("supplier_id")).label("supplier_known"),
        ),
        "order_new": select(
            exists().where(product.c.sku == bindparam("sku")).label("sku_known"),
            exists().where(location.c.location_id == bindparam("location_id")).label("location_known"),
            exists().where(customer.c.customer_id == bindparam("customer_id")).label("customer_known"),
        ),
        "order_line": select(
            select(col.c.sku).where(order_line).scalar_subquery().label("sku"),
            select(col.c.location_id).where(order_line).scalar_subquery().label("location_id"),
            exists().where(order_line).label("line_known"),
            exists().where(location.c.location_id == bindparam("new_location_id")).label("location_known"),
        ),
    }


_PROBES = _probes()


def _probe(event: Event) -> tuple[str, dict[str, Any]]:
    """Which of `_PROBES` answers for this event, and its parameters."""
    data: Any = event.data
    if event.type.startswith("supplier."):
        return "supplier", {"po_id": data.po_id, "line_no": data.line_no, "supplier_id": data.supplier_id}
    if isinstance(event, OrderNew):
        return "order_new", {"sku": data.sku, "location_id": data.location_id, "customer_id": data.customer_id}
    new_location = data.changes.location_id if isinstance(event, OrderChange) else None
    return "order_line", {"order_id": data.order_id, "line_no": data.line_no, "new_location_id": new_location}


def _resolve(conn: Connection, event: Event, now: datetime) -> _Resolved:
    kind, params = _probe(event)
    return _resolved(event, conn.execute(_PROBES[kind], params).one(), now)


def _resolved(event: Event, found: Any, now: datetime) -> _Resolved:
    """Fill SKU and DC from the payload or the staged line, and flag references the warehouse lacks
    (`found`: the row of the event's probe)."""
    data: Any = event.data
    flags: list[str] = []
    if event.type.startswith("supplier."):
        sku, location_id = found.sku, found.location_id
        if not found.supplier_known:
            flags.append(f"unknown_supplier:{data.supplier_id}")
        if not found.line_known:
            flags.append(f"unknown_po:{data.po_id}/{data.line_no}")
        elif found.line_supplier != data.supplier_id:
            flags.append(f"supplier_mismatch:{data.po_id}/{data.line_no}:{found.line_supplier}")
    elif isinstance(event, OrderNew):
        sku, location_id = data.sku, data.location_id
        for name, value, known in (("sku", data.sku, found.sku_known), ("location", data.location_id, found.location_known),
                                   ("customer", data.customer_id, found.customer_known)):
            if not known:
                flags.append(f"unknown_{name}:{value}")
    else:
        new_location = data.changes.location_id if isinstance(event, OrderChange) else None
        # The line's current SKU-location: the plan that holds the demand today (a new DC is in the payload).
        sku, location_id = found.sku, found.location_id
        if not found.line_known:
            flags.append(f"unknown_order:{data.order_id}/{data.line_no}")
        if new_location is not None and not found.location_known:
            flags.append(f"unknown_location:{new_location}")
    if event.occurred_at > now + TOLERANCE:
        flags.append(f"occurred_in_future:{event.occurred_at.isoformat()}")
    return _Resolved(sku, location_id, flags)
