"""Customer notices: tell each customer whose order lines an approved delay, substitution or allocation
changes, once — by SMTP when a mail server is configured, else on the console and in `customer_notices`.

One notice per customer per approved action (the lines of one customer under one action go into one email),
under a deterministic id over the customer, the action and the change, so the same change is never told
twice. Delivery is at most once:

    pending ──claim──▶ sending ──server accepted──▶ sent
       ▲                  │ └─server refused (5xx)──▶ failed
       └─refused (4xx) / no connection─┘ └─connection lost mid-hand-over: stays `sending`

The row is inserted (`pending`) and committed before anything is sent; a run claims it (`sending`, committed)
before talking to the server, and marks it `sent` after the server accepted it. A crash or a connection lost
between the claim and that mark leaves the row `sending`, and no run sends a `sending` row again: the server
may already have accepted the message, and a customer emailed twice about one delay is the failure we rule
out. Such rows are logged at every run and resent only by a human who checked the mail log
(`NotifyCustomersConfig.resend`, or `requeue_notices`), which moves them back to `pending`. At-least-once
(retry whatever is not marked sent) would be simpler and lose nothing, but it resends exactly in the case
where the server accepted and we lost the answer — the common failure on a flaky link.

No Dagster import: the `notify_customers` job, its sensor and the demo call these functions.
"""

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine, and_, select, update

from demand_control.planning.vocabulary import AUTO_APPROVED
from demand_control.infra import clock
from demand_control.infra.clock import as_utc
from demand_control.infra.sql import insert_ignoring_conflicts
from demand_control.messages.email import render_notice, undeliverable_text
from demand_control.schema import tables
from demand_control.services.audit import AuditEntry, append, sha256
from demand_control.resources.mail import DeliveryUnknown, Mail, Mailer, NotDelivered
from demand_control.resources.warehouse import Warehouse

QUALIFYING_DECISIONS: tuple[str, ...] = ("approved", AUTO_APPROVED)
NOTICE_ACTION_TYPES: tuple[str, ...] = ("notify_customer", "substitute", "allocate")
# Status of a notice row; `sending` is the at-most-once guard (see the module docstring).
PENDING, SENDING, SENT, CONSOLE, FAILED = "pending", "sending", "sent", "console", "failed"
LINE_COLUMNS: tuple[str, ...] = (
    "action_id", "action_type", "exception_key", "owner_channel", "customer_id", "order_id", "line_no", "sku",
    "quantity", "qty_open", "allocated", "promise_date", "new_date", "substitute_sku",
)
# Decisions are stamped before their transaction commits, so one may become visible with a decided_at a
# little behind the high-water mark; the sensor looks back this far and remembers what it requested there.
LOOKBACK_SECONDS = 300


def _iso(value: Any) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return pd.Timestamp(value).date().isoformat()


def _scenario(details: Any) -> str | None:
    if not isinstance(details, str) or not details:
        return None
    try:
        parsed = json.loads(details)
    except ValueError:
        return None
    if isinstance(parsed, list):
        parsed = parsed[0] if parsed else {}
    return parsed.get("scenario") if isinstance(parsed, dict) else None


