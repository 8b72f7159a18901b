"""The inbox deduplicates on (source, webhook-id), and the same pair with another body is a conflict the
sender is told about (409 naming both payload hashes) and the owner can read (an `inbox_conflict` row in the
audit log), on SQLite and on PostgreSQL (whose gateway path is a separate two-round-trip implementation).

Migration 0013 moves an existing inbox to the new key without losing a row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from demand_control.resources import Warehouse
from demand_control.schema.tables import audit_log, inbox_events
from demand_control.services.audit import verify_chain
from tests.gateway import fuzzing
from tests.gateway.fuzzing import SIGNED_AT, Answer, Request


@pytest.fixture
def driver(warehouse: Warehouse) -> Iterator[fuzzing.Driver]:
    driver = fuzzing.Driver(fuzzing.fuzz_app(warehouse))  # sources supplier-portal and order-feed
    yield driver
    driver.close()


def deliver(driver: fuzzing.Driver, source: str, webhook_id: str, body: bytes) -> Answer:
    timestamp = str(int(SIGNED_AT.timestamp())).encode()
    headers = [(b"webhook-id", webhook_id.encode()), (b"webhook-timestamp", timestamp),
               (b"webhook-signature", fuzzing.webhook_signature(webhook_id.encode(), timestamp, body)),
               (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return driver(Request(f"/webhooks/{source}", headers, body))


def delay(line_no: int = 1, new_date: str = "2026-12-21") -> bytes:
    event: dict[str, Any] = {"type": "supplier.delay", "occurred_at": SIGNED_AT.isoformat(),
                             "data": {"supplier_id": "SUP-001", "po_id": "PO-7000001", "line_no": line_no, "new_date": new_date}}
    return json.dumps(event).encode()


def test_the_same_id_from_two_sources_is_two_events(driver, warehouse) -> None:
    """Before: the second source's event was answered 200 "duplicate" and lost."""
    first = deliver(driver, "supplier-portal", "msg_1", delay(1))
    second = deliver(driver, "order-feed", "msg_1", delay(2))
    assert (first.status, second.status) == (202, 202), (first.body, second.body)
    with warehouse.engine.connect() as conn:
        rows = conn.execute(select(inbox_events.c.source, inbox_events.c.webhook_id, inbox_events.c.po_line_no)
                            .order_by(inbox_events.c.inbox_id)).all()
    assert [tuple(r) for r in rows] == [("supplier-portal", "msg_1", 1), ("order-feed", "msg_1", 2)]
    # Each source's redelivery still finds its own row.
    again = deliver(driver, "order-feed", "msg_1", delay(2))
    assert again.status == 200 and again.json()["inbox_id"] == second.json()["inbox_id"]
    assert warehouse.count("inbox_events") == 2 and warehouse.count("audit_log") == 2


def test_the_same_id_with_another_body_is_409_naming_both_hashes_and_recorded(driver, warehouse) -> None:
    """Before: 200 "duplicate" with same_payload false; the changed event was dropped and only the reply said so."""
    original, changed = delay(new_date="2026-12-21"), delay(new_date="2026-12-28")
    assert deliver(driver, "supplier-portal", "msg_7", original).status == 202
    answer = deliver(driver, "supplier-portal", "msg_7", changed)
    stored_sha, received_sha = hashlib.sha256(original).hexdigest(), hashlib.sha256(changed).hexdigest()
    assert answer.status == 409, answer.body
    document = answer.json()
    assert document["error"] == "conflicting_redelivery"
    assert (document["stored_payload_sha256"], document["received_payload_sha256"]) == (stored_sha, received_sha)
    assert stored_sha in document["reason"] and received_sha in document["reason"] and "msg_7" in document["reason"]
    # Nothing of the changed body was stored; the owner finds the conflict in the audit log, and the chain holds.
    with warehouse.engine.connect() as conn:
        payloads = list(conn.execute(select(inbox_events.c.payload)).scalars())
        conflicts = conn.execute(select(audit_log.c.actor, audit_log.c.subject, audit_log.c.payload)
                                 .where(audit_log.c.event_type == "inbox_conflict")).all()
    assert payloads == [original.decode()]
    assert len(conflicts) == 1
    actor, subject, payload = conflicts[0]
    assert (actor, subject) == ("gateway:supplier-portal", "msg_7")
    assert json.loads(payload) == {"source": "supplier-portal", "inbox_id": document["inbox_id"],
                                   "stored_payload_sha256": stored_sha, "received_payload_sha256": received_sha}
    assert verify_chain(warehouse.engine).ok
    # The original body redelivered is still a plain duplicate (200), recorded nowhere.
    assert deliver(driver, "supplier-portal", "msg_7", original).status == 200
    assert warehouse.count("audit_log", where=audit_log.c.event_type == "inbox_conflict") == 1


