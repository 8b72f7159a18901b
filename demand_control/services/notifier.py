"""Notify owners: one Slack parent message per planning exception (medium severity and above) in the owner's
channel, later changes through `chat.update` plus a "what changed" reply in its thread, auto-resolution the
same way, one digest of the low-severity cases a person must act on per channel and day (in the worklist's
order), and the App Home tab of every policy user (`services.app_home`).

No message is ever posted twice (RELIABILITY.md §10): the intent (`slack_messages` row, or a pending
`notifications` row for digests and replies) is committed before the call, its ts after; an intent without
a ts is reconciled against the channel's history (the message metadata names the exception or notice) and
adopted when found. Without a Slack token the same flow prints to the console and records `notifications`
rows (status console). Every post, update, adoption and reply is audited as event type `notification`.
No Dagster import: the `notify_owners` and `replan` ops call `notify_exceptions`.
"""

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, and_, select, update

from demand_control.infra import clock as planning_clock
from demand_control.infra.clock import as_utc
from demand_control.infra.sql import insert_ignoring_conflicts
from demand_control.schema import tables
from demand_control.services.audit import AuditEntry, append, canonical_json
from demand_control.messages.slack import (
    CLOSED_STATES,
    SEVERITY_LEVEL,
    Message,
    change_reply,
    digest_message,
    exception_message,
    is_notified,
    resolved_reply,
)
from demand_control.planning.policy import Policy, load_policy
from demand_control.resources.slack import Posted, SlackNotifier, definitive_refusal, describe
from demand_control.resources.warehouse import Warehouse, to_records
from demand_control.services.app_home import publish_app_homes
from demand_control.services.worklist import party_names, read_worklist
from demand_control.services.advisor.service import accepted_narratives

DEFAULT_CHANNEL = "#planning-exceptions"
# Notices the notifier delivers from the outbox: its own thread replies and digests, and the answers to
# approval clicks the gateway records (kind approval_result).
DELIVERABLE_KINDS: tuple[str, ...] = (
    "exception_update", "exception_resolved", "digest", "approval_result",
    "write_back_result", "write_back_unreconciled", "write_back_dead_letter", "escalation",
    "pending_click_alert",  # a click the sweeper cannot decide, to the operations channel
    "advisor_fallback",  # the optional advisor stepped aside (timeout, error, low acceptance), to the operations channel
)
# Slack's ts and our clock may disagree a little; the reconcile window starts this much before the intent.
_RECONCILE_MARGIN = timedelta(minutes=2)
_IN_CHUNK = 900  # SQLite's bound-parameter budget per IN list


@dataclass
class NotifySummary:
    mode: str  # slack or console
    posted: int = 0  # parent messages posted (or printed)
    adopted: int = 0  # parents or notices found already posted after a lost answer, not posted again
    updated: int = 0  # parents changed through chat.update (or reprinted)
    resolved: int = 0  # of which marked resolved
    replies: int = 0  # thread replies delivered
    digests: int = 0  # low-severity digests delivered
    homes: int = 0  # App Home tabs published (or printed) because what they show changed
    other_notices: int = 0  # e.g. approval results answered in a thread
    unchanged: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def as_metadata(self) -> dict[str, Any]:
        data = asdict(self)
        data["errors"] = "\n".join(self.errors[:20])
        return data


def _sha(*parts: Any) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()


def version_id(exception_key: str, occurrence: int, content_hash: str) -> str:
    """The notifications row of one version of an exception's message (what it showed: its facts)."""
    return f"exception:{_sha(exception_key, occurrence, content_hash)[:40]}"


def reply_id(exception_key: str, occurrence: int, old_hash: str, new_hash: str) -> str:
    return f"reply:{_sha(exception_key, occurrence, old_hash, new_hash)[:40]}"