def notice_lines(actions: pd.DataFrame, allocation_lines: pd.DataFrame) -> pd.DataFrame:
    """The customer order lines each approved action changes (columns LINE_COLUMNS).

    notify_customer and substitute name their order line; an allocation names its scenario, whose lines in
    `allocation_lines` that are left short are the ones to tell (a line filled completely did not change).
    """
    parts: list[pd.DataFrame] = []
    per_line = actions[actions["action_type"].isin(["notify_customer", "substitute"]) & actions["order_id"].notna()]
    if len(per_line):
        parts.append(pd.DataFrame({
            "action_id": per_line["action_id"], "action_type": per_line["action_type"],
            "exception_key": per_line["exception_key"], "owner_channel": per_line.get("owner_channel"),
            "customer_id": per_line["customer_id"], "order_id": per_line["order_id"],
            "line_no": per_line["order_line_no"].astype("Int64"), "sku": per_line["sku"],
            "quantity": per_line["quantity"].astype(float), "qty_open": float("nan"), "allocated": float("nan"),
            "promise_date": per_line["needed_by"], "new_date": per_line["new_date"],
            "substitute_sku": per_line["substitute_sku"],
        }))
    allocate = actions[actions["action_type"] == "allocate"]
    if len(allocate) and len(allocation_lines):
        alloc = allocate.assign(scenario=allocate["details"].map(_scenario)).dropna(subset=["scenario"])
        merged = alloc[["action_id", "action_type", "exception_key", "owner_channel", "scenario", "sku", "location_id"]].merge(
            allocation_lines, on=["scenario", "sku", "location_id"], how="inner"
        )
        merged = merged[merged["short"] > 1e-9]
        if len(merged):
            parts.append(pd.DataFrame({
                "action_id": merged["action_id"], "action_type": merged["action_type"],
                "exception_key": merged["exception_key"], "owner_channel": merged["owner_channel"],
                "customer_id": merged["customer_id"], "order_id": merged["order_id"],
                "line_no": merged["line_no"].astype("Int64"), "sku": merged["sku"],
                "quantity": merged["short"].astype(float), "qty_open": merged["qty_open"].astype(float),
                "allocated": merged["allocated"].astype(float), "promise_date": merged["promise_date"],
                "new_date": None, "substitute_sku": None,
            }))
    if not parts:
        return pd.DataFrame(columns=list(LINE_COLUMNS))
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["customer_id", "action_id", "order_id", "line_no"], kind="mergesort").reset_index(drop=True)


def change_of(lines: pd.DataFrame) -> list[dict[str, Any]]:
    """What the notice tells, as plain values: part of its id, so a different change is a different notice."""
    return [
        {"order_id": str(r["order_id"]), "line_no": int(r["line_no"]), "sku": r["sku"], "quantity": round(float(r["quantity"]), 4),
         "promise_date": _iso(r["promise_date"]), "new_date": _iso(r["new_date"]),
         "substitute_sku": None if pd.isna(r["substitute_sku"]) else r["substitute_sku"],
         "allocated": None if pd.isna(r["allocated"]) else round(float(r["allocated"]), 4)}
        for _, r in lines.iterrows()
    ]


def notice_id_for(customer_id: str, action_ids: Sequence[str], change: list[dict[str, Any]]) -> str:
    key = json.dumps({"customer": customer_id, "actions": sorted(action_ids), "change": change}, sort_keys=True, separators=(",", ":"))
    return "cn-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def build_notices(lines: pd.DataFrame, customers: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """One notice row per customer and action: the `customer_notices` columns plus `reason` (why it cannot
    be sent) and `owner_channel` (who hears about a notice that failed). A customer without an address gets a
    `failed` row, so the gap is visible and nothing is sent."""
    columns = [c.name for c in tables.customer_notices.c] + ["reason", "owner_channel", "exception_key"]
    if lines.empty:
        return pd.DataFrame(columns=columns)
    cust = customers.set_index("customer_id") if len(customers) else pd.DataFrame(columns=["name", "notify_email"])
    rows = []
    for (customer_id, action_id), group in lines.groupby(["customer_id", "action_id"], sort=True):
        name = cust["name"].get(customer_id) if "name" in cust else None
        email = cust["notify_email"].get(customer_id) if "notify_email" in cust else None
        email = email.strip() if isinstance(email, str) and email.strip() else None
        action_type = group["action_type"].iloc[0]
        subject, body = render_notice(name if isinstance(name, str) and name else str(customer_id), action_type, group)
        reason = None
        if customer_id not in cust.index:
            reason = f"customer {customer_id} is not in the customer master"
        elif email is None:
            reason = f"customer {customer_id} has no notify_email"
        first = group.iloc[0]
        rows.append({
            "notice_id": notice_id_for(str(customer_id), [str(action_id)], change_of(group)),
            "action_id": action_id, "customer_id": customer_id, "email": email,
            "order_id": first["order_id"], "line_no": int(first["line_no"]) if len(group) == 1 else None,
            "subject": subject, "body": body, "status": FAILED if reason else PENDING,
            "created_at": now, "sent_at": None, "reason": reason,
            "owner_channel": first["owner_channel"], "exception_key": first["exception_key"],
        })
    return pd.DataFrame(rows, columns=columns)


def qualifying_actions(warehouse: Warehouse, action_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Recommended actions of a notice type with an approved or auto-approved decision (all, or those named)."""
    decisions, actions = tables.action_decisions, tables.recommended_actions
    stmt = (
        select(actions, decisions.c.decision, decisions.c.decided_at, decisions.c.decided_by)
        .join(decisions, decisions.c.action_id == actions.c.action_id)
        .where(decisions.c.decision.in_(QUALIFYING_DECISIONS), actions.c.action_type.in_(NOTICE_ACTION_TYPES))
    )
    if action_ids is not None:
        stmt = stmt.where(actions.c.action_id.in_(list(action_ids)))
    warehouse.ensure_schema()  # read on the engine directly
    with warehouse.engine.connect() as conn:
        return pd.read_sql(stmt, conn)


