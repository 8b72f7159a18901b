"""Customer notices: one email per customer per approved change, through a real SMTP server (aiosmtpd on
127.0.0.1), never twice — not on a re-run, not after an answer lost on the way back; console and table
without SMTP; a customer without an address is a visible failure, not a silent skip."""

from __future__ import annotations

import asyncio
import json
import smtplib
import socket
from datetime import date, datetime, timedelta
from email import message_from_bytes

import dagster as dg
import pandas as pd
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from demand_control.schema import tables
from demand_control.services.audit import verify_chain
from demand_control.ops.customer_notices import notify_customers_job
from demand_control.sensors.customer_notices import customer_notice_sensor
from demand_control.services.notices import (
    build_notices,
    notice_lines,
    notify_customers_for,
    requeue_notices,
)
from demand_control.resources.clock import PlanningClock
from demand_control.resources.mail import Mailer
from demand_control.resources.warehouse import Warehouse
from tests.conftest import NOW


class Recorder:
    """An SMTP handler that keeps what it accepted; `answers` scripts a refusal or a slow answer per message."""

    def __init__(self, answers: list[str] | None = None, delay: float = 0.0) -> None:
        self.messages: list = []
        self.answers = list(answers or [])
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201
        answer = self.answers.pop(0) if self.answers else "250 Message accepted for delivery"
        if answer.startswith("250"):
            self.messages.append(envelope)
        if self.delay:
            await asyncio.sleep(self.delay)
        return answer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    started: list[Controller] = []

    def start(handler: Recorder) -> Mailer:
        controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
        controller.start()
        started.append(controller)
        return Mailer(host="127.0.0.1", port=controller.port, sender="Orders <orders@distributor.test>", timeout_seconds=5)

    yield start
    for controller in started:
        controller.stop()


def _action(action_id: str, action_type: str, customer_id: str | None = "C1", **extra) -> dict:
    base = {
        "action_id": action_id, "exception_key": "order_at_risk:SKU-A@DC1", "occurrence": 1, "exception_type": "order_at_risk",
        "action_type": action_type, "rank": 1, "sku": "SKU-A", "location_id": "DC1", "customer_id": customer_id,
        "order_id": "SO-100", "order_line_no": 1, "quantity": 12.0, "value": 240.0, "needed_by": date(2026, 3, 10),
        "new_date": date(2026, 3, 24), "confidence": 0.9, "expected_impact": "tells the customer", "data_fresh": True,
        "forecast_degraded": False, "policy_decision": "awaiting_approval", "approver_role": "planner", "policy_reasons": "customer-facing",
        "owner_team": "team:planning", "owner_channel": "#planning", "created_at": NOW - timedelta(hours=3), "updated_at": NOW - timedelta(hours=3),
    }
    return {**base, **extra}


def _decide(warehouse: Warehouse, action_id: str, decision: str = "approved", at: datetime | None = None, by: str = "alice") -> None:
    warehouse.append_rows("action_decisions", pd.DataFrame([{
        "action_id": action_id, "decision": decision, "decided_by": by, "role": "planner", "decided_at": at or NOW,
        "recommended_at": NOW - timedelta(hours=3), "value": 240.0,
    }]))


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    wh = Warehouse(home=str(tmp_path))
    wh.migrate()
    wh.append_rows("customer", pd.DataFrame([
        {"customer_id": "C1", "name": "Greenway Grocers", "tier": "key", "region": "north", "notify_email": "buyer@greenway.test", "source_system": "test", "loaded_at": NOW},
        {"customer_id": "C2", "name": "Corner Shop", "tier": "standard", "region": "north", "notify_email": None, "source_system": "test", "loaded_at": NOW},
        {"customer_id": "C3", "name": "Hilltop Foods", "tier": "strategic", "region": "south", "notify_email": "orders@hilltop.test", "source_system": "test", "loaded_at": NOW},
    ]))
    return wh


def _notices(warehouse: Warehouse) -> pd.DataFrame:
    return warehouse.read("customer_notices")


def _silent(_message: str) -> None:
    pass


