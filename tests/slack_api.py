"""A small HTTP server speaking the parts of the Slack Web API the notifier uses, on 127.0.0.1 in a thread,
with switchable faults: a 429 with Retry-After, a 500, and a dropped connection after the message was
stored (the answer is lost, the post is not). slack-sdk's `WebClient(base_url=server.base_url)` talks to it
like to slack.com.

Methods: auth.test, conversations.list, chat.postMessage, chat.update, conversations.history,
conversations.replies, views.publish (App Home tabs, kept per user in `homes`, checked against Slack's limit
of 100 blocks per view and unique block ids). Every request is recorded in `calls` (method, parameters,
arrival time).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

TOKEN = "xoxb-test-token"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float
    outcome: str = "ok"  # ok, error, rate_limited, server_error, dropped


@dataclass
class FakeSlack:
    channels: dict[str, str] = field(default_factory=dict)  # id -> name
    messages: list[dict[str, Any]] = field(default_factory=list)
    homes: dict[str, dict[str, Any]] = field(default_factory=dict)  # user id -> the published home view
    refuse_users: set[str] = field(default_factory=set)  # views.publish answers user_not_found for these
    calls: list[Call] = field(default_factory=list)
    faults: list[tuple[str, str, int]] = field(default_factory=list)  # (method, kind, retry_after), used once each
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ts: int = 0

    def add_channel(self, name: str) -> str:
        with self.lock:
            for cid, known in self.channels.items():
                if known == name.lstrip("#"):
                    return cid
            cid = f"C{len(self.channels) + 1:08d}"
            self.channels[cid] = name.lstrip("#")
            return cid

    def fail_next(self, method: str, kind: str, retry_after: int = 1) -> None:
        """kind: rate_limit (429 + Retry-After), server_error (500), drop (store, then close without answering)."""
        with self.lock:
            self.faults.append((method, kind, retry_after))

    def _take_fault(self, method: str) -> tuple[str, int] | None:
        with self.lock:
            for i, (m, kind, retry_after) in enumerate(self.faults):
                if m == method:
                    del self.faults[i]
                    return kind, retry_after
        return None

    def calls_to(self, method: str, outcome: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == method and (outcome is None or c.outcome == outcome)]

    def parents(self, channel_name: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.messages if not m.get("thread_ts") and (channel_name is None or self.channels[m["channel"]] == channel_name.lstrip("#"))]

    def replies(self, thread_ts: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("thread_ts") == thread_ts]

    def _next_ts(self) -> str:
        self._ts += 1
        return f"{int(time.time())}.{self._ts:06d}"

    # The methods: each takes the parameters and returns the JSON answer.

    def _publish_home(self, params: dict[str, Any]) -> dict[str, Any]:
        user, view = str(params.get("user_id", "")), params.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if user in self.refuse_users:
            return {"ok": False, "error": "user_not_found"}
        if not user.startswith(("U", "W")):
            return {"ok": False, "error": "invalid_arguments", "response_metadata": {"messages": ["invalid `user_id`"]}}
        error = _publish_home_check(view)
        if error:
            return {"ok": False, "error": error}
        self._ts += 1
        stored = {**view, "id": f"V{self._ts:08d}", "hash": f"{int(time.time())}.{self._ts}"}
        self.homes[user] = stored
        return {"ok": True, "view": stored}

    def _channel(self, params: dict[str, Any]) -> str | None:
        value = str(params.get("channel", ""))
        if value in self.channels:
            return value
        for cid, name in self.channels.items():
            if name == value.lstrip("#"):
                return cid
        return None

    def handle(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if method == "auth.test":
                return {"ok": True, "url": "https://fake.slack/", "team": "Fake", "user": "demand-control", "team_id": "T0000001", "user_id": "U0BOT0001", "bot_id": "B0000001"}
            if method == "conversations.list":
                return {"ok": True, "channels": [{"id": cid, "name": name, "is_private": False} for cid, name in self.channels.items()], "response_metadata": {"next_cursor": ""}}
            if method == "views.publish":
                return self._publish_home(params)
            channel = self._channel(params)
            if channel is None:
                return {"ok": False, "error": "channel_not_found"}
            if method == "chat.postMessage":
                metadata = params.get("metadata")
                if isinstance(metadata, str):
                    metadata = json.loads(metadata)
                blocks = params.get("blocks")
                if isinstance(blocks, str):
                    blocks = json.loads(blocks)
                message = {"type": "message", "channel": channel, "ts": self._next_ts(), "text": params.get("text", ""), "blocks": blocks,
                           "metadata": metadata, "thread_ts": params.get("thread_ts"), "user": "U0BOT0001", "posted_at": time.monotonic()}
                self.messages.append(message)
                return {"ok": True, "channel": channel, "ts": message["ts"], "message": {k: v for k, v in message.items() if k != "posted_at"}}
            if method == "chat.update":
                for message in self.messages:
                    if message["channel"] == channel and message["ts"] == params.get("ts"):
                        blocks = params.get("blocks")
                        message.update(text=params.get("text", ""), blocks=json.loads(blocks) if isinstance(blocks, str) else blocks, edited=True)
                        return {"ok": True, "channel": channel, "ts": message["ts"], "text": message["text"]}
                return {"ok": False, "error": "message_not_found"}
            with_metadata = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
            oldest = float(params.get("oldest") or 0)

            def shown(message: dict[str, Any]) -> dict[str, Any]:
                out = {k: v for k, v in message.items() if k not in ("channel", "posted_at", "metadata") and v is not None}
                if with_metadata and message.get("metadata"):
                    out["metadata"] = message["metadata"]
                return out

            if method == "conversations.history":
                found = [m for m in self.messages if m["channel"] == channel and not m.get("thread_ts") and float(m["ts"]) >= oldest]
                return {"ok": True, "messages": [shown(m) for m in reversed(found)], "has_more": False, "response_metadata": {"next_cursor": ""}}
            if method == "conversations.replies":
                ts = params.get("ts")
                found = [m for m in self.messages if m["channel"] == channel and (m["ts"] == ts or m.get("thread_ts") == ts) and float(m["ts"]) >= oldest]
                return {"ok": True, "messages": [shown(m) for m in found], "has_more": False, "response_metadata": {"next_cursor": ""}}
            return {"ok": False, "error": "unknown_method"}


def _publish_home_check(view: Any) -> str | None:
    """Slack's validation of a home view, the parts the notifier could get wrong; the error code, or None."""
    if not isinstance(view, dict) or view.get("type") != "home" or not isinstance(view.get("blocks"), list):
        return "invalid_arguments"
    blocks = view["blocks"]
    ids = [b["block_id"] for b in blocks if isinstance(b, dict) and "block_id" in b]
    if len(blocks) > 100 or len(ids) != len(set(ids)) or any(len(i) > 255 for i in ids):
        return "invalid_blocks"
    return None


