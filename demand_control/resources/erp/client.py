"""A small JSON-RPC client for trytond 8.x over HTTP (httpx), with the error split the write-back needs.

Tryton answers business errors (`UserError`, `UserWarning`) as HTTP 200 with an `error` member: those fail at
once with Tryton's own message. Transport failures (refused or dropped connections, timeouts, 5xx) are
retried with exponential backoff and jitter, bounded (tenacity). Only idempotent work may be retried: reads,
and writes that look up their action id before creating (see `erp.py`).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import httpx
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

T = TypeVar("T")


class TrytonError(Exception):
    """Tryton answered, and the answer is an error."""


class TrytonUserError(TrytonError):
    """A business error (UserError / UserWarning): the request is wrong, retrying cannot help."""

    def __init__(self, kind: str, message: str, description: str = "") -> None:
        self.kind = kind
        self.message = message
        self.description = description
        super().__init__(f"Tryton {kind}: {message}" + (f" ({description})" if description else ""))


class TrytonServerError(TrytonError):
    """An unexpected server-side exception (a bug or a misconfiguration), not worth retrying."""


class TrytonTransportError(Exception):
    """The request or its answer was lost on the way: safe to retry idempotent work."""


class TrytonUnavailableError(Exception):
    """The bounded retries are spent and Tryton still cannot be reached."""


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {
            "__class__": "datetime", "year": value.year, "month": value.month, "day": value.day,
            "hour": value.hour, "minute": value.minute, "second": value.second, "microsecond": value.microsecond,
        }
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot send {type(value).__name__} to Tryton: {value!r}")


def _decode(obj: dict[str, Any]) -> Any:
    kind = obj.get("__class__")
    if kind == "datetime":
        return dt.datetime(obj["year"], obj["month"], obj["day"], obj["hour"], obj["minute"], obj["second"], obj["microsecond"])
    if kind == "date":
        return dt.date(obj["year"], obj["month"], obj["day"])
    if kind == "Decimal":
        return Decimal(obj["decimal"])
    if kind == "timedelta":
        return dt.timedelta(seconds=obj["seconds"])
    if kind == "bytes":
        return base64.decodebytes(obj["base64"].encode())
    return obj


class TrytonClient:
    """One user's JSON-RPC session with one Tryton database."""

    def __init__(
        self,
        url: str,
        database: str,
        login: str,
        password: str,
        *,
        timeout: float = 30.0,
        max_attempts: int = 5,
        max_retry_seconds: float = 60.0,
        backoff_multiplier: float = 0.5,
        backoff_max: float = 8.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = f"{url.rstrip('/')}/{database}/rpc/"
        self.database = database
        self.login = login
        self._password = password
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._session: str | None = None
        self._lock = threading.Lock()
        self._ids = 0
        self.max_attempts = max_attempts
        self.max_retry_seconds = max_retry_seconds
        self.backoff_multiplier = backoff_multiplier
        self.backoff_max = backoff_max
        self._context: dict[str, Any] | None = None

    def close(self) -> None:
        self._http.close()

    def retrying(self, work: Callable[[], T]) -> T:
        """Run idempotent `work`, retrying transport failures with jittered exponential backoff."""
        retryer = Retrying(
            retry=retry_if_exception_type(TrytonTransportError),
            wait=wait_random_exponential(multiplier=self.backoff_multiplier, max=self.backoff_max),
            stop=stop_after_attempt(self.max_attempts) | stop_after_delay(self.max_retry_seconds),
            reraise=False,
        )
        try:
            return retryer(work)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise TrytonUnavailableError(
                f"Tryton at {self.endpoint} unreachable after {exc.last_attempt.attempt_number} attempts: {last}"
            ) from last

    def call(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call, logging in first (and again if the session expired). Not retried here."""
        if self._session is None:
            self._login()
        try:
            return self._post(method, list(params), authorized=True)
        except _SessionExpired:
            self._login()
        try:
            return self._post(method, list(params), authorized=True)
        except _SessionExpired:
            raise TrytonServerError(f"{method}: refused with a fresh session (unknown method or no access right)") from None

    def model(self, model: str, method: str, *args: Any) -> Any:
        """`model.<model>.<method>(*args, context)` with the user's context."""
        return self.call(f"model.{model}.{method}", *args, self.context)

    @property
    def context(self) -> dict[str, Any]:
        if self._context is None:
            self._context = self.call("model.res.user.get_preferences", True, {}) or {}
        return self._context

    def search_read(
        self,
        model: str,
        domain: Sequence[Any],
        fields: Sequence[str],
        *,
        order: Sequence[tuple[str, str]] | None = None,
        offset: int = 0,
        limit: int | None = None,
        context: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        return self.call(
            f"model.{model}.search_read", list(domain), offset, limit, list(order) if order else None, list(fields),
            {**self.context, **(context or {})},
        )

    def search_read_all(
        self, model: str, domain: Sequence[Any], fields: Sequence[str], *, page: int = 5000,
        context: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Every matching record, paged by id so a large table never travels in one answer."""
        rows: list[dict[str, Any]] = []
        last_id = 0
        while True:
            batch = self.retrying(
                lambda last_id=last_id: self.search_read(
                    model, [*domain, ("id", ">", last_id)], ["id", *fields], order=[("id", "ASC")], limit=page,
                    context=context,
                )
            )
            rows.extend(batch)
            if len(batch) < page:
                return rows
            last_id = batch[-1]["id"]

    def _login(self) -> None:
        with self._lock:
            result = self._post("common.db.login", [self.login, {"password": self._password}], authorized=False)
            user_id, session = result[0], result[1]
            token = base64.b64encode(f"{self.login}:{user_id}:{session}".encode()).decode()
            self._session = f"Session {token}"

    def _post(self, method: str, params: list[Any], *, authorized: bool) -> Any:
        self._ids += 1
        body = json.dumps({"id": self._ids, "method": method, "params": params}, default=_encode)
        headers = {"Content-Type": "application/json"}
        if authorized and self._session:
            headers["Authorization"] = self._session
        try:
            response = self._http.post(self.endpoint, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise TrytonTransportError(f"{method}: {type(exc).__name__}: {exc}") from exc
        if response.status_code in (401, 403):
            if authorized:
                raise _SessionExpired()
            raise TrytonServerError(f"Tryton refused the login of {self.login!r} on {self.database!r}: check the password")
        if response.status_code >= 500 or response.status_code == 429:
            raise TrytonTransportError(f"{method}: HTTP {response.status_code}")
        if response.status_code != 200:
            raise TrytonServerError(f"{method}: HTTP {response.status_code}: {response.text[:500]}")
        try:
            payload = json.loads(response.content, object_hook=_decode)
        except ValueError as exc:
            raise TrytonTransportError(f"{method}: answer is not JSON ({exc})") from exc
        error = payload.get("error")
        if error is None:
            return payload.get("result")
        if isinstance(error, list) and error and error[0] in ("UserError", "UserWarning"):
            args = error[1] if len(error) > 1 else []
            if error[0] == "UserWarning":
                _, message, description = (list(args) + ["", "", ""])[:3]
            else:
                message, description = (list(args) + ["", ""])[:2]
            raise TrytonUserError(error[0], str(message), str(description or ""))
        if isinstance(error, list) and error and error[0] == "ConcurrencyException":
            raise TrytonTransportError(f"{method}: concurrent update: {error[1:]}")
        if isinstance(error, list) and error and error[0] == "LoginException":
            raise TrytonServerError(f"{method}: Tryton refused the login of {self.login!r}")
        message = error[0] if isinstance(error, list) and error else error
        raise TrytonServerError(f"{method}: {message}")


class _SessionExpired(Exception):
    pass
