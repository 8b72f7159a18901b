"""The Slack App Home tab of every owner user and role member of the policy: their worklist (the cases of the
teams they own and the cases awaiting their role), in the worklist's order, with the same Approve / Reject /
Snooze buttons as the parent messages. Published with `views.publish` after each plan and replan notify run.

A home is published only when what it shows changed (the content hash in its `notifications` row, one row per
person, kind `app_home`), and only to Slack user ids: a policy that names people (`maria.keyaccounts`) gets
a log line saying so. Without a Slack token the same view is printed and kept in `notifications` (status
console), like every other notice. Each publication is audited as a `notification`. No Dagster import.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import update

from demand_control.infra.sql import insert_ignoring_conflicts
from demand_control.messages.planner_text import is_slack_user
from demand_control.messages.slack import MAX_HOME_ITEMS, Message, home_view
from demand_control.planning.policy import Policy
from demand_control.resources.slack import SlackNotifier, describe
from demand_control.resources.warehouse import Warehouse, to_records
from demand_control.schema import tables
from demand_control.services.audit import AuditEntry, append, canonical_json
from demand_control.services.worklist import Audience, audiences, last_plan_day, party_names, read_worklist

HOME_KIND = "app_home"


@dataclass
class HomeSummary:
    published: int = 0  # views published (or printed without a token)
    unchanged: int = 0  # what the home would show has not changed since it was published
    not_slack_ids: list[str] = field(default_factory=list)  # policy users that are names, not Slack user ids
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def home_notification_id(user: str) -> str:
    """The `notifications` row of one person's App Home (updated in place, one per person)."""
    plain = f"home:{user}"
    return plain if len(plain) <= 80 else f"home:{hashlib.sha256(user.encode()).hexdigest()[:40]}"


def _scope(audience: Audience) -> str:
    parts = []
    if audience.teams:
        parts.append("teams " + ", ".join(audience.teams))
    if audience.roles:
        parts.append("approves as " + ", ".join(audience.roles))
    return " · ".join(parts)


def _more_hint(audience: Audience) -> str:
    if len(audience.teams) == 1 and not audience.roles:
        return f"demand-control worklist --owner {audience.teams[0]}"
    return "demand-control worklist"


def home_for(audience: Audience, cases: pd.DataFrame, policy: Policy, names: dict[str, str], plan_day: Any = None) -> tuple[Message, list[str]]:
    """The App Home of one person and the exception keys it lists, in order."""
    mine = cases[audience.keeps(cases)] if len(cases) else cases
    shown = mine.head(MAX_HOME_ITEMS)
    records = to_records(shown) if len(shown) else []
    msg = home_view(audience.user, records, total=len(mine), plan_day=plan_day, scope=_scope(audience), currency=policy.currency,
                    names=names, more_hint=_more_hint(audience))
    return msg, [str(k) for k in shown["exception_key"]] if len(shown) else []


def publish_app_homes(
    warehouse: Warehouse, slack: SlackNotifier, policy: Policy, now: datetime, actor: str = "notifier",
    log: Callable[[str], None] = print, cases: pd.DataFrame | None = None, names: dict[str, str] | None = None,
) -> HomeSummary:
    """Bring every policy user's App Home in line with the worklist (`cases`: `read_worklist`, read here when
    not given). A person who never had a home and has nothing to do gets none."""
    cases = read_worklist(warehouse) if cases is None else cases
    names = party_names(warehouse) if names is None else names
    plan_day = last_plan_day(warehouse)
    people = audiences(policy)
    nt = tables.notifications
    stored = warehouse.read("notifications", where=nt.c.kind == HOME_KIND)
    previous = {str(r["notification_id"]): r for r in (to_records(stored) if len(stored) else [])}
    summary = HomeSummary()
    status = "sent" if slack.enabled else "console"
    for audience in people:
        nid = home_notification_id(audience.user)
        msg, keys = home_for(audience, cases, policy, names, plan_day)
        before = previous.get(nid)
        if before is None and not keys:
            continue
        if before is not None and before["status"] == status and json.loads(before["payload"] or "{}").get("content_hash") == msg.content_hash:
            summary.unchanged += 1
            continue
        if slack.enabled and not is_slack_user(audience.user):
            summary.not_slack_ids.append(audience.user)
            continue
        payload = {"user": audience.user, "content_hash": msg.content_hash, "exception_keys": keys, "blocks": msg.blocks}
        values = {"kind": HOME_KIND, "channel": f"home:{audience.user}"[:128], "subject": audience.user[:255], "text": msg.text,
                  "payload": canonical_json(payload), "status": "pending", "created_at": now, "sent_at": None}
        with warehouse.engine.begin() as conn:
            conn.execute(insert_ignoring_conflicts(conn, nt, ["notification_id"]).values(notification_id=nid, **values))
            conn.execute(update(nt).where(nt.c.notification_id == nid).values(**values))
        view_id = None
        if slack.enabled:
            try:
                view_id = slack.publish_home(audience.user, msg.blocks)
            except Exception as error:  # noqa: BLE001 - one person's home failing must not stop the others
                with warehouse.engine.begin() as conn:
                    conn.execute(update(nt).where(nt.c.notification_id == nid).values(status="failed"))
                summary.failed += 1
                summary.errors.append(f"App Home of {audience.user}: {describe(error)}")
                log(f"App Home of {audience.user}: {describe(error)}")
                continue
        else:
            slack.console(f"App Home {audience.user}", msg.text)
        with warehouse.engine.begin() as conn:
            conn.execute(update(nt).where(nt.c.notification_id == nid).values(status=status, sent_at=now))
            append(conn, [AuditEntry(actor, "notification", nid, {
                "kind": "app_home_published", "user": audience.user, "status": status, "view_id": view_id,
                "content_hash": msg.content_hash, "exception_keys": keys,
            }, now)])
        summary.published += 1
    if summary.not_slack_ids:
        log(f"App Home not published for {', '.join(summary.not_slack_ids)}: not Slack user ids (write U… ids in the policy's owners and roles)")
    return summary
