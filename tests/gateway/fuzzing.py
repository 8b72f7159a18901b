"""What an attacker or a careless sender can send the gateway, as hypothesis strategies, and a driver that hands
each request to the real ASGI app byte for byte (no HTTP client in between to tidy up headers or bodies).

Shared by the bounded property test (tests/gateway/test_fuzz.py, in `make test`) and the longer run
(benchmarks/fuzz_gateway.py, in `make bench`). A request is either aimed at the webhook route or at the Slack
route, and either signed with the configured secret (so it gets past authentication and reaches the schema and
the warehouse) or not. Event bodies are built from every event schema's own fields (`EVENT_MODELS`), each value
valid, at an edge, or of another kind altogether, and the JSON text itself is mutated (huge numbers, deep
nesting, escapes of NUL and lone surrogates, invalid UTF-8).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from hypothesis import strategies as st

from demand_control.gateway.schemas import EVENT_MODELS

WEBHOOK_SECRET = "whsec_c2VjcmV0LWZvci10aGUtZ2F0ZXdheS10ZXN0cw=="
WEBHOOK_KEY = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
SLACK_SECRET = "fuzz-slack-signing-secret"
SOURCE = "supplier-portal"
SIGNED_AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # the gateway's signature clock in the fuzz app (`now=`)
TODAY = SIGNED_AT.date()

# Answers the gateway may give a request whatever it holds: a 5xx is a bug unless the warehouse is down.
# (307: Starlette redirects a path with a trailing slash, "/webhooks/x/", to the route without it.)
ALLOWED = {200, 202, 307, 400, 401, 404, 405, 409, 413, 422, 429}


@dataclass
class Request:
    path: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    chunks: int = 1  # the body arrives in this many ASGI messages
    description: str = ""
    fresh_id: bool = False  # the driver gives it an id never sent before (re-signed if it was signed)


@dataclass
class Answer:
    status: int
    body: bytes = b""
    background_errors: list[str] = field(default_factory=list)

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


async def call(app: Any, request: Request) -> Answer:
    """One POST through the ASGI app, as uvicorn would hand it over."""
    size = max(1, -(-len(request.body) // max(1, request.chunks)))
    parts = [request.body[i:i + size] for i in range(0, len(request.body), size)] or [b""]
    messages = [{"type": "http.request", "body": part, "more_body": i < len(parts) - 1} for i, part in enumerate(parts)]
    answer = Answer(0)

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": request.path, "raw_path": request.path.encode("utf-8", "surrogateescape"), "query_string": b"",
        "root_path": "", "headers": request.headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8090),
    }
    try:
        await app(scope, receive, send)
    except Exception as exc:  # noqa: BLE001 - an exception out of the app is what uvicorn answers 500
        if answer.status == 0:
            answer.status = 500
        else:  # raised after the response went out (a background task): not an answer, but reported
            answer.background_errors.append(f"{type(exc).__name__}: {exc}")
    return answer


def webhook_signature(webhook_id: bytes, timestamp: bytes, body: bytes, key: bytes = WEBHOOK_KEY) -> bytes:
    """Standard Webhooks v1 over the raw bytes (written out here, independent of the code under test)."""
    mac = hmac.new(key, webhook_id + b"." + timestamp + b"." + body, hashlib.sha256).digest()
    return b"v1," + base64.b64encode(mac)


def slack_signature(timestamp: bytes, body: bytes, secret: str = SLACK_SECRET) -> bytes:
    return b"v0=" + hmac.new(secret.encode(), b"v0:" + timestamp + b":" + body, hashlib.sha256).hexdigest().encode()


# --- values -----------------------------------------------------------------------------------------------


@st.composite
def _mostly(draw: st.DrawFn, usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any], one_in: int = 5) -> Any:
    """`usual` most of the time, `odd` one time in `one_in`: enough plausible requests reach the warehouse."""
    return draw(odd) if _rarely(draw, one_in) else draw(usual)


def _rarely(draw: st.DrawFn, one_in: int) -> bool:
    """True one time in about `one_in`. The rare case is the largest draw, not the smallest: hypothesis
    starts from (and shrinks towards) the smallest, which should be the ordinary request."""
    return draw(st.integers(0, one_in - 1)) == one_in - 1


_EDGE_INTS = [0, -1, 1, 2**31 - 1, 2**31, -(2**31) - 1, 2**53 + 1, 2**63, 2**64, 10**30, -(10**30)]
# Every code point, surrogates and NUL included (json.dumps escapes what cannot be written raw).
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
_OFFSETS = st.sampled_from(["Z", "+00:00", "+01:00", "-23:59", "+23:59", "", "+99:00"])

# Each kind of field: (a usual value, an odd one). Odd ids hold control characters, lone surrogates, or are
# too long; odd numbers are at or past the storage's edges; odd dates run from year 1 to 9999.
_USUAL_IDS = st.one_of(st.sampled_from(["SUP-001", "PO-7000001", "SO-4000001", "CUST-0001", "SKU-000001", "DC-01"]),
                       st.from_regex(r"[A-Z]{2,4}-[0-9]{1,8}", fullmatch=True), st.text(min_size=1, max_size=20))
_ODD_IDS = st.one_of(
    any_text,
    st.builds(lambda a, c, b: a + c + b, st.text(max_size=5), st.sampled_from(["\x00", "\n", "\x7f", "\ud800", "\udfff"]),
              st.text(max_size=5)),
    st.integers(120, 140).map(lambda n: "x" * n),
)
_USUAL_INTS = st.integers(1, 10**6)
_ODD_INTS = st.one_of(st.integers(-5, 5), st.sampled_from(_EDGE_INTS), st.integers())
_USUAL_DATES = st.integers(-300, 600).map(lambda d: (TODAY + timedelta(days=d)).isoformat())
_ODD_DATES = st.one_of(
    st.integers(-4000, 4000).map(lambda d: (TODAY + timedelta(days=d)).isoformat()),
    st.dates().map(date.isoformat),  # year 1 to 9999
    st.sampled_from(["0001-01-01", "9999-12-31", "2026-02-30", "2026-13-01", "20261123", "2026-11-23T00:00:00Z", ""]),
)
_USUAL_INSTANTS = st.integers(-30 * 86400, 30 * 86400).map(lambda s: (SIGNED_AT + timedelta(seconds=s)).isoformat())
_ODD_INSTANTS = st.one_of(
    st.builds(lambda s, o: (SIGNED_AT + timedelta(seconds=s)).replace(tzinfo=None).isoformat() + o,
              st.integers(-10 * 366 * 86400, 10 * 366 * 86400), _OFFSETS),
    st.builds(lambda d, o: d.isoformat() + o, st.datetimes(), _OFFSETS),  # year 1 to 9999
    st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-23:59", "not a time", "2026-11-23"]),
)
_USUAL_QUANTITIES = st.floats(0, 1e6)
_ODD_QUANTITIES = st.one_of(st.floats(allow_nan=False, allow_infinity=False), _ODD_INTS)

ids = _mostly(_USUAL_IDS, _ODD_IDS, one_in=12)  # for Slack's ids
json_scalars = st.one_of(st.none(), st.booleans(), _ODD_INTS, st.floats(allow_nan=False, allow_infinity=False), any_text)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=8)

_ID, _INT, _DATE, _QTY = ((_USUAL_IDS, _ODD_IDS), (_USUAL_INTS, _ODD_INTS), (_USUAL_DATES, _ODD_DATES),
                          (_USUAL_QUANTITIES, _ODD_QUANTITIES))
_KINDS: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "supplier_id": _ID, "po_id": _ID, "order_id": _ID, "customer_id": _ID, "sku": _ID, "location_id": _ID,
    "line_no": _INT, "new_date": _DATE, "promise_date": _DATE, "new_qty": _QTY, "qty_open": _QTY,
    "occurred_at": (_USUAL_INSTANTS, _ODD_INSTANTS),
    # A supplier's free-text note: any text, odd ones with control characters or around the 2,000-character limit.
    "note": (st.text(max_size=200), st.one_of(any_text, st.integers(1990, 2010).map(lambda n: "x" * n))),
}


def _model_fields(model: Any) -> dict[str, Any]:
    """A schema's fields and, for nested models, their own (from the pydantic models themselves, so a field
    added to an event schema is fuzzed too, or fails here until it has a kind)."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            fields[name] = _model_fields(annotation)
        else:
            fields[name] = None
    return fields


