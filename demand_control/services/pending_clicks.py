"""The pending-click sweeper (RELIABILITY.md §7): a click the gateway stored but could not decide (the policy
file was invalid, the database went away mid-decision, the gateway stopped) is decided later through the same
`approvals.decide`, with a doubling backoff per click, and the operations channel hears once when one keeps
failing. No Dagster import: the sensor and op in `sensors/` and `ops/` wrap it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, update

from demand_control.infra import clock, settings
from demand_control.infra.clock import as_utc
from demand_control.infra.sql import insert_ignoring_conflicts
from demand_control.planning.policy import Policy
from demand_control.schema.tables import (
    approval_clicks,
    notifications,
)
from demand_control.services import audit
from demand_control.services.approvals import decide

# The pending-click sweeper (RELIABILITY.md §7): a click the gateway stored but could not decide (the policy
# file was invalid, the database went away mid-decision, the gateway stopped) is decided later, with backoff,
# and the operations channel hears once when one keeps failing.
PENDING_CLICK_ALERT_AFTER_ENV = "DEMAND_CONTROL_PENDING_CLICK_ALERT_AFTER"


DEFAULT_PENDING_CLICK_ALERT_AFTER = 5


PENDING_CLICK_ALERT_KIND = "pending_click_alert"


def pending_click_alert_after(attempts: int | None = None) -> int:
    """Failed attempts after which a pending click is reported: the argument, else
    $DEMAND_CONTROL_PENDING_CLICK_ALERT_AFTER, else 5."""
    if attempts is None:
        attempts = int(settings.env_number(PENDING_CLICK_ALERT_AFTER_ENV, DEFAULT_PENDING_CLICK_ALERT_AFTER, int, "a whole number of attempts"))
    if attempts < 1:
        raise ValueError(f"pending-click alert_after must be at least 1 attempt, got {attempts!r}")
    return attempts


@dataclass(frozen=True)
class SweepSettings:
    alert_after: int = field(default_factory=pending_click_alert_after)  # failed attempts before ops hears
    # A click younger than this is still the gateway's own background decision: the sweeper leaves it be.
    grace_seconds: float = 30.0
    backoff_seconds: float = 30.0  # wait after the first failure, doubling per failure
    backoff_max_seconds: float = 3600.0
    limit: int = 200  # clicks per sweep

    def backoff(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.backoff_max_seconds, self.backoff_seconds * 2 ** max(0, attempts - 1)))


@dataclass
class SweepSummary:
    due: int = 0
    decided: int = 0  # outcome decided
    refused: int = 0
    duplicate: int = 0
    failed: int = 0  # deciding raised: the click stays pending, retried after its backoff
    alerted: int = 0  # clicks reported to the operations channel by this sweep
    errors: list[str] = field(default_factory=list)

    def as_metadata(self) -> dict[str, Any]:
        return {"due": self.due, "decided": self.decided, "refused": self.refused, "duplicate": self.duplicate,
                "failed": self.failed, "alerted": self.alerted, "errors": "\n".join(self.errors[:20])}


def _due_pending(now: datetime, sweep: SweepSettings) -> Any:
    c = approval_clicks.c
    return and_(c.processed_at.is_(None), c.received_at <= now - timedelta(seconds=sweep.grace_seconds),
                or_(c.next_decide_at.is_(None), c.next_decide_at <= now))


def due_pending_clicks(engine: Engine, now: datetime | None = None, sweep: SweepSettings | None = None) -> list[tuple[int, int]]:
    """(click_id, failed attempts) of the stored clicks nobody decided that the sweeper should try now,
    oldest first: past the gateway's grace period and past their backoff."""
    now, sweep = as_utc(now) or clock.now(), sweep or SweepSettings()
    c = approval_clicks.c
    with engine.connect() as conn:
        found = conn.execute(select(c.click_id, func.coalesce(c.decide_attempts, 0)).where(_due_pending(now, sweep))
                             .order_by(c.click_id).limit(sweep.limit)).all()
    return [(int(click_id), int(attempts)) for click_id, attempts in found]


