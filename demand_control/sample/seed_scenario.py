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

import numpy as np
import pandas as pd

from demand_control.resources.warehouse import Warehouse
from demand_control.schema import tables

SOURCE = "acme-portal"
SPIKE_FACTOR = 4.0  # the spike order is about this many weeks of forecast demand, more if that would not bite
SPIKE_LEAD_DAYS = 3  # the spike order is promised this many days after the as-of date
DELAY_DAYS = (28, 21, 14)  # the supplier's slip: the longest whose new date stays inside the horizon
MAX_CANDIDATES = 500  # (PO line, order line) pairs tried before giving up


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
    delay_days: int = DELAY_DAYS[0]
    spike_qty: float = 0.0
    spike_promise: date | None = None
    revised_date: date | None = None  # when the order line ships once both events are applied
    notice_order_id: str = ""  # the late line whose customer notice the owner's message offers first
    notice_line_no: int = 0

    @property
    def new_po_date(self) -> date:
        return self.po_due + timedelta(days=self.delay_days)


@dataclass(frozen=True)
class NoTarget:
    """Why the scenario found nothing to play on this landscape and date."""

    reason: str


def _default_order_lead_days() -> tuple[float, float]:
    from demand_control.planning.exceptions import ExceptionThresholds

    return ExceptionThresholds().customer_order_lead_days


@dataclass(frozen=True)
class ScenarioInputs:
    """The planning facts the scenario is sized against (the warehouse tables of the same names)."""

    forecast: pd.DataFrame
    inventory: pd.DataFrame
    order_lines: pd.DataFrame
    purchase_lines: pd.DataFrame
    customer: pd.DataFrame
    planned: pd.DataFrame = field(default_factory=pd.DataFrame)  # planned receipts: drafts, approved orders not in the ERP yet
    # inventory_policy: its lead times bound the orders still to come that the replan serves first
    policy: pd.DataFrame = field(default_factory=pd.DataFrame)
    # How far ahead customers order (the policy thresholds' customer_order_lead_days; the packaged default)
    customer_order_lead_days: tuple[float, float] = field(default_factory=_default_order_lead_days)

    @classmethod
    def read(cls, warehouse: Warehouse) -> ScenarioInputs:
        from demand_control.services.replan import planned_purchases

        purchases = warehouse.read("purchase_order_line")
        return cls(
            forecast=warehouse.read("demand_forecast"), inventory=warehouse.read("inventory_position"),
            order_lines=warehouse.read("customer_order_line"), purchase_lines=purchases,
            customer=warehouse.read("customer"), planned=planned_purchases(warehouse, purchases),
            policy=warehouse.read("inventory_policy"),
        )


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


def pick_target(warehouse: Warehouse, today: date, bucket_days: int = 7) -> Target | NoTarget:
    """`choose_target` on the warehouse's current plan inputs."""
    return choose_target(ScenarioInputs.read(warehouse), today, bucket_days)


def _one(frame: pd.DataFrame, sku: str, location_id: str) -> pd.DataFrame:
    return frame[(frame["sku"] == sku) & (frame["location_id"] == location_id)]


def _to_come_inputs(inputs: ScenarioInputs, sku: str, location_id: str) -> dict[str, Any]:
    """The orders still to come at one SKU-location (its forecast, the policy's lead time, how far ahead
    customers order): what `order_lines_at_risk` serves first, as the replan does
    (`planning.supply_exceptions.risky_order_lines`)."""
    from demand_control.planning.order_supply import ExpectedOrders, policy_lead_times

    policy = _one(inputs.policy, sku, location_id) if not inputs.policy.empty else inputs.policy
    return {"expected": ExpectedOrders(_one(inputs.forecast, sku, location_id), policy_lead_times(policy), inputs.customer_order_lead_days)}


