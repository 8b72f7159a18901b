"""Approvals keep RELIABILITY.md §6–8 and §19–20: Slack clicks verified on the raw body (the published vector,
forged, stale and replayed requests), stored and answered before they are decided, one decision and one ERP
outbox row per action however many clicks or approvers, authority from the policy's roles and value bands,
no self-approval, every refusal audited, reject and snooze, auto-approval once, races on SQLite and
PostgreSQL, and the CLI.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import dagster as dg
import httpx
import pandas as pd
import pytest
from slack_sdk.signature import Clock, SignatureVerifier
from sqlalchemy import Engine, insert, select
from starlette.applications import Starlette
from typer.testing import CliRunner

from demand_control.gateway.slack_interactions import slack_routes
from demand_control.planning.policy import parse_policy
from demand_control.resources import Warehouse
from demand_control.resources.erp.base import (
    PromiseRevision,
    ReplenishOrder,
    SupplierDelay,
)
from demand_control.schema.tables import (
    action_decisions,
    approval_clicks,
    audit_log,
    erp_outbox,
    exception_lifecycle,
    notifications,
    recommended_actions,
)
from demand_control.services import approvals
from demand_control.services.approvals import (
    SlackThread,
    decide,
    decide_pending,
    erp_action_for,
    record_click,
)
from demand_control.services.audit import verify_chain
from demand_control.services.auto_approval import auto_approve
from tests.asgi_server import serving

# Published by Slack (docs.slack.dev, "Verifying requests from Slack"; slack-sdk's signature tests).
VECTOR_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
VECTOR_TIMESTAMP = 1531420618
VECTOR_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
VECTOR_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

SECRET = "test-signing-secret-for-approvals"
T0 = 1_795_000_000  # the Slack clock of the route tests (Unix seconds)
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

POLICY_YAML = """
version: 1
owners:
  fallback: {team: "team:planning", channel: "#planning-exceptions"}
sla: {critical: 4, high: 24, medium: 72, low: 168}
autonomy:
  auto_approvable: [replenish, supplier_followup]
  default_limit: 0
  limits: {replenish: 5000, supplier_followup: 25000}
  min_confidence: 0.8
operators: {ana: ana.planner, ben: ben.planner, carla: carla.buyer}
roles:
  planner:
    members: [ana.planner, ben.planner, U0PLANNER]
    may_approve: [replenish, notify_customer, reschedule_out, supplier_followup]
    max_value: 10000
  buyer:
    members: [carla.buyer, U0BUYER]
    may_approve: [replenish, expedite, reschedule_out]
    max_value: 25000
  director:
    members: [farid.director]
    may_approve: [replenish, expedite, reschedule_out, notify_customer, supplier_followup]
    max_value: null
