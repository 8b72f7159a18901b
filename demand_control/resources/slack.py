"""Slack for the owners' messages and their App Home tabs: slack-sdk's `WebClient` when `SLACK_BOT_TOKEN` is
set, the console otherwise (the embedded default; `ops/notify.py` then records the same messages in
`notifications`).

The client retries 429s after `Retry-After` (slack-sdk's `RateLimitErrorRetryHandler`, off by default) and
connection errors and 5xx — but never for `chat.postMessage`: a post whose answer was lost may have been
posted, so the caller reconciles with `find_parent` / `find_reply` instead of posting again. Posts are spaced
per channel (about one per second, Slack's limit); the caller waits rather than dropping a message.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import ConnectionErrorRetryHandler, HttpRequest, HttpResponse, RateLimitErrorRetryHandler, RetryState
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler

from demand_control.infra import clock
from demand_control.messages.slack import EXCEPTION_EVENT, NOTICE_EVENT

SLACK_BOT_TOKEN_ENV = "SLACK_BOT_TOKEN"
SLACK_API_URL_ENV = "SLACK_API_URL"
SLACK_CHANNEL_OVERRIDE_ENV = "SLACK_CHANNEL_OVERRIDE"
DEFAULT_API_URL = "https://slack.com/api/"
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
# Methods whose repetition can create a second message; everything else is safe to retry.
_NOT_IDEMPOTENT = ("chat.postMessage",)
_HISTORY_PAGES = 10  # 2,000 messages back: far beyond what a channel receives between intent and reconcile


@dataclass(frozen=True)
class Posted:
    """Where a message landed: the channel id (chat.update needs the id, not the #name) and its ts."""

    channel: str
    ts: str


class ChannelNotFound(LookupError):
    """The channel name is not visible to the bot (not created, private without an invite, or archived)."""


def _is_idempotent(request: HttpRequest) -> bool:
    return not request.url.rstrip("/").endswith(_NOT_IDEMPOTENT)


class _IdempotentConnectionRetry(ConnectionErrorRetryHandler):
    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None, error: Exception | None = None) -> bool:
        return _is_idempotent(request) and super()._can_retry(state=state, request=request, response=response, error=error)


class _IdempotentServerErrorRetry(ServerErrorRetryHandler):
    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None, error: Exception | None = None) -> bool:
        return _is_idempotent(request) and super()._can_retry(state=state, request=request, response=response, error=error)


def definitive_refusal(error: Exception) -> bool:
    """True when Slack answered and refused (nothing was posted); False when the outcome is unknown (a lost
    connection, a 5xx), which the caller must reconcile before posting again."""
    if isinstance(error, ChannelNotFound):
        return True
    if isinstance(error, SlackApiError):
        status = getattr(error.response, "status_code", 200)
        return status < 500
    return False


def describe(error: Exception) -> str:
    """The error for a log line or `last_error`: Slack's error code and the HTTP status when there was one."""
    if isinstance(error, SlackApiError):
        status = getattr(error.response, "status_code", None)
        code = error.response.get("error") if hasattr(error.response, "get") else None
        return f"Slack API HTTP {status}: {code or error}"
    return f"{type(error).__name__}: {error}"