def test_approved_delay_reaches_the_server_once_with_the_revised_date(warehouse, smtp_server) -> None:
    handler = Recorder()
    mailer = smtp_server(handler)
    warehouse.append_rows("recommended_actions", pd.DataFrame([_action("A-delay", "notify_customer")]))
    _decide(warehouse, "A-delay")

    first = notify_customers_for(warehouse, mailer, "test", log=_silent)
    assert first["recorded"] == 1 and first["sent"] == 1
    assert len(handler.messages) == 1
    envelope = handler.messages[0]
    assert envelope.rcpt_tos == ["buyer@greenway.test"]
    mail = message_from_bytes(envelope.content)
    body = mail.get_payload(decode=True).decode()
    assert mail["Subject"] == "Order SO-100: revised delivery date"
    assert "Dear Greenway Grocers" in body
    assert "Order SO-100, line 1: 12 × SKU-A" in body
    assert "Promised for 10 March 2026, now expected on 24 March 2026." in body
    notices = _notices(warehouse)
    assert list(notices["status"]) == ["sent"] and notices["sent_at"].notna().all()
    assert mail["Message-ID"] == f"<{notices['notice_id'][0]}@demand-control>"

    # Re-running (the sensor's run retried, a second run for the same batch) sends nothing.
    again = notify_customers_for(warehouse, mailer, "test", ["A-delay"], log=_silent)
    assert again["recorded"] == 0 and again["sent"] == 0
    notify_customers_for(warehouse, mailer, "test", log=_silent)
    assert len(handler.messages) == 1 and len(_notices(warehouse)) == 1

    audit = warehouse.read("audit_log")
    sent = audit[(audit["event_type"] == "notification") & (audit["subject"] == notices["notice_id"][0])]
    assert [json.loads(p)["status"] for p in sent["payload"]] == ["sent"]
    assert verify_chain(warehouse.engine).ok


def test_a_changed_recommendation_after_notice_does_not_email_again(warehouse, smtp_server) -> None:
    handler = Recorder()
    mailer = smtp_server(handler)
    warehouse.append_rows("recommended_actions", pd.DataFrame([_action("A-delay", "notify_customer")]))
    _decide(warehouse, "A-delay")
    notify_customers_for(warehouse, mailer, "test", log=_silent)
    # A re-plan moves the revised date under the same action: the customer was told what was approved.
    warehouse.replace_rows("recommended_actions", pd.DataFrame([_action("A-delay", "notify_customer", new_date=date(2026, 3, 31))]))
    notify_customers_for(warehouse, mailer, "test", log=_silent)
    assert len(handler.messages) == 1 and len(_notices(warehouse)) == 1


