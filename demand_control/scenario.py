"""The seed scenario: a demand spike and a supplier delay travel the whole coordination loop.

1. A strategic customer's large order (the seasonal spike) and the supplier's delay of the PO line that
   would have covered it arrive as signed webhooks at the gateway and are committed to the inbox.
2. The inbox is re-planned (`replan` job): the delay moves the PO line, the SKU-location is re-projected,
   exceptions and allocation scenarios are raised, actions recommended and the owner is told (Slack, or the
   console and the notifications table without a token).
3. A planner approves the customer notice of an order line that now ships late — a signed Slack click on
   the gateway's interactivity route — and the policy records one decision and queues the ERP write.
4. The write-back drains the outbox into the ERP (the sale line's shipping date moves) and reads it back.
5. The customer hears about the revised date (SMTP, or the console and the customer_notices table).
6. The audit chain verifies.

`make demo` runs it in process against the local Tryton and prints each step; `tests/test_seed_scenario.py`
runs it with a real Dagster daemon, a local Slack Web API server and a local SMTP server, and asserts every
step. No Dagster import at module level: the demo and the test decide how the `replan` run is launched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pandas as pd

from demand_control import tables
from demand_control.resources.warehouse import Warehouse

SOURCE = "acme-portal"
SPIKE_FACTOR = 4.0  # the spike order is this many weeks of forecast demand
DELAY_DAYS = 28


@dataclass
class Target:
    sku: str
    location_id: str
    po_id: str
    po_line_no: int
    supplier_id: str
    po_due: date
    order_id: str  # an existing order line that ships late once the PO slips
    order_line_no: int
    customer_id: str
    spike_customer_id: str
    weekly_forecast: float
    available: float  # on hand − allocated + in transit now


@dataclass
class ScenarioResult:
    target: Target | None = None
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    exceptions: pd.DataFrame = field(default_factory=pd.DataFrame)
    allocations: pd.DataFrame = field(default_factory=pd.DataFrame)
    approved_action: dict[str, Any] = field(default_factory=dict)
    decision: dict[str, Any] = field(default_factory=dict)
    outbox: dict[str, Any] = field(default_factory=dict)
    notices: pd.DataFrame = field(default_factory=pd.DataFrame)
    audit_rows: int = 0
    audit_ok: bool = False


def pick_target(warehouse: Warehouse, today: date) -> Target:
    """A SKU-location with a scheduled PO line still to arrive, an open order line of a customer with an
    email promised after that PO is due, and a strategic customer with an email to place the spike."""
    po = warehouse.read("purchase_order_line")
    po = po[po["status"].isin(["sent", "confirmed"])].copy()
    po["due"] = pd.to_datetime(po["confirmed_date"]).fillna(pd.to_datetime(po["expected_date"]))
    po = po[po["due"] > pd.Timestamp(today)]
    orders = warehouse.read("customer_order_line")
    customers = warehouse.read("customer")
    with_email = customers[customers["notify_email"].notna()]
    orders = orders[orders["status"].isin(["open", "partial"]) & orders["customer_id"].isin(with_email["customer_id"])]
    forecast = warehouse.read("demand_forecast").groupby(["sku", "location_id"], as_index=False)["mean"].mean()
    pairs = po.merge(orders, on=["sku", "location_id"], suffixes=("_po", "_so")).merge(forecast, on=["sku", "location_id"])
    pairs["promise"] = pd.to_datetime(pairs["promise_date"])
    # The order must be promised after the PO is due (it relies on it) and before the delayed arrival.
    pairs = pairs[(pairs["promise"] >= pairs["due"]) & (pairs["promise"] < pairs["due"] + pd.Timedelta(days=DELAY_DAYS)) & (pairs["mean"] > 0)]
    if pairs.empty:
        raise RuntimeError("the sample distributor has no SKU-location with a pending PO line and an order relying on it")
    pick = pairs.sort_values(["mean", "po_id", "order_id"], ascending=[False, True, True]).iloc[0]
    strategic = with_email[with_email["tier"] == "strategic"]
    spike_customer = (strategic if len(strategic) else with_email).sort_values("customer_id").iloc[0]["customer_id"]
    stock = warehouse.read("inventory_position")
    stock = stock[(stock["sku"] == pick["sku"]) & (stock["location_id"] == pick["location_id"])].sort_values("as_of")
    available = float((stock["on_hand"] - stock["allocated"] + stock["in_transit"]).iloc[-1]) if len(stock) else 0.0
    return Target(
        sku=pick["sku"], location_id=pick["location_id"], po_id=pick["po_id"], po_line_no=int(pick["line_no_po"]),
        supplier_id=pick["supplier_id"], po_due=pick["due"].date(), order_id=pick["order_id"], order_line_no=int(pick["line_no_so"]),
        customer_id=pick["customer_id"], spike_customer_id=spike_customer, weekly_forecast=float(pick["mean"]),
        available=max(available, 0.0),
    )


def scenario_events(target: Target, today: date, tag: str) -> list[dict[str, Any]]:
    """The two webhook bodies: the spike order and the supplier's delay."""
    occurred = datetime.now(UTC).isoformat()
    # Big enough that the stock on hand cannot serve it and the orders behind it until the delayed PO lands.
    spike_qty = float(max(10.0, round(SPIKE_FACTOR * target.weekly_forecast), round(1.2 * target.available) + 1))
    return [
        {"source": SOURCE, "webhook_id": f"msg_spike_{tag}", "body": {
            "type": "order.new", "occurred_at": occurred,
            "data": {"order_id": f"SO-SPIKE-{tag}", "line_no": 1, "customer_id": target.spike_customer_id, "sku": target.sku,
                     "location_id": target.location_id, "qty_open": spike_qty, "promise_date": (today + timedelta(days=3)).isoformat()}}},
        {"source": SOURCE, "webhook_id": f"msg_delay_{tag}", "body": {
            "type": "supplier.delay", "occurred_at": occurred,
            "data": {"supplier_id": target.supplier_id, "po_id": target.po_id, "line_no": target.po_line_no,
                     "new_date": (target.po_due + timedelta(days=DELAY_DAYS)).isoformat()}}},
    ]


