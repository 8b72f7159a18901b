"""The ERP outbox: drain it into the ERP, exactly once per approved action (no Dagster: the `write_back`
job and the demo call `drain_outbox`, the outbox sensor `due_rows`).

`drain_outbox` claims due rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL, a compare-and-set UPDATE on SQLite,
so two workers never take the same row), applies each through the ERP resource — whose writers look the
action id up before creating, so a replay or a retry after a lost answer finds the first write — and marks a
row `done` only after the ERP confirmed it, with what the read-back found. Around that:
- transport failures (refused or dropped connections, timeouts, 5xx, after the client's own in-call retries)
  reschedule the row with exponential backoff and jitter, up to `max_attempts`, then dead-letter it;
- business errors (Tryton `UserError`, an invalid action) dead-letter the row at once with the ERP's message;
- a circuit breaker stops calling an ERP that keeps failing: the rest of the run's rows go back to the queue
  untouched (no attempt counted) for after the cool-down, when one row probes and a success closes it;
- rows left `in_progress` by a killed run count as due again once their lease has expired.
Every write, failed attempt and dead letter is audited; dead letters and read-back differences alert the
action's owner through the `notifications` table (RELIABILITY.md §11–14, §16–17).
"""

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, Literal

import httpx
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Connection, and_, func, or_, select, update
from tenacity import wait_exponential_jitter

from demand_control.infra import clock as planning_clock
from demand_control.infra import settings
from demand_control.infra.circuit import CircuitBreaker, CircuitState, breaker_for
from demand_control.infra.clock import as_utc
from demand_control.infra.sql import insert_ignoring_conflicts
from demand_control.messages.write_back import dead_letter_text, differences_text, result_text, unreconciled_text
from demand_control.schema import tables
from demand_control.services.audit import AuditEntry, append
from demand_control.resources.erp.base import Erp, ErpAction, WriteOutcome
from demand_control.resources.erp.client import TrytonTransportError, TrytonUnavailableError, TrytonUserError
from demand_control.resources.warehouse import Warehouse

DEAD_LETTER_KIND = "write_back_dead_letter"
UNRECONCILED_KIND = "write_back_unreconciled"
RESULT_KIND = "write_back_result"  # the ERP result, as a reply in the exception's Slack thread
DUE_STATUSES = ("pending", "failed")

ACTION_ADAPTER: TypeAdapter[ErpAction] = TypeAdapter(ErpAction)
Failure = Literal["business", "transport", "error"]


class InvalidOutboxRow(ValueError):
    """The outbox row itself is wrong (its payload is not an ERP action, or names another action id)."""


@dataclass(frozen=True)
class WriteBackSettings:
    max_attempts: int = 5  # ERP attempts per action before it is dead-lettered
    backoff_seconds: float = 30.0  # first retry after about this long, doubling per attempt ...
    backoff_max_seconds: float = 3600.0  # ... up to this
    backoff_jitter_seconds: float = 30.0  # plus up to this much at random, so retries do not arrive in step
    lease_seconds: float = 300.0  # an in_progress row older than this belongs to a dead run: due again
    breaker_failures: int = 3  # consecutive transport failures that open the circuit
    breaker_cooldown_seconds: float = 60.0  # how long an open circuit refuses calls before one probe
    claim_batch: int = 20  # rows claimed per transaction; an interrupted run strands at most this many
    max_run_seconds: float = 600.0  # stop claiming after this long; the sensor asks for the next run
    fallback_channel: str = field(default_factory=settings.ops_channel)

    def backoff(self, attempts: int) -> timedelta:
        """Delay before attempt `attempts + 1`: tenacity's exponential backoff with jitter."""
        wait = wait_exponential_jitter(multiplier=self.backoff_seconds, max=self.backoff_max_seconds, jitter=self.backoff_jitter_seconds)
        return timedelta(seconds=wait(SimpleNamespace(attempt_number=max(1, attempts))))  # type: ignore[arg-type]


@dataclass
class DrainSummary:
    claimed: int = 0  # rows taken from the queue and tried
    written: int = 0  # marked done (ERP confirmed)
    created: int = 0  # of those, records the ERP created now (the rest were found from an earlier attempt)
    unreconciled: int = 0  # done, but the read-back differs from the action
    retry_scheduled: int = 0  # failed, will be retried after a backoff
    dead_lettered: int = 0
    deferred: int = 0  # never tried in this run (circuit open): back in the queue, no attempt counted
    lease_lost: int = 0  # the row's lease expired and another worker took it before we finished
    circuit: str = CircuitState.CLOSED.value
    stopped: str = ""  # why the drain ended before the queue was empty, if it did
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)  # a sample of the failures, for the run log

    def as_metadata(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "errors"}