def _handler(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _params(self) -> dict[str, Any]:
            url = urlparse(self.path)
            params: dict[str, Any] = {k: v[0] for k, v in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if body:
                if "json" in (self.headers.get("Content-Type") or ""):
                    params.update(json.loads(body))
                else:
                    params.update({k: v[0] for k, v in parse_qs(body.decode()).items()})
            return params

        def _answer(self, status: int, body: bytes, content_type: str = "application/json; charset=utf-8", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _serve(self) -> None:
            method = urlparse(self.path).path.rsplit("/", 1)[-1]
            params = self._params()
            call = Call(method, params, time.monotonic())
            fake.calls.append(call)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                call.outcome = "error"
                self._answer(200, json.dumps({"ok": False, "error": "invalid_auth"}).encode())
                return
            fault = fake._take_fault(method)
            if fault and fault[0] == "rate_limit":
                call.outcome = "rate_limited"
                self._answer(429, json.dumps({"ok": False, "error": "ratelimited"}).encode(), headers={"Retry-After": str(fault[1])})
                return
            if fault and fault[0] == "server_error":
                call.outcome = "server_error"
                self._answer(500, b"Internal Server Error", content_type="text/plain")
                return
            answer = fake.handle(method, params)
            if fault and fault[0] == "drop":
                # The work is done (the message is stored), but the answer never arrives.
                call.outcome = "dropped"
                self.close_connection = True
                return
            call.outcome = "ok" if answer.get("ok") else "error"
            self._answer(200, json.dumps(answer).encode())

        do_GET = _serve
        do_POST = _serve

    return Handler


@contextmanager
def slack_api_server() -> Iterator[tuple[FakeSlack, str]]:
    """The fake and its base URL (`http://127.0.0.1:<port>/api/`); stopped on exit."""
    fake = FakeSlack()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="fake-slack", daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}/api/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