def digest_id(channel: str, day: str) -> str:
    plain = f"digest:{day}:{channel}"
    return plain if len(plain) <= 80 else f"digest:{day}:{_sha(channel)[:32]}"


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return to_records(frame) if len(frame) else []


def _read_in(warehouse: Warehouse, name: str, column: str, values: Iterable[str], extra: Any = None) -> pd.DataFrame:
    values = sorted(set(values))
    table = warehouse.table(name)
    parts = []
    for start in range(0, len(values), _IN_CHUNK):
        where = table.c[column].in_(values[start : start + _IN_CHUNK])
        parts.append(warehouse.read(name, where=where if extra is None else and_(where, extra)))
    return pd.concat(parts, ignore_index=True) if parts else warehouse.read(name, where=table.c[column].is_(None) & table.c[column].is_not(None))


class _Notifier:
    """One notify run: the warehouse, the Slack resource, the clock and the tally."""

    def __init__(self, warehouse: Warehouse, slack: SlackNotifier, now: datetime, actor: str, log: Callable[[str], None]):
        self.warehouse, self.slack, self.now, self.actor, self.log = warehouse, slack, now, actor, log
        self.summary = NotifySummary(mode="slack" if slack.enabled else "console")

    def _audit(self, conn: Connection, subject: str, payload: Mapping[str, Any]) -> None:
        append(conn, [AuditEntry(self.actor, "notification", subject[:255], dict(payload), self.now)])

    def _fail(self, what: str, error: Exception) -> None:
        self.summary.failed += 1
        self.summary.errors.append(f"{what}: {describe(error)}")
        self.log(f"{what}: {describe(error)}")

    def _version(self, conn: Connection, exc: Mapping[str, Any], channel: str, msg: Message, status: str) -> None:
        key, occurrence = str(exc["exception_key"]), int(exc["occurrence"])
        payload = {"exception_key": key, "occurrence": occurrence, "content_hash": msg.content_hash, "facts": msg.facts, "blocks": msg.blocks}
        conn.execute(insert_ignoring_conflicts(conn, tables.notifications, ["notification_id"]).values(
            notification_id=version_id(key, occurrence, msg.content_hash), kind="exception", channel=channel[:128], subject=key[:255],
            text=msg.text, payload=canonical_json(payload), status=status, created_at=self.now,
            sent_at=None if status == "pending" else self.now,
        ))

    def _mark_version(self, conn: Connection, exc: Mapping[str, Any], content_hash: str, status: str) -> None:
        nid = version_id(str(exc["exception_key"]), int(exc["occurrence"]), content_hash)
        conn.execute(update(tables.notifications).where(tables.notifications.c.notification_id == nid).values(status=status, sent_at=self.now))

    def _old_facts(self, key: str, occurrence: int, content_hash: str) -> dict[str, str] | None:
        table = tables.notifications
        with self.warehouse.engine.connect() as conn:
            payload = conn.execute(select(table.c.payload).where(table.c.notification_id == version_id(key, occurrence, content_hash))).scalar_one_or_none()
        return json.loads(payload).get("facts") if payload else None

    def _set_row(self, conn: Connection, key: str, **values: Any) -> None:
        conn.execute(update(tables.slack_messages).where(tables.slack_messages.c.exception_key == key).values(updated_at=self.now, **values))

    # Parent messages

    def exception(self, exc: Mapping[str, Any], row: Mapping[str, Any] | None, msg: Message) -> None:
        occurrence = int(exc["occurrence"])
        closed = exc.get("state") in CLOSED_STATES
        new_occurrence = row is None or int(row["occurrence"]) != occurrence
        console_only = row is not None and row.get("ts") is None and row["state"] == "console"
        if new_occurrence or (self.slack.enabled and console_only):
            if not closed:  # a condition that cleared before anyone was told needs no message
                self._post_new(exc, row, msg)
            return
        if row.get("ts") is None and row["state"] in ("intent", "failed"):
            if not self.slack.enabled:
                self._post_new(exc, row, msg)
                return
            row = self._reconcile(exc, row, msg, closed)
            if row is None:
                return
        if row["content_hash"] == msg.content_hash:
            self.summary.unchanged += 1
            return
        self._update(exc, row, msg, closed)

    def _post_new(self, exc: Mapping[str, Any], row: Mapping[str, Any] | None, msg: Message) -> None:
        key, occurrence = str(exc["exception_key"]), int(exc["occurrence"])
        channel = self.slack.target(str(exc.get("owner_channel") or DEFAULT_CHANNEL))
        state = "intent" if self.slack.enabled else "console"
        values = {"occurrence": occurrence, "channel": channel[:64], "ts": None, "state": state, "content_hash": msg.content_hash,
                  "created_at": self.now, "updated_at": self.now, "last_error": None}
        sm = tables.slack_messages
        with self.warehouse.engine.begin() as conn:
            if row is None:
                claimed = conn.execute(insert_ignoring_conflicts(conn, sm, ["exception_key"]).values(exception_key=key, **values)).rowcount
            else:
                # Compare-and-set on what we read: a concurrent run that got there first wins, we skip.
                claimed = conn.execute(update(sm).where(and_(sm.c.exception_key == key, sm.c.occurrence == int(row["occurrence"]),
                                                             sm.c.content_hash == row["content_hash"], sm.c.state == row["state"])).values(**values)).rowcount
            if not claimed:
                self.log(f"{key}: another run is notifying it; skipped")
                return
            self._version(conn, exc, channel, msg, "pending" if self.slack.enabled else "console")
            if not self.slack.enabled:
                self._audit(conn, key, {"kind": "parent_posted", "channel": channel, "status": "console", "occurrence": occurrence, "content_hash": msg.content_hash})
        if not self.slack.enabled:
            self.slack.console(channel, msg.text)
            self.summary.posted += 1
            return
        self._post_parent(exc, channel, msg, self.now)

    def _post_parent(self, exc: Mapping[str, Any], channel: str, msg: Message, intent_at: datetime) -> None:
        key, occurrence = str(exc["exception_key"]), int(exc["occurrence"])
        try:
            posted = self.slack.post_parent(channel, msg.text, msg.blocks, {"exception_key": key, "occurrence": occurrence})
        except Exception as error:  # noqa: BLE001 - every failure is recorded on the row; the run goes on
            found = None
            if not definitive_refusal(error):
                try:
                    found = self.slack.find_parent(channel, key, intent_at - _RECONCILE_MARGIN, occurrence)
                except Exception as lookup_error:  # noqa: BLE001
                    self.log(f"{key}: reconcile after a failed post failed too: {lookup_error}")
            if found is None:
                with self.warehouse.engine.begin() as conn:
                    self._set_row(conn, key, state="failed" if definitive_refusal(error) else "intent", last_error=describe(error)[:2000])
                self._fail(f"{key}: post to {channel}", error)
                return
            self._adopt(exc, found, msg.content_hash)
            return
        with self.warehouse.engine.begin() as conn:
            self._set_row(conn, key, state="posted", ts=posted.ts, channel=posted.channel, last_error=None)
            self._mark_version(conn, exc, msg.content_hash, "sent")
            self._audit(conn, key, {"kind": "parent_posted", "channel": posted.channel, "ts": posted.ts, "occurrence": occurrence, "content_hash": msg.content_hash})
        self.summary.posted += 1

    def _adopt(self, exc: Mapping[str, Any], found: Posted, content_hash: str) -> None:
        key = str(exc["exception_key"])
        with self.warehouse.engine.begin() as conn:
            self._set_row(conn, key, state="posted", ts=found.ts, channel=found.channel, last_error=None)
            self._mark_version(conn, exc, content_hash, "sent")
            self._audit(conn, key, {"kind": "parent_adopted", "channel": found.channel, "ts": found.ts, "occurrence": int(exc["occurrence"]), "content_hash": content_hash})
        self.summary.adopted += 1
        self.log(f"{key}: adopted the message already posted ({found.channel} {found.ts}) instead of posting again")

    def _reconcile(self, exc: Mapping[str, Any], row: Mapping[str, Any], msg: Message, closed: bool) -> Mapping[str, Any] | None:
        """An intent without a ts: the earlier post may have landed. Adopt it if so (then compare contents as
        usual), else post now. Returns the row to continue with, or None when done."""
        key = str(exc["exception_key"])
        intent_at = as_utc(row["created_at"]) or self.now
        try:
            found = self.slack.find_parent(str(row["channel"]), key, intent_at - _RECONCILE_MARGIN, int(row["occurrence"]))
        except Exception as error:  # noqa: BLE001
            self._fail(f"{key}: reconcile in {row['channel']}", error)
            return None
        if found is not None:
            self._adopt(exc, found, str(row["content_hash"]))
            return {**row, "ts": found.ts, "channel": found.channel, "state": "posted"}
        if closed:
            # Never posted and already resolved: record that, so later runs stop looking.
            with self.warehouse.engine.begin() as conn:
                self._set_row(conn, key, state="failed", content_hash=msg.content_hash, last_error="resolved before its message was posted")
            return None
        with self.warehouse.engine.begin() as conn:
            self._set_row(conn, key, state="intent", content_hash=msg.content_hash)
            self._version(conn, exc, str(row["channel"]), msg, "pending")
        self._post_parent(exc, str(row["channel"]), msg, intent_at)
        return None

    def _update(self, exc: Mapping[str, Any], row: Mapping[str, Any], msg: Message, closed: bool) -> None:
        key, occurrence = str(exc["exception_key"]), int(exc["occurrence"])
        channel, ts = str(row["channel"]), row.get("ts")
        to_slack = self.slack.enabled and ts is not None
        if to_slack:
            try:
                self.slack.update(channel, str(ts), msg.text, msg.blocks)
            except Exception as error:  # noqa: BLE001 - chat.update is idempotent: the next run repeats it
                with self.warehouse.engine.begin() as conn:
                    self._set_row(conn, key, last_error=describe(error)[:2000])
                self._fail(f"{key}: update in {channel}", error)
                return
        old_hash = str(row["content_hash"])
        text = resolved_reply(exc) if closed else change_reply(self._old_facts(key, occurrence, old_hash), msg.facts)
        sm = tables.slack_messages
        with self.warehouse.engine.begin() as conn:
            claimed = conn.execute(update(sm).where(and_(sm.c.exception_key == key, sm.c.content_hash == old_hash))
                                   .values(content_hash=msg.content_hash, updated_at=self.now, last_error=None)).rowcount
            if not claimed:
                return
            self._version(conn, exc, channel, msg, "sent" if to_slack else "console")
            kind = "exception_resolved" if closed else "exception_update"
            conn.execute(insert_ignoring_conflicts(conn, tables.notifications, ["notification_id"]).values(
                notification_id=reply_id(key, occurrence, old_hash, msg.content_hash), kind=kind, channel=channel[:128], subject=key[:255],
                text=text, payload=canonical_json({"channel": channel, "thread_ts": ts, "exception_key": key, "occurrence": occurrence,
                                                   "old_hash": old_hash, "new_hash": msg.content_hash}),
                status="pending", created_at=self.now,
            ))
            self._audit(conn, key, {"kind": "parent_updated", "channel": channel, "ts": ts, "status": "sent" if to_slack else "console",
                                    "occurrence": occurrence, "old_hash": old_hash, "content_hash": msg.content_hash, "resolved": closed})
        if not to_slack:
            self.slack.console(channel, "(updated) " + msg.text)
        self.summary.updated += 1
        self.summary.resolved += int(closed)

    # Digests and the notice outbox

    def queue_digests(self, lows: list[dict[str, Any]], currency: str, names: Mapping[str, str]) -> None:
        """One digest per channel of the day; `lows` in the worklist's order, which each digest keeps."""
        by_channel: dict[str, list[dict[str, Any]]] = {}
        for exc in lows:
            by_channel.setdefault(self.slack.target(str(exc.get("owner_channel") or DEFAULT_CHANNEL)), []).append(exc)
        day = self.now.date()
        for channel, items in sorted(by_channel.items()):
            msg = digest_message(channel, day, items, currency, names)
            with self.warehouse.engine.begin() as conn:
                conn.execute(insert_ignoring_conflicts(conn, tables.notifications, ["notification_id"]).values(
                    notification_id=digest_id(channel, day.isoformat()), kind="digest", channel=channel[:128], subject=f"digest {day.isoformat()}",
                    text=msg.text, payload=canonical_json({"channel": channel, "blocks": msg.blocks, "exception_keys": [str(e["exception_key"]) for e in items]}),
                    status="pending", created_at=self.now,
                ))

    def drain(self) -> None:
        """Deliver every pending notice (thread replies, digests, approval results), oldest first."""
        nt = tables.notifications
        pending = self.warehouse.read("notifications", where=and_(nt.c.status == "pending", nt.c.kind.in_(DELIVERABLE_KINDS)))
        for notice in _records(pending.sort_values(["created_at", "notification_id"])):
            self._deliver(notice)

    def _deliver(self, notice: Mapping[str, Any]) -> None:
        nid, kind = str(notice["notification_id"]), str(notice["kind"])
        payload = json.loads(notice["payload"]) if notice.get("payload") else {}
        channel, thread_ts = str(payload.get("channel") or notice["channel"]), payload.get("thread_ts")
        created = as_utc(notice["created_at"]) or self.now
        posted: Posted | None = None
        status = "console"
        if not self.slack.enabled:
            self.slack.console(channel, str(notice["text"]), thread=thread_ts or (str(payload["exception_key"]) if payload.get("exception_key") else None))
        else:
            status = "sent"
            try:
                # Recorded by an earlier run: it may have been posted with the answer lost.
                if created < self.now:
                    posted = self.slack.find_notice(channel, nid, created - _RECONCILE_MARGIN, thread_ts)
                    if posted is not None:
                        self.summary.adopted += 1
                if posted is None:
                    posted = self.slack.post_notice(channel, str(notice["text"]), nid, payload.get("blocks"), thread_ts)
            except Exception as error:  # noqa: BLE001
                if definitive_refusal(error):
                    with self.warehouse.engine.begin() as conn:
                        conn.execute(update(tables.notifications).where(tables.notifications.c.notification_id == nid).values(status="failed"))
                self._fail(f"{kind} {nid} to {channel}", error)
                return
        with self.warehouse.engine.begin() as conn:
            claimed = conn.execute(update(tables.notifications).where(and_(tables.notifications.c.notification_id == nid, tables.notifications.c.status == "pending"))
                                   .values(status=status, sent_at=self.now)).rowcount
            if claimed:
                self._audit(conn, str(notice["subject"]), {"kind": kind, "notification_id": nid, "channel": posted.channel if posted else channel,
                                                           "thread_ts": thread_ts, "ts": posted.ts if posted else None, "status": status})
        if kind == "digest":
            self.summary.digests += 1
        elif kind in ("exception_update", "exception_resolved"):
            self.summary.replies += 1
        else:
            self.summary.other_notices += 1


