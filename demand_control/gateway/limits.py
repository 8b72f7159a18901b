"""The gateway's bounds on what a sender can make it do, one implementation for every route: the body-size
limit (declared or streamed) and the per-source rate limit; and the one shape of a rejection."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

DEFAULT_MAX_BODY_BYTES = 256 * 1024  # a webhook event
SLACK_MAX_BODY_BYTES = 64 * 1024  # a Slack interaction (a button click's payload is a few KB)
DEFAULT_RATE_PER_SECOND = 2000.0
DEFAULT_BURST = 4000
MAX_BODY_ENV = "DEMAND_CONTROL_GATEWAY_MAX_BODY_BYTES"
RATE_ENV = "DEMAND_CONTROL_GATEWAY_RATE"
BURST_ENV = "DEMAND_CONTROL_GATEWAY_BURST"
_DIGITS = re.compile(r"[0-9]+")


class TokenBucket:
    """Per-source rate limit: `rate` requests per second on average, bursts up to `burst`.

    Only touched from the event loop, so it needs no lock.
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate, self.burst, self.clock = rate, float(burst), clock
        self.tokens, self.updated = float(burst), clock()

    def take(self) -> float:
        """Take a token: 0.0 when allowed, else the seconds until one is available."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


def reject(status: int, error: str, reason: str, headers: Mapping[str, str] | None = None, **extra: Any) -> JSONResponse:
    """A clear 4xx: what was wrong (`error`), why in words (`reason`), never the request's secrets."""
    return JSONResponse({"status": "rejected", "error": error, "reason": reason, **extra}, status_code=status, headers=headers)


async def read_limited_body(request: Request, max_body_bytes: int) -> bytes | JSONResponse:
    """The raw body, or the rejection to answer: 400 for a Content-Length that is not a number or a client
    that went away, 413 over the limit — declared, or streamed in chunks without a Content-Length."""
    declared = request.headers.get("content-length")
    if declared is not None:
        # ASCII digits only ("²".isdigit() is true, and int() refuses it), and the length checked before
        # int(): a digit string of thousands of characters is over any limit and over int()'s own too.
        if not _DIGITS.fullmatch(declared):
            return reject(400, "bad_content_length", "Content-Length is not a number")
        digits = declared.lstrip("0") or "0"
        if len(digits) > len(str(max_body_bytes)) or int(digits) > max_body_bytes:
            shown = digits if len(digits) <= 20 else digits[:20] + "…"
            return reject(413, "body_too_large", f"body of {shown} bytes exceeds the limit of {max_body_bytes}")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body_bytes:
                return reject(413, "body_too_large", f"body exceeds the limit of {max_body_bytes} bytes")
    except ClientDisconnect:
        return reject(400, "client_disconnected", "the client went away before the body was complete")
    return bytes(body)