def sign_webhook(secret: str, webhook_id: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    from demand_control.gateway.signing import sign_headers

    return {**sign_headers(secret, body.encode(), webhook_id, timestamp), "content-type": "application/json"}


def slack_click(signing_secret: str, action_id: str, user_id: str, channel: str | None, thread_ts: str | None, decision: str = "approve") -> tuple[bytes, dict[str, str]]:
    """A signed Slack `block_actions` request as Slack sends it when a user presses a button."""
    payload = {
        "type": "block_actions", "user": {"id": user_id}, "trigger_id": f"{uuid.uuid4().int}",
        "container": {"message_ts": thread_ts or "", "channel_id": channel or ""},
        "channel": {"id": channel or ""}, "message": {"ts": thread_ts or ""},
        "actions": [{"action_id": f"{decision}:{action_id}", "value": action_id, "action_ts": f"{time.time():.6f}"}],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(time.time()))
    signature = "v0=" + hmac.new(signing_secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return body, {"x-slack-request-timestamp": ts, "x-slack-signature": signature, "content-type": "application/x-www-form-urlencoded"}


def inbox_range(warehouse: Warehouse, webhook_ids: list[str]) -> tuple[int, int]:
    rows = warehouse.read("inbox_events", columns=["inbox_id"], where=tables.inbox_events.c.webhook_id.in_(webhook_ids))
    return int(rows["inbox_id"].min()), int(rows["inbox_id"].max())


def exceptions_of(warehouse: Warehouse, target: Target) -> pd.DataFrame:
    snap = warehouse.read("planning_exceptions")
    mine = (snap["sku"] == target.sku) & (snap["location_id"] == target.location_id)
    return snap[mine | (snap["exception_key"] == f"supplier_delay:{target.po_id}/{target.po_line_no}")]


def action_to_approve(warehouse: Warehouse, target: Target) -> dict[str, Any]:
    """The recommended action of the SKU-location's order_at_risk exception — the customer notice with the
    revised date of the first line that now ships late (the action the owner's Slack message offers)."""
    actions = warehouse.read("recommended_actions")
    key = f"order_at_risk:{target.sku}@{target.location_id}"
    mine = actions[(actions["exception_key"] == key) & (actions["action_type"] == "notify_customer") & actions["new_date"].notna()]
    if mine.empty:
        raise RuntimeError(f"no customer notice was recommended for {target.sku} at {target.location_id}")
    return mine.sort_values("rank").iloc[0].to_dict()


def approver_for(policy: Any, action: dict[str, Any]) -> str:
    """A member of the smallest role that may approve the action (the planner on duty)."""
    from demand_control.planning.policy import may_approve

    for role in sorted(policy.roles.values(), key=lambda r: r.band):
        for user in role.members:
            if may_approve(policy, user, action["action_type"], float(action["value"] or 0), None)[0]:
                return user
    raise RuntimeError(f"no role in the policy may approve {action['action_type']} worth {action['value']}")


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"waited {timeout:.0f} s for {what}")