def _noticed_pairs(engine: Engine, action_ids: list[str]) -> set[tuple[str, str]]:
    t = tables.customer_notices
    with engine.connect() as conn:
        rows = conn.execute(select(t.c.action_id, t.c.customer_id).where(t.c.action_id.in_(action_ids))).all()
    return {(r.action_id, r.customer_id) for r in rows}


def record_notices(engine: Engine, notices: pd.DataFrame, actor: str, now: datetime) -> list[str]:
    """Insert the notices not recorded yet and commit, before anything is sent; returns the new ids.

    An (action, customer) pair that already has a notice gets no second one even if the plan behind the
    action has moved since (a re-plan may shift a revised date daily): the customer was told about what was
    approved; a new change comes with a new exception occurrence, hence a new action and decision.
    A `failed` notice (no address) is audited and its owner is told through `notifications`.
    """
    if notices.empty:
        return []
    done = _noticed_pairs(engine, list(notices["action_id"].unique()))
    fresh = notices[[(a, c) not in done for a, c in zip(notices["action_id"], notices["customer_id"])]]
    table_cols = [c.name for c in tables.customer_notices.c]
    inserted: list[str] = []
    with engine.begin() as conn:
        for _, row in fresh.iterrows():
            record = {c: (None if not isinstance(row[c], str) and pd.isna(row[c]) else row[c]) for c in table_cols}
            if conn.execute(insert_ignoring_conflicts(engine, tables.customer_notices).values([record])).rowcount != 1:
                continue
            inserted.append(row["notice_id"])
            if row["status"] == FAILED:
                append(conn, [_audit(actor, row["notice_id"], row, FAILED, "none", row["reason"], now)])
                conn.execute(insert_ignoring_conflicts(engine, tables.notifications).values([{
                    "notification_id": f"customer-notice-failed:{row['notice_id']}"[:80], "kind": "customer_notice",
                    "channel": row["owner_channel"] if isinstance(row["owner_channel"], str) and row["owner_channel"] else "console",
                    "subject": str(row["action_id"]),
                    "text": undeliverable_text(row["customer_id"], row["order_id"], row["reason"], row["notice_id"]),
                    "payload": json.dumps({"notice_id": row["notice_id"], "exception_key": row["exception_key"]}),
                    "status": CONSOLE, "created_at": now, "sent_at": None,
                }]))
    return inserted