def test_without_smtp_the_notice_goes_to_console_and_table_and_no_network(warehouse, monkeypatch) -> None:
    def no_network(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("no SMTP configured: nothing may connect")

    monkeypatch.setattr(smtplib.SMTP, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    warehouse.append_rows("recommended_actions", pd.DataFrame([_action("A-delay", "notify_customer")]))
    _decide(warehouse, "A-delay", decision="auto_approved", by="policy")
    printed: list[str] = []
    counts = notify_customers_for(warehouse, Mailer(), "test", log=printed.append)
    assert counts["console"] == 1
    notices = _notices(warehouse)
    assert list(notices["status"]) == ["console"] and notices["sent_at"].notna().all()
    assert any("now expected on 24 March 2026" in line for line in printed)
    assert notify_customers_for(warehouse, Mailer(), "test", log=printed.append)["console"] == 0


def test_customer_without_address_fails_with_the_reason_and_nothing_is_sent(warehouse, smtp_server) -> None:
    handler = Recorder()
    mailer = smtp_server(handler)
    warehouse.append_rows("recommended_actions", pd.DataFrame([_action("A-c2", "notify_customer", customer_id="C2")]))
    _decide(warehouse, "A-c2")
    counts = notify_customers_for(warehouse, mailer, "test", log=_silent)
    assert counts["recorded"] == 1 and counts["sent"] == 0
    assert handler.messages == []
    notice = _notices(warehouse).iloc[0]
    assert notice["status"] == "failed" and notice["email"] is None
    audit = warehouse.read("audit_log")
    payload = json.loads(audit[audit["subject"] == notice["notice_id"]]["payload"].iloc[0])
    assert payload["status"] == "failed" and payload["reason"] == "customer C2 has no notify_email"
    alert = warehouse.read("notifications").iloc[0]
    assert alert["kind"] == "customer_notice" and alert["channel"] == "#planning" and "no notify_email" in alert["text"]
    # Still failed, still not sent, on the next run.
    notify_customers_for(warehouse, mailer, "test", log=_silent)
    assert handler.messages == [] and list(_notices(warehouse)["status"]) == ["failed"]


def test_rejected_and_internal_actions_tell_no_customer(warehouse) -> None:
    warehouse.append_rows("recommended_actions", pd.DataFrame([
        _action("A-rejected", "notify_customer"),
        _action("A-replenish", "replenish", customer_id=None, order_id=None, order_line_no=None),
        _action("A-undecided", "notify_customer", order_id="SO-200"),
    ]))
    _decide(warehouse, "A-rejected", decision="rejected")
    _decide(warehouse, "A-replenish", decision="auto_approved", by="policy")
    assert notify_customers_for(warehouse, Mailer(), "test", log=_silent)["recorded"] == 0
    assert _notices(warehouse).empty


def test_lost_answer_leaves_the_notice_sending_and_only_a_human_resends(warehouse, smtp_server) -> None:
    # The server accepts the message but answers after the client gave up: it has the mail, we do not know.
    handler = Recorder(delay=1.5)
    mailer = smtp_server(handler).model_copy(update={"timeout_seconds": 0.5})
    warehouse.append_rows("recommended_actions", pd.DataFrame([_action("A-delay", "notify_customer")]))
    _decide(warehouse, "A-delay")
    counts = notify_customers_for(warehouse, mailer, "test", log=_silent)
    assert counts["unknown"] == 1 and counts["sending"] == 1
    assert len(handler.messages) == 1
    notice_id = _notices(warehouse)["notice_id"][0]
    assert list(_notices(warehouse)["status"]) == ["sending"]

    handler.delay = 0
    for _ in range(2):
        notify_customers_for(warehouse, mailer, "test", log=_silent)
    assert len(handler.messages) == 1, "a notice whose delivery is unknown must not be resent automatically"

    # The manual path: someone checked the mail log and asks for a resend.
    assert requeue_notices(warehouse.engine, [notice_id], "alice") == [notice_id]
    notify_customers_for(warehouse, mailer, "test", log=_silent)
    assert len(handler.messages) == 2 and list(_notices(warehouse)["status"]) == ["sent"]
    assert verify_chain(warehouse.engine).ok


def test_temporary_refusal_is_retried_permanent_refusal_fails(warehouse, smtp_server) -> None:
    handler = Recorder(answers=["451 4.3.0 try again later", "250 OK", "550 5.1.1 mailbox unavailable"])
    mailer = smtp_server(handler)
    warehouse.append_rows("recommended_actions", pd.DataFrame([_action("A-delay", "notify_customer")]))
    _decide(warehouse, "A-delay")
    assert notify_customers_for(warehouse, mailer, "test", log=_silent)["pending"] == 1
    assert list(_notices(warehouse)["status"]) == ["pending"] and handler.messages == []
    assert notify_customers_for(warehouse, mailer, "test", log=_silent)["sent"] == 1
    assert len(handler.messages) == 1

    warehouse.append_rows("recommended_actions", pd.DataFrame([_action("A-c3", "notify_customer", customer_id="C3", order_id="SO-300")]))
    _decide(warehouse, "A-c3")
    assert notify_customers_for(warehouse, mailer, "test", log=_silent)["failed"] == 1
    assert len(handler.messages) == 1


def test_substitute_and_allocation_notices_group_a_customers_lines(warehouse, smtp_server) -> None:
    handler = Recorder()
    mailer = smtp_server(handler)
    warehouse.append_rows("recommended_actions", pd.DataFrame([
        _action("A-sub", "substitute", customer_id="C3", order_id="SO-300", substitute_sku="SKU-B", quantity=5.0, new_date=None),
        _action("A-alloc", "allocate", customer_id=None, order_id=None, order_line_no=None, quantity=30.0, new_date=None,
                details=json.dumps({"scenario": "tier_priority", "fill_rate": 0.6})),
    ]))
    warehouse.append_rows("allocation_lines", pd.DataFrame([
        {"scenario": "tier_priority", "sku": "SKU-A", "location_id": "DC1", "order_id": "SO-100", "line_no": 1, "customer_id": "C1", "tier": "key",
         "qty_open": 20.0, "allocated": 15.0, "short": 5.0, "promise_date": date(2026, 3, 10), "computed_at": NOW},
        {"scenario": "tier_priority", "sku": "SKU-A", "location_id": "DC1", "order_id": "SO-101", "line_no": 2, "customer_id": "C1", "tier": "key",
         "qty_open": 10.0, "allocated": 0.0, "short": 10.0, "promise_date": date(2026, 3, 12), "computed_at": NOW},
        {"scenario": "tier_priority", "sku": "SKU-A", "location_id": "DC1", "order_id": "SO-300", "line_no": 1, "customer_id": "C3", "tier": "strategic",
         "qty_open": 15.0, "allocated": 15.0, "short": 0.0, "promise_date": date(2026, 3, 9), "computed_at": NOW},
        {"scenario": "fair_share", "sku": "SKU-A", "location_id": "DC1", "order_id": "SO-300", "line_no": 1, "customer_id": "C3", "tier": "strategic",
         "qty_open": 15.0, "allocated": 9.0, "short": 6.0, "promise_date": date(2026, 3, 9), "computed_at": NOW},
    ]))
    _decide(warehouse, "A-sub")
    _decide(warehouse, "A-alloc")
    notify_customers_for(warehouse, mailer, "test", log=_silent)
    by_rcpt = {e.rcpt_tos[0]: message_from_bytes(e.content) for e in handler.messages}
    assert len(handler.messages) == 2  # one allocation notice to C1 (two lines), one substitute offer to C3
    alloc = by_rcpt["buyer@greenway.test"]
    body = alloc.get_payload(decode=True).decode()
    assert alloc["Subject"] == "Order SO-100, SO-101: partial delivery"
    assert "We can deliver 15 of the 20 units you ordered on 10 March 2026; the remaining 5" in body
    assert "We can deliver 0 of the 10 units you ordered on 12 March 2026" in body
    sub = by_rcpt["orders@hilltop.test"].get_payload(decode=True).decode()
    assert "We can offer 5 × SKU-B instead of SKU-A, delivered on the date we promised (10 March 2026)." in sub


def test_notice_id_is_deterministic_and_names_the_change() -> None:
    actions = pd.DataFrame([_action("A-delay", "notify_customer", details=None, substitute_sku=None)])
    customers = pd.DataFrame([{"customer_id": "C1", "name": "Greenway Grocers", "notify_email": "buyer@greenway.test"}])
    lines = notice_lines(actions, pd.DataFrame())
    first = build_notices(lines, customers, NOW)
    assert first["notice_id"].tolist() == build_notices(lines, customers, NOW + timedelta(days=1))["notice_id"].tolist()
    moved = build_notices(notice_lines(actions.assign(new_date=date(2026, 3, 31)), pd.DataFrame()), customers, NOW)
    assert moved["notice_id"][0] != first["notice_id"][0]
    no_date = build_notices(notice_lines(actions.assign(new_date=None), pd.DataFrame()), customers, NOW)
    assert "we do not have a confirmed new date yet" in no_date["body"][0]


def _evaluate(warehouse: Warehouse, cursor: str | None = None):  # noqa: ANN202
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"warehouse": warehouse})
        return customer_notice_sensor(context)