"""
POLICY = parse_policy(POLICY_YAML, "test-policy")


class FixedClock(Clock):
    def __init__(self, now: float):
        self.value = now

    def now(self) -> float:
        return self.value


def action_row(action_id: str, action_type: str = "replenish", value: float = 4_000.0, **overrides: Any) -> dict[str, Any]:
    row = {
        "action_id": action_id, "exception_key": f"projected_stockout:SKU-1@DC-01#{action_id}", "occurrence": 1,
        "exception_type": "projected_stockout", "action_type": action_type, "rank": 1, "sku": "SKU-1",
        "location_id": "DC-01", "category": "Beverages", "supplier_id": "SUP-001", "quantity": 400.0, "value": value,
        "needed_by": date(2026, 12, 14), "confidence": 0.9, "expected_impact": "restores cover", "data_fresh": True,
        "forecast_degraded": False, "policy_decision": "awaiting_approval", "approver_role": "planner",
        "policy_reasons": "value above the limit", "created_at": NOW - timedelta(hours=2), "updated_at": NOW - timedelta(hours=2),
    }
    return {**row, **overrides}


def add_actions(engine: Engine, *rows: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(insert(recommended_actions), list(rows))


def add_exception(engine: Engine, exception_key: str, state: str = "open") -> None:
    with engine.begin() as conn:
        conn.execute(insert(exception_lifecycle).values(
            exception_key=exception_key, exception_type="projected_stockout", state=state, occurrence=1,
            first_seen_at=NOW - timedelta(days=1), last_seen_at=NOW, opened_at=NOW - timedelta(days=1),
            state_changed_at=NOW - timedelta(days=1), values_changed_at=NOW - timedelta(days=1), last_change="opened",
        ))


def rows(engine: Engine, table: Any, **where: Any) -> list[dict[str, Any]]:
    stmt = select(table)
    for column, value in where.items():
        stmt = stmt.where(table.c[column] == value)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def click(engine: Engine, action_id: str, decision: str, user: str, ref: str | None = None, **kw: Any) -> approvals.DecisionOutcome:
    click_id = record_click(engine, action_id, decision, user, "cli", ref or f"test:{user}:{decision}:{time.perf_counter_ns()}", NOW)
    return decide(engine, POLICY, click_id, NOW, **kw)


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    wh = Warehouse(home=str(tmp_path))
    wh.migrate()
    return wh


@pytest.fixture
def engine(warehouse: Warehouse) -> Engine:
    return warehouse.engine


# Slack requests --------------------------------------------------------------------------------------------

def interaction(action_id: str, decision: str = "approve", user: str = "U0PLANNER", trigger_id: str = "trig-1",
                **extra: Any) -> dict[str, Any]:
    return {
        "type": "block_actions", "trigger_id": trigger_id, "user": {"id": user, "username": user.lower()},
        "container": {"type": "message", "message_ts": "1795000000.000100", "channel_id": "C0PLANNING"},
        "channel": {"id": "C0PLANNING", "name": "planning-exceptions"},
        "message": {"ts": "1795000000.000100"},
        "actions": [{"type": "button", "action_id": f"{decision}:{action_id}", "value": action_id,
                     "action_ts": "1795000001.000200"}],
        **extra,
    }


def form(payload: dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed(body: bytes, secret: str = SECRET, timestamp: int = T0) -> dict[str, str]:
    # Computed here from Slack's definition over the raw bytes, independently of slack-sdk.
    signature = "v0=" + hmac.new(secret.encode(), b"v0:%d:" % timestamp + body, hashlib.sha256).hexdigest()
    return {"x-slack-request-timestamp": str(timestamp), "x-slack-signature": signature,
            "content-type": "application/x-www-form-urlencoded"}


class AsgiClient:
    """The app in-process through httpx's ASGI transport, which returns once the app is done: after the
    background decision has run, so a test can look at its result straight away."""

    def __init__(self, app: Starlette):
        self.app = app

    def post(self, path: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
                return await client.post(path, content=content, headers=headers)

        return asyncio.run(send())


@pytest.fixture
def slack(warehouse: Warehouse) -> AsgiClient:
    return AsgiClient(Starlette(routes=slack_routes(warehouse, SECRET, lambda: POLICY, clock=FixedClock(T0), now=lambda: NOW)))


def test_slack_published_signing_vector_verifies(warehouse: Warehouse) -> None:
    verifier = SignatureVerifier(VECTOR_SECRET, clock=FixedClock(VECTOR_TIMESTAMP))
    assert verifier.is_valid(VECTOR_BODY, str(VECTOR_TIMESTAMP), VECTOR_SIGNATURE)
    assert not verifier.is_valid(VECTOR_BODY.replace("roadrunner", "roadrunnex"), str(VECTOR_TIMESTAMP), VECTOR_SIGNATURE)

    # Through the route: the vector passes verification (it is a slash command, so it is then refused as
    # malformed, 400, not as forged, 401); one changed byte of the signature is a 401.
    app = Starlette(routes=slack_routes(warehouse, VECTOR_SECRET, lambda: POLICY, clock=FixedClock(VECTOR_TIMESTAMP)))
    headers = {"x-slack-request-timestamp": str(VECTOR_TIMESTAMP), "x-slack-signature": VECTOR_SIGNATURE,
               "content-type": "application/x-www-form-urlencoded"}
    client = AsgiClient(app)
    ok = client.post("/slack/interactions", content=VECTOR_BODY.encode(), headers=headers)
    assert ok.status_code == 400 and ok.json()["error"] == "malformed", ok.text
    forged = client.post("/slack/interactions", content=VECTOR_BODY.encode(),
                         headers={**headers, "x-slack-signature": VECTOR_SIGNATURE[:-1] + "4"})
    assert forged.status_code == 401 and forged.json()["error"] == "bad_signature"


def test_forged_stale_and_unsigned_slack_requests_are_refused_401(slack: AsgiClient, engine: Engine) -> None:
    add_actions(engine, action_row("A-forged-0001"))
    body = form(interaction("A-forged-0001"))
    tampered = form(interaction("A-forged-0001", user="U0BUYER"))
    cases = {
        "wrong secret": (body, signed(body, secret="not-the-secret")),
        "body changed after signing": (tampered, signed(body)),
        "stale (301 s old)": (body, signed(body, timestamp=T0 - 301)),
        "from the future (301 s ahead)": (body, signed(body, timestamp=T0 + 301)),
        "no signature": (body, {"x-slack-request-timestamp": str(T0)}),
        "no timestamp": (body, {"x-slack-signature": signed(body)["x-slack-signature"]}),
        "timestamp not a number": (body, {**signed(body), "x-slack-request-timestamp": "17950OOOOO"}),
        "signature not hex": (body, {**signed(body), "x-slack-signature": "v0=" + "zz" * 32}),
        "not UTF-8": (b"payload=\xff\xfe", signed(b"payload=\xff\xfe")),
    }
    for name, (content, headers) in cases.items():
        response = slack.post("/slack/interactions", content=content, headers=headers)
        assert response.status_code == 401, f"{name}: {response.status_code} {response.text}"
    # Inside the window either way, the same request is fine.
    assert slack.post("/slack/interactions", content=body, headers=signed(body, timestamp=T0 - 299)).status_code == 200
    assert len(rows(engine, approval_clicks)) == 1


def test_signed_but_malformed_clicks_are_400_never_5xx(slack: AsgiClient, engine: Engine) -> None:
    good = interaction("A-malformed-01")
    bodies = {
        "no payload field": b"token=x&team_id=T1",
        "payload twice": form(good) + b"&" + form(good),
        "payload not JSON": b"payload=%7Bnot+json",
        "payload a list": form([good]),  # type: ignore[arg-type]
        "not block_actions": form({**good, "type": "view_submission"}),
        "no actions": form({**good, "actions": []}),
        "unknown decision": form({**good, "actions": [{"action_id": "delete:A-malformed-01", "value": "x"}]}),
        "no user": form({k: v for k, v in good.items() if k != "user"}),
        "user id not text": form({**good, "user": {"id": 42}}),
        "nothing to dedupe by": form({k: v for k, v in good.items() if k not in ("trigger_id", "container", "message")}),
    }
    for name, body in bodies.items():
        response = slack.post("/slack/interactions", content=body, headers=signed(body))
        assert response.status_code == 400, f"{name}: {response.status_code} {response.text}"
    assert rows(engine, approval_clicks) == []


def test_signed_click_is_stored_and_answered_fast_while_decide_is_deferred(warehouse: Warehouse) -> None:
    """Over real HTTP: the 200 arrives while the decision is still blocked, and the click is already stored."""
    engine = warehouse.engine
    add_actions(engine, action_row("A-fast-000001"))
    release, deciding = threading.Event(), threading.Event()

    def slow_policy():
        deciding.set()
        assert release.wait(20), "the test never released the decision"
        return POLICY

    app = Starlette(routes=slack_routes(warehouse, SECRET, slow_policy))
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        body = form(interaction("A-fast-000001"))
        started = time.monotonic()
        response = client.post("/slack/interactions", content=body, headers=signed(body, timestamp=int(time.time())))
        elapsed = time.monotonic() - started
        try:
            assert response.status_code == 200 and response.json()["status"] == "received", response.text
            assert elapsed < 3.0, f"answered in {elapsed:.2f} s"
            stored = rows(engine, approval_clicks)
            assert len(stored) == 1 and stored[0]["via"] == "slack" and stored[0]["request_ref"] == "slack:trig-1"
            assert stored[0]["processed_at"] is None, "the click must be decided after the answer, not before it"
            assert rows(engine, action_decisions) == []
        finally:
            release.set()
        deadline = time.monotonic() + 20
        while not rows(engine, action_decisions):
            assert time.monotonic() < deadline, "the deferred decision never happened"
            time.sleep(0.05)
    assert deciding.is_set()
    assert rows(engine, action_decisions)[0]["decision"] == "approved"
    assert len(rows(engine, erp_outbox)) == 1


def test_double_click_replay_and_second_approver_give_one_decision_one_outbox_row(slack: AsgiClient, engine: Engine) -> None:
    add_actions(engine, action_row("A-double-0001"))
    first = form(interaction("A-double-0001", trigger_id="trig-first"))
    assert slack.post("/slack/interactions", content=first, headers=signed(first)).json()["status"] == "received"
    replay = slack.post("/slack/interactions", content=first, headers=signed(first))  # the same request again
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    double = form(interaction("A-double-0001", trigger_id="trig-double"))  # the same user clicks again
    second = form(interaction("A-double-0001", user="U0BUYER", trigger_id="trig-second"))  # another approver
    reject = form(interaction("A-double-0001", decision="reject", user="U0BUYER", trigger_id="trig-reject"))
    for body in (double, second, reject):
        assert slack.post("/slack/interactions", content=body, headers=signed(body)).status_code == 200

    clicks = {c["request_ref"]: c for c in rows(engine, approval_clicks)}
    assert len(clicks) == 4, "the replay is stored once"
    assert clicks["slack:trig-first"]["outcome"] == "decided"
    assert {clicks[f"slack:trig-{n}"]["outcome"] for n in ("double", "second", "reject")} == {"duplicate"}
    decisions = rows(engine, action_decisions)
    assert [(d["decision"], d["decided_by"], d["role"]) for d in decisions] == [("approved", "U0PLANNER", "planner")]
    outbox = rows(engine, erp_outbox)
    assert len(outbox) == 1 and outbox[0]["status"] == "pending" and outbox[0]["kind"] == "replenish"
    payload = json.loads(outbox[0]["payload"])
    assert payload["action_id"] == "A-double-0001" and payload["quantity"] == 400.0 and payload["needed_by"] == "2026-12-14"
    assert [a["event_type"] for a in rows(engine, audit_log)] == ["approval"]
    # Each click is answered once in the thread it came from.
    notes = rows(engine, notifications, kind="approval_result")
    assert len(notes) == 4 and {n["channel"] for n in notes} == {"C0PLANNING"}
    assert {json.loads(n["payload"])["thread_ts"] for n in notes} == {"1795000000.000100"}
    assert sum("No change" in n["text"] for n in notes) == 3
    assert verify_chain(engine).ok


def test_unauthorised_approvers_are_refused_audited_and_queue_nothing(engine: Engine) -> None:
    add_actions(
        engine,
        action_row("A-norole-0001"),
        action_row("A-type-00001", action_type="expedite", po_id="PO-1", po_line_no=1),
        action_row("A-band-00001", value=20_000.0),
    )
    refusals = {
        "A-norole-0001": ("mallory", "holds no approving role"),
        "A-type-00001": ("ana.planner", "may not approve expedite"),
        "A-band-00001": ("ana.planner", "exceeds ana.planner's band"),
    }
    for action_id, (user, why) in refusals.items():
        outcome = click(engine, action_id, "approve", user)
        assert outcome.refused and why in outcome.reason, outcome
    assert rows(engine, action_decisions) == [] and rows(engine, erp_outbox) == []
    audited = rows(engine, audit_log)
    assert [(a["event_type"], a["actor"], a["subject"]) for a in audited] == [
        ("refusal", user, action_id) for action_id, (user, _) in refusals.items()
    ]
    assert all(why in json.loads(a["payload"])["reason"] for a, (_, why) in zip(audited, refusals.values()))
    assert {c["outcome"] for c in rows(engine, approval_clicks)} == {"refused"}
    # A refusal decides nothing: someone with the authority still can.
    assert click(engine, "A-band-00001", "approve", "carla.buyer").outcome == "decided"
    assert len(rows(engine, erp_outbox)) == 1
    # Refused too: an action nobody recommended.
    unknown = click(engine, "A-unknown-001", "approve", "farid.director")
    assert unknown.refused and "unknown action" in unknown.reason
    assert rows(engine, audit_log)[-1]["event_type"] == "refusal"


def test_the_requester_never_approves_their_own_request(engine: Engine) -> None:
    add_actions(engine, action_row("A-self-00001", details=json.dumps({"requested_by": "ana.planner"})))
    own = click(engine, "A-self-00001", "approve", "ana.planner")
    assert own.refused and "may not approve their own request" in own.reason
    assert rows(engine, audit_log)[-1]["event_type"] == "refusal"
    assert rows(engine, action_decisions) == []
    assert approvals.requester_of(action_row("A-system-0001")) == approvals.SYSTEM_REQUESTER
    other = click(engine, "A-self-00001", "approve", "ben.planner")
    assert other.outcome == "decided" and other.decision == "approved"


def test_reject_and_snooze_then_approve_after_the_snooze(engine: Engine) -> None:
    rejected, snoozed = action_row("A-reject-0001"), action_row("A-snooze-0001")
    add_actions(engine, rejected, snoozed)
    add_exception(engine, snoozed["exception_key"])

    outcome = click(engine, "A-reject-0001", "reject", "ana.planner", note="enough stock at the store")
    assert outcome.decision == "rejected"
    decision = rows(engine, action_decisions, action_id="A-reject-0001")[0]
    assert decision["decision"] == "rejected" and decision["note"] == "enough stock at the store"
    assert click(engine, "A-reject-0001", "approve", "carla.buyer").outcome == "duplicate", "a rejection is final"
    assert rows(engine, erp_outbox) == []

    assert click(engine, "A-snooze-0001", "snooze", "mallory").refused, "snoozing needs a role for the action type"
    assert rows(engine, exception_lifecycle)[0]["state"] == "open"
    assert click(engine, "A-snooze-0001", "snooze", "ana.planner", snooze_for_hours=8).decision == "snoozed"
    record = rows(engine, exception_lifecycle)[0]
    assert record["state"] == "snoozed"
    assert record["snoozed_until"].replace(tzinfo=UTC) == NOW + timedelta(hours=8)
    assert click(engine, "A-snooze-0001", "snooze", "ben.planner").outcome == "duplicate"
    assert rows(engine, erp_outbox) == []
    # The exception comes back after a snooze: its action can still be approved, once.
    assert click(engine, "A-snooze-0001", "approve", "ben.planner").decision == "approved"
    assert click(engine, "A-snooze-0001", "approve", "carla.buyer").outcome == "duplicate"
    assert [d["decision"] for d in rows(engine, action_decisions, action_id="A-snooze-0001")] == ["approved"]
    assert len(rows(engine, erp_outbox)) == 1
    events = [a["event_type"] for a in rows(engine, audit_log)]
    assert events == ["rejection", "refusal", "snooze", "approval"]
    assert verify_chain(engine).ok


def test_snooze_lasts_24_hours_by_default(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(approvals.SNOOZE_HOURS_ENV, raising=False)
    row = action_row("A-snooze-0024")
    add_actions(engine, row)
    add_exception(engine, row["exception_key"])
    click(engine, "A-snooze-0024", "snooze", "ana.planner")
    assert rows(engine, exception_lifecycle)[0]["snoozed_until"].replace(tzinfo=UTC) == NOW + timedelta(hours=24)


def test_a_click_is_evaluated_once_and_pending_clicks_are_picked_up(engine: Engine) -> None:
    add_actions(engine, action_row("A-once-00001"))
    click_id = record_click(engine, "A-once-00001", "approve", "ana.planner", "slack", "slack:pending-1", NOW)
    assert record_click(engine, "A-once-00001", "approve", "ana.planner", "slack", "slack:pending-1", NOW) == click_id
    # The gateway stopped before deciding: the sweep decides it, and a second evaluation changes nothing.
    [outcome] = decide_pending(engine, POLICY, NOW)
    assert outcome.click_id == click_id and outcome.decision == "approved"
    again = decide(engine, POLICY, click_id, NOW + timedelta(minutes=1))
    assert again.outcome == "decided" and again.decision == "approved"
    assert decide_pending(engine, POLICY, NOW) == []
    assert len(rows(engine, audit_log)) == 1 and len(rows(engine, erp_outbox)) == 1


def test_auto_approve_queues_exactly_once(engine: Engine) -> None:
    add_actions(
        engine,
        action_row("A-auto-00001", policy_decision="auto_approved", approver_role=None, policy_reasons="value 4,000 ≤ limit 5,000"),
        action_row("A-auto-00002", action_type="supplier_followup", value=0.0, policy_decision="auto_approved",
                   approver_role=None, policy_reasons="supplier_followup is auto-approvable"),
        action_row("A-human-0001"),
    )
    assert auto_approve(engine, NOW) == ["A-auto-00001", "A-auto-00002"]
    assert auto_approve(engine, NOW + timedelta(minutes=5)) == []
    decisions = {d["action_id"]: d for d in rows(engine, action_decisions)}
    assert set(decisions) == {"A-auto-00001", "A-auto-00002"}
    assert {d["decision"] for d in decisions.values()} == {"auto_approved"}
    assert {d["decided_by"] for d in decisions.values()} == {"policy"}
    assert "no ERP write for supplier_followup" in decisions["A-auto-00002"]["note"]
    assert [o["action_id"] for o in rows(engine, erp_outbox)] == ["A-auto-00001"]
    assert [(a["actor"], a["event_type"]) for a in rows(engine, audit_log)] == [("policy", "approval")] * 2
    assert click(engine, "A-auto-00001", "approve", "ana.planner").outcome == "duplicate"
    assert len(rows(engine, erp_outbox)) == 1


def _many_auto_approvals(engine: Engine) -> None:
    # More than one multi-row insert's worth (1,000): every action decided once, an ERP write for each that
    # has one, an audit row each, the order kept; a second call decides nothing.
    n = 2_345
    add_actions(engine, *[
        action_row(f"A-bulk-{i:05d}", policy_decision="auto_approved", approver_role=None, policy_reasons="within limits",
                   **({"action_type": "supplier_followup", "value": 0.0} if i % 7 == 0 else {}))
        for i in range(n)
    ], action_row("A-human-0001"))
    decided = auto_approve(engine, NOW)
    assert decided == [f"A-bulk-{i:05d}" for i in range(n)]
    assert auto_approve(engine, NOW + timedelta(minutes=5)) == []
    assert len(rows(engine, action_decisions)) == n
    assert sorted(o["action_id"] for o in rows(engine, erp_outbox)) == [f"A-bulk-{i:05d}" for i in range(n) if i % 7]
    approvals = [a for a in rows(engine, audit_log) if a["event_type"] == "approval"]
    assert len(approvals) == n and sum(json.loads(a["payload"])["erp_queued"] for a in approvals) == n - len(range(0, n, 7))


def test_auto_approve_decides_thousands_in_a_few_statements(engine: Engine) -> None:
    _many_auto_approvals(engine)


@pytest.mark.postgres
def test_auto_approve_decides_thousands_in_a_few_statements_postgres(postgres_database) -> None:
    warehouse = Warehouse(database_url=str(postgres_database["url"]))
    warehouse.migrate()
    _many_auto_approvals(warehouse.engine)


def test_erp_action_for_maps_each_action_type() -> None:
    replenish = erp_action_for(action_row("A-map-000001"))
    assert replenish == ReplenishOrder(action_id="A-map-000001", sku="SKU-1", location_id="DC-01", quantity=400.0,
                                       needed_by=date(2026, 12, 14), supplier_id="SUP-001")
    expedite = erp_action_for(action_row("A-map-000002", action_type="expedite", po_id="PO-9", po_line_no=2,
                                         new_date=date(2027, 1, 4)))
    assert expedite == SupplierDelay(action_id="A-map-000002", po_id="PO-9", line_no=2, new_date=date(2026, 12, 14))
    later = erp_action_for(action_row("A-map-000003", action_type="reschedule_out", po_id="PO-9", po_line_no=2,
                                      new_date=date(2027, 1, 4)))
    assert later == SupplierDelay(action_id="A-map-000003", po_id="PO-9", line_no=2, new_date=date(2027, 1, 4))
    notify = erp_action_for(action_row("A-map-000004", action_type="notify_customer", order_id="SO-1", order_line_no=3,
                                       new_date=date(2026, 12, 21)))
    assert notify == PromiseRevision(action_id="A-map-000004", order_id="SO-1", line_no=3, new_date=date(2026, 12, 21))
    assert erp_action_for(action_row("A-map-000005", action_type="notify_customer", new_date=None)) is None
    for action_type in ("supplier_followup", "review_forecast", "allocate", "substitute", "cancel", "transfer"):
        assert erp_action_for(action_row("A-map-000006", action_type=action_type)) is None
    with pytest.raises(ValueError, match="po_id"):
        erp_action_for(action_row("A-map-000007", action_type="expedite"))


def test_an_approval_that_cannot_be_written_is_refused(engine: Engine) -> None:
    add_actions(engine, action_row("A-broken-0001", action_type="expedite", po_id=None))
    outcome = click(engine, "A-broken-0001", "approve", "carla.buyer")
    assert outcome.refused and "po_id" in outcome.reason
    assert rows(engine, action_decisions) == [] and rows(engine, erp_outbox) == []


def test_the_answer_goes_to_the_exception_thread_when_the_payload_has_none(engine: Engine) -> None:
    from demand_control.schema.tables import slack_messages

    row = action_row("A-thread-0001")
    add_actions(engine, row)
    with engine.begin() as conn:
        conn.execute(insert(slack_messages).values(exception_key=row["exception_key"], occurrence=1, channel="C0THREAD",
                                                   ts="1795000000.000900", state="posted", content_hash="x" * 64,
                                                   created_at=NOW, updated_at=NOW))
    click(engine, "A-thread-0001", "approve", "ana.planner")  # from the CLI: shown in the thread as well
    [note] = rows(engine, notifications)
    assert note["channel"] == "C0THREAD" and json.loads(note["payload"])["thread_ts"] == "1795000000.000900"
    click_id = record_click(engine, "A-thread-0001", "approve", "U0BUYER", "slack", "slack:t", NOW)
    decide(engine, POLICY, click_id, NOW, reply_to=SlackThread("C0OTHER", "1.2"))
    assert {n["channel"] for n in rows(engine, notifications)} == {"C0THREAD", "C0OTHER"}


# Races --------------------------------------------------------------------------------------------------

def race(engine: Engine, approvers: list[str]) -> list[approvals.DecisionOutcome]:
    """Every approver clicks approve on the same action at the same moment, each in its own thread (a name
    listed twice clicks twice: a double click inside the race)."""
    add_actions(engine, action_row("A-race-00001"))
    barrier = threading.Barrier(len(approvers))
    results: list[approvals.DecisionOutcome] = []
    errors: list[BaseException] = []

    def approve(i: int, user: str) -> None:
        try:
            click_id = record_click(engine, "A-race-00001", "approve", user, "slack", f"slack:race-{i}", NOW)
            barrier.wait(10)
            results.append(decide(engine, POLICY, click_id, NOW))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=approve, args=(i, u)) for i, u in enumerate(approvers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def assert_one_winner(engine: Engine, results: list[approvals.DecisionOutcome], approvers: list[str]) -> None:
    assert sorted(r.outcome for r in results) == ["decided"] + ["duplicate"] * (len(approvers) - 1)
    decisions = rows(engine, action_decisions)
    assert len(decisions) == 1 and decisions[0]["decided_by"] == next(r.decided_by for r in results if r.outcome == "decided")
    assert len(rows(engine, erp_outbox)) == 1
    assert [a["event_type"] for a in rows(engine, audit_log)] == ["approval"]
    assert verify_chain(engine).ok


APPROVERS = ["ana.planner", "ben.planner", "carla.buyer", "farid.director"]


def test_concurrent_approvals_give_one_decision_sqlite(engine: Engine) -> None:
    assert_one_winner(engine, race(engine, APPROVERS * 2), APPROVERS * 2)


@pytest.mark.postgres
def test_concurrent_approvals_give_one_decision_postgres(postgres_database) -> None:
    warehouse = Warehouse(database_url=str(postgres_database["url"]))
    warehouse.migrate()
    engine = warehouse.engine
    assert_one_winner(engine, race(engine, APPROVERS * 2), APPROVERS * 2)
    # The same race through auto-approval and a human at once: still one decision.
    add_actions(engine, action_row("A-race-auto01", policy_decision="auto_approved"))
    barrier = threading.Barrier(2)
    outcome: list[Any] = []

    def human() -> None:
        click_id = record_click(engine, "A-race-auto01", "approve", "ana.planner", "cli", "cli:race-auto", NOW)
        barrier.wait(10)
        outcome.append(decide(engine, POLICY, click_id, NOW))

    def machine() -> None:
        barrier.wait(10)
        outcome.append(auto_approve(engine, NOW))

    threads = [threading.Thread(target=human), threading.Thread(target=machine)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(outcome) == 2
    assert len(rows(engine, action_decisions, action_id="A-race-auto01")) == 1
    assert len(rows(engine, erp_outbox, action_id="A-race-auto01")) == 1
    assert verify_chain(engine).ok


# CLI ----------------------------------------------------------------------------------------------------

def test_cli_approve_reject_snooze_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from demand_control.cli.main import app

    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY_YAML)
    home = tmp_path / "home"
    monkeypatch.setenv("DEMAND_CONTROL_HOME", str(home))
    monkeypatch.delenv("DEMAND_CONTROL_DATABASE_URL", raising=False)
    monkeypatch.setenv("DEMAND_CONTROL_POLICY", str(policy_file))
    warehouse = Warehouse(home=str(home))
    warehouse.migrate()
    engine = warehouse.engine
    add_actions(engine, action_row("A-cli-000001"), action_row("A-cli-000002", value=50_000.0), action_row("A-cli-000003"))
    runner = CliRunner()

    def as_operator(operator: str) -> dict[str, str]:  # the identity the deployment authenticated
        return {"DEMAND_CONTROL_OPERATOR": operator}

    refused = runner.invoke(app, ["approve", "A-cli-000002", "--as", "ana.planner"], env=as_operator("ana"))
    assert refused.exit_code == 1 and "exceeds ana.planner's band" in refused.output, refused.output
    approved = runner.invoke(app, ["approve", "A-cli-000001", "--as", "ana.planner", "--reason", "promo next week"], env=as_operator("ana"))
    assert approved.exit_code == 0 and "approved by ana.planner as planner" in approved.output, approved.output
    again = runner.invoke(app, ["approve", "A-cli-000001"], env=as_operator("carla"))
    assert again.exit_code == 0 and "no change" in again.output, again.output
    rejected = runner.invoke(app, ["reject", "A-cli-000003", "--as", "ben.planner"], env=as_operator("ben"))
    assert rejected.exit_code == 0 and "rejected" in rejected.output, rejected.output
    unknown = runner.invoke(app, ["snooze", "A-cli-999999", "--as", "ben.planner"], env=as_operator("ben"))
    assert unknown.exit_code == 1 and "unknown action" in unknown.output

    assert {d["action_id"]: d["decision"] for d in rows(engine, action_decisions)} == {
        "A-cli-000001": "approved", "A-cli-000003": "rejected"}
    assert rows(engine, action_decisions, action_id="A-cli-000001")[0]["note"] == "promo next week"
    assert [o["action_id"] for o in rows(engine, erp_outbox)] == ["A-cli-000001"]
    clicks = rows(engine, approval_clicks)
    assert {c["via"] for c in clicks} == {"cli"} and len({c["request_ref"] for c in clicks}) == 5
    assert [a["event_type"] for a in rows(engine, audit_log) if a["event_type"] != "operator_identified"] == ["refusal", "approval", "rejection", "refusal"]


# A failed data-quality gate blocks auto-approval (RELIABILITY.md §21) -----------------------------------------

def forecast_rows(mean: float) -> pd.DataFrame:
    from demand_control.planning.metrics import QUANTILE_COLUMNS

    row = {"sku": "SKU-1", "location_id": "DC-01", "period_start": date(2026, 11, 30), "mean": mean, "base_mean": mean,
           "pipeline_qty": 0.0, "model": "ets", "demand_class": "smooth", "created_at": NOW}
    row.update({column: max(mean, 0.0) for column in QUANTILE_COLUMNS})
    return pd.DataFrame([row])


def run_forecast_gate(warehouse: Warehouse, instance: dg.DagsterInstance) -> None:
    """The product's forecast_values_valid check, executed by Dagster on the warehouse's forecast."""
    from demand_control.definitions import build_definitions
    from demand_control.quality.forecast_checks import forecast_values_valid

    gate = dg.define_asset_job("forecast_gate", selection=dg.AssetSelection.checks(forecast_values_valid))
    defs = dg.Definitions.merge(build_definitions({"warehouse": warehouse}), dg.Definitions(jobs=[gate]))
    defs.resolve_job_def("forecast_gate").execute_in_process(instance=instance, raise_on_error=False)


def test_a_failed_forecast_gate_upstream_withholds_auto_approval_until_it_passes(warehouse: Warehouse) -> None:
    from demand_control.quality.gates import (
        code_location_asset_graph,
        failed_gates_upstream,
    )

    engine = warehouse.engine
    add_actions(engine, action_row("A-gated-00001", value=1_200.0, policy_decision="auto_approved", approver_role=None,
                                   policy_reasons="replenish is auto-approvable; value 1,200 ≤ limit 5,000 for replenish"))
    graph = code_location_asset_graph()  # what the recommended_actions asset asks
    with dg.instance_for_test() as instance:
        warehouse.replace_rows("demand_forecast", forecast_rows(-5.0))  # a negative forecast: the gate fails
        run_forecast_gate(warehouse, instance)
        gates = failed_gates_upstream(instance, graph, dg.AssetKey("recommended_actions"))
        assert [g.split(" ")[0] for g in gates] == ["demand_forecast:forecast_values_valid"], gates
        assert auto_approve(engine, NOW, failed_gates=gates, policy=POLICY) == []
        [action] = rows(engine, recommended_actions)
        assert action["policy_decision"] == "awaiting_approval" and action["approver_role"] == "planner"
        assert action["policy_reasons"].startswith("data-quality gate failed: demand_forecast:forecast_values_valid")
        assert rows(engine, action_decisions) == [] and rows(engine, erp_outbox) == []
        [refusal] = rows(engine, audit_log)
        assert (refusal["actor"], refusal["event_type"], refusal["subject"]) == ("policy", "refusal", "A-gated-00001")
        # A person can still approve it through the product's path.
        assert click(engine, "A-gated-00001", "approve", "ana.planner").decision == "approved"

        # The forecast is fixed and the gate passes: nothing upstream withholds auto-approval any more.
        warehouse.replace_rows("demand_forecast", forecast_rows(12.0))
        run_forecast_gate(warehouse, instance)
        assert failed_gates_upstream(instance, graph, dg.AssetKey("recommended_actions")) == []
    add_actions(engine, action_row("A-gated-00002", value=1_200.0, policy_decision="auto_approved", approver_role=None))
    assert auto_approve(engine, NOW, failed_gates=[], policy=POLICY) == ["A-gated-00002"]


# Roles by category and the recommending system as requester (RELIABILITY.md §8, §20) -------------------------

SCOPED_POLICY = parse_policy(POLICY_YAML + """
  fresh_buyer:
    members: [fiona.fresh, U0FRESH]
    may_approve: [replenish]
    max_value: 15000
    categories: [Dairy & Chilled]
  grocery_buyer:
    members: [gus.grocery]
    may_approve: [replenish]
    max_value: 15000
    categories: [Beverages]
  automation:
    members: [planner-engine]
    may_approve: [replenish]
    max_value: 15000
