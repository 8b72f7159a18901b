"""Retention: personal data past the policy's period is redacted from inbox payloads, notifications and customer
notices (work still in flight is not), digests stay, and the audit chain still verifies; the daily job, the
schedule and the CLI run it; the classification of personal and commercial columns reaches the data dictionary."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import insert, text
from typer.testing import CliRunner

from demand_control.gateway.inbox import InboxWriter
from demand_control.gateway.schemas import parse_event
from demand_control.infra import clock
from demand_control.resources import Warehouse
from demand_control.schema import tables
from demand_control.schema.tables import customer_notices, notifications
from demand_control.services.audit import verify_chain
from demand_control.services.retention import REDACTED_PAYLOAD, REDACTED_TEXT, redact_personal_data
from tests.gateway.test_gateway import SOURCE, delay, encode

DAYS = 90


def _store_event(writer: InboxWriter, webhook_id: str, age_days: int, processed: bool) -> None:
    body = encode(delay(supplier_id="SUP-JANE-DOE"))  # the body as received: whatever the sender put in it
    with clock.use(clock.now() - timedelta(days=age_days)):
        now = clock.now()
        writer.store(SOURCE, webhook_id, now, parse_event(body.decode()), body.decode(), f"{webhook_id:0>64}"[:64], now)
    if processed:
        with writer.engine.begin() as conn:
            conn.execute(text("UPDATE inbox_events SET processed_at = :t WHERE webhook_id = :w"), {"t": clock.now(), "w": webhook_id})


def _notification(notification_id: str, age_days: int, status: str) -> dict:
    at = clock.now() - timedelta(days=age_days)
    return {"notification_id": notification_id, "kind": "customer_notice", "channel": "ops@example.com", "subject": "A-1",
            "text": "Jane Doe <jane@example.com> could not be told", "payload": '{"email": "jane@example.com"}',
            "status": status, "created_at": at, "sent_at": None}


def _notice(notice_id: str, age_days: int, status: str) -> dict:
    at = clock.now() - timedelta(days=age_days)
    return {"notice_id": notice_id, "action_id": "A-1", "customer_id": "CUST-0001", "email": "jane@example.com",
            "order_id": "SO-1", "line_no": 1, "subject": "Your order SO-1", "body": "Dear Jane Doe, ...", "status": status,
            "created_at": at, "sent_at": None}


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    warehouse = Warehouse(home=str(tmp_path / "state"))
    warehouse.migrate()
    writer = InboxWriter(warehouse)
    _store_event(writer, "old-applied", DAYS + 1, processed=True)
    _store_event(writer, "old-unapplied", DAYS + 1, processed=False)
    _store_event(writer, "recent-applied", DAYS - 1, processed=True)
    with warehouse.engine.begin() as conn:
        conn.execute(insert(notifications), [_notification("n-old-sent", DAYS + 1, "sent"), _notification("n-old-pending", DAYS + 1, "pending"),
                                             _notification("n-recent", DAYS - 1, "console")])
        conn.execute(insert(customer_notices), [_notice("c-old-sent", DAYS + 1, "sent"), _notice("c-old-sending", DAYS + 1, "sending"),
                                                _notice("c-recent", DAYS - 1, "sent")])
    return warehouse


def _by(warehouse: Warehouse, table: str, key: str) -> dict[str, dict]:
    return {row[key]: row for row in warehouse.read(table).to_dict("records")}


def test_personal_data_past_retention_is_redacted_and_the_chain_still_verifies(warehouse: Warehouse) -> None:
    before = _by(warehouse, "inbox_events", "webhook_id")
    report = redact_personal_data(warehouse.engine, DAYS)
    assert (report.inbox_events, report.notifications, report.customer_notices) == (1, 1, 1)

    inbox = _by(warehouse, "inbox_events", "webhook_id")
    assert inbox["old-applied"]["payload"] == REDACTED_PAYLOAD and "JANE" not in inbox["old-applied"]["payload"]
    assert inbox["old-applied"]["payload_sha256"] == before["old-applied"]["payload_sha256"]  # the digest stays
    assert inbox["old-applied"]["redacted_at"] is not None
    assert "SUP-JANE-DOE" in inbox["old-unapplied"]["payload"] and "SUP-JANE-DOE" in inbox["recent-applied"]["payload"]

    notes = _by(warehouse, "notifications", "notification_id")
    assert notes["n-old-sent"]["text"] == REDACTED_TEXT and notes["n-old-sent"]["payload"] is None
    assert "jane@" in notes["n-old-pending"]["text"] and "jane@" in notes["n-recent"]["text"]

    notices = _by(warehouse, "customer_notices", "notice_id")
    assert notices["c-old-sent"]["email"] is None and notices["c-old-sent"]["body"] == REDACTED_TEXT
    assert notices["c-old-sent"]["status"] == "sent" and notices["c-old-sent"]["customer_id"] == "CUST-0001"
    assert notices["c-old-sending"]["email"] == "jane@example.com" and notices["c-recent"]["body"].startswith("Dear")

    report_chain = verify_chain(warehouse.engine)
    assert report_chain.ok and report_chain.rows == 4  # three received events and the redaction
    entry = warehouse.read("audit_log").iloc[-1]
    assert entry["event_type"] == "retention_redaction"
    assert json.loads(entry["payload"])["inbox_events"] == 1
    again = redact_personal_data(warehouse.engine, DAYS)
    assert again.total == 0 and warehouse.count("audit_log") == 4


def test_retention_must_be_positive(warehouse: Warehouse) -> None:
    with pytest.raises(ValueError, match="personal_data_days must be at least 1, got 0"):
        redact_personal_data(warehouse.engine, 0)


def test_the_daily_job_redacts_after_the_policy_period(warehouse: Warehouse, tmp_path: Path) -> None:
    from demand_control.definitions import defs
    from demand_control.ops.retention import RETENTION_JOB_NAME, RETENTION_SCHEDULE_NAME, redact_personal_data_job
    from demand_control.planning.policy.loading import DEFAULT_POLICY_FILE, DEFAULT_POLICY_PACKAGE
    from demand_control.resources.clock import PlanningClock
    from demand_control.resources.planning_policy import PlanningPolicy
    from importlib.resources import files

    schedule = defs.get_schedule_def(RETENTION_SCHEDULE_NAME)
    assert schedule.job_name == RETENTION_JOB_NAME and schedule.cron_schedule == "30 2 * * *"
    policy = tmp_path / "policy.yaml"
    policy.write_text(files(DEFAULT_POLICY_PACKAGE).joinpath(DEFAULT_POLICY_FILE).read_text()
                      .replace("personal_data_days: 90", f"personal_data_days: {DAYS + 2}"))
    run = lambda: redact_personal_data_job.execute_in_process(  # noqa: E731
        resources={"warehouse": warehouse, "planning_policy": PlanningPolicy(path=str(policy)), "clock": PlanningClock()})
    assert run().success and warehouse.count("inbox_events", tables.inbox_events.c.redacted_at.is_not(None)) == 0
    policy.write_text(policy.read_text().replace(f"personal_data_days: {DAYS + 2}", f"personal_data_days: {DAYS}"))
    result = run()
    metadata = next(e for e in result.all_node_events if e.is_successful_output).step_output_data.metadata
    assert metadata["inbox_events"].value == 1 and metadata["customer_notices"].value == 1
    assert verify_chain(warehouse.engine).ok


def test_cli_retention_redact(warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    from demand_control.cli.main import app

    monkeypatch.setenv("DEMAND_CONTROL_HOME", str(warehouse.state_home))
    monkeypatch.delenv("DEMAND_CONTROL_DATABASE_URL", raising=False)
    monkeypatch.delenv("DEMAND_CONTROL_POLICY", raising=False)
    result = CliRunner().invoke(app, ["retention", "redact"])
    assert result.exit_code == 0 and "1 inbox events, 1 notifications, 1 customer notices" in result.output, result.output
    assert verify_chain(warehouse.engine).ok


def test_personal_and_commercial_columns_are_classified_in_the_data_dictionary() -> None:
    from demand_control.schema.asset_metadata import raw_schema, table_schema, table_schema_of
    from demand_control.schema.contracts import CONTRACTS

    assert tables.customer_notices.c.email.info["classification"] == "personal"
    assert tables.inbox_events.c.payload.info["classification"] == "personal"
    assert tables.STAGED["product"].c.unit_price.info["classification"] == "commercial"
    assert tables.RAW["customer"].c.notify_email.info["classification"] == "personal"
    assert "classification" not in tables.customer_notices.c.status.info
    columns = {c.name: c for c in table_schema(CONTRACTS["customer"]).columns}
    assert columns["notify_email"].tags == {"classification": "personal"}
    assert columns["notify_email"].description.startswith("[personal data] ")
    assert {c.name: c.tags for c in raw_schema(CONTRACTS["product"]).columns}["unit_cost"] == {"classification": "commercial"}
    actions = {c.name: c for c in table_schema_of(tables.recommended_actions).columns}
    assert actions["value"].tags == {"classification": "commercial"} and not actions["action_id"].tags


def test_the_readme_lists_every_classified_column() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    from demand_control.schema.asset_metadata import classification_markdown

    assert classification_markdown() in readme