def _project(inputs: ScenarioInputs, sku: str, location_id: str, order_lines: pd.DataFrame, purchase_lines: pd.DataFrame,
             today: date, bucket_days: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One SKU-location's projection, its open orders (with tiers) and its receipts on their days
    (`dated_receipts`), as the replan computes them."""
    from demand_control.planning.inventory_common import SCHEDULED_PO_STATUSES
    from demand_control.planning.order_supply import dated_receipts, open_orders
    from demand_control.planning.projection import projected_inventory

    purchases = purchase_lines[purchase_lines["status"].isin(SCHEDULED_PO_STATUSES)]
    planned = _one(inputs.planned, sku, location_id) if not inputs.planned.empty else None
    projection = projected_inventory(
        _one(inputs.inventory, sku, location_id), _one(inputs.forecast, sku, location_id), order_lines, purchases, 0.0,
        horizon_start=today, bucket_days=bucket_days, planned_purchases=planned,
    )
    return projection, open_orders(order_lines, inputs.customer), dated_receipts(purchases, pd.Timestamp(today))


def _spike_bounds(projection: pd.DataFrame, orders: pd.DataFrame, receipts: pd.DataFrame, today: date, order_id: str, line_no: int,
                  bucket_days: int, to_come: dict[str, Any]) -> tuple[float, float] | None:
    """The spike sizes (s_min, s_max) that leave the order line short on its promise date yet covered within
    the horizon, given the delayed supply: served after the spike, the line is short when the orders through
    it plus the larger of s and the orders still to come before it (`to_come`, `_to_come_inputs`: the spike
    is one of them, not counted twice) exceed the supply at its promise bucket, and gets a revised date while
    they stay within the most supply the horizon brings."""
    from demand_control.planning.order_supply import (
        cumulative_supply,
        served_order_lines,
    )

    served = served_order_lines(projection, orders, bucket_days, receipts, pd.Timestamp(today), **to_come)
    line = served[(served["order_id"] == order_id) & (served["line_no"] == line_no)]
    if line.empty:
        return None
    through = float(line["cum_orders"].iloc[0])
    at_promise = max(float(line["supply_to_date"].iloc[0]), 0.0)
    most = float(cumulative_supply(projection)["supply_to_date"].max())
    already_short = through + float(line["to_come"].iloc[0]) > at_promise
    return 1.0 if already_short else max(1.0, float(np.floor(at_promise - through)) + 1.0), float(np.floor(most - through))


def _spike_served_up_to(projection: pd.DataFrame, orders: pd.DataFrame, receipts: pd.DataFrame, today: date, customer: pd.DataFrame, target: Target,
                        bucket_days: int, to_come: dict[str, Any]) -> float | None:
    """The largest spike the supply at its promise date still serves in full (none when the orders still to
    come before it already take that supply). The spike order exists only in the event that brought it, not
    in the ERP: were it late, its customer notice could not revise an ERP order line."""
    from demand_control.planning.order_supply import served_order_lines

    tier = customer.drop_duplicates("customer_id").set_index("customer_id")["tier"].get(target.spike_customer_id)
    probe = pd.DataFrame([{"order_id": "SO-SPIKE-probe", "line_no": 1, "customer_id": target.spike_customer_id, "sku": target.sku,
                           "location_id": target.location_id, "qty_open": 1e-6, "promise_date": pd.Timestamp(target.spike_promise), "tier": tier}])
    served = served_order_lines(projection, pd.concat([orders, probe], ignore_index=True), bucket_days, receipts, pd.Timestamp(today), **to_come)
    spike = served[served["order_id"] == "SO-SPIKE-probe"]
    if spike.empty:
        return None
    room = max(float(spike["supply_to_date"].iloc[0]), 0.0) - (float(spike["cum_orders"].iloc[0]) - 1e-6)
    return float(np.floor(room)) if float(spike["to_come"].iloc[0]) <= room else 0.0


def choose_target(inputs: ScenarioInputs, today: date, bucket_days: int = 7) -> Target | NoTarget:
    """The SKU-location, PO line and order line the seed scenario plays on, with its spike sized and its
    delay chosen against the projected available balance (planned receipts included), so that once both
    events are applied a strategic customer's order line is short on its promise date and ships by a revised
    date inside the horizon, its notice is the first the owner is offered (a person tells strategic
    customers), the spike itself is served in full, and supply is short, not only late (so allocation
    scenarios apply).

    Candidates: a scheduled PO line due after `today` whose delayed date stays inside the forecast horizon,
    and an open order line of an emailed strategic customer at the same SKU-location promised after the spike
    and before the delayed arrival; the busiest SKU-locations first. Each is checked by applying the two
    events exactly as the `replan` job does (`planning.event_effects.apply_events`) and re-projecting.
    Returns `NoTarget` with the reason when none qualifies."""
    from demand_control.planning.inventory_common import SCHEDULED_PO_STATUSES

    if inputs.forecast.empty:
        return NoTarget("there is no forecast to project: run the forecast first")
    customers = inputs.customer[inputs.customer["notify_email"].notna()]
    if customers.empty:
        return NoTarget("no customer has a notify_email: nobody could be told about a late order")
    strategic = customers[customers["tier"] == "strategic"]
    spike_customer = str((strategic if len(strategic) else customers).sort_values("customer_id").iloc[0]["customer_id"])
    spike_promise = today + timedelta(days=SPIKE_LEAD_DAYS)
    weekly = inputs.forecast.groupby(["sku", "location_id"], as_index=False).agg(mean=("mean", "mean"), last=("period_start", "max"))
    weekly["horizon_end"] = pd.to_datetime(weekly["last"]) + pd.Timedelta(days=bucket_days)

    po = inputs.purchase_lines[inputs.purchase_lines["status"].isin(SCHEDULED_PO_STATUSES) & (inputs.purchase_lines["qty_open"] > 0)].copy()
    po["due"] = pd.to_datetime(po["confirmed_date"]).fillna(pd.to_datetime(po["expected_date"]))
    po = po[po["due"] > pd.Timestamp(today)]
    # The order that runs late is a strategic customer's: a person (the key-account manager) tells them.
    strategic_reachable = customers.loc[customers["tier"] == "strategic", "customer_id"]
    orders = inputs.order_lines[inputs.order_lines["status"].isin(["open", "partial"]) & inputs.order_lines["customer_id"].isin(strategic_reachable)]
    pairs = po.merge(orders, on=["sku", "location_id"], suffixes=("_po", "_so")).merge(weekly, on=["sku", "location_id"])
    pairs["promise"] = pd.to_datetime(pairs["promise_date"])
    # The order relies on the PO (promised once it is due), comes after the spike, and is promised before the
    # latest delay would land; the delayed date must stay a bucket inside the horizon.
    pairs = pairs[(pairs["promise"] >= pairs["due"]) & (pairs["promise"] > pd.Timestamp(spike_promise)) & (pairs["mean"] > 0)
                  & (pairs["due"] + pd.Timedelta(days=min(DELAY_DAYS)) <= pairs["horizon_end"] - pd.Timedelta(days=bucket_days))]
    if pairs.empty:
        return NoTarget(
            f"no SKU-location has a scheduled PO line due after {today} that could slip {min(DELAY_DAYS)} days inside the "
            f"horizon and an emailed strategic customer's order promised after {spike_promise} that relies on it"
        )
    pairs = pairs.sort_values(["mean", "po_id", "line_no_po", "promise", "order_id", "line_no_so"], ascending=[False, True, True, True, True, True], kind="mergesort")
    tried = 0
    for pick in pairs.head(MAX_CANDIDATES).itertuples(index=False):
        for delay in DELAY_DAYS:
            new_date = pick.due + pd.Timedelta(days=delay)
            if new_date > pick.horizon_end - pd.Timedelta(days=bucket_days) or pick.promise >= new_date:
                continue
            tried += 1
            target = _sized(inputs, pick, delay, spike_customer, spike_promise, today, bucket_days)
            if target is not None:
                return target
    return NoTarget(
        f"none of {tried} (PO line, order line, delay) candidates can be made short by a spike and still ship inside the "
        f"horizon: their supply is either too thin to wait for or too ample to run short"
    )


def _sized(inputs: ScenarioInputs, pick: Any, delay: int, spike_customer: str, spike_promise: date, today: date, bucket_days: int) -> Target | None:
    """The candidate with its spike sized between the bounds, if the replayed events confirm it."""
    sku, location_id = pick.sku, pick.location_id
    po_lines = _one(inputs.purchase_lines, sku, location_id)
    order_lines = _one(inputs.order_lines, sku, location_id)
    stock = _one(inputs.inventory, sku, location_id).sort_values("as_of")
    available = float((stock["on_hand"] - stock["allocated"] + stock["in_transit"]).iloc[-1]) if len(stock) else 0.0
    target = Target(
        sku=sku, location_id=location_id, po_id=pick.po_id, po_line_no=int(pick.line_no_po), supplier_id=pick.supplier_id,
        po_due=pick.due.date(), order_id=pick.order_id, order_line_no=int(pick.line_no_so), customer_id=pick.customer_id,
        spike_customer_id=spike_customer, weekly_forecast=float(pick.mean), available=max(available, 0.0), delay_days=delay,
        spike_promise=spike_promise,
    )
    delayed_po, _ = _applied(target, today, po_lines, order_lines, spike=False)
    projection, orders, receipts = _project(inputs, sku, location_id, order_lines, delayed_po, today, bucket_days)
    to_come = _to_come_inputs(inputs, sku, location_id)
    bounds = _spike_bounds(projection, orders, receipts, today, target.order_id, target.order_line_no, bucket_days, to_come)
    served = _spike_served_up_to(projection, orders, receipts, today, inputs.customer, target, bucket_days, to_come)
    if bounds is None or served is None or bounds[0] > min(bounds[1], served):
        return None
    bounds = (bounds[0], min(bounds[1], served))
    target.spike_qty = float(min(bounds[1], max(bounds[0], round(SPIKE_FACTOR * target.weekly_forecast))))
    late = scenario_outcome(inputs, target, today, bucket_days)
    mine = late[(late["order_id"] == target.order_id) & (late["line_no"] == target.order_line_no) & late["revised_date"].notna()]
    if mine.empty:
        return None
    # The owner's message offers the exception's first customer notice: `planning.actions` ranks the
    # notices of an order_at_risk by tier, promise date, order and line. A person decides it only for a
    # strategic customer (the policy's human_tiers; others are told automatically), and its customer must be
    # reachable and its date known.
    first = late.sort_values(["_tier_rank", "promise_date", "order_id", "line_no"], kind="mergesort").iloc[0]
    reachable = set(inputs.customer.loc[inputs.customer["notify_email"].notna(), "customer_id"])
    spike_order = scenario_events(target, today, "probe")[0]["body"]["data"]["order_id"]
    if pd.isna(first["revised_date"]) or first["customer_id"] not in reachable or first["tier"] != "strategic" or first["order_id"] == spike_order:
        return None
    # Short supply, not only late supply: the replan then has allocation scenarios to compare.
    if short_of_supply(inputs, target, today, bucket_days) <= 0:
        return None
    target.revised_date = pd.Timestamp(mine["revised_date"].iloc[0]).date()
    target.notice_order_id, target.notice_line_no = str(first["order_id"]), int(first["line_no"])
    return target


def _applied(target: Target, today: date, po_lines: pd.DataFrame, order_lines: pd.DataFrame, spike: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The SKU-location's PO and order lines after the scenario's events, applied as the `replan` job does."""
    from demand_control.planning.event_effects import ORDER_KEY, PO_KEY, apply_events

    events = scenario_events(target, today, "probe", datetime.combine(today, datetime.min.time(), tzinfo=UTC))
    if not spike:
        events = [e for e in events if e["body"]["type"] != "order.new"]
    inbox = pd.DataFrame([
        {"inbox_id": i, "webhook_id": e["webhook_id"], "event_type": e["body"]["type"], "payload": json.dumps(e["body"])}
        for i, e in enumerate(events, start=1)
    ])
    applied = apply_events(inbox, po_lines, order_lines, datetime.combine(today, datetime.min.time(), tzinfo=UTC))

    def merged(lines: pd.DataFrame, changed: pd.DataFrame, key: list[str]) -> pd.DataFrame:
        if changed.empty:
            return lines
        keep = ~lines.set_index(key).index.isin(changed.set_index(key).index)
        return pd.concat([lines[keep], changed[[c for c in lines.columns if c in changed.columns]]], ignore_index=True)

    return merged(po_lines, applied.purchase_lines, PO_KEY), merged(order_lines, applied.order_lines, ORDER_KEY)


def scenario_outcome(inputs: ScenarioInputs, target: Target, today: date, bucket_days: int = 7) -> pd.DataFrame:
    """The order lines at risk at the target's SKU-location once the spike and the delay are applied
    (`planning.exceptions.order_lines_at_risk`, with revised dates and the orders still to come inside the
    policy's lead time): what the replan will find."""
    from demand_control.planning.order_supply import order_lines_at_risk

    projection, orders, receipts = _after_events(inputs, target, today, bucket_days)
    return order_lines_at_risk(projection, orders, bucket_days, receipts, pd.Timestamp(today), **_to_come_inputs(inputs, target.sku, target.location_id))


def short_of_supply(inputs: ScenarioInputs, target: Target, today: date, bucket_days: int = 7) -> float:
    """Units the open orders at the target's SKU-location exceed the supply that can serve them once both
    events are applied (`planning.order_supply.supply_for_open_orders`): above zero, the replan compares
    allocation scenarios."""
    from demand_control.planning.order_supply import supply_for_open_orders

    projection, orders, _ = _after_events(inputs, target, today, bucket_days)
    supply = supply_for_open_orders(projection, orders, bucket_days)
    return float(orders["qty_open"].sum() - (supply["supply"].sum() if len(supply) else 0.0))


def _after_events(inputs: ScenarioInputs, target: Target, today: date, bucket_days: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    po_lines, order_lines = _applied(
        target, today, _one(inputs.purchase_lines, target.sku, target.location_id), _one(inputs.order_lines, target.sku, target.location_id)
    )
    return _project(inputs, target.sku, target.location_id, order_lines, po_lines, today, bucket_days)


def scenario_events(target: Target, today: date, tag: str, occurred_at: datetime | None = None) -> list[dict[str, Any]]:
    """The two webhook bodies: the spike order and the supplier's delay."""
    from demand_control.infra import clock

    occurred = (occurred_at or clock.now()).isoformat()
    return [
        {"source": SOURCE, "webhook_id": f"msg_spike_{tag}", "body": {
            "type": "order.new", "occurred_at": occurred,
            "data": {"order_id": f"SO-SPIKE-{tag}", "line_no": 1, "customer_id": target.spike_customer_id, "sku": target.sku,
                     "location_id": target.location_id, "qty_open": target.spike_qty,
                     "promise_date": (target.spike_promise or today + timedelta(days=SPIKE_LEAD_DAYS)).isoformat()}}},
        {"source": SOURCE, "webhook_id": f"msg_delay_{tag}", "body": {
            "type": "supplier.delay", "occurred_at": occurred,
            "data": {"supplier_id": target.supplier_id, "po_id": target.po_id, "line_no": target.po_line_no,
                     "new_date": target.new_po_date.isoformat()}}},
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
    """The recommended action of the SKU-location's order_at_risk exception that the owner's Slack message
    offers: its first customer notice, with the revised date (`choose_target` made sure it has one and the
    customer an email)."""
    actions = warehouse.read("recommended_actions")
    key = f"order_at_risk:{target.sku}@{target.location_id}"
    mine = actions[(actions["exception_key"] == key) & (actions["action_type"] == "notify_customer") & actions["new_date"].notna()]
    if mine.empty:
        raise RuntimeError(f"no customer notice with a revised date was recommended for {target.sku} at {target.location_id}")
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