def test_sensor_requests_one_run_per_batch_of_new_approvals_and_the_job_runs_it(warehouse, smtp_server) -> None:
    handler = Recorder()
    mailer = smtp_server(handler)
    assert isinstance(_evaluate(warehouse), dg.SkipReason)
    warehouse.append_rows("recommended_actions", pd.DataFrame([
        _action("A-1", "notify_customer"), _action("A-2", "notify_customer", order_id="SO-101"), _action("A-3", "notify_customer", order_id="SO-102"),
    ]))
    _decide(warehouse, "A-1", at=NOW - timedelta(minutes=2))
    _decide(warehouse, "A-2", decision="snoozed")

    first = _evaluate(warehouse)
    assert isinstance(first, dg.SensorResult) and len(first.run_requests) == 1
    request = first.run_requests[0]
    assert request.run_config["ops"]["send_customer_notices"]["config"]["action_ids"] == ["A-1"]
    # Re-evaluating with the new cursor requests nothing more; with the old one, the same run key.
    assert isinstance(_evaluate(warehouse, first.cursor), dg.SkipReason)
    assert _evaluate(warehouse).run_requests[0].run_key == request.run_key

    # A decision committed late with an earlier timestamp is still found (lookback), under a new key.
    _decide(warehouse, "A-3", at=NOW - timedelta(minutes=3))
    late = _evaluate(warehouse, first.cursor)
    assert late.run_requests[0].run_config["ops"]["send_customer_notices"]["config"]["action_ids"] == ["A-3"]
    assert late.run_requests[0].run_key != request.run_key

    result = notify_customers_job.execute_in_process(
        run_config=request.run_config, resources={"warehouse": warehouse, "mailer": mailer, "clock": PlanningClock()}
    )
    assert result.success
    assert len(handler.messages) == 1
    with warehouse.engine.connect() as conn:
        assert conn.execute(select(tables.customer_notices.c.action_id)).scalars().all() == ["A-1"]