""", "scoped-policy")


def recommended(action_id: str, category: str, value: float) -> dict[str, Any]:
    """An action as the planner recommends it: routed by the policy (decide_autonomy), no requester set."""
    from demand_control.planning.policy import decide_autonomy

    row = action_row(action_id, value=value, category=category)
    routed = decide_autonomy(pd.DataFrame([{**row, "data_fresh": True, "forecast_degraded": True}]), SCOPED_POLICY).iloc[0]
    return {**row, "policy_decision": routed["policy_decision"], "approver_role": routed["approver_role"],
            "policy_reasons": routed["policy_reasons"]}


def test_an_action_is_approved_by_the_role_scoped_to_its_category_and_never_by_its_requester(warehouse: Warehouse) -> None:
    engine = warehouse.engine
    add_actions(engine, recommended("A-dairy-00001", "Dairy & Chilled", 12_000.0))
    [stored] = rows(engine, recommended_actions)
    # The recommending system asked for it: the automation account it runs as is not routed its own request.
    assert stored["approver_role"] == "fresh_buyer"
    own = decide(engine, SCOPED_POLICY, record_click(engine, "A-dairy-00001", "approve", "planner-engine", "cli", "own", NOW), NOW)
    assert own.refused and own.reason == "planner-engine requested this replenish and may not approve their own request"
    other_category = decide(engine, SCOPED_POLICY, record_click(engine, "A-dairy-00001", "approve", "gus.grocery", "cli", "gus", NOW), NOW)
    assert other_category.refused and "in category Dairy & Chilled" in other_category.reason
    assert rows(engine, action_decisions) == []
    assert [r["event_type"] for r in rows(engine, audit_log)] == ["refusal", "refusal"]
    # Through Slack: the fresh buyer's click is decided under the role scoped to the category.
    app = Starlette(routes=slack_routes(warehouse, SECRET, lambda: SCOPED_POLICY,
                                        clock=FixedClock(T0), now=lambda: NOW))
    body = form(interaction("A-dairy-00001", user="U0FRESH", trigger_id="trig-fresh"))
    assert AsgiClient(app).post("/slack/interactions", content=body, headers=signed(body)).json()["status"] == "received"
    [decision] = rows(engine, action_decisions)
    assert (decision["decision"], decision["decided_by"], decision["role"]) == ("approved", "U0FRESH", "fresh_buyer")
