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

The functions above the op are plain (frames and a SQLAlchemy engine, no Dagster) and tested directly.
"""


import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pandas as pd
from sqlalchemy import Engine, and_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from demand_control.infra import clock
from demand_control.schema import tables
from demand_control.services.audit import AuditEntry, append, sha256
from demand_control.resources.clock import PlanningClock
from demand_control.resources.mail import DeliveryUnknown, Mail, Mailer, NotDelivered
from demand_control.resources.warehouse import Warehouse

NOTIFY_CUSTOMERS_JOB_NAME = "notify_customers"
QUALIFYING_DECISIONS: tuple[str, ...] = ("approved", "auto_approved")
NOTICE_ACTION_TYPES: tuple[str, ...] = ("notify_customer", "substitute", "allocate")
# Status of a notice row; `sending` is the at-most-once guard (see the module docstring).
PENDING, SENDING, SENT, CONSOLE, FAILED = "pending", "sending", "sent", "console", "failed"
SIGNATURE = "Kind regards,\nCustomer Service"
LINE_COLUMNS: tuple[str, ...] = (
    "action_id", "action_type", "exception_key", "owner_channel", "customer_id", "order_id", "line_no", "sku",
    "quantity", "qty_open", "allocated", "promise_date", "new_date", "substitute_sku",
)


def _day(value: Any) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return pd.Timestamp(value).strftime("%-d %B %Y")


def _qty(value: Any) -> str:
    v = float(value)
    return f"{v:,.0f}" if abs(v - round(v)) < 0.05 else f"{v:,.1f}"


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


def _line_text(line: pd.Series) -> str:
    ref = f"Order {line['order_id']}, line {line['line_no']}: {_qty(line['quantity'])} × {line['sku']}"
    promised = _day(line["promise_date"]) or "the date we confirmed"
    if line["action_type"] == "substitute":
        return (f"  {ref}\n    We can offer {_qty(line['quantity'])} × {line['substitute_sku']} instead of {line['sku']}, "
                f"delivered on the date we promised ({promised}).")
    if line["action_type"] == "allocate":
        return (f"  Order {line['order_id']}, line {line['line_no']}: {line['sku']}\n"
                f"    We can deliver {_qty(line['allocated'])} of the {_qty(line['qty_open'])} units you ordered on {promised}; "
                f"the remaining {_qty(line['quantity'])} will follow as soon as new stock arrives.")
    revised = _day(line["new_date"])
    if revised:
        return f"  {ref}\n    Promised for {promised}, now expected on {revised}."
    return f"  {ref}\n    Promised for {promised}; we do not have a confirmed new date yet and will write again as soon as we do."


_INTRO = {
    "notify_customer": "we are sorry to let you know that the following part of your order cannot be delivered on the date we promised:",
    "substitute": "an item on your order is short, and we would like to offer you an equivalent product instead:",
    "allocate": "an item on your order is in short supply, and we can only deliver part of it on the promised date:",
}
_OUTRO = {
    "notify_customer": "If the new date does not work for you, please reply to this email and we will look for an alternative with you.",
    "substitute": "Please reply to this email to accept or decline the substitute; if we do not hear from you, we will keep your order as it is.",
    "allocate": "If a partial delivery does not work for you, please reply to this email and we will find a solution together.",
}
_SUBJECT = {
    "notify_customer": "revised delivery date",
    "substitute": "substitute offered",
    "allocate": "partial delivery",
}


def render_notice(customer_name: str, action_type: str, lines: pd.DataFrame) -> tuple[str, str]:
    """Subject and plain-text body of one notice: polite, and specific about every line it covers."""
    orders = sorted(lines["order_id"].astype(str).unique())
    subject = f"Order {', '.join(orders)}: {_SUBJECT[action_type]}"
    body = "\n".join([
        f"Dear {customer_name},",
        "",
        _INTRO[action_type],
        "",
        *[_line_text(line) for _, line in lines.iterrows()],
        "",
        "We apologise for the inconvenience. " + _OUTRO[action_type],
        "",
        SIGNATURE,
    ])
    return subject, body


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
    warehouse.migrate()
    with warehouse.engine.connect() as conn:
        return pd.read_sql(stmt, conn)


def _noticed_pairs(engine: Engine, action_ids: list[str]) -> set[tuple[str, str]]:
    t = tables.customer_notices
    with engine.connect() as conn:
        rows = conn.execute(select(t.c.action_id, t.c.customer_id).where(t.c.action_id.in_(action_ids))).all()
    return {(r.action_id, r.customer_id) for r in rows}


def _insert_ignore(engine: Engine, table, rows: list[dict[str, Any]]):  # noqa: ANN001, ANN202
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).values(rows).on_conflict_do_nothing()


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
            if conn.execute(_insert_ignore(engine, tables.customer_notices, [record])).rowcount != 1:
                continue
            inserted.append(row["notice_id"])
            if row["status"] == FAILED:
                append(conn, [_audit(actor, row["notice_id"], row, FAILED, "none", row["reason"], now)])
                conn.execute(_insert_ignore(engine, tables.notifications, [{
                    "notification_id": f"customer-notice-failed:{row['notice_id']}"[:80], "kind": "customer_notice",
                    "channel": row["owner_channel"] if isinstance(row["owner_channel"], str) and row["owner_channel"] else "console",
                    "subject": str(row["action_id"]),
                    "text": f"Customer {row['customer_id']} could not be told about order {row['order_id']} ({row['reason']}): "
                            f"please contact them another way. Notice {row['notice_id']}.",
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
    warehouse.migrate()
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


class NotifyCustomersConfig(dg.Config):
    action_ids: list[str] = []  # approved actions to tell customers about; empty: every one not told yet
    resend: list[str] = []  # notice ids a human checked never arrived (`sending` or `failed`): back to pending
    record: bool = True  # false: only deliver notices already pending (the sensor's retry run)


@dg.op(
    description="Record one notice per customer per approved delay, substitution or allocation, then send the pending ones at most once (SMTP, or console).",
    tags={"kind": "email"},
)
def send_customer_notices(
    context: dg.OpExecutionContext, config: NotifyCustomersConfig, warehouse: Warehouse, mailer: Mailer, clock: PlanningClock
) -> dg.Output[None]:
    del clock  # a resource, not a value: it sets the run's as-of for the services this op calls
    actor = f"notify_customers:{context.run_id}"
    warehouse.migrate()
    if config.resend:
        moved = requeue_notices(warehouse.engine, config.resend, actor)
        context.log.warning(f"requeued {len(moved)} of {len(config.resend)} notices for resend: {moved}")
    if config.record:
        counts = notify_customers_for(warehouse, mailer, actor, config.action_ids, log=context.log.info)
    else:
        counts = deliver_pending(warehouse.engine, mailer, actor, log=context.log.info)
    context.log.info(f"customer notices via {mailer.channel}: {counts}")
    return dg.Output(None, metadata={**{k: int(v) for k, v in counts.items()}, "channel": mailer.channel})


@dg.job(
    name=NOTIFY_CUSTOMERS_JOB_NAME,
    description="Tell customers about approved changes to their orders: one email per customer per change, never twice.",
    executor_def=dg.in_process_executor,
    tags={"dagster/max_runtime": 600},
)
def notify_customers_job() -> None:
    send_customer_notices()


# The sensor sits beside its job (this module) rather than in sensors/: it only reads the decisions table.
SENSOR_BATCH = 100
MAX_BATCHES_PER_TICK = 20
# Decisions are stamped before their transaction commits, so one may become visible with a decided_at a
# little behind the high-water mark; the sensor looks back this far and remembers what it requested there.
LOOKBACK_SECONDS = 300
# Notices left `pending` by a refused or unreachable server are retried by one run per this many seconds.
RETRY_SECONDS = 900


def _as_utc(value: Any) -> datetime:
    ts = pd.Timestamp(value)
    return (ts.tz_localize(UTC) if ts.tzinfo is None else ts.tz_convert(UTC)).to_pydatetime()


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
    with warehouse.engine.connect() as conn:
        rows = conn.execute(stmt.limit(limit + len(seen))).all()
    return [(r.action_id, _as_utc(r.decided_at)) for r in rows if r.action_id not in seen][:limit]


def _retry_due(warehouse: Warehouse, now: datetime) -> int:
    t = tables.customer_notices
    with warehouse.engine.connect() as conn:
        rows = conn.execute(select(t.c.created_at).where(t.c.status == PENDING)).scalars().all()
    return sum(1 for created in rows if (now - _as_utc(created)).total_seconds() > 60)


@dg.sensor(
    job_name=NOTIFY_CUSTOMERS_JOB_NAME,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a notify_customers run for each batch of newly approved delay, substitution and allocation actions "
    "(cursor: decided_at high-water mark plus the action ids requested near it), and a retry run for notices left pending.",
)
def customer_notice_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse) -> dg.SensorResult | dg.SkipReason:
    warehouse.migrate()
    cursor = json.loads(context.cursor) if context.cursor else {}
    since = datetime.fromisoformat(cursor["decided_at"]) if cursor.get("decided_at") else None
    seen: dict[str, str] = dict(cursor.get("seen", {}))  # action id → its decided_at (ISO)
    found = new_decisions(warehouse, since, seen, SENSOR_BATCH * MAX_BATCHES_PER_TICK)
    now = clock.now()
    requests = []
    for start in range(0, len(found), SENSOR_BATCH):
        ids = sorted(a for a, _ in found[start : start + SENSOR_BATCH])
        batch = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
        # The run key is the batch's action ids: the same batch is requested once, even across ticks.
        requests.append(dg.RunRequest(
            run_key=f"customer-notices:{batch}",
            run_config={"ops": {"send_customer_notices": {"config": {"action_ids": ids}}}},
            tags={"demand_control/notice_batch": batch, "demand_control/actions": str(len(ids))},
        ))
    retry = _retry_due(warehouse, now) if not requests else 0
    if retry:
        # No new decisions, but notices a server refused for now: one retry run per window.
        window = int(now.timestamp()) // RETRY_SECONDS
        requests.append(dg.RunRequest(run_key=f"customer-notices:retry:{window}", run_config={"ops": {"send_customer_notices": {"config": {"record": False}}}},
                                      tags={"demand_control/notice_retry": str(window)}))
    if not requests:
        return dg.SkipReason(f"no approved customer-facing actions decided since {since.isoformat() if since else 'the start'} without a notice")
    # Remember what was requested within the lookback of the new high-water mark; forget the rest, which
    # the query no longer reaches.
    requested = {**seen, **{a: d.isoformat() for a, d in found}}
    high = max([d for _, d in found] + ([since] if since else [])) if (since or found) else None
    floor = high - timedelta(seconds=LOOKBACK_SECONDS) if high else None
    keep = {a: d for a, d in requested.items() if floor is None or datetime.fromisoformat(d) >= floor}
    return dg.SensorResult(run_requests=requests, cursor=json.dumps({"decided_at": high.isoformat() if high else None, "seen": keep}, sort_keys=True))