def _audit(actor: str, notice_id: str, row: Any, status: str, channel: str, reason: str | None, now: datetime) -> AuditEntry:
    return AuditEntry(actor, "notification", notice_id, {
        "kind": "customer_notice", "action_id": row["action_id"], "customer_id": row["customer_id"],
        "order_id": row["order_id"], "status": status, "channel": channel, "reason": reason,
        "body_sha256": sha256(row["body"]),
    }, now)


def _set_status(engine: Engine, notice_id: str, expect: str, status: str, audit: AuditEntry | None = None, **values: Any) -> bool:
    """Compare-and-set the status; only the run that moved it acts on it."""
    t = tables.customer_notices
    with engine.begin() as conn:
        moved = conn.execute(update(t).where(and_(t.c.notice_id == notice_id, t.c.status == expect)).values(status=status, **values)).rowcount == 1
        if moved and audit is not None:
            append(conn, [audit])
    return moved


def deliver_pending(engine: Engine, mailer: Mailer, actor: str, log: Callable[[str], None] = print, limit: int = 500) -> dict[str, int]:
    """Deliver every `pending` notice at most once (see the module docstring); returns counts by outcome."""
    t = tables.customer_notices
    with engine.connect() as conn:
        rows = conn.execute(select(t).where(t.c.status == PENDING).order_by(t.c.created_at, t.c.notice_id).limit(limit)).mappings().all()
    counts = {SENT: 0, CONSOLE: 0, FAILED: 0, PENDING: 0, "unknown": 0}
    for row in rows:
        now = clock.now()
        if not mailer.configured:
            if _set_status(engine, row["notice_id"], PENDING, CONSOLE, _audit(actor, row["notice_id"], row, CONSOLE, "console", None, now), sent_at=now):
                log(f"customer notice {row['notice_id']} to {row['customer_id']} <{row['email']}> (console, no SMTP configured)\n"
                    f"Subject: {row['subject']}\n\n{row['body']}")
                counts[CONSOLE] += 1
            continue
        if not _set_status(engine, row["notice_id"], PENDING, SENDING):
            continue  # another run claimed it
        try:
            mailer.send(Mail(row["notice_id"], row["email"], row["subject"], row["body"]))
        except NotDelivered as exc:
            status = FAILED if exc.permanent else PENDING
            _set_status(engine, row["notice_id"], SENDING, status, _audit(actor, row["notice_id"], row, status, mailer.channel, exc.reason, now))
            log(f"customer notice {row['notice_id']} not delivered ({'failed' if exc.permanent else 'will retry'}): {exc.reason}")
            counts[status] += 1
            continue
        except DeliveryUnknown as exc:
            # Stays `sending`: the server may have it. Audited so the gap is on record; a human decides.
            with engine.begin() as conn:
                append(conn, [_audit(actor, row["notice_id"], row, "delivery_unknown", mailer.channel, str(exc), now)])
            log(f"customer notice {row['notice_id']}: {exc} — left in `sending`, not retried; check the mail log and resend by hand if it never arrived")
            counts["unknown"] += 1
            continue
        _set_status(engine, row["notice_id"], SENDING, SENT, _audit(actor, row["notice_id"], row, SENT, mailer.channel, None, clock.now()), sent_at=clock.now())
        counts[SENT] += 1
    return counts


def requeue_notices(engine: Engine, notice_ids: Sequence[str], actor: str) -> list[str]:
    """The manual resend path: move `sending` or `failed` notices back to `pending` (with the customer's
    current address), audited. Only for a human who checked that the customer did not get the message."""
    t, cust = tables.customer_notices, tables.STAGED["customer"]
    moved: list[str] = []
    with engine.begin() as conn:
        for notice_id in notice_ids:
            row = conn.execute(select(t).where(t.c.notice_id == notice_id)).mappings().first()
            if row is None or row["status"] not in (SENDING, FAILED):
                continue
            email = conn.execute(select(cust.c.notify_email).where(cust.c.customer_id == row["customer_id"])).scalar_one_or_none() or row["email"]
            conn.execute(update(t).where(and_(t.c.notice_id == notice_id, t.c.status == row["status"])).values(status=PENDING, email=email, sent_at=None))
            append(conn, [AuditEntry(actor, "notification", notice_id, {
                "kind": "customer_notice", "action_id": row["action_id"], "customer_id": row["customer_id"],
                "status": "requeued", "previous_status": row["status"], "body_sha256": sha256(row["body"]),
            })])
            moved.append(notice_id)
    return moved


