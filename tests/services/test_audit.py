"""The audit log: appends chain, any tampering is named by `verify_chain`, and PostgreSQL refuses it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from demand_control.infra import clock
from demand_control.services.audit import AuditEntry, append, record, verify_chain
from demand_control.resources import Warehouse


def drop_sqlite_guards(conn) -> None:  # noqa: ANN001
    conn.execute(text("DROP TRIGGER audit_log_no_update"))
    conn.execute(text("DROP TRIGGER audit_log_no_delete"))


def _filled(warehouse: Warehouse, n: int = 5) -> None:
    warehouse.migrate()
    with warehouse.engine.begin() as conn:
        append(conn, [AuditEntry("gateway:acme", "event_received", f"wh-{i}", {"i": i, "at": datetime(2026, 3, 2, tzinfo=UTC)}) for i in range(n)])


def test_chain_verifies_and_continues_across_transactions(tmp_path) -> None:
    warehouse = Warehouse(home=str(tmp_path))
    _filled(warehouse, 3)
    record(warehouse.engine, "policy", "policy_decision", "A-1", {"decision": "auto_approved"})
    report = verify_chain(warehouse.engine)
    assert report.ok and report.rows == 4
    rows = warehouse.read("audit_log")
    assert rows["prev_hash"].iloc[0] == "0" * 64
    assert list(rows["prev_hash"].iloc[1:]) == list(rows["row_hash"].iloc[:-1])


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ("UPDATE audit_log SET payload = '[99]' WHERE audit_id = 3", "row 3: payload does not match"),
        ("UPDATE audit_log SET actor = 'someone else' WHERE audit_id = 2", "row 2: row_hash does not match its fields"),
        ("DELETE FROM audit_log WHERE audit_id = 2", "row 3: prev_hash does not match"),
    ],
)
def test_tampering_is_detected_and_named(tmp_path, statement: str, reason: str) -> None:
    warehouse = Warehouse(home=str(tmp_path))
    _filled(warehouse)
    with warehouse.engine.begin() as conn:
        drop_sqlite_guards(conn)  # what someone who can write the database file can do
        conn.execute(text(statement))
    report = verify_chain(warehouse.engine)
    assert not report.ok and reason in report.reason


def test_the_chain_cannot_fork(tmp_path) -> None:
    warehouse = Warehouse(home=str(tmp_path))
    _filled(warehouse, 2)
    rows = warehouse.read("audit_log")
    with pytest.raises(Exception, match="UNIQUE|unique"):
        with warehouse.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO audit_log (occurred_at, actor, event_type, subject, payload, payload_hash, prev_hash, row_hash) "
                     "VALUES (:t, 'x', 'y', 'z', '{}', 'h', :prev, 'r')"),
                {"t": clock.now(), "prev": rows["prev_hash"].iloc[1]},
            )


def test_sqlite_refuses_update_and_delete(tmp_path) -> None:
    warehouse = Warehouse(home=str(tmp_path))
    _filled(warehouse, 3)
    for statement in ("UPDATE audit_log SET actor = 'x' WHERE audit_id = 1", "DELETE FROM audit_log WHERE audit_id = 3", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            with warehouse.engine.begin() as conn:
                conn.execute(text(statement))
    assert warehouse.count("audit_log") == 3 and verify_chain(warehouse.engine).ok


@pytest.mark.postgres
def test_postgres_refuses_update_delete_and_truncate(postgres_database) -> None:
    warehouse = Warehouse(database_url=postgres_database["url"])
    _filled(warehouse, 3)
    for statement in ("UPDATE audit_log SET actor = 'x' WHERE audit_id = 1", "DELETE FROM audit_log WHERE audit_id = 1", "TRUNCATE audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            with warehouse.engine.begin() as conn:
                conn.execute(text(statement))
    assert verify_chain(warehouse.engine).ok


def test_cli_verify_names_the_broken_link(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from demand_control.cli.main import app

    monkeypatch.setenv("DEMAND_CONTROL_HOME", str(tmp_path))
    monkeypatch.delenv("DEMAND_CONTROL_DATABASE_URL", raising=False)
    warehouse = Warehouse(home=str(tmp_path))
    _filled(warehouse, 3)
    ok = CliRunner().invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0 and "3 rows verified" in ok.output
    with warehouse.engine.begin() as conn:
        drop_sqlite_guards(conn)
        conn.execute(text("UPDATE audit_log SET subject = 'forged' WHERE audit_id = 2"))
    bad = CliRunner().invoke(app, ["audit", "verify"])
    assert bad.exit_code == 1 and "row 2" in bad.output