@pytest.mark.parametrize("warehouse", ["sqlite"], indirect=True)
def test_migration_0013_keeps_the_inbox_and_changes_its_key(warehouse: Warehouse, tmp_path: Path) -> None:
    """An inbox at 0012 (webhook_id unique on its own) keeps every row through 0013; afterwards the same id
    from another source is a new row, the same pair still cannot be stored twice; and it downgrades."""
    from alembic import command
    from sqlalchemy import create_engine, insert, text
    from sqlalchemy.exc import IntegrityError

    from demand_control.resources.warehouse import alembic_config as config_for

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    row = {"webhook_id": "msg_1", "source": "supplier-portal", "event_type": "supplier.delay", "received_at": SIGNED_AT,
           "sent_at": SIGNED_AT, "payload": "{}", "payload_sha256": "0" * 64}

    def upgrade(revision: str, downgrade: bool = False) -> None:
        with engine.begin() as conn:
            cfg = config_for(url)
            cfg.attributes["connection"] = conn
            (command.downgrade if downgrade else command.upgrade)(cfg, revision)

    upgrade("0012")
    with engine.begin() as conn:
        conn.execute(insert(inbox_events), [row])
    upgrade("0013")
    with engine.begin() as conn:
        assert conn.execute(text("SELECT webhook_id, source FROM inbox_events")).all() == [("msg_1", "supplier-portal")]
        conn.execute(insert(inbox_events), [{**row, "source": "order-feed"}])
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(inbox_events), [row])
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM inbox_events WHERE source = 'order-feed'"))
    upgrade("0012", downgrade=True)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(inbox_events), [{**row, "source": "order-feed"}])


def test_two_sources_events_with_the_same_id_are_both_applied_by_the_replan(driver, warehouse) -> None:
    """Downstream of the inbox the event id is the staged supplier_event / order_event key: qualified by the
    source, so the same webhook-id from two sources neither collides (a replan batch that could never
    succeed) nor overwrites the other's record."""
    import pandas as pd

    from demand_control.infra import clock
    from demand_control.services.replan import apply_inbox_events
    from tests.gateway.test_gateway import _seed

    _seed(warehouse)  # PO-7000001/1 from SUP-001
    assert deliver(driver, "supplier-portal", "msg_1", delay(1, new_date="2026-12-21")).status == 202
    assert deliver(driver, "order-feed", "msg_1", delay(1, new_date="2026-12-28")).status == 202
    applied = apply_inbox_events(warehouse, warehouse.read("inbox_events"), clock.now())
    assert sorted(applied.supplier_events["event_id"]) == ["order-feed:msg_1", "supplier-portal:msg_1"]
    staged = warehouse.read("supplier_event").sort_values("event_id")
    assert staged["event_id"].tolist() == ["order-feed:msg_1", "supplier-portal:msg_1"]
    assert [pd.Timestamp(d).date().isoformat() for d in staged["new_date"]] == ["2026-12-28", "2026-12-21"]