EVENT_FIELDS = {event_type: _model_fields(model)["data"] for event_type, model in EVENT_MODELS.items()}


@st.composite
def _object_for(draw: st.DrawFn, fields: dict[str, Any], wild: bool, optional: bool = False) -> dict[str, Any]:
    """A dict with the schema's fields, each a usual value of its kind. `wild`: any field may be odd, of
    another kind, or missing, and an unknown field may appear."""
    out: dict[str, Any] = {}
    for name, nested in fields.items():
        if optional and draw(st.booleans()) or wild and _rarely(draw, 30):
            continue  # missing
        if wild and _rarely(draw, 30):
            out[name] = draw(json_values)
        elif nested is not None:
            out[name] = draw(_object_for(nested, wild, optional=True))
        else:
            usual, odd = _KINDS[name]
            out[name] = draw(odd) if wild and _rarely(draw, 8) else draw(usual)
    if wild and _rarely(draw, 30):
        out[draw(st.text(min_size=1, max_size=8))] = draw(json_values)
    return out


def _leaves(value: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    return [path for key, child in value.items()
            for path in (_leaves(child, (*prefix, key)) if isinstance(child, dict) and child else [(*prefix, key)])]


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """An event of any type: valid; valid but for one field (odd for its kind, or of another kind); or wild
    (any field odd, missing or unknown, now and then the type or the whole data wrong)."""
    event_type = draw(st.sampled_from(sorted(EVENT_FIELDS)))
    mode = draw(st.sampled_from(["valid", "one_odd_field", "one_odd_field", "wild"]))
    wild = mode == "wild"
    event: dict[str, Any] = {
        "type": event_type,
        "occurred_at": draw(_KINDS["occurred_at"][1]) if wild and _rarely(draw, 8) else draw(_USUAL_INSTANTS),
        "data": draw(_object_for(EVENT_FIELDS[event_type], wild)),
    }
    if mode == "one_odd_field":
        path = draw(st.sampled_from(sorted(_leaves(event))))
        parent = event
        for key in path[:-1]:
            parent = parent[key]
        kind = _KINDS.get(path[-1])
        parent[path[-1]] = draw(kind[1]) if kind is not None and not _rarely(draw, 4) else draw(json_values)
    elif wild:
        for name in ("type", "data"):
            if _rarely(draw, 40):
                event[name] = draw(json_values)
        if _rarely(draw, 40):
            del event[draw(st.sampled_from(sorted(event)))]
    return event


_MUTATIONS = [
    lambda text, n: text.replace("1", "1" + "0" * n, 1),  # a number far beyond any column (and floats' range)
    lambda text, n: text.replace('"', '"\\u0000', 1),  # a NUL escape at the start of the first string
    lambda text, n: text.replace('"', '"\\ud800', 1),  # a lone surrogate escape
    lambda text, n: text.replace('"', '"\\udc00x', 1),
    lambda text, n: "[" * (n * 40) + text + "]" * (n * 40),  # deeply nested
    lambda text, n: text[:-1] + ',"deep":' + "[" * (n * 40) + "]" * (n * 40) + "}" if text.endswith("}") else text,
    lambda text, n: text.replace("0", "1e999", 1),  # infinity in a float field
    lambda text, n: text.replace("null", "NaN", 1),
    lambda text, n: text[: max(0, len(text) - n)],  # truncated
]


@st.composite
def event_bodies(draw: st.DrawFn) -> bytes:
    event = draw(events())
    text = json.dumps(event, ensure_ascii=draw(st.booleans()))
    if _rarely(draw, 7):
        mutate = draw(st.sampled_from(_MUTATIONS))
        text = mutate(text, draw(st.integers(1, 500)))
    raw = text.encode("utf-8", "surrogatepass")  # a lone surrogate written raw is invalid UTF-8: so be it
    if _rarely(draw, 50):
        raw = draw(st.binary(max_size=200))
    return raw


def _latin1(text: str) -> bytes:
    """How a header's bytes reach the app (HTTP headers are bytes; Starlette decodes them as latin-1)."""
    return text.encode("latin-1", "replace")


header_text = st.text(st.characters(max_codepoint=255, exclude_categories=()), max_size=60)


@st.composite
def webhook_requests(draw: st.DrawFn) -> Request:
    body = draw(event_bodies())
    # Mostly a fresh id (the driver's), sometimes a short one that repeats: redeliveries and conflicts.
    fresh_id = not _rarely(draw, 10)
    webhook_id = draw(_mostly(st.from_regex(r"msg_[a-z0-9]{1,3}", fullmatch=True),
                              st.one_of(header_text, st.integers(250, 300).map(lambda n: "i" * n)), one_in=8))
    timestamp = str(int(SIGNED_AT.timestamp()) + draw(st.integers(-400, 400)))
    if _rarely(draw, 10):
        timestamp = draw(st.one_of(st.integers(-(10**15), 10**15).map(str), st.just("253402300800"),
                                   st.just("999999999999"), header_text))
    headers = {b"webhook-id": _latin1(webhook_id), b"webhook-timestamp": _latin1(timestamp)}
    signed = not _rarely(draw, 10)
    headers[b"webhook-signature"] = (webhook_signature(headers[b"webhook-id"], headers[b"webhook-timestamp"], body)
                                     if signed else _latin1(draw(header_text)))
    if _rarely(draw, 30):
        del headers[draw(st.sampled_from(sorted(headers)))]
    length = str(len(body))
    if _rarely(draw, 15):
        length = draw(st.one_of(st.none(), header_text, st.just("\u00b2"), st.just("9" * 5000), st.just("0" * 5000),
                                st.integers(0, 10**12).map(str)))
    if length is not None:
        headers[b"content-length"] = _latin1(length)
    headers[b"content-type"] = b"application/json"
    source = SOURCE if not _rarely(draw, 30) else draw(st.one_of(header_text, st.just("order-feed")))
    return Request(f"/webhooks/{source}", list(headers.items()), body, chunks=draw(st.integers(1, 3)),
                   description=f"webhook {'signed' if signed else 'unsigned'}",
                   fresh_id=fresh_id and b"webhook-id" in headers)


@st.composite
def slack_payloads(draw: st.DrawFn) -> dict[str, Any]:
    decision = draw(_mostly(st.sampled_from(["approve", "reject", "snooze"]), st.sampled_from(["delete", "", "approve:"])))
    action = draw(_mostly(st.from_regex(r"A-[0-9a-f]{16}", fullmatch=True), any_text))
    payload: dict[str, Any] = {
        "type": draw(st.sampled_from(["block_actions", "view_submission"])) if not _rarely(draw, 10) else draw(json_values),
        "user": {"id": draw(ids)} if not _rarely(draw, 10) else draw(json_values),
        "trigger_id": draw(_mostly(st.uuids().map(lambda u: str(u.int)), any_text)),
        "container": {"message_ts": draw(_mostly(st.just("1700000000.000100"), any_text)),
                      "channel_id": draw(ids), "thread_ts": draw(_mostly(st.just("1700000000.000100"), any_text))},
        "channel": {"id": draw(ids)},
        "message": {"ts": draw(_mostly(st.just("1700000000.000100"), any_text)), "thread_ts": draw(any_text)},
        "actions": [{"action_id": f"{decision}:{action}", "value": draw(_mostly(st.just(action), any_text)),
                     "action_ts": draw(_mostly(st.just("1700000001.000200"), any_text))}]
        if not _rarely(draw, 10) else draw(json_values),
    }
    if _rarely(draw, 5):
        for key in draw(st.lists(st.sampled_from(sorted(payload)), max_size=2)):
            payload.pop(key, None)
    return payload


@st.composite
def slack_requests(draw: st.DrawFn) -> Request:
    text = json.dumps(draw(slack_payloads()), ensure_ascii=draw(st.booleans()))
    if _rarely(draw, 5):
        text = draw(st.sampled_from(_MUTATIONS))(text, draw(st.integers(1, 500)))
    body = urlencode({"payload": text}, encoding="utf-8", errors="surrogatepass").encode()
    if _rarely(draw, 20):
        body = draw(st.one_of(st.binary(max_size=200), st.just(b"payload=1&payload=2")))
    timestamp = str(int(time.time()))  # the Slack route checks the wall clock, as slack-sdk does
    if _rarely(draw, 10):
        timestamp = draw(st.one_of(st.integers(-(10**15), 10**15).map(str), header_text))
    signed = not _rarely(draw, 10)
    headers = {b"x-slack-request-timestamp": _latin1(timestamp),
               b"x-slack-signature": slack_signature(_latin1(timestamp), body) if signed else _latin1(draw(header_text)),
               b"content-type": b"application/x-www-form-urlencoded", b"content-length": str(len(body)).encode()}
    return Request("/slack/interactions", list(headers.items()), body, chunks=draw(st.integers(1, 2)),
                   description=f"slack {'signed' if signed else 'unsigned'}")


requests = st.one_of(webhook_requests(), webhook_requests(), webhook_requests(), slack_requests())


def fuzz_app(warehouse: Any) -> Any:
    """The gateway as deployed, its secrets the fuzz's, the signature window at SIGNED_AT and rate limits
    high enough that most requests get past them (429 is still a valid answer)."""
    from demand_control.gateway import create_app

    return create_app(warehouse, secrets={SOURCE: [WEBHOOK_SECRET], "order-feed": [WEBHOOK_SECRET]},
                      now=lambda: SIGNED_AT, rate_per_second=1e6, burst=10**6, slack_signing_secret=SLACK_SECRET)


def verdict(answer: Answer) -> str | None:
    """Why the answer breaks the promise (no 5xx for bad input), or None when it keeps it."""
    if answer.status not in ALLOWED:
        return f"answered {answer.status}: {answer.body[:300]!r}"
    document = answer.json()
    if isinstance(document, dict) and document.get("error") == "unstorable_value":
        # 422, but only because the database refused a value the schema should have named first.
        return f"the schema let through a value the warehouse refuses: {answer.body[:300]!r}"
    return None


class Driver:
    """Runs requests through one app on one event loop (the app's semaphore and thread pool live on it)."""

    def __init__(self, app: Any):
        self.app = app
        self.runner = asyncio.Runner()

        self.sent = 0

    def __call__(self, request: Request) -> Answer:
        self.sent += 1
        if request.fresh_id:
            request = self._with_fresh_id(request)
        return self.runner.run(call(self.app, request))

    def _with_fresh_id(self, request: Request) -> Request:
        headers = dict(request.headers)
        old_id, headers[b"webhook-id"] = headers[b"webhook-id"], f"msg_fuzz_{self.sent}".encode()
        timestamp, signature = headers.get(b"webhook-timestamp"), headers.get(b"webhook-signature")
        if timestamp is not None and signature == webhook_signature(old_id, timestamp, request.body):
            headers[b"webhook-signature"] = webhook_signature(headers[b"webhook-id"], timestamp, request.body)
        return Request(request.path, list(headers.items()), request.body, request.chunks, request.description)

    def close(self) -> None:
        self.runner.close()
