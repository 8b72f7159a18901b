"""The seed scenario end to end, with every peer a real process on loopback: a demand spike and a supplier
delay arrive as signed webhooks at the gateway → the inbox sensor, evaluated by a real `dagster-daemon`,
re-plans → exceptions with allocation scenarios → a Slack message on a local server speaking the Slack Web
API → a signed approval click on the gateway → write-back into the real Tryton → a customer notice on a
local SMTP server → the audit chain verifies. Each step is asserted."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import httpx
import pytest

from demand_control.infra import clock
from demand_control.sample import seed_scenario as scenario
from demand_control.schema import tables
from demand_control.services.audit import verify_chain
from demand_control.definitions import build_definitions
from demand_control.demand_assets.jobs import DECISION_JOB_NAME, FORECAST_JOB_NAME, INGEST_JOB_NAME
from demand_control.planning.policy import load_policy
from demand_control.resources import QualitySettings, Warehouse
from tests.slack_api import TOKEN as SLACK_TOKEN
from tests.slack_api import slack_api_server
from tests.resources.test_tryton_erp import erp_for, own_tryton# noqa: F401  (module fixture: a private Tryton copy)

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SLACK_SIGNING_SECRET = "e2e-signing-secret-0123456789abcdef"

pytestmark = [pytest.mark.timeout(900), pytest.mark.timed_waits]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[tuple[list, int]]:
    from aiosmtpd.controller import Controller

    received: list = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
            received.append(envelope)
            return "250 OK"

    port = _free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield received, port
    finally:
        controller.stop()


@pytest.fixture
def running_clock() -> Iterator[None]:
    """This process's clock as the daemon's, gateway's and run workers' read theirs: the as-of date with the
    time of day running (DEMAND_CONTROL_AS_OF), not the session's frozen 09:00. With the frozen clock the
    in-process plan's auto-approved notices were decided at 09:00 and a planner's click in the gateway at the
    wall clock's time of day, so before 09:00 UTC the click looked older than the notices the sensor had
    already passed, and the customer was never told."""
    with clock.use(clock.today()):
        yield


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, env=env, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_spike_and_delay_travel_the_whole_loop(own_tryton, smtp_server, running_clock, tmp_path) -> None:  # noqa: F811
    received_mail, smtp_port = smtp_server
    home = tmp_path / "home"
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    shutil.copy(ROOT / "deploy" / "dagster.local.yaml", dagster_home / "dagster.yaml")
    workspace = home / "workspace.yaml"
    workspace.write_text(f"load_from:\n  - python_module:\n      module_name: demand_control.definitions\n      working_directory: {ROOT}\n      location_name: demand_control\n")
    erp = erp_for(own_tryton)
    warehouse = Warehouse(home=str(home))
    today = clock.today()

    # The planned starting point: ingest from Tryton, forecast, plan (in process, as `make demo` does).
    defs = build_definitions({"warehouse": warehouse, "signal_source": erp, "erp": erp, "quality_settings": QualitySettings()})
    with dg.instance_for_test() as instance:
        assert defs.resolve_job_def(INGEST_JOB_NAME).execute_in_process(instance=instance).success
        config = {"resources": {"forecast_settings": {"config": {"horizon": 13, "n_jobs": 1}}}}
        assert defs.resolve_job_def(FORECAST_JOB_NAME).execute_in_process(instance=instance, run_config=config).success
        assert defs.resolve_job_def(DECISION_JOB_NAME).execute_in_process(instance=instance, run_config=config).success
    target = scenario.pick_target(warehouse, today)
    assert isinstance(target, scenario.Target), target.reason
    # The scenario this landscape (the Tryton fixture's, seed 5, as of 23 Nov 2026) plays: PO-7000006/1 brings
    # 792 × SKU-000001 to DC-01 on 7 Dec and slips 28 days; a strategic customer's spike of 896 (four weeks
    # of forecast) promised 26 Nov is served from stock, which leaves SO-4000009/1 (CUST-0003, strategic,
    # 319 promised 24 Dec) short until the bucket of 28 Dec: 252 by the open orders, all 319 once the forecast's
    # orders still to come before 24 Dec (inside the lane's lead time) are served first.
    assert (target.sku, target.location_id, target.po_id, target.po_line_no, target.supplier_id, target.po_due, target.delay_days) == (
        "SKU-000001", "DC-01", "PO-7000006", 1, "SUP-008", date(2026, 12, 7), 28)
    assert (target.order_id, target.order_line_no, target.customer_id, target.notice_order_id, target.notice_line_no) == (
        "SO-4000009", 1, "CUST-0003", "SO-4000009", 1)
    assert (target.spike_customer_id, target.spike_qty, target.spike_promise, target.revised_date) == (
        "CUST-0002", 896.0, date(2026, 11, 26), date(2026, 12, 28))

    with slack_api_server() as (slack, slack_url):
        policy = load_policy()
        for channel in {policy.owners.fallback.channel, *(rule.owner.channel for rule in policy.owners.rules)}:
            slack.add_channel(channel)
        env = {
            **os.environ,
            "DEMAND_CONTROL_HOME": str(home), "DAGSTER_HOME": str(dagster_home), "DEMAND_CONTROL_SOURCE": "tryton",
            "DEMAND_CONTROL_ERP_URL": own_tryton.url, "DEMAND_CONTROL_ERP_DATABASE": own_tryton.database,
            "DEMAND_CONTROL_ERP_LOGIN": own_tryton.login, "DEMAND_CONTROL_ERP_PASSWORD": own_tryton.password,
            "DEMAND_CONTROL_WEBHOOK_SECRETS_ACME_PORTAL": WEBHOOK_SECRET, "SLACK_SIGNING_SECRET": SLACK_SIGNING_SECRET,
            "SLACK_BOT_TOKEN": SLACK_TOKEN, "SLACK_API_URL": slack_url,
            "DEMAND_CONTROL_SMTP_HOST": "127.0.0.1", "DEMAND_CONTROL_SMTP_PORT": str(smtp_port),
        }
        env.pop("DEMAND_CONTROL_DATABASE_URL", None)
        port = _free_port()
        gateway = _start([str(BIN / "demand-control"), "gateway", "--host", "127.0.0.1", "--port", str(port)], env, home / "gateway.log")
        daemon = _start([str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], env, home / "daemon.log")
        try:
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
            scenario.wait_for(lambda: _healthy(client), 90, "the gateway to answer /healthz")

            # 1. Signed webhooks, durably stored.
            events = scenario.scenario_events(target, today, "e2e")
            for event in events:
                body = json.dumps(event["body"])
                answer = client.post(f"/webhooks/{event['source']}", content=body, headers=scenario.sign_webhook(WEBHOOK_SECRET, event["webhook_id"], body))
                assert answer.status_code == 202, answer.text
            ids = [e["webhook_id"] for e in events]

            # 2. The daemon's inbox sensor starts a replan run that applies both events.
            def processed() -> bool:
                rows = warehouse.read("inbox_events", where=tables.inbox_events.c.webhook_id.in_(ids))
                return len(rows) == 2 and rows["processed_at"].notna().all()

            scenario.wait_for(processed, 180, "the daemon's replan run to process the inbox", poll=0.5)
            po = warehouse.read("purchase_order_line").set_index(["po_id", "line_no"]).loc[(target.po_id, target.po_line_no)]
            assert str(po["confirmed_date"]) == target.new_po_date.isoformat()
            assert str(po["confirmed_date"]) == "2027-01-04" and po["qty_open"] == 792.0
            spike = warehouse.read("customer_order_line").set_index(["order_id", "line_no"]).loc[("SO-SPIKE-e2e", 1)]
            assert (spike["customer_id"], spike["sku"], spike["location_id"], spike["qty_open"], str(spike["promise_date"])) == (
                "CUST-0002", "SKU-000001", "DC-01", 896.0, "2026-11-26")
            found = scenario.exceptions_of(warehouse, target).set_index("exception_key")
            delay = found.loc["supplier_delay:PO-7000006/1"]
            assert (delay["exception_type"], delay["sku"], delay["location_id"], delay["po_id"], delay["po_line_no"]) == (
                "supplier_delay", "SKU-000001", "DC-01", "PO-7000006", 1)
            trigger = json.loads(delay["trigger_values"])
            assert (trigger["qty_open"], trigger["expected_date"], trigger["confirmed_date"], trigger["slip_days"]) == (792.0, "2026-12-07", "2027-01-04", 28.0)
            at_risk = found.loc["order_at_risk:SKU-000001@DC-01"]
            assert (at_risk["exception_type"], at_risk["customer_tier"], at_risk["units_at_risk"]) == ("order_at_risk", "strategic", 319.0)
            # The spike itself is served in full: only the order that relied on the PO is late.
            assert [(o["order_id"], o["line_no"], o["customer_id"], o["qty_open"], o["short"], o["promise_date"], o["revised_date"])
                    for o in json.loads(at_risk["affected_orders"])] == [("SO-4000009", 1, "CUST-0003", 319.0, 319.0, "2026-12-24", "2026-12-28")]
            actions = warehouse.read("recommended_actions")
            [followup] = actions[(actions["exception_key"] == "supplier_delay:PO-7000006/1") & (actions["action_type"] == "supplier_followup")].to_dict("records")
            assert (followup["rank"], followup["po_id"], followup["po_line_no"], followup["supplier_id"], followup["quantity"]) == (
                1, "PO-7000006", 1, "SUP-008", 792.0)
            assert followup["message"].startswith(
                "Hello Greenleaf Garden Manufacturing, PO PO-7000006/1 (792 × SKU-000001 to DC-01) is now due 4 Jan instead of 7 Dec."
            )
            allocations = warehouse.read("allocation_scenarios")
            mine = allocations[(allocations["sku"] == target.sku) & (allocations["location_id"] == target.location_id)]
            assert len(mine) >= 3 and mine["recommended"].sum() == 1

            # 3. The owner hears about it on Slack: one parent message per exception, with buttons.
            action = scenario.action_to_approve(warehouse, target)
            assert (action["exception_key"], action["action_type"], action["rank"], action["order_id"], action["order_line_no"]) == (
                "order_at_risk:SKU-000001@DC-01", "notify_customer", 1, "SO-4000009", 1)
            assert (action["customer_id"], action["quantity"], str(action["new_date"]), action["policy_decision"]) == (
                "CUST-0003", 319.0, "2026-12-28", "awaiting_approval")
            told = scenario.wait_for(
                lambda: _parent(warehouse, action["exception_key"]), 60, "the Slack parent message of the order_at_risk exception"
            )
            posted = [m for m in slack.messages if m.get("ts") == told["ts"]]
            assert len(posted) == 1 and any(f"approve:{action['action_id']}" in json.dumps(m.get("blocks")) for m in posted)

            # 4. A planner presses Approve: the signed click is answered at once and decided once.
            user = scenario.approver_for(load_policy(), action)
            body, headers = scenario.slack_click(SLACK_SIGNING_SECRET, action["action_id"], user, told["channel"], told["ts"])
            answer = client.post("/slack/interactions", content=body, headers=headers)
            assert answer.status_code == 200, answer.text
            again = client.post("/slack/interactions", content=body, headers=headers)
            assert again.status_code == 200
            scenario.wait_for(lambda: _decided(warehouse, action["action_id"]), 30, "the approval decision")

            # 5. The outbox sensor's write_back run writes the revised promise into Tryton, once.
            done = scenario.wait_for(lambda: _outbox_done(warehouse, action["action_id"]), 120, "the ERP write-back", poll=0.5)
            assert done["reconciled"] and done["erp_model"] == "sale.line" and done["kind"] == "revise_promise"
            written = json.loads(done["payload"])
            assert (written["order_id"], written["line_no"], written["new_date"]) == ("SO-4000009", 1, "2026-12-28")
            revised = date.fromisoformat(str(action["new_date"]))
            shipping = _sale_line_shipping_date(erp, action["order_id"], int(action["order_line_no"]))
            assert shipping == revised

            # 6. The customer is told on the SMTP server, once.
            mail = scenario.wait_for(lambda: [m for m in (_parsed(e) for e in received_mail) if action["order_id"] in m["Subject"]], 120,
                                     "the customer notice on the SMTP server", poll=0.5)
            assert len(mail) == 1
            text = mail[0].get_body(("plain",)).get_content()
            assert action["order_id"] in text and revised.strftime("%-d %B %Y") in text
            notices = warehouse.read("customer_notices", where=tables.customer_notices.c.action_id == action["action_id"])
            assert len(notices) == 1 and notices["status"].iloc[0] == "sent"

            # 7. The audit trail proves it.
            report = verify_chain(warehouse.engine)
            assert report.ok, report.reason
            audit = warehouse.read("audit_log")
            assert {"event_received", "event_applied", "recommendation", "notification", "approval", "erp_write"} <= set(audit["event_type"])
        finally:
            _stop(daemon)
            _stop(gateway)


def _parsed(envelope):  # noqa: ANN001, ANN202
    import email
    from email import policy

    return email.message_from_bytes(envelope.content, policy=policy.default)


def _healthy(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.HTTPError:
        return False


def _parent(warehouse: Warehouse, key: str) -> dict | None:
    rows = warehouse.read("slack_messages", where=tables.slack_messages.c.exception_key == key)
    return rows.iloc[0].to_dict() if len(rows) and rows["state"].iloc[0] == "posted" and rows["ts"].iloc[0] else None


def _decided(warehouse: Warehouse, action_id: str) -> bool:
    rows = warehouse.read("action_decisions", where=tables.action_decisions.c.action_id == action_id)
    return len(rows) == 1 and rows["decision"].iloc[0] == "approved"


def _outbox_done(warehouse: Warehouse, action_id: str) -> dict | None:
    rows = warehouse.read("erp_outbox", where=tables.erp_outbox.c.action_id == action_id)
    return rows.iloc[0].to_dict() if len(rows) and rows["status"].iloc[0] == "done" else None


def _sale_line_shipping_date(erp, order_id: str, line_no: int) -> date:  # noqa: ANN001
    rows = erp.client.search_read("sale.line", [("sale.reference", "=", order_id), ("sequence", "=", line_no)], ["shipping_date"])
    return rows[0]["shipping_date"]