@dataclass(frozen=True)
class _Claim:
    action_id: str
    kind: str
    payload: str
    attempts: int  # including the attempt this claim is for
    prior_status: str
    prior_next_attempt_at: datetime | None
    claimed_at: datetime  # the row's updated_at while we hold it: the fencing token of our lease


def classify(exc: BaseException) -> Failure:
    """business: the action is wrong, retrying cannot help; transport: the ERP could not be reached or lost
    the answer (the write may or may not have happened — the retry's look-up finds out); error: anything else
    (an ERP-side fault), retried with backoff but not held against the ERP's availability."""
    if isinstance(exc, (TrytonUserError, ValidationError, InvalidOutboxRow)):
        return "business"
    if isinstance(exc, (TrytonUnavailableError, TrytonTransportError, httpx.TransportError, ConnectionError, TimeoutError)):
        return "transport"
    return "error"


def due_condition(cutoff: datetime, lease_seconds: float) -> Any:
    """Rows to write now: pending or failed and due, or in_progress with an expired lease (a killed run's)."""
    o = tables.erp_outbox
    return or_(
        and_(o.c.status.in_(DUE_STATUSES), or_(o.c.next_attempt_at.is_(None), o.c.next_attempt_at <= cutoff)),
        and_(o.c.status == "in_progress", o.c.updated_at <= cutoff - timedelta(seconds=lease_seconds)),
    )


def due_order() -> list[Any]:
    o = tables.erp_outbox
    return [func.coalesce(o.c.next_attempt_at, o.c.created_at), o.c.created_at, o.c.action_id]


def claim_rows(conn: Connection, cutoff: datetime, stamp: datetime, count: int, lease_seconds: float) -> list[_Claim]:
    """Take up to `count` due rows for this worker (status in_progress, attempts + 1), in the caller's
    transaction. PostgreSQL locks the candidates with SKIP LOCKED, so a concurrent worker picks others; on
    SQLite each row is taken by a compare-and-set on its status, attempts and updated_at, so of two workers
    that read the same candidate only one update matches."""
    return take_rows(conn, due_candidates(conn, cutoff, count, lease_seconds), stamp)