def notify_customers_for(warehouse: Warehouse, mailer: Mailer, actor: str, action_ids: Sequence[str] | None = None,
                         log: Callable[[str], None] = print) -> dict[str, int]:
    """Record the notices the approved actions call for (all, or those named), then deliver what is pending."""
    now = clock.now()
    actions = qualifying_actions(warehouse, action_ids or None)
    if action_ids:
        missing = sorted(set(action_ids) - set(actions["action_id"]))
        if missing:
            log(f"{len(missing)} requested action(s) are not approved notice actions in recommended_actions (skipped): {', '.join(missing[:10])}")
    alloc = pd.DataFrame()
    if (actions["action_type"] == "allocate").any():
        alloc = warehouse.read("allocation_lines", where=tables.allocation_lines.c.sku.in_(list(actions.loc[actions["action_type"] == "allocate", "sku"].unique())))
    lines = notice_lines(actions, alloc)
    customers = warehouse.read("customer", columns=["customer_id", "name", "notify_email"],
                               where=tables.STAGED["customer"].c.customer_id.in_(list(lines["customer_id"].unique()))) if len(lines) else pd.DataFrame()
    recorded = record_notices(warehouse.engine, build_notices(lines, customers, now), actor, now)
    counts = deliver_pending(warehouse.engine, mailer, actor, log)
    t = tables.customer_notices
    with warehouse.engine.connect() as conn:
        stuck = conn.execute(select(t.c.notice_id).where(t.c.status == SENDING)).scalars().all()
    if stuck:
        log(f"{len(stuck)} customer notice(s) in `sending` (delivery unknown, not retried): {', '.join(stuck[:10])}")
    return {"recorded": len(recorded), **counts, "sending": len(stuck)}


def new_decisions(warehouse: Warehouse, since: datetime | None, seen: Iterable[str], limit: int) -> list[tuple[str, datetime]]:
    """(action_id, decided_at) of approved notice actions decided at or after `since` (minus the lookback),
    not among `seen` and without a notice yet, oldest first."""
    decisions, actions, notices = tables.action_decisions, tables.recommended_actions, tables.customer_notices
    stmt = (
        select(decisions.c.action_id, decisions.c.decided_at)
        .join(actions, actions.c.action_id == decisions.c.action_id)
        .where(decisions.c.decision.in_(QUALIFYING_DECISIONS), actions.c.action_type.in_(NOTICE_ACTION_TYPES))
        .where(~select(notices.c.notice_id).where(notices.c.action_id == decisions.c.action_id).exists())
        .order_by(decisions.c.decided_at, decisions.c.action_id)
    )
    if since is not None:
        stmt = stmt.where(decisions.c.decided_at >= since - timedelta(seconds=LOOKBACK_SECONDS))
    seen = set(seen)
    warehouse.ensure_schema()  # read on the engine directly
    with warehouse.engine.connect() as conn:
        rows = conn.execute(stmt.limit(limit + len(seen))).all()
    return [(r.action_id, as_utc(r.decided_at)) for r in rows if r.action_id not in seen][:limit]


def retry_due(warehouse: Warehouse, now: datetime) -> int:
    """How many notices a refused or unreachable server left `pending` for more than a minute."""
    t = tables.customer_notices
    warehouse.ensure_schema()  # read on the engine directly
    with warehouse.engine.connect() as conn:
        rows = conn.execute(select(t.c.created_at).where(t.c.status == PENDING)).scalars().all()
    return sum(1 for created in rows if (now - as_utc(created)).total_seconds() > 60)
