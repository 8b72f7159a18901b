"""The webhook gateway keeps RELIABILITY.md §1–5 over real HTTP on loopback.

Signed (forgery, stale and future timestamps, malformed headers, rotation, the published Standard Webhooks
vector, a property test over single-byte changes), durable before 2xx (kill -9 of a real gateway process in
the middle of a burst loses no acknowledged event), idempotent (one row per webhook-id however often it is
delivered), clear rejections (400/401/404/413/422/429, never a 5xx) and health.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select
from typer.testing import CliRunner

from demand_control.infra import clock
from demand_control.services.audit import verify_chain
from demand_control.gateway import create_app
from demand_control.gateway.signing import SourceVerifier, VerificationFailure, sign_headers
from demand_control.resources import Warehouse
from demand_control.schema.tables import audit_log, inbox_events
from tests.asgi_server import serving

SECRET = "whsec_c2VjcmV0LWZvci10aGUtZ2F0ZXdheS10ZXN0cw=="
OLD_SECRET = "whsec_b2xkLXNlY3JldC1iZWZvcmUtcm90YXRpb24="
RETIRED_SECRET = "whsec_cmV0aXJlZC1zZWNyZXQtbm8tbG9uZ2Vy"
SOURCE = "supplier-portal"

# Published by Standard Webhooks (libraries/python/tests/test_webhooks.py, test_sign_function).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = '{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
VECTOR_WRONG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="  # the library's "invalid signature" case


def delay(po_id: str = "PO-7000001", line_no: int = 1, supplier_id: str = "SUP-001", **data: Any) -> dict[str, Any]:
    return {
        "type": "supplier.delay",
        "data": {"supplier_id": supplier_id, "po_id": po_id, "line_no": line_no, "new_date": "2026-12-21", **data},
        "occurred_at": "2026-11-23T08:30:00Z",
    }


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def signed(body: bytes, secret: str = SECRET, webhook_id: str | None = None, timestamp: int | None = None) -> dict[str, str]:
    return {**sign_headers(secret, body, webhook_id=webhook_id, timestamp=timestamp), "content-type": "application/json"}


def _seed(warehouse: Warehouse) -> None:
    """One known SKU, DC, supplier, customer, PO line and order line, as the staged tables hold them."""
    meta = {"source_system": "test", "loaded_at": datetime(2026, 11, 23, tzinfo=UTC)}
    rows = {
        "product": {"sku": "SKU-000001", "description": "x", "category": "c", "unit": "ea", "unit_cost": 1.0,
                    "unit_price": 2.0, "active": True},
        "location": {"location_id": "DC-01", "name": "DC 1", "region": "north", "type": "dc"},
        "supplier": {"supplier_id": "SUP-001", "name": "Acme"},
        "customer": {"customer_id": "CUST-0001", "name": "Northwind", "tier": "gold", "region": "north"},
        "purchase_order_line": {"po_id": "PO-7000001", "line_no": 1, "supplier_id": "SUP-001", "sku": "SKU-000001",
                                "location_id": "DC-01", "qty_open": 10.0, "order_date": date(2026, 11, 5),
                                "expected_date": date(2026, 11, 30), "status": "sent"},
        "customer_order_line": {"order_id": "SO-4000001", "line_no": 1, "customer_id": "CUST-0001", "sku": "SKU-000001",
                                "location_id": "DC-01", "qty_open": 5.0, "promise_date": date(2026, 12, 7),
                                "priority": 2, "status": "open"},
    }
    for name, row in rows.items():
        warehouse.append_rows(name, pd.DataFrame([{**row, **meta}]))


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    wh = Warehouse(home=str(tmp_path))
    wh.migrate()
    _seed(wh)
    return wh


def _inbox(warehouse: Warehouse) -> pd.DataFrame:
    return warehouse.read("inbox_events")


@pytest.fixture
def gateway(warehouse: Warehouse) -> Iterator[Callable[..., httpx.Client]]:
    """`gateway(**create_app options)` -> an httpx client talking to a fresh gateway over loopback."""
    with ExitStack() as stack:

        def start(**options: Any) -> httpx.Client:
            options.setdefault("secrets", {SOURCE: [SECRET]})
            url = stack.enter_context(serving(create_app(warehouse, **options)))
            return stack.enter_context(httpx.Client(base_url=url, timeout=10))

        yield start


def post(client: httpx.Client, body: bytes, headers: dict[str, str], source: str = SOURCE) -> httpx.Response:
    return client.post(f"/webhooks/{source}", content=body, headers=headers)


def test_signed_event_is_stored_resolved_and_audited(gateway, warehouse) -> None:
    client = gateway()
    body = encode(delay())
    response = post(client, body, signed(body, webhook_id="wh-1"))
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "accepted", "inbox_id": 1, "quality_flags": []}
    row = _inbox(warehouse).iloc[0]
    assert (row.webhook_id, row.source, row.event_type) == ("wh-1", SOURCE, "supplier.delay")
    # SKU and DC come from the staged PO line; the payload is the body exactly as signed.
    assert (row.sku, row.location_id, row.po_id, row.po_line_no) == ("SKU-000001", "DC-01", "PO-7000001", 1)
    assert row.payload == body.decode() and row.quality_flags is None
    entry = warehouse.read("audit_log").iloc[0]
    assert (entry.actor, entry.event_type, entry.subject) == (f"gateway:{SOURCE}", "event_received", "wh-1")
    assert json.loads(entry.payload) == {"source": SOURCE, "event_type": "supplier.delay",
                                         "payload_sha256": row.payload_sha256, "quality_flags": []}
    assert verify_chain(warehouse.engine).ok


def test_order_events_fill_sku_and_location(gateway, warehouse) -> None:
    client = gateway()
    change = {"type": "order.change", "occurred_at": "2026-11-23T09:00:00+01:00",
              "data": {"order_id": "SO-4000001", "line_no": 1, "changes": {"qty_open": 40}}}
    new = {"type": "order.new", "occurred_at": "2026-11-23T09:00:00Z",
           "data": {"order_id": "SO-4900001", "line_no": 1, "customer_id": "CUST-0001", "sku": "SKU-000001",
                    "location_id": "DC-01", "qty_open": 3, "promise_date": "2026-12-01"}}
    for event in (change, new):
        body = encode(event)
        response = post(client, body, signed(body))
        assert response.status_code == 202 and response.json()["quality_flags"] == [], response.text
    rows = _inbox(warehouse)
    assert rows[["order_id", "order_line_no", "sku", "location_id"]].values.tolist() == [
        ["SO-4000001", 1, "SKU-000001", "DC-01"], ["SO-4900001", 1, "SKU-000001", "DC-01"]]


def test_unknown_references_are_stored_and_flagged(gateway, warehouse) -> None:
    client = gateway()
    events = [
        delay(po_id="PO-9", line_no=1, supplier_id="SUP-404"),
        {"type": "order.new", "occurred_at": "2026-11-23T09:00:00Z",
         "data": {"order_id": "SO-1", "line_no": 1, "customer_id": "CUST-X", "sku": "X", "location_id": "DC-99",
                  "qty_open": 1, "promise_date": "2026-12-01"}},
        {"type": "order.cancel", "occurred_at": "2026-11-23T09:00:00Z", "data": {"order_id": "SO-2", "line_no": 7}},
    ]
    expected = [
        ["unknown_supplier:SUP-404", "unknown_po:PO-9/1"],
        ["unknown_sku:X", "unknown_location:DC-99", "unknown_customer:CUST-X"],
        ["unknown_order:SO-2/7"],
    ]
    for event, flags in zip(events, expected, strict=True):
        body = encode(event)
        response = post(client, body, signed(body))
        assert response.status_code == 202 and response.json()["quality_flags"] == flags
    assert _inbox(warehouse).quality_flags.tolist() == ["; ".join(f) for f in expected]


def _assert_nothing_stored(warehouse: Warehouse) -> None:
    assert warehouse.count("inbox_events") == 0 and warehouse.count("audit_log") == 0


def test_forged_or_tampered_signature_is_401(gateway, warehouse) -> None:
    client = gateway()
    body = encode(delay())
    forged = post(client, body, signed(body, secret=RETIRED_SECRET))
    assert forged.status_code == 401 and forged.json()["error"] == "no_matching_signature"
    headers = signed(body)
    tampered = post(client, body.replace(b"2026-12-21", b"2026-12-22"), headers)
    assert tampered.status_code == 401 and tampered.json()["error"] == "no_matching_signature"
    _assert_nothing_stored(warehouse)


@pytest.mark.parametrize(("offset", "code", "words"), [
    (-301, "stale_timestamp", "301 s in the past"),
    (-3600, "stale_timestamp", "3600 s in the past"),
    (301, "future_timestamp", "301 s in the future"),
    (86400, "future_timestamp", "86400 s in the future"),
])
def test_timestamp_outside_five_minutes_is_401_with_the_skew(gateway, warehouse, offset, code, words) -> None:
    frozen = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    client = gateway(now=lambda: frozen)
    body = encode(delay())
    response = post(client, body, signed(body, timestamp=int(frozen.timestamp()) + offset))
    assert response.status_code == 401
    assert response.json()["error"] == code and words in response.json()["reason"]
    _assert_nothing_stored(warehouse)
    # Just inside the window both ways is fine.
    for inside in (-299, 299):
        body = encode(delay(line_no=1))
        ok = post(client, body, signed(body, timestamp=int(frozen.timestamp()) + inside))
        assert ok.status_code == 202, ok.text


@pytest.mark.parametrize(("headers", "code"), [
    ({"webhook-signature": "garbage"}, "malformed_signature"),
    ({"webhook-signature": "v1,%%%not-base64%%%"}, "malformed_signature"),
    ({"webhook-signature": "v1a,abc v2,def"}, "malformed_signature"),
    ({"webhook-signature": "v1,"}, "no_matching_signature"),
    ({"webhook-timestamp": "1.7e9"}, "invalid_timestamp"),
    ({"webhook-timestamp": "nan"}, "invalid_timestamp"),
    ({"webhook-id": "x" * 256}, "invalid_webhook_id"),
    ({"webhook-id": None}, "missing_headers"),
    ({"webhook-signature": None, "webhook-timestamp": None}, "missing_headers"),
])
def test_bad_headers_are_401_never_500(gateway, warehouse, headers, code) -> None:
    client = gateway()
    body = encode(delay())
    sent = {k: v for k, v in {**signed(body), **headers}.items() if v is not None}
    response = post(client, body, sent)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == code
    _assert_nothing_stored(warehouse)


def test_redelivery_ten_times_is_stored_once_and_answered_2xx_each_time(gateway, warehouse) -> None:
    client = gateway()
    body = encode(delay())
    answers = [post(client, body, signed(body, webhook_id="wh-replayed")) for _ in range(10)]
    assert [a.status_code for a in answers] == [202] + [200] * 9
    assert all(a.json()["inbox_id"] == 1 for a in answers)
    assert [a.json()["status"] for a in answers[1:]] == ["duplicate"] * 9
    assert warehouse.count("inbox_events") == 1 and warehouse.count("audit_log") == 1


def test_concurrent_redeliveries_are_stored_once(gateway, warehouse) -> None:
    url = str(gateway().base_url)
    body = encode(delay())

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            answers = await asyncio.gather(*[
                client.post(f"/webhooks/{SOURCE}", content=body, headers=signed(body, webhook_id="wh-race"))
                for _ in range(10)
            ])
        return sorted(a.status_code for a in answers)

    assert asyncio.run(burst()) == [200] * 9 + [202]
    assert warehouse.count("inbox_events") == 1 and warehouse.count("audit_log") == 1


@pytest.mark.parametrize("body", [b"{not json", b'{"type": "supplier.delay", "data": NaN}', b""])
def test_malformed_json_is_400(gateway, warehouse, body) -> None:
    response = post(gateway(), body, signed(body))
    assert response.status_code == 400 and response.json()["error"] == "malformed_json"
    _assert_nothing_stored(warehouse)


@pytest.mark.parametrize(("event", "field", "value"), [
    (delay(line_no=0), "data.line_no", 0),
    (delay(line_no="1"), "data.line_no", "1"),
    (delay(new_qty=5), "data.new_qty", 5),
    ({**delay(), "occurred_at": "2026-11-23T08:30:00"}, "occurred_at", "2026-11-23T08:30:00"),
    ({**delay(), "type": "supplier.teleport"}, "type", "supplier.teleport"),
    ({"type": "supplier.shortfall", "occurred_at": "2026-11-23T08:30:00Z",
      "data": {"supplier_id": "SUP-001", "po_id": "PO-7000001", "line_no": 1, "new_qty": -2}}, "data.new_qty", -2),
    ({"type": "order.change", "occurred_at": "2026-11-23T08:30:00Z",
      "data": {"order_id": "SO-1", "line_no": 1, "changes": {}}}, "data.changes", {}),
    ({"type": "order.change", "occurred_at": "2026-11-23T08:30:00Z",
      "data": {"order_id": "SO-1", "line_no": 1, "changes": {"qty_open": None}}}, "data.changes.qty_open", None),
    ([delay()], "(body)", "list"),
])
def test_schema_violation_is_422_naming_field_and_value(gateway, warehouse, event, field, value) -> None:
    body = encode(event)
    response = post(gateway(), body, signed(body))
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert {"field": field, "value": value} in [{"field": e["field"], "value": e.get("value")} for e in errors]
    assert field in response.json()["reason"]
    _assert_nothing_stored(warehouse)


def test_missing_required_field_is_422_naming_it(gateway) -> None:
    event = delay()
    del event["data"]["new_date"]
    body = encode(event)
    response = post(gateway(), body, signed(body))
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "data.new_date", "message": "Field required"}]


def test_oversized_body_is_413_declared_or_streamed(gateway, warehouse) -> None:
    client = gateway(max_body_bytes=1024)
    body = encode(delay(po_id="PO-" + "9" * 2000))
    declared = post(client, body, signed(body))
    assert declared.status_code == 413 and declared.json()["error"] == "body_too_large"
    # Chunked transfer (no Content-Length) is cut off at the limit too.
    chunked = client.post(f"/webhooks/{SOURCE}", content=iter([body[:800], body[800:]]), headers=signed(body))
    assert "content-length" not in chunked.request.headers
    assert chunked.status_code == 413
    _assert_nothing_stored(warehouse)
    small = encode(delay())
    assert post(client, small, signed(small)).status_code == 202


def test_rate_limit_is_429_with_retry_after_per_source(gateway, warehouse) -> None:
    client = gateway(secrets={SOURCE: [SECRET], "order-feed": [SECRET]}, rate_per_second=0.5, burst=2)
    answers = []
    for i in range(3):
        body = encode(delay(line_no=i + 1))
        answers.append(post(client, body, signed(body)))
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert answers[2].json()["error"] == "rate_limited" and int(answers[2].headers["retry-after"]) >= 1
    # Another source has its own bucket.
    body = encode(delay())
    assert post(client, body, signed(body), source="order-feed").status_code == 202
    assert warehouse.count("inbox_events") == 3


@pytest.mark.parametrize("source", ["unknown-portal", "Supplier-Portal", "..", "a" * 70])
def test_unknown_source_is_404(gateway, warehouse, source) -> None:
    body = encode(delay())
    response = post(gateway(), body, signed(body), source=source)
    assert response.status_code == 404
    if source != "..":  # ".." is normalised away by the client: no route at all
        assert response.json()["error"] == "unknown_source"
    _assert_nothing_stored(warehouse)


def test_secret_rotation_old_and_new_both_verify(gateway, warehouse) -> None:
    client = gateway(secrets={SOURCE: [OLD_SECRET, SECRET]})
    for i, secret in enumerate((OLD_SECRET, SECRET)):
        body = encode(delay(line_no=i + 1))
        assert post(client, body, signed(body, secret=secret)).status_code == 202
    # A sender mid-rotation may send both signatures; one valid one is enough.
    body = encode(delay(line_no=3))
    retired = signed(body, secret=RETIRED_SECRET, webhook_id="wh-both", timestamp=int(time.time()))
    current = signed(body, secret=SECRET, webhook_id="wh-both", timestamp=int(retired["webhook-timestamp"]))
    both = {**current, "webhook-signature": f"{retired['webhook-signature']} {current['webhook-signature']}"}
    assert post(client, body, both).status_code == 202
    assert post(client, body, signed(body, secret=RETIRED_SECRET)).status_code == 401
    assert warehouse.count("inbox_events") == 3


def test_secrets_come_from_the_environment(warehouse, monkeypatch) -> None:
    monkeypatch.setenv("DEMAND_CONTROL_WEBHOOK_SECRETS_SUPPLIER_PORTAL", f"{OLD_SECRET} {SECRET}")
    with serving(create_app(warehouse)) as url, httpx.Client(base_url=url) as client:
        body = encode(delay())
        assert post(client, body, signed(body, secret=OLD_SECRET)).status_code == 202
        assert post(client, body, signed(body), source="order-feed").status_code == 404
    monkeypatch.setenv("DEMAND_CONTROL_WEBHOOK_SECRETS_ORDER_FEED", "whsec_")
    with pytest.raises(ValueError, match="DEMAND_CONTROL_WEBHOOK_SECRETS_ORDER_FEED"):
        create_app(warehouse)


def _vector_headers(signature: str = VECTOR_SIGNATURE) -> dict[str, str]:
    return {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TIMESTAMP), "webhook-signature": signature}


def _at_vector_time() -> datetime:
    return datetime.fromtimestamp(VECTOR_TIMESTAMP, UTC)


def test_published_standard_webhooks_vector() -> None:
    assert sign_headers(VECTOR_SECRET, VECTOR_BODY.encode(), VECTOR_ID, VECTOR_TIMESTAMP)["webhook-signature"] == VECTOR_SIGNATURE
    for secret in (VECTOR_SECRET, VECTOR_SECRET.removeprefix("whsec_")):
        verified = SourceVerifier([secret]).verify(VECTOR_BODY.encode(), _vector_headers(), _at_vector_time)
        assert verified.webhook_id == VECTOR_ID and verified.sent_at == _at_vector_time()
    verifier = SourceVerifier([VECTOR_SECRET])
    with pytest.raises(VerificationFailure, match="no v1 signature matches"):
        verifier.verify(VECTOR_BODY.encode(), _vector_headers(VECTOR_WRONG), _at_vector_time)
    # The library's multi-signature case: unknown versions and wrong v1 values beside the right one.
    multi = f"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {VECTOR_SIGNATURE}"
    verifier.verify(VECTOR_BODY.encode(), _vector_headers(multi), _at_vector_time)
    # At the real time the vector is years old.
    with pytest.raises(VerificationFailure) as stale:
        verifier.verify(VECTOR_BODY.encode(), _vector_headers())
    assert stale.value.code == "stale_timestamp"


def test_published_vector_passes_verification_over_http(warehouse) -> None:
    app = create_app(warehouse, secrets={SOURCE: [VECTOR_SECRET]}, now=_at_vector_time)
    with serving(app) as url, httpx.Client(base_url=url) as client:
        response = client.post(f"/webhooks/{SOURCE}", content=VECTOR_BODY, headers=_vector_headers())
        wrong = client.post(f"/webhooks/{SOURCE}", content=VECTOR_BODY, headers=_vector_headers(VECTOR_WRONG))
    # Authentic, so it reaches the schema check (the vector's body is not one of our events).
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "type"
    assert wrong.status_code == 401


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(part=st.sampled_from(["body", "webhook-id", "webhook-timestamp"]), data=st.data())
def test_any_single_byte_change_fails_verification(part: str, data: st.DataObject) -> None:
    verifier = SourceVerifier([VECTOR_SECRET])
    body, headers = VECTOR_BODY.encode(), _vector_headers()
    original = body if part == "body" else headers[part].encode("latin-1")
    position = data.draw(st.integers(0, len(original) - 1), label="position")
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != original[position]), label="byte")
    changed = original[:position] + bytes([byte]) + original[position + 1:]
    if part == "body":
        body = changed
    else:
        headers[part] = changed.decode("latin-1")  # how an HTTP server hands a header's bytes over
    with pytest.raises(VerificationFailure):
        verifier.verify(body, headers, _at_vector_time)


def test_healthz_reports_the_database(gateway) -> None:
    client = gateway()
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_healthz_is_503_when_the_database_does_not_answer(warehouse) -> None:
    app = create_app(warehouse, secrets={SOURCE: [SECRET]})
    with serving(app) as url, httpx.Client(base_url=url, timeout=15) as client:
        assert client.get("/healthz").status_code == 200
        app.state.writer.engine = create_engine("postgresql+psycopg2://nobody@127.0.0.1:1/none",
                                                connect_args={"connect_timeout": 2})
        down = client.get("/healthz")
        assert down.status_code == 503 and down.json()["status"] == "unavailable"
        # A sender is told to retry (503), not that its event was bad, and nothing half-stored remains.
        body = encode(delay())
        response = post(client, body, signed(body))
        assert response.status_code == 503 and "retry-after" in response.headers
    assert warehouse.count("inbox_events") == 0


def test_events_send_posts_the_samples(gateway, warehouse, monkeypatch) -> None:
    from demand_control.cli.main import app as cli

    url = str(gateway().base_url)
    monkeypatch.setenv("DEMAND_CONTROL_WEBHOOK_SECRETS_SUPPLIER_PORTAL", SECRET)
    samples = Path(__file__).parents[2] / "demand_control" / "gateway" / "samples"
    for name in ("supplier_delay.json", "supplier_events.json", "order_change.json", "order_events.json"):
        result = CliRunner().invoke(cli, ["events", "send", str(samples / name), "--source", SOURCE, "--url", url])
        assert result.exit_code == 0, result.output
        assert " 202 " in result.output
    again = CliRunner().invoke(cli, ["events", "send", str(samples / "supplier_delay.json"), "--source", SOURCE, "--url", url])
    assert again.exit_code == 0 and '"status":"duplicate"' in again.output
    assert warehouse.count("inbox_events") == 9
    # The sample delay names the seeded PO line, so it resolves without flags.
    first = _inbox(warehouse).iloc[0]
    assert (first.webhook_id, first.sku, first.quality_flags) == ("msg_sample_supplier_delay_po7000001_1", "SKU-000001", None)


# --- kill -9 of a real gateway process during a burst ---------------------------------------------------------

BURST = 300
KILL_AFTER_ACKS = 80


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gateway_process(env: dict[str, str], log: Path, *options: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """`demand-control gateway [options]` as its own process on a free port; stopped (if still alive) on exit:
    SIGTERM first, so a multi-worker supervisor takes its workers down, then SIGKILL."""
    port = _free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "demand_control.cli.main", "gateway", "--port", str(port), "--no-access-log",
             "--log-level", "warning", *options],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"gateway exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "gateway did not become healthy"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait(10)


async def _send_all(url: str, bodies: dict[str, bytes], on_ack: Callable[[int], None] | None = None,
                    concurrency: int = 32) -> dict[str, int]:
    """Post every body once (fresh signature and timestamp); status per id, 0 when no answer came."""
    statuses: dict[str, int] = {}
    queue = list(bodies.items())

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            webhook_id, body = queue.pop()
            try:
                response = await client.post(f"/webhooks/{SOURCE}", content=body, headers=signed(body, webhook_id=webhook_id))
                statuses[webhook_id] = response.status_code
            except httpx.TransportError:
                statuses[webhook_id] = 0
            if on_ack is not None and 200 <= statuses[webhook_id] < 300:
                on_ack(sum(200 <= s < 300 for s in statuses.values()))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        await asyncio.gather(*[worker(client) for _ in range(concurrency)])
    return statuses


@pytest.fixture(scope="module")
def child_pycache(request: pytest.FixtureRequest) -> dict[str, str]:
    """Let the gateway process cache compiled bytecode outside the venv (in pytest's cache folder): where
    PYTHONDONTWRITEBYTECODE is set, each cold start would otherwise compile Dagster from source (~5 s)."""
    return {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(request.config.cache.mkdir("gateway-pycache"))}


def _kill_during_burst_then_resend(tmp_path: Path, env: dict[str, str], warehouse: Warehouse) -> None:
    env = {**os.environ, **env, "DEMAND_CONTROL_WEBHOOK_SECRETS_SUPPLIER_PORTAL": SECRET}
    bodies = {f"burst-{i:04d}": encode(delay(line_no=i + 1)) for i in range(BURST)}
    log = tmp_path / "gateway.log"

    with gateway_process(env, log) as (proc, url):
        def kill_once(acks: int) -> None:
            if acks >= KILL_AFTER_ACKS and proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)

        first = asyncio.run(_send_all(url, bodies, on_ack=kill_once))
        assert proc.wait(10) == -signal.SIGKILL

    acknowledged = {i for i, s in first.items() if 200 <= s < 300}
    unanswered = {i for i, s in first.items() if s == 0}
    assert len(acknowledged) >= KILL_AFTER_ACKS and unanswered, "the kill did not land mid-burst"
    assert not {s for s in first.values() if s >= 400}, "no event may be rejected in the burst"
    with warehouse.engine.connect() as conn:
        stored = set(conn.execute(select(inbox_events.c.webhook_id)).scalars())
        audited = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
    assert acknowledged <= stored, f"acknowledged but lost: {sorted(acknowledged - stored)[:5]}"
    assert audited == len(stored), "every stored event has exactly its audit row (one transaction)"
    assert verify_chain(warehouse.engine).ok

    # The sender retries everything against a restarted gateway (in-process here: a cold start of the CLI costs
    # seconds, and nothing survives in memory either way): one row per id, the stored ones answered 200.
    with serving(create_app(warehouse, secrets={SOURCE: [SECRET]})) as url:
        second = asyncio.run(_send_all(url, bodies))
    assert sorted(second.values()) == sorted([200] * len(stored) + [202] * (BURST - len(stored)))
    with warehouse.engine.connect() as conn:
        ids = list(conn.execute(select(inbox_events.c.webhook_id)).scalars())
    assert sorted(ids) == sorted(bodies) and warehouse.count("audit_log") == BURST
    assert verify_chain(warehouse.engine).ok


def test_kill_9_during_burst_loses_no_acknowledged_event_sqlite(tmp_path: Path, child_pycache) -> None:
    home = tmp_path / "home"
    warehouse = Warehouse(home=str(home))
    warehouse.migrate()
    _kill_during_burst_then_resend(
        tmp_path, {"DEMAND_CONTROL_HOME": str(home), "DEMAND_CONTROL_DATABASE_URL": "", **child_pycache}, warehouse)


@pytest.mark.postgres
def test_kill_9_during_burst_loses_no_acknowledged_event_postgres(tmp_path: Path, postgres_database,
                                                                  child_pycache) -> None:
    url = str(postgres_database["url"])
    warehouse = Warehouse(database_url=url)
    warehouse.migrate()
    _kill_during_burst_then_resend(
        tmp_path, {"DEMAND_CONTROL_DATABASE_URL": url, "DEMAND_CONTROL_HOME": str(tmp_path), **child_pycache}, warehouse)


# --- several uvicorn workers on one port ---------------------------------------------------------------------

WORKER_BURST = 150


async def _send_twice(url: str, bodies: dict[str, bytes], concurrency: int = 32) -> list[tuple[str, int, dict]]:
    """Post every body twice, the two deliveries of an id close together (so they can race in two workers):
    (id, status, answer) per delivery, status 0 when no answer came."""
    queue = [(webhook_id, body) for webhook_id, body in bodies.items() for _ in range(2)]
    queue.reverse()
    answers: list[tuple[str, int, dict]] = []

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            webhook_id, body = queue.pop()
            try:
                response = await client.post(f"/webhooks/{SOURCE}", content=body, headers=signed(body, webhook_id=webhook_id))
                answers.append((webhook_id, response.status_code, response.json()))
            except httpx.TransportError:
                answers.append((webhook_id, 0, {}))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        await asyncio.gather(*[worker(client) for _ in range(concurrency)])
    return answers


def _burst_against_two_workers(tmp_path: Path, env: dict[str, str], warehouse: Warehouse) -> None:
    import psutil

    env = {**os.environ, **env, "DEMAND_CONTROL_WEBHOOK_SECRETS_SUPPLIER_PORTAL": SECRET}
    bodies = {f"workers-{i:04d}": encode(delay(line_no=i + 1)) for i in range(WORKER_BURST)}
    with gateway_process(env, tmp_path / "gateway.log", "--workers", "2") as (proc, url):
        workers = [c for c in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(c.cmdline())]
        assert len(workers) == 2, "two uvicorn worker processes serve the port"
        answers = asyncio.run(_send_twice(url, bodies))
        assert proc.poll() is None

    assert len(answers) == 2 * WORKER_BURST
    assert {status for _, status, _ in answers} <= {200, 202}, "every delivery answered 2xx"
    with warehouse.engine.connect() as conn:
        stored = dict(conn.execute(select(inbox_events.c.webhook_id, inbox_events.c.inbox_id)).all())
        audited = list(conn.execute(select(audit_log.c.subject)).scalars())
    # Every id stored exactly once (the inbox key makes a second row impossible; the count shows none was
    # lost), accepted (202) exactly once and answered 200 "duplicate" the other time, both answers naming the
    # same inbox row; exactly one audit row per stored event, and the chain verifies.
    assert sorted(stored) == sorted(bodies)
    for webhook_id in bodies:
        mine = [(status, answer) for i, status, answer in answers if i == webhook_id]
        assert sorted(status for status, _ in mine) == [200, 202], (webhook_id, mine)
        assert {answer["inbox_id"] for _, answer in mine} == {stored[webhook_id]}
        assert [answer["status"] for status, answer in mine if status == 200] == ["duplicate"]
    assert sorted(audited) == sorted(bodies)
    report = verify_chain(warehouse.engine)
    assert report.ok and report.rows == WORKER_BURST, report.reason


def test_two_workers_store_a_burst_once_each_sqlite(tmp_path: Path, child_pycache) -> None:
    home = tmp_path / "home"
    warehouse = Warehouse(home=str(home))
    warehouse.migrate()
    _burst_against_two_workers(
        tmp_path, {"DEMAND_CONTROL_HOME": str(home), "DEMAND_CONTROL_DATABASE_URL": "", **child_pycache}, warehouse)


@pytest.mark.postgres
def test_two_workers_store_a_burst_once_each_postgres(tmp_path: Path, postgres_database, child_pycache) -> None:
    url = str(postgres_database["url"])
    warehouse = Warehouse(database_url=url)
    warehouse.migrate()
    _seed(warehouse)  # resolved lookups on the PostgreSQL path too
    _burst_against_two_workers(
        tmp_path, {"DEMAND_CONTROL_DATABASE_URL": url, "DEMAND_CONTROL_HOME": str(tmp_path), **child_pycache}, warehouse)


def test_app_from_env_takes_the_limits_from_the_environment(warehouse, monkeypatch) -> None:
    """What each worker builds with --workers: the configured warehouse, env secrets and env limits."""
    from demand_control.gateway.app import create_app_from_env

    monkeypatch.setenv("DEMAND_CONTROL_DATABASE_URL", "")
    monkeypatch.setenv("DEMAND_CONTROL_HOME", str(warehouse.state_home))
    monkeypatch.setenv("DEMAND_CONTROL_WEBHOOK_SECRETS_SUPPLIER_PORTAL", SECRET)
    monkeypatch.setenv("DEMAND_CONTROL_GATEWAY_MAX_BODY_BYTES", "300")
    monkeypatch.setenv("DEMAND_CONTROL_GATEWAY_BURST", "1")
    monkeypatch.setenv("DEMAND_CONTROL_GATEWAY_RATE", "0.01")
    with serving(create_app_from_env()) as url, httpx.Client(base_url=url, timeout=10) as client:
        big = encode(delay(note="x" * 400))
        assert post(client, big, signed(big)).status_code == 413
        body = encode(delay())
        assert post(client, body, signed(body, webhook_id="env-1")).status_code == 202
        limited = post(client, body, signed(body, webhook_id="env-2"))
        assert limited.status_code == 429 and limited.headers["retry-after"]
    assert list(_inbox(warehouse).webhook_id) == ["env-1"]


@pytest.mark.postgres
def test_a_failed_postgres_write_leaves_the_connection_usable(postgres_database) -> None:
    """The PostgreSQL path writes in one round trip on a raw connection; a statement that fails inside it is
    rolled back, stores nothing, surfaces as a SQLAlchemy error (answered 503), and the pooled connection
    serves the next event."""
    from sqlalchemy.exc import SQLAlchemyError

    from demand_control.gateway.inbox import InboxWriter
    from demand_control.gateway.schemas import parse_event

    warehouse = Warehouse(database_url=str(postgres_database["url"]))
    warehouse.migrate()
    writer = InboxWriter(warehouse)
    body = encode(delay())
    event, now = parse_event(body.decode()), clock.now()
    with pytest.raises(SQLAlchemyError):
        writer.store("s" * 100, "too-long-source", now, event, body.decode(), "0" * 64, now)  # source is varchar(64)
    first = writer.store(SOURCE, "after-failure", now, event, body.decode(), "0" * 64, now)
    again = writer.store(SOURCE, "after-failure", now, event, body.decode(), "0" * 64, now)
    assert not first.duplicate and again.duplicate and again.inbox_id == first.inbox_id
    assert first.quality_flags == ["unknown_supplier:SUP-001", "unknown_po:PO-7000001/1"]
    assert list(_inbox(warehouse).webhook_id) == ["after-failure"] and warehouse.count("audit_log") == 1
    assert verify_chain(warehouse.engine).ok


def test_the_gateway_serves_slack_interactivity_with_the_signing_secret_it_is_given(warehouse: Warehouse, monkeypatch) -> None:  # noqa: ANN001
    from starlette.testclient import TestClient

    from demand_control.gateway.app import create_app
    from demand_control.sample.seed_scenario import slack_click

    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    body, headers = slack_click("given-secret", "A-0123456789abcdef", "ana.planner", None, None)
    with_secret = TestClient(create_app(warehouse, secrets={"acme": [SECRET]}, slack_signing_secret="given-secret"))
    assert with_secret.post("/slack/interactions", content=body, headers=headers).status_code == 200
    without = TestClient(create_app(warehouse, secrets={"acme": [SECRET]}))
    assert without.post("/slack/interactions", content=body, headers=headers).status_code == 401
