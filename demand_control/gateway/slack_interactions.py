"""`POST /slack/interactions`: Slack's approve / reject / snooze button clicks, verified, stored and answered
within Slack's 3 s, then decided in the background (RELIABILITY.md §6–8).

Order of work: read the raw body (bounded), verify Slack's signature over it with slack-sdk's
`SignatureVerifier` (`v0:{timestamp}:{body}`, 300 s window both ways), only then parse the form-encoded
`payload=<json>`, store the click (`approvals.store_click`, deduplicated by the payload's trigger id), answer
200, and after the response evaluate it (`approvals.decide`) in a Starlette background task. The result is
recorded as a pending `approval_result` notification for the Slack thread the click came from; the notifier
delivers it. A click whose background evaluation was lost (the process stopped) stays unprocessed in
`approval_clicks` for `approvals.decide_pending`.

Buttons carry an opaque id: `action_id` = `"<decision>:<action id>"` (decision approve, reject or snooze);
`value` may carry the same or the bare action id. Authority is decided server-side from the policy.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from slack_sdk.signature import Clock, SignatureVerifier
from sqlalchemy.exc import SQLAlchemyError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from demand_control.services import approvals
from demand_control.infra import clock as planning_clock
from demand_control.gateway.limits import SLACK_MAX_BODY_BYTES, read_limited_body, reject
from demand_control.planning.policy import Policy, load_policy

if TYPE_CHECKING:
    from demand_control.resources.warehouse import Warehouse

log = logging.getLogger("demand_control.gateway.slack")

SIGNING_SECRET_ENV = "SLACK_SIGNING_SECRET"
WINDOW_SECONDS = 300  # Slack's own: a request more than 5 minutes off either way is refused
RECEIVED_TEXT = "Received — deciding…"

_TIMESTAMP = re.compile(r"[1-9][0-9]{0,11}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
_ACTION_ID = re.compile(r"[A-Za-z0-9_.:-]{1,80}")
_TS = re.compile(r"[0-9]{1,20}(\.[0-9]{1,10})?")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class Malformed(ValueError):
    """A verified request that is not a click we understand: 400 with the reason."""


@dataclass(frozen=True)
class Click:
    decision: str
    action_id: str
    user_id: str
    request_ref: str
    thread: approvals.SlackThread | None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _storable(name: str, value: str | None) -> str | None:
    """`value` if the warehouse can store it; Malformed naming the field otherwise (PostgreSQL refuses NUL, and
    a lone surrogate, which JSON's \\u escapes can carry, has no UTF-8 encoding)."""
    if value is None:
        return None
    if _CONTROL_CHARACTERS.search(value):
        raise Malformed(f"{name} must not contain control characters, got {value[:80]!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Malformed(f"{name} is not valid Unicode text (a lone surrogate), got {value[:80]!r}") from None
    return value


def _parse_button(action: dict[str, Any]) -> tuple[str, str]:
    """(decision, action id) from the button: `action_id` "<decision>:<id>", else `value` "<decision>:<id>",
    else `action_id` "<decision>" with `value` "<id>"."""
    action_id, value = _text(action.get("action_id")), _text(action.get("value"))
    candidates = [(t.split(":", 1)[0], t.split(":", 1)[1]) for t in (action_id, value) if t and ":" in t]
    if action_id in approvals.CLICK_DECISIONS and value:
        candidates.append((action_id, value))
    for decision, target in candidates:
        if decision in approvals.CLICK_DECISIONS and _ACTION_ID.fullmatch(target):
            return decision, target
    raise Malformed(f"actions[0] is not an approve/reject/snooze button of ours (action_id {action_id!r}, value {value!r})")


def parse_click(body_text: str) -> Click:
    """The click in a verified interactivity body; raises Malformed naming what is wrong."""
    form = parse_qs(body_text, keep_blank_values=True)
    payloads = form.get("payload", [])
    if len(payloads) != 1:
        raise Malformed("the body must carry exactly one form field payload=<json>")
    try:
        payload = json.loads(payloads[0])
    except ValueError as exc:
        raise Malformed(f"payload is not JSON: {exc}") from None
    except RecursionError:
        raise Malformed("payload is nested too deeply to be a Slack interaction") from None
    if not isinstance(payload, dict):
        raise Malformed("payload must be a JSON object")
    if payload.get("type") != "block_actions":
        raise Malformed(f"unsupported interaction type {payload.get('type')!r}; only block_actions buttons are handled")
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        raise Malformed("payload.actions must be a non-empty list of objects")
    decision, action_id = _parse_button(actions[0])
    user = payload.get("user")
    user_id = _storable("payload.user.id", _text(user.get("id")) if isinstance(user, dict) else None)
    if user_id is None or len(user_id) > 128:
        raise Malformed("payload.user.id is missing or too long")

    container = payload.get("container") if isinstance(payload.get("container"), dict) else {}
    message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
    channel = payload.get("channel") if isinstance(payload.get("channel"), dict) else {}
    message_ts = _text(container.get("message_ts")) or _text(message.get("ts"))
    trigger_id = _storable("payload.trigger_id", _text(payload.get("trigger_id")))
    action_ts = _text(actions[0].get("action_ts"))
    if trigger_id is not None and len(trigger_id) <= 200:
        request_ref = f"slack:{trigger_id}"
    elif message_ts and action_ts and _TS.fullmatch(message_ts) and _TS.fullmatch(action_ts):
        request_ref = f"slack:{message_ts}:{action_ts}:{user_id}"
    else:
        raise Malformed("payload has neither trigger_id nor container.message_ts with actions[0].action_ts: the click cannot be deduplicated")

    channel_id = _storable("payload.channel.id", _text(channel.get("id")) or _text(container.get("channel_id")))
    # Where the result is posted: only well-formed timestamps (the reply is stored, then sent to Slack).
    thread_ts = next((ts for ts in (_text(message.get("thread_ts")), _text(container.get("thread_ts")), message_ts)
                      if ts and _TS.fullmatch(ts)), None)
    thread = approvals.SlackThread(channel_id[:128], thread_ts) if channel_id else None
    return Click(decision, action_id, user_id, request_ref, thread)


def slack_routes(
    warehouse: Warehouse,
    signing_secret: str | None = None,
    policy_loader: Callable[[], Policy] = load_policy,
    *,
    clock: Clock | None = None,
    now: Callable[[], datetime] | None = None,
    max_body_bytes: int = SLACK_MAX_BODY_BYTES,
) -> list[Route]:
    """The Slack interactivity route. `signing_secret` defaults to $SLACK_SIGNING_SECRET (without one every
    request is refused 401: nothing can be verified); `policy_loader` is called per decision, so a changed
    policy file applies to the next click; `clock` (slack-sdk's) fixes the signature window and `now` the
    stored times, for tests."""
    warehouse.ensure_schema()
    engine = warehouse.engine
    secret = signing_secret if signing_secret is not None else os.environ.get(SIGNING_SECRET_ENV, "")
    verifier = SignatureVerifier(secret, clock or Clock()) if secret.strip() else None
    if verifier is None:
        log.warning("%s is not set: Slack interactions will be refused", SIGNING_SECRET_ENV)
    stamp = now or planning_clock.now

    def decide_later(click_id: int, thread: approvals.SlackThread | None) -> None:
        try:
            outcome = approvals.decide(engine, policy_loader(), click_id, stamp(), reply_to=thread)
        except Exception:  # noqa: BLE001 - the click is stored; decide_pending evaluates it later
            log.exception("could not decide Slack click %s; it stays pending", click_id)
            return
        log.info("Slack click %s on %s: %s (%s)", click_id, outcome.action_id, outcome.outcome, outcome.reason)

    async def interactions(request: Request) -> JSONResponse:
        if verifier is None:
            return reject(401, "not_configured", f"{SIGNING_SECRET_ENV} is not configured: the request cannot be verified")
        body = await read_limited_body(request, max_body_bytes)
        if isinstance(body, JSONResponse):
            return body

        # Verify the raw bytes before parsing anything. The checks in front of slack-sdk keep it from raising
        # on inputs it does not expect (a non-numeric timestamp, a non-UTF-8 body) and name the reason.
        timestamp = request.headers.get("x-slack-request-timestamp", "")
        signature = request.headers.get("x-slack-signature", "")
        if not _TIMESTAMP.fullmatch(timestamp):
            return reject(401, "bad_timestamp", "X-Slack-Request-Timestamp is missing or not Unix seconds")
        if not _SIGNATURE.fullmatch(signature):
            return reject(401, "bad_signature", "X-Slack-Signature is missing or not v0=<64 hex digits>")
        skew = verifier.clock.now() - int(timestamp)
        if abs(skew) > WINDOW_SECONDS:
            return reject(401, "stale_timestamp", f"timestamp is {abs(skew):.0f} s {'old' if skew > 0 else 'in the future'}; the window is {WINDOW_SECONDS} s")
        try:
            body_text = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return reject(401, "bad_signature", "the body is not UTF-8, so it cannot carry Slack's signature")
        if not verifier.is_valid(body_text, timestamp, signature):
            return reject(401, "bad_signature", "X-Slack-Signature does not match the body")

        try:
            click = parse_click(body_text)
        except Malformed as exc:
            return reject(400, "malformed", str(exc))
        try:
            stored = await run_in_threadpool(approvals.store_click, engine, click.action_id, click.decision, click.user_id,
                                             "slack", click.request_ref, stamp())
        except SQLAlchemyError as exc:
            log.exception("could not store Slack click %s", click.request_ref)
            return reject(503, "storage_unavailable", f"the click could not be stored ({type(exc).__name__}); click again")
        # Stored: answer now, decide after the response has gone out (a replay is answered, decides nothing new).
        return JSONResponse(
            {"status": "duplicate" if stored.duplicate else "received", "click_id": stored.click_id, "text": RECEIVED_TEXT},
            background=BackgroundTask(decide_later, stored.click_id, click.thread),
        )

    return [Route("/slack/interactions", interactions, methods=["POST"])]