def due_candidates(conn: Connection, cutoff: datetime, count: int, lease_seconds: float) -> list[Any]:
    o = tables.erp_outbox
    query = (
        select(o.c.action_id, o.c.kind, o.c.payload, o.c.status, o.c.attempts, o.c.next_attempt_at, o.c.updated_at)
        .where(due_condition(cutoff, lease_seconds))
        .order_by(*due_order())
        .limit(count)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(conn.execute(query).all())


def take_rows(conn: Connection, candidates: list[Any], stamp: datetime) -> list[_Claim]:
    o = tables.erp_outbox
    claims = []
    for row in candidates:
        taken = conn.execute(
            update(o)
            .where(o.c.action_id == row.action_id, o.c.status == row.status, o.c.attempts == row.attempts, o.c.updated_at == row.updated_at)
            .values(status="in_progress", attempts=row.attempts + 1, updated_at=stamp)
        ).rowcount
        if taken == 1:
            # A row whose lease expired was in_progress: it goes back as failed if it ever fails again.
            prior = row.status if row.status in DUE_STATUSES else ("failed" if row.attempts else "pending")
            claims.append(_Claim(row.action_id, row.kind, row.payload, row.attempts + 1, prior, as_utc(row.next_attempt_at), stamp))
    return claims


def _owned(claim: _Claim) -> Any:
    o = tables.erp_outbox
    return and_(o.c.action_id == claim.action_id, o.c.status == "in_progress", o.c.updated_at == claim.claimed_at)


def _release(conn: Connection, claims: list[_Claim], not_before: datetime, stamp: datetime) -> int:
    """Put claimed rows that were never tried back in the queue as they were, due no earlier than `not_before`."""
    o = tables.erp_outbox
    released = 0
    for claim in claims:
        next_at = max(claim.prior_next_attempt_at or not_before, not_before)
        released += conn.execute(
            update(o).where(_owned(claim))
            .values(status=claim.prior_status, attempts=claim.attempts - 1, next_attempt_at=next_at, updated_at=stamp)
        ).rowcount
    return released


def defer_due(warehouse: Warehouse, cutoff: datetime, not_before: datetime, lease_seconds: float) -> int:
    """While the circuit is open, push every due row to the end of the cool-down without trying it (no attempt
    counted), so the sensor does not keep asking for runs that cannot write. A dead run's expired claim goes
    back as failed: its attempt was made, or may have been."""
    o = tables.erp_outbox
    waiting = and_(o.c.status.in_(DUE_STATUSES), or_(o.c.next_attempt_at.is_(None), o.c.next_attempt_at <= cutoff))
    abandoned = and_(o.c.status == "in_progress", o.c.updated_at <= cutoff - timedelta(seconds=lease_seconds))
    with warehouse.engine.begin() as conn:
        deferred = conn.execute(update(o).where(waiting).values(next_attempt_at=not_before, updated_at=cutoff)).rowcount
        deferred += conn.execute(
            update(o).where(abandoned).values(status="failed", next_attempt_at=not_before, updated_at=cutoff)
        ).rowcount
    return deferred


def _notice_id(prefix: str, action_id: str) -> str:
    ident = f"{prefix}:{action_id}"
    return ident if len(ident) <= 80 else f"{prefix}:{hashlib.sha256(action_id.encode()).hexdigest()[:40]}"


def _insert_notice(conn: Connection, notice: dict[str, Any]) -> None:
    # One alert per action and kind: a replayed dead letter does not alert twice.
    conn.execute(insert_ignoring_conflicts(conn, tables.notifications, ["notification_id"]).values(**notice))


def _owner(conn: Connection, action_id: str, fallback: str) -> dict[str, Any]:
    """Who hears about the action: its owner's channel, and the exception's Slack thread when there is one
    (the notifier posts a notice with a `thread_ts` as a reply in that thread)."""
    r, m = tables.recommended_actions, tables.slack_messages
    row = conn.execute(
        select(r.c.owner_channel, r.c.owner_team, r.c.exception_key, m.c.channel.label("thread_channel"), m.c.ts)
        .select_from(r.outerjoin(m, m.c.exception_key == r.c.exception_key))
        .where(r.c.action_id == action_id)
    ).first()
    if row is None:
        return {"channel": fallback, "owner_team": None, "exception_key": None}
    owner = {"channel": row.owner_channel or fallback, "owner_team": row.owner_team, "exception_key": row.exception_key}
    if row.ts:
        owner.update(channel=row.thread_channel, thread_ts=row.ts)
    return owner


class _Drain:
    def __init__(self, warehouse: Warehouse, erp: Erp, settings: WriteBackSettings, breaker: CircuitBreaker,
                 actor: str, clock: Callable[[], datetime], log: Callable[[str], None]) -> None:
        self.warehouse, self.erp, self.settings, self.breaker = warehouse, erp, settings, breaker
        self.actor, self.clock, self.log = actor, clock, log
        self.summary = DrainSummary()
        self.cutoff = self.clock()

    def stamp(self, cutoff: datetime | None = None) -> datetime:
        # Never before the cutoff: a drain run "as of" a later time must not schedule retries in its past.
        return max(self.clock(), cutoff or self.cutoff)

    def probe_time(self, cutoff: datetime) -> datetime:
        return self.stamp(cutoff) + timedelta(seconds=self.breaker.seconds_until_probe())

    def run(self, cutoff: datetime, limit: int) -> DrainSummary:
        self.cutoff = cutoff
        started = time.monotonic()
        seen: set[str] = set()
        s = self.summary
        while s.claimed < limit:
            if time.monotonic() - started > self.settings.max_run_seconds:
                s.stopped = f"time budget of {self.settings.max_run_seconds:g} s spent"
                break
            state = self.breaker.state
            if state is CircuitState.OPEN:
                s.deferred += defer_due(self.warehouse, cutoff, self.probe_time(cutoff), self.settings.lease_seconds)
                s.stopped = f"circuit open: ERP calls paused for {self.breaker.seconds_until_probe():.0f} s"
                break
            # Half-open: claim only the probe, so nothing else is taken while we learn whether the ERP is back.
            batch = 1 if state is CircuitState.HALF_OPEN else min(self.settings.claim_batch, limit - s.claimed)
            with self.warehouse.engine.begin() as conn:
                claims = claim_rows(conn, cutoff, self.stamp(cutoff), batch, self.settings.lease_seconds)
            if not claims:
                break
            if any(c.action_id in seen for c in claims):
                # Only possible when retries are scheduled at or before the cutoff; never loop on them.
                with self.warehouse.engine.begin() as conn:
                    _release(conn, claims, self.stamp(cutoff), self.stamp(cutoff))
                s.stopped = "every due row tried once in this run"
                break
            for i, claim in enumerate(claims):
                seen.add(claim.action_id)
                action = self._parse(claim)
                if action is None:
                    continue
                if not self.breaker.allow():
                    with self.warehouse.engine.begin() as conn:
                        s.deferred += _release(conn, claims[i:], self.probe_time(cutoff), self.stamp(cutoff))
                    break
                s.claimed += 1
                self._attempt(claim, action)
        s.circuit = self.breaker.state.value
        if s.circuit == CircuitState.OPEN.value and not s.stopped:
            s.stopped = "circuit open"
        s.seconds = round(time.monotonic() - started, 3)
        return s

    def _parse(self, claim: _Claim) -> ErpAction | None:
        try:
            action = ACTION_ADAPTER.validate_json(claim.payload)
            if action.action_id != claim.action_id:
                raise InvalidOutboxRow(
                    f"payload is for action {action.action_id!r}, the row for {claim.action_id!r}: the ERP record "
                    "would carry the wrong idempotency key"
                )
            return action
        except (ValidationError, InvalidOutboxRow) as exc:
            self.summary.claimed += 1
            self._dead_letter(claim, f"invalid action: {exc}", "business")
            return None

    def _attempt(self, claim: _Claim, action: ErpAction) -> None:
        try:
            outcome = self.erp.apply(action)
        except Exception as exc:  # noqa: BLE001 — every failure is classified and recorded on the row
            kind = classify(exc)
            if kind == "transport":
                self.breaker.record_failure()
            elif kind == "business":
                self.breaker.record_success()  # the ERP answered: it is up
            else:
                self.breaker.release_probe()
            message = f"{type(exc).__name__}: {exc}"
            if len(self.summary.errors) < 20:
                self.summary.errors.append(f"{claim.action_id}: {message}")
            if kind == "business":
                self._dead_letter(claim, message, kind)
            elif claim.attempts >= self.settings.max_attempts:
                self._dead_letter(claim, f"gave up after {claim.attempts} attempts: {message}", kind)
            else:
                self._schedule_retry(claim, message, kind)
            return
        self.breaker.record_success()
        self._done(claim, outcome)

    def _done(self, claim: _Claim, outcome: WriteOutcome) -> None:
        o, s = tables.erp_outbox, self.summary
        stamp = self.stamp()
        differences = differences_text(outcome)
        with self.warehouse.engine.begin() as conn:
            marked = conn.execute(
                update(o).where(_owned(claim)).values(
                    status="done", next_attempt_at=None, last_error=differences or None, erp_model=outcome.model,
                    erp_record_ids=",".join(map(str, outcome.record_ids)), reconciled=outcome.reconciled, updated_at=stamp,
                )
            ).rowcount
            if not marked:
                s.lease_lost += 1
                self.log(f"{claim.action_id}: lease lost while writing (another worker took the row); its write finds ours")
                return
            append(conn, [AuditEntry(self.actor, "erp_write", claim.action_id, {
                "kind": outcome.kind, "erp_model": outcome.model, "record_ids": list(outcome.record_ids),
                "created": outcome.created, "reconciled": outcome.reconciled, "attempt": claim.attempts,
                "differences": [d.model_dump(mode="json") for d in outcome.differences], "payload": json.loads(claim.payload),
            }, stamp)])
            owner = _owner(conn, claim.action_id, self.settings.fallback_channel)
            if owner["exception_key"] is not None:
                _insert_notice(conn, {
                    "notification_id": _notice_id("wb-done", claim.action_id), "kind": RESULT_KIND,
                    "channel": owner["channel"], "subject": claim.action_id,
                    "text": result_text(claim.kind, claim.payload, outcome),
                    "payload": json.dumps({**owner, "action_id": claim.action_id, "erp_model": outcome.model,
                                           "record_ids": list(outcome.record_ids), "created": outcome.created,
                                           "reconciled": outcome.reconciled}),
                    "status": "pending", "created_at": stamp,
                })
            if differences:
                _insert_notice(conn, {
                    "notification_id": _notice_id("wb-diff", claim.action_id), "kind": UNRECONCILED_KIND,
                    "channel": owner["channel"], "subject": claim.action_id,
                    "text": unreconciled_text(claim.action_id, claim.kind, claim.payload, outcome),
                    "payload": json.dumps({**owner, "action_id": claim.action_id, "erp_model": outcome.model,
                                           "record_ids": list(outcome.record_ids), "differences": differences}),
                    "status": "pending", "created_at": stamp,
                })
                s.unreconciled += 1
        s.written += 1
        s.created += int(outcome.created)

    def _schedule_retry(self, claim: _Claim, message: str, kind: Failure) -> None:
        o = tables.erp_outbox
        stamp = self.stamp()
        next_at = stamp + self.settings.backoff(claim.attempts)
        if self.breaker.state is CircuitState.OPEN:
            next_at = max(next_at, stamp + timedelta(seconds=self.breaker.seconds_until_probe()))
        with self.warehouse.engine.begin() as conn:
            marked = conn.execute(
                update(o).where(_owned(claim)).values(status="failed", next_attempt_at=next_at, last_error=message[:2000], updated_at=stamp)
            ).rowcount
            if marked:
                append(conn, [AuditEntry(self.actor, "erp_write_failed", claim.action_id, {
                    "failure": kind, "error": message, "attempt": claim.attempts, "next_attempt_at": next_at,
                }, stamp)])
        if marked:
            self.summary.retry_scheduled += 1
        else:
            self.summary.lease_lost += 1

    def _dead_letter(self, claim: _Claim, message: str, kind: Failure) -> None:
        o = tables.erp_outbox
        stamp = self.stamp()
        with self.warehouse.engine.begin() as conn:
            marked = conn.execute(
                update(o).where(_owned(claim))
                .values(status="dead_letter", next_attempt_at=None, last_error=message[:2000], updated_at=stamp)
            ).rowcount
            if not marked:
                self.summary.lease_lost += 1
                return
            owner = _owner(conn, claim.action_id, self.settings.fallback_channel)
            _insert_notice(conn, {
                "notification_id": _notice_id("wb-dead", claim.action_id), "kind": DEAD_LETTER_KIND,
                "channel": owner["channel"], "subject": claim.action_id,
                "text": dead_letter_text(claim.action_id, claim.kind, claim.payload, kind, message),
                "payload": json.dumps({**owner, "action_id": claim.action_id, "failure": kind, "attempts": claim.attempts,
                                       "error": message}),
                "status": "pending", "created_at": stamp,
            })
            append(conn, [AuditEntry(self.actor, "erp_dead_letter", claim.action_id, {
                "failure": kind, "error": message, "attempts": claim.attempts, "channel": owner["channel"],
                "payload": json.loads(claim.payload) if _is_json(claim.payload) else claim.payload,
            }, stamp)])
        self.summary.dead_lettered += 1


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


def erp_breaker(erp: Erp, settings: WriteBackSettings) -> CircuitBreaker:
    """This process's breaker for this ERP (shared by the runs a warm worker executes)."""
    return breaker_for(f"erp:{erp.describe()}", settings.breaker_failures, settings.breaker_cooldown_seconds)


def drain_outbox(
    warehouse: Warehouse,
    erp: Erp,
    now: datetime | None = None,
    limit: int = 500,
    settings: WriteBackSettings | None = None,
    *,
    breaker: CircuitBreaker | None = None,
    actor: str = "write_back",
    clock: Callable[[], datetime] | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> DrainSummary:
    """Write up to `limit` due outbox rows (due at `now`, default the current time) to the ERP; see the module
    docstring for what happens to each. Safe to run concurrently with another drain of the same outbox."""
    settings = settings or WriteBackSettings()
    clock = clock or planning_clock.now
    cutoff = as_utc(now) or clock()
    warehouse.ensure_schema()  # the drain works on the engine directly
    drain = _Drain(warehouse, erp, settings, breaker or erp_breaker(erp, settings), actor, clock, log)
    return drain.run(cutoff, limit)


def due_rows(
    warehouse: Warehouse, now: datetime, lease_seconds: float = WriteBackSettings.lease_seconds, page: int = 1000
) -> tuple[int, list[tuple]]:
    """How many rows are due, and the first `page` of them in drain order as (action_id, status, attempts,
    updated_at): what the sensor fingerprints."""
    o = tables.erp_outbox
    warehouse.ensure_schema()  # counted on the engine directly
    condition = due_condition(now, lease_seconds)
    with warehouse.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(o).where(condition)).scalar_one()
        head = conn.execute(
            select(o.c.action_id, o.c.status, o.c.attempts, o.c.updated_at).where(condition).order_by(*due_order()).limit(page)
        ).all()
    return int(count), [tuple(r) for r in head]