def pending_click_alert(click: Any, attempts: int, error: str, channel: str, now: datetime) -> dict[str, Any]:
    """The `notifications` row telling the operations channel that a click cannot be decided (one per click)."""
    text = (f"Click {click.click_id} ({click.decision} {click.action_id} by {click.user_id} via {click.via}, "
            f"received {as_utc(click.received_at).isoformat()}) is still undecided after {attempts} attempts: {error}. "
            "The sweeper keeps trying; fix the cause (e.g. `demand-control` with a valid policy file).")
    return {"notification_id": f"pending-click:{click.click_id}", "kind": PENDING_CLICK_ALERT_KIND, "channel": channel[:128],
            "subject": click.action_id[:255], "text": text,
            "payload": audit.canonical_json({"channel": channel, "click_id": click.click_id, "action_id": click.action_id,
                                             "user_id": click.user_id, "attempts": attempts, "error": error}),
            "status": "pending", "created_at": now}


def _record_failure(engine: Engine, click_id: int, error: str, now: datetime, sweep: SweepSettings, actor: str,
                    channel: str) -> bool:
    """Count a failed attempt, schedule the next after its backoff, and report the click once it has failed
    `alert_after` times; returns whether this call reported it. Nothing happens to a click decided meanwhile."""
    c = approval_clicks.c
    with engine.begin() as conn:
        click = conn.execute(select(approval_clicks).where(and_(c.click_id == click_id, c.processed_at.is_(None)))).first()
        if click is None:
            return False
        attempts = int(click.decide_attempts or 0) + 1
        conn.execute(update(approval_clicks).where(and_(c.click_id == click_id, c.processed_at.is_(None)))
                     .values(decide_attempts=attempts, next_decide_at=now + sweep.backoff(attempts), last_error=error[:2000]))
        if attempts < sweep.alert_after or click.alerted_at is not None:
            return False
        notice = pending_click_alert(click, attempts, error, channel, now)
        if conn.execute(insert_ignoring_conflicts(conn, notifications, ["notification_id"]).values(**notice)).rowcount != 1:
            return False
        conn.execute(update(approval_clicks).where(c.click_id == click_id).values(alerted_at=now))
        audit.append(conn, [audit.AuditEntry(actor, PENDING_CLICK_ALERT_KIND, click.action_id, {
            "click_id": click_id, "action_id": click.action_id, "attempts": attempts, "error": error,
            "channel": channel, "notification_id": notice["notification_id"]}, now)])
        return True


def sweep_pending_clicks(engine: Engine, load_policy: Callable[[], Policy], now: datetime | None = None,
                         sweep: SweepSettings | None = None, actor: str = "pending_clicks",
                         channel: str | None = None) -> SweepSummary:
    """Decide the stored clicks nobody decided (`due_pending_clicks`), each exactly once through `decide`.

    The policy is loaded once per sweep: when it cannot be loaded (an invalid file), every due click counts a
    failed attempt, as does a click whose decision raises. A failed click waits `backoff` (doubling) before the
    next sweep tries it again; after `alert_after` failures one `pending_click_alert` notice goes to the
    operations channel (`channel`, default $DEMAND_CONTROL_OPS_CHANNEL), delivered by the notifier."""
    now, sweep = as_utc(now) or clock.now(), sweep or SweepSettings()
    channel = channel or settings.ops_channel()
    due = due_pending_clicks(engine, now, sweep)
    summary = SweepSummary(due=len(due))
    if not due:
        return summary
    try:
        policy: Policy | None = load_policy()
        policy_error = None
    except Exception as exc:  # noqa: BLE001 - the reason is recorded on every click it holds up
        policy, policy_error = None, f"the policy could not be loaded: {exc}"
    for click_id, _ in due:
        error = policy_error
        if policy is not None:
            try:
                outcome = decide(engine, policy, click_id, now)
            except Exception as exc:  # noqa: BLE001 - the click stays pending and is retried after its backoff
                error = f"{type(exc).__name__}: {exc}"
            else:
                if outcome.outcome == "decided":
                    summary.decided += 1
                elif outcome.outcome == "refused":
                    summary.refused += 1
                else:
                    summary.duplicate += 1
                continue
        summary.failed += 1
        summary.errors.append(f"click {click_id}: {error}")
        summary.alerted += int(_record_failure(engine, click_id, str(error), now, sweep, actor, channel))
    return summary
