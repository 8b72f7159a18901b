"""The webhook gateway: verify, validate and durably store supplier and order events, then answer.

`POST /webhooks/{source}` checks the Standard Webhooks signature on the raw body, validates the event
schema, and commits the event to `inbox_events` together with its `audit_log` row in one transaction before
answering 2xx; a redelivered (source, webhook-id) is answered 200 and stored once, and the same pair with
another body is answered 409 naming both payload hashes (and recorded in the audit log as `inbox_conflict`).
`GET /healthz` reports whether the warehouse answers. Everything a sender can get wrong is a 4xx with a
reason; a 5xx means the warehouse cannot be written (503 with Retry-After) and the sender should retry.

The store is `gateway.inbox.InboxWriter`; the body-size and rate limits are `gateway.limits`, shared with the
Slack route. Several processes can serve one port (`create_app_from_env`, `demand-control gateway --workers
N`); the rate limit is then per worker.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy.exc import DataError, SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from demand_control.infra import clock as planning_clock
from demand_control.gateway.schemas import (
    MalformedJson,
    SchemaViolation,
    parse_event,
)
from demand_control.gateway.inbox import InboxWriter
from demand_control.gateway.limits import (
    BURST_ENV,
    DEFAULT_BURST,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_RATE_PER_SECOND,
    MAX_BODY_ENV,
    RATE_ENV,
    TokenBucket,
    read_limited_body,
    reject,
)
from demand_control.gateway.signing import (
    SECRETS_ENV_PREFIX,
    SourceVerifier,
    VerificationFailure,
    env_key,
    valid_source_name,
)

if TYPE_CHECKING:  # the resource module pulls in Dagster; the gateway only needs `.engine` and `.ensure_schema()`
    from demand_control.resources.warehouse import Warehouse

log = logging.getLogger("demand_control.gateway")

def _verifiers(secrets: Mapping[str, Sequence[str]] | None) -> dict[str, SourceVerifier]:
    """Verifiers keyed by environment-variable name, built at start-up so a bad secret fails fast."""
    if secrets is None:
        configured = {k: v.split() for k, v in os.environ.items() if k.startswith(SECRETS_ENV_PREFIX) and v.split()}
    else:
        configured = {env_key(source): list(values) for source, values in secrets.items() if values}
    verifiers = {}
    for key, values in configured.items():
        try:
            verifiers[key] = SourceVerifier(values)
        except Exception as exc:  # noqa: BLE001 - any decoding error: name the variable, never the secret
            raise ValueError(f"{key}: a secret is not a valid whsec_<base64> value ({type(exc).__name__})") from None
    return verifiers


def create_app(
    warehouse: Warehouse,
    secrets: Mapping[str, Sequence[str]] | None = None,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    rate_per_second: float = DEFAULT_RATE_PER_SECOND,
    burst: int = DEFAULT_BURST,
    now: Callable[[], datetime] | None = None,
    slack_signing_secret: str | None = None,
) -> Starlette:
    """The gateway app. `secrets` maps source -> active secrets (default: DEMAND_CONTROL_WEBHOOK_SECRETS_*);
    `now` replaces the wall clock of the timestamp window (tests with published vectors); the times stored
    come from the planning clock (`demand_control.infra.clock`)."""
    warehouse.ensure_schema()
    writer = InboxWriter(warehouse)
    verifiers = _verifiers(secrets)
    buckets: dict[str, TokenBucket] = {}
    signature_clock = now or (lambda: datetime.now(UTC))  # the sender signs with its wall clock
    # At most as many stores in flight as the pool keeps connections: beyond that, each request would open and
    # close an overflow connection (a new PostgreSQL backend per event); queued here they wait microseconds.
    pool_size = getattr(writer.engine.pool, "size", None)
    in_flight = asyncio.Semaphore(max(1, pool_size()) if callable(pool_size) else 8)

    async def receive(request: Request) -> JSONResponse:
        source: str = request.path_params["source"]
        verifier = verifiers.get(env_key(source)) if valid_source_name(source) else None
        if verifier is None:
            return reject(404, "unknown_source", f"no webhook secrets are configured for source {source!r}")

        body = await read_limited_body(request, max_body_bytes)
        if isinstance(body, JSONResponse):
            return body

        try:
            verified = verifier.verify(bytes(body), request.headers, signature_clock)
        except VerificationFailure as failure:
            log.info("rejected %s delivery: %s", source, failure.reason)
            return reject(401, failure.code, failure.reason)

        # Counted after verification, so a forger cannot use up a genuine sender's budget.
        bucket = buckets.get(source)
        if bucket is None:
            bucket = buckets[source] = TokenBucket(rate_per_second, burst)
        wait = bucket.take()
        if wait:
            return reject(429, "rate_limited", f"more than {rate_per_second:g} events/s from {source}",
                           headers={"Retry-After": str(max(1, math.ceil(wait)))})

        try:
            event = parse_event(verified.body_text, planning_clock.now())
        except MalformedJson as exc:
            return reject(400, "malformed_json", f"body is not JSON: {exc}")
        except SchemaViolation as exc:
            return reject(422, "schema_violation", str(exc), errors=[e.as_dict() for e in exc.errors])

        payload_sha256 = hashlib.sha256(body).hexdigest()
        try:
            async with in_flight:
                stored = await run_in_threadpool(
                    writer.store, source, verified.webhook_id, verified.sent_at, event, verified.body_text,
                    payload_sha256, planning_clock.now()
                )
        except DataError as exc:
            # A value the schema let through but the database refuses: a retry cannot help, so no 5xx (the
            # schema should have named it; the log says which).
            log.exception("could not store %s from %s: a value the warehouse refuses", verified.webhook_id, source)
            return reject(422, "unstorable_value", f"a value in the event cannot be stored ({type(exc.orig).__name__})")
        except SQLAlchemyError as exc:
            # Not the sender's fault and not stored: 503 tells Standard Webhooks senders to retry.
            log.exception("could not store %s from %s", verified.webhook_id, source)
            return reject(503, "storage_unavailable", f"the inbox could not be written ({type(exc).__name__}); retry",
                           headers={"Retry-After": "5"})
        if stored.conflict:
            return reject(409, "conflicting_redelivery",
                          f"webhook-id {verified.webhook_id!r} of {source} was stored with another body (payload "
                          f"sha256 {stored.stored_sha256}); this body has sha256 {payload_sha256}. Nothing was "
                          f"stored; send a new event under a new webhook-id",
                          inbox_id=stored.inbox_id, stored_payload_sha256=stored.stored_sha256,
                          received_payload_sha256=payload_sha256)
        if stored.duplicate:
            return JSONResponse({"status": "duplicate", "inbox_id": stored.inbox_id, "same_payload": stored.same_payload})
        return JSONResponse({"status": "accepted", "inbox_id": stored.inbox_id, "quality_flags": stored.quality_flags},
                            status_code=202)

    async def healthz(request: Request) -> JSONResponse:
        try:
            await run_in_threadpool(writer.ping)
        except Exception as exc:  # noqa: BLE001 - any failure to answer means "not ready"
            return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ok"})

    from demand_control.gateway.slack_interactions import slack_routes

    app = Starlette(routes=[
        Route("/webhooks/{source}", receive, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        # Slack interactivity (approve / reject / snooze); refuses every click without SLACK_SIGNING_SECRET.
        *slack_routes(warehouse, signing_secret=slack_signing_secret),
    ])
    app.state.writer = writer
    return app


def create_app_from_env() -> Starlette:
    """The gateway as the environment configures it: the configured warehouse, secrets from
    DEMAND_CONTROL_WEBHOOK_SECRETS_*, limits from DEMAND_CONTROL_GATEWAY_{MAX_BODY_BYTES,RATE,BURST}.

    The app factory each uvicorn worker calls (`demand-control gateway --workers N`, or
    `uvicorn --factory demand_control.gateway.app:create_app_from_env`). Each worker is its own process with
    its own token buckets, so the per-source rate limit applies per worker: N workers admit up to N x rate.
    """
    from demand_control.resources.warehouse import warehouse_from_env

    warehouse = warehouse_from_env()
    return create_app(
        warehouse,
        max_body_bytes=int(os.environ.get(MAX_BODY_ENV) or DEFAULT_MAX_BODY_BYTES),
        rate_per_second=float(os.environ.get(RATE_ENV) or DEFAULT_RATE_PER_SECOND),
        burst=int(os.environ.get(BURST_ENV) or DEFAULT_BURST),
    )
