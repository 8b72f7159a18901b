"""Standard Webhooks v1 signing and verification for the gateway, with several secrets per source.

The HMAC itself is the `standardwebhooks` library's (`Webhook.sign`). Header parsing and the timestamp
window are done here rather than by `Webhook.verify`, because that method checks the window against the
wall clock only (the published test vectors are from 2021), accepts fractional timestamps that it then
floors, and lets a signature entry without a comma escape as `ValueError` — which would be a 500, not a 401.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from standardwebhooks.webhooks import Webhook

TOLERANCE = timedelta(minutes=5)
SECRETS_ENV_PREFIX = "DEMAND_CONTROL_WEBHOOK_SECRETS_"
MAX_WEBHOOK_ID_LENGTH = 255  # inbox_events.webhook_id is String(255)

# Integer Unix seconds without leading zeros: one spelling per instant, so the signed string is exactly the
# header as received (no float round trip that would let "…30.9" verify with the signature for "…30").
_TIMESTAMP = re.compile(r"[1-9][0-9]{0,11}")
_SOURCE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class VerificationFailure(Exception):
    """The delivery is not authentic (or not checkable); `code` is stable, `reason` is for the sender."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Verified:
    webhook_id: str
    sent_at: datetime
    body_text: str


def env_key(source: str) -> str:
    """`supplier-portal` -> `DEMAND_CONTROL_WEBHOOK_SECRETS_SUPPLIER_PORTAL`."""
    return SECRETS_ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", source.upper())


def valid_source_name(source: str) -> bool:
    return _SOURCE.fullmatch(source) is not None


def secrets_from_env(source: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """The active secrets of a source: space-separated `whsec_…` values; empty when none is configured."""
    return (environ if environ is not None else os.environ).get(env_key(source), "").split()


def generate_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


class SourceVerifier:
    """Verifies deliveries of one source against all of its active secrets (rotation: old and new overlap)."""

    def __init__(self, secrets: Sequence[str], tolerance: timedelta = TOLERANCE):
        if not secrets:
            raise ValueError("a source needs at least one secret")
        # Decoding at start-up makes a mistyped secret a configuration error, not a stream of 401s.
        self._webhooks = [Webhook(secret) for secret in secrets]
        self.tolerance = tolerance

    def verify(self, body: bytes, headers: Mapping[str, str], now: Callable[[], datetime] | None = None) -> Verified:
        """Check headers, timestamp window and signature of the raw body; raise `VerificationFailure`."""
        webhook_id = headers.get("webhook-id")
        timestamp = headers.get("webhook-timestamp")
        signature = headers.get("webhook-signature")
        missing = [name for name, value in (("webhook-id", webhook_id), ("webhook-timestamp", timestamp),
                                              ("webhook-signature", signature)) if not value]
        if missing or webhook_id is None or timestamp is None or signature is None:
            raise VerificationFailure("missing_headers", f"missing header(s): {', '.join(missing)}")
        if len(webhook_id) > MAX_WEBHOOK_ID_LENGTH or not webhook_id.isprintable():
            raise VerificationFailure("invalid_webhook_id", f"webhook-id must be 1-{MAX_WEBHOOK_ID_LENGTH} printable characters")
        if not _TIMESTAMP.fullmatch(timestamp):
            raise VerificationFailure("invalid_timestamp", "webhook-timestamp must be integer Unix seconds")
        # The window is checked on integer seconds before any datetime is built: a timestamp past year 9999
        # (up to 12 digits pass the pattern) cannot become a datetime, and is simply far in the future.
        sent_seconds = int(timestamp)
        current = now() if now is not None else datetime.now(UTC)
        skew = sent_seconds - current.timestamp()
        if skew < -self.tolerance.total_seconds():
            raise VerificationFailure(
                "stale_timestamp",
                f"webhook-timestamp is {-skew:.0f} s in the past (tolerance {self.tolerance.total_seconds():.0f} s)",
            )
        if skew > self.tolerance.total_seconds():
            raise VerificationFailure(
                "future_timestamp",
                f"webhook-timestamp is {skew:.0f} s in the future (tolerance {self.tolerance.total_seconds():.0f} s)",
            )
        sent_at = datetime.fromtimestamp(sent_seconds, UTC)  # within the window, so a representable instant
        candidates = _parse_signatures(signature)
        try:
            # The library signs text; JSON bodies are UTF-8 by definition (RFC 8259), so anything else cannot match.
            body_text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise VerificationFailure("no_matching_signature", "body is not UTF-8, so no signature can match") from None
        for webhook in self._webhooks:
            expected = base64.b64decode(webhook.sign(webhook_id, sent_at, body_text).split(",", 1)[1])
            # Every candidate is compared (constant time each); secrets and candidates are few.
            if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
                return Verified(webhook_id, sent_at, body_text)
        raise VerificationFailure("no_matching_signature", "no v1 signature matches any active secret of this source")


def _parse_signatures(header: str) -> list[bytes]:
    """The v1 signatures of a `webhook-signature` header; other versions (v1a, future ones) are skipped."""
    candidates: list[bytes] = []
    for entry in header.split():
        version, sep, value = entry.partition(",")
        if not sep:
            raise VerificationFailure("malformed_signature", "webhook-signature entries must look like v1,<base64>")
        if version != "v1":
            continue
        try:
            candidates.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            raise VerificationFailure("malformed_signature", "webhook-signature holds a v1 value that is not base64") from None
    if not candidates:
        raise VerificationFailure("malformed_signature", "webhook-signature holds no v1 signature")
    return candidates


def sign_headers(secret: str, body: bytes, webhook_id: str | None = None, timestamp: int | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for `body` (a fresh `msg_…` id and the current time by default)."""
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = Webhook(secret).sign(webhook_id, datetime.fromtimestamp(timestamp, UTC), body.decode("utf-8"))
    return {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}