class SlackNotifier(dg.ConfigurableResource):
    """Posts, updates and threads the owners' messages in Slack; an empty token means the console."""

    bot_token: str = Field(default="", description="Bot token (xoxb-…) from SLACK_BOT_TOKEN. Empty: console and the notifications table, no network.")
    base_url: str = Field(default=DEFAULT_API_URL, description="Slack Web API base URL (SLACK_API_URL); tests point it at a local server.")
    channel_override: str = Field(default="", description="Post every message to this channel instead of the owner's (a staging workspace).")
    rate_limit_retries: int = Field(default=3, description="How often a 429 is retried after its Retry-After.")
    connection_retries: int = Field(default=2, description="How often an idempotent call is retried after a connection error or a 5xx.")
    post_interval_seconds: float = Field(default=1.0, description="Minimum spacing of chat.postMessage per channel (Slack allows about one per second).")
    timeout_seconds: int = Field(default=15, description="HTTP timeout of one call.")

    _client: WebClient | None = PrivateAttr(default=None)
    _channel_ids: dict[str, str] = PrivateAttr(default_factory=dict)
    _last_post: dict[str, float] = PrivateAttr(default_factory=dict)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def enabled(self) -> bool:
        """False: the embedded default (console + notifications table)."""
        return bool(self.bot_token)

    def target(self, channel: str) -> str:
        return self.channel_override or channel

    @property
    def client(self) -> WebClient:
        if self._client is None:
            base_url = self.base_url if self.base_url.endswith("/") else self.base_url + "/"
            self._client = WebClient(
                token=self.bot_token,
                base_url=base_url,
                timeout=self.timeout_seconds,
                retry_handlers=[
                    RateLimitErrorRetryHandler(max_retry_count=self.rate_limit_retries),
                    _IdempotentConnectionRetry(max_retry_count=self.connection_retries),
                    _IdempotentServerErrorRetry(max_retry_count=self.connection_retries),
                ],
            )
        return self._client

    def whoami(self) -> dict[str, Any]:
        """auth.test: which workspace and bot the token belongs to (a set-up check for the CLI and the demo)."""
        return dict(self.client.auth_test().data)  # type: ignore[arg-type]

    def console(self, channel: str, text: str, thread: str | None = None) -> None:
        where = f"{channel} (thread {thread})" if thread else channel
        print(f"[slack → {where}] {text}", flush=True)

    def channel_id(self, channel: str) -> str:
        """The id of a channel given as id or #name (conversations.list, cached for the resource's life)."""
        if _CHANNEL_ID.match(channel):
            return channel
        name = channel.lstrip("#")
        if name not in self._channel_ids:
            cursor = None
            while True:
                page = self.client.conversations_list(types="public_channel,private_channel", exclude_archived=True, limit=1000, cursor=cursor)
                for found in page.get("channels", []):
                    self._channel_ids[found["name"]] = found["id"]
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if name in self._channel_ids or not cursor:
                    break
        if name not in self._channel_ids:
            raise ChannelNotFound(f"Slack channel {channel} not found (or the bot cannot see it: invite it)")
        return self._channel_ids[name]

    def _pace(self, channel_id: str) -> None:
        # Queue, not drop: wait for the channel's slot, then take it.
        with self._lock:
            wait = self._last_post.get(channel_id, 0.0) + self.post_interval_seconds - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last_post[channel_id] = time.monotonic()

    def _post(self, channel: str, text: str, blocks: list[dict[str, Any]] | None, metadata: dict[str, Any] | None, thread_ts: str | None = None) -> Posted:
        channel_id = self.channel_id(channel)
        self._pace(channel_id)
        answer = self.client.chat_postMessage(channel=channel_id, text=text, blocks=blocks, metadata=metadata, thread_ts=thread_ts, unfurl_links=False)
        return Posted(str(answer["channel"]), str(answer["ts"]))

    def post_parent(self, channel: str, text: str, blocks: list[dict[str, Any]], metadata: dict[str, Any]) -> Posted:
        """Post an exception's parent message; `metadata` (event_payload with exception_key and occurrence)
        is what `find_parent` recognises it by."""
        return self._post(channel, text, blocks, {"event_type": EXCEPTION_EVENT, "event_payload": metadata})

    def post_notice(self, channel: str, text: str, notification_id: str, blocks: list[dict[str, Any]] | None = None, thread_ts: str | None = None) -> Posted:
        """Post a digest (no thread) or a thread reply, tagged with its notification id for `find_notice`."""
        return self._post(channel, text, blocks, {"event_type": NOTICE_EVENT, "event_payload": {"notification_id": notification_id}}, thread_ts)

    def reply(self, channel: str, thread_ts: str, text: str, blocks: list[dict[str, Any]] | None = None, notification_id: str = "") -> Posted:
        return self.post_notice(channel, text, notification_id, blocks, thread_ts)

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        """chat.update: idempotent, so retried on connection errors like any read."""
        self.client.chat_update(channel=self.channel_id(channel), ts=ts, text=text, blocks=blocks)

    def publish_home(self, user_id: str, blocks: list[dict[str, Any]]) -> str:
        """views.publish: replace the App Home tab of one user (a Slack user id) with these blocks; returns the
        view id. Publishing replaces the whole view, so a retry after a lost answer is harmless."""
        answer = self.client.views_publish(user_id=user_id, view={"type": "home", "blocks": blocks})
        return str((answer.get("view") or {}).get("id", ""))

    def _history(self, channel: str, since: datetime | None, thread_ts: str | None = None) -> list[dict[str, Any]]:
        channel_id = self.channel_id(channel)
        messages: list[dict[str, Any]] = []
        cursor = None
        # `since` is planning time; Slack stamps ts with the wall clock (no lower bound under a frozen clock).
        wall = clock.to_wall(since) if since is not None else None
        oldest = f"{wall.timestamp():.6f}" if wall is not None else None
        for _ in range(_HISTORY_PAGES):
            if thread_ts:
                page = self.client.conversations_replies(channel=channel_id, ts=thread_ts, include_all_metadata=True, limit=200, cursor=cursor, oldest=oldest)
            else:
                page = self.client.conversations_history(channel=channel_id, include_all_metadata=True, limit=200, cursor=cursor, oldest=oldest)
            messages += page.get("messages", [])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return messages

    def find_parent(self, channel: str, exception_key: str, since: datetime | None, occurrence: int | None = None) -> Posted | None:
        """The parent message already posted for this exception occurrence since `since`, if any: matched by
        its metadata, else (a workspace that strips metadata) by the key in its text."""
        channel_id = self.channel_id(channel)
        for message in self._history(channel_id, since):
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") == EXCEPTION_EVENT:
                if payload.get("exception_key") == exception_key and (occurrence is None or int(payload.get("occurrence", 0)) == occurrence):
                    return Posted(channel_id, str(message["ts"]))
            elif not meta and f"`{exception_key}`" in (message.get("text") or "") + str(message.get("blocks") or ""):
                return Posted(channel_id, str(message["ts"]))
        return None

    def find_notice(self, channel: str, notification_id: str, since: datetime | None, thread_ts: str | None = None) -> Posted | None:
        """A digest or thread reply already posted with this notification id (its metadata), if any."""
        channel_id = self.channel_id(channel)
        for message in self._history(channel_id, since, thread_ts):
            meta = message.get("metadata") or {}
            if meta.get("event_type") == NOTICE_EVENT and (meta.get("event_payload") or {}).get("notification_id") == notification_id:
                return Posted(channel_id, str(message["ts"]))
        return None