def _severity_order(exc: Mapping[str, Any]) -> tuple[int, float, str]:
    money = exc.get("money_at_risk")
    return (SEVERITY_LEVEL.get(str(exc.get("severity")), 3), -(float(money) if money is not None else 0.0), str(exc["exception_key"]))


def notify_exceptions(warehouse: Warehouse, notifier: SlackNotifier, now: datetime, keys: list[str] | None = None,
                      actor: str = "notifier", log: Callable[[str], None] = print, policy: Policy | None = None) -> NotifySummary:
    """Bring Slack (or the console) in line with the exception tables; `keys` limits it to those exceptions
    (the replan path). Low-severity digests go out only on a full run (keys None): a scoped run would send a
    channel's one digest of the day with a fraction of its exceptions. Every run then refreshes the App Home
    tabs whose worklist changed. `policy`: for the currency and the App Home's people (default: the policy
    file the environment names, as the planning runs read it)."""
    now = as_utc(now) or planning_clock.now()
    policy = load_policy() if policy is None else policy
    names = party_names(warehouse)
    if keys is None:
        active = warehouse.read("planning_exceptions")
        rows = warehouse.read("slack_messages")
    else:
        active = _read_in(warehouse, "planning_exceptions", "exception_key", keys)
        rows = _read_in(warehouse, "slack_messages", "exception_key", keys)
    active_records = {str(r["exception_key"]): r for r in _records(active)}
    row_records = {str(r["exception_key"]): r for r in _records(rows)}

    # Exceptions that left the snapshot but have a message: closed (auto-resolved or resolved) since.
    gone = [k for k in row_records if k not in active_records]
    closed = {str(r["exception_key"]): r for r in _records(_read_in(warehouse, "exception_lifecycle", "exception_key", gone)) if r["state"] in CLOSED_STATES}
    closed = {k: r for k, r in closed.items() if int(r["occurrence"]) == int(row_records[k]["occurrence"])}

    # A case reaches Slack only when a person must act on it (planning.worklist); cases ranked before that
    # column existed count as such. A case already posted is still updated and closed in its thread.
    for_person = {k: r.get("for_person") is None or bool(r.get("for_person")) for k, r in active_records.items()}
    tracked = [r for k, r in active_records.items() if (for_person[k] and is_notified(r.get("severity"))) or k in row_records] + list(closed.values())
    tracked.sort(key=_severity_order)
    tracked_keys = [str(r["exception_key"]) for r in tracked]
    actions = _read_in(warehouse, "recommended_actions", "exception_key", tracked_keys, extra=tables.recommended_actions.c.rank == 1)
    best = {(str(a["exception_key"]), int(a["occurrence"])): a for a in _records(actions)}
    skus = {str(r["sku"]) for r in tracked if r.get("sku")}
    scenarios: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in _records(_read_in(warehouse, "allocation_scenarios", "sku", skus)):
        scenarios.setdefault((str(s["sku"]), str(s["location_id"])), []).append(s)

    # The advisor's grounded narrative of a case whose figures have not moved since replaces the template
    # sentence (none while the advisor is off: its table is empty).
    narratives = accepted_narratives(warehouse, tracked_keys)
    run = _Notifier(warehouse, notifier, now, actor, log)
    for exc in tracked:
        key = str(exc["exception_key"])
        is_closed = exc.get("state") in CLOSED_STATES
        if not is_closed and key in narratives:
            exc = {**exc, "sentence": narratives[key]}
        action = None if is_closed else best.get((key, int(exc["occurrence"])))
        shown = [] if is_closed else scenarios.get((str(exc.get("sku")), str(exc.get("location_id"))), [])
        run.exception(exc, row_records.get(key), exception_message(exc, action, shown, policy.currency, names))
    cases = read_worklist(warehouse)
    if keys is None:
        # The digest lists the worklist's low-severity cases (those without a parent message), in its order.
        lows = [r for r in _records(cases) if not is_notified(r.get("severity")) and str(r["exception_key"]) not in row_records]
        run.queue_digests(lows, policy.currency, names)
    run.drain()
    homes = publish_app_homes(warehouse, notifier, policy, now, actor, log, cases=cases, names=names)
    run.summary.homes = homes.published
    run.summary.failed += homes.failed
    run.summary.errors += homes.errors
    return run.summary
