"""Hand-ranked cases for the worklist's surfaces (`demand-control worklist`, the App Home, the digest): rows as
the plan leaves them in `planning_exceptions` (for_person, loss_kind, expected_loss, act_by, priority) with
their rank-1 actions, names in the master data and a policy with Slack user ids. The expected order is
written here by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import yaml

from demand_control.planning.policy import Policy, parse_policy
from demand_control.resources.warehouse import Warehouse
from tests.services.test_notify import T0, action_row, exception_row, write_plan

FRESH, GROCERY = "#buying-fresh", "#buying-grocery"
FRESH_LEAD, BUYER, GROCERY_LEAD = "U0FRESH01", "U0BUYER01", "grocery.lead"
POLICY = {
    "version": 1,
    "currency": "CHF",
    "owners": {
        "fallback": {"team": "team:planning", "channel": "#planning-exceptions"},
        "rules": [
            {"name": "fresh", "match": {"category": ["fresh"]}, "owner": {"team": "team:buying-fresh", "channel": FRESH, "user": FRESH_LEAD}},
            {"name": "grocery", "match": {"category": ["grocery"]}, "owner": {"team": "team:buying-grocery", "channel": GROCERY, "user": GROCERY_LEAD}},
        ],
    },
    "sla": {"critical": 4, "high": 24, "medium": 72, "low": 168},
    "autonomy": {"min_confidence": 0.8},
    "roles": {
        "buyer": {"members": [BUYER], "may_approve": ["replenish", "expedite"]},
        "planner": {"members": ["ana.planner"], "may_approve": ["reschedule_out"]},
    },
}
POLICY_YAML = yaml.safe_dump(POLICY, sort_keys=False)
NAMES = {"SUP-1": "Acme Dairy", "CUST-0028": "Northwind Foods"}
ACT_BY = datetime(2026, 12, 7, tzinfo=UTC)  # a Monday: "Mon 7 Dec"


def policy() -> Policy:
    return parse_policy(POLICY_YAML, "worklist-test-policy.yaml")


def write_policy(folder: Path) -> Path:
    path = folder / "policy.yaml"
    path.write_text(POLICY_YAML)
    return path


def case(key: str, severity: str, priority: float, *, team: str = "team:buying-fresh", channel: str = FRESH, user: str | None = FRESH_LEAD,
         loss_kind: str = "shortage", expected_loss: float | None = None, act_by: datetime = ACT_BY, last_change: str = "unchanged",
         for_person: bool = True, **over: object) -> dict:
    money = over.pop("money", 1_000.0)
    return exception_row(
        key, severity, channel, money, owner_team=team, owner_user=user, for_person=for_person, loss_kind=loss_kind,
        expected_loss=expected_loss if expected_loss is not None else 2 * money, act_by=act_by, priority=priority, cause_key=None,
        suppressed_reason=None if for_person else "the projected balance covers the slip", last_change=last_change, **over,
    )


def action(exc: dict, action_id: str, approver: str = "buyer", action_type: str = "replenish", **over: object) -> dict:
    row = action_row(exc, action_id)
    row.update(approver_role=approver, action_type=action_type, **over)
    return row


def seed_cases(warehouse: Warehouse, severity: str = "low") -> dict[str, dict]:
    """The fresh team's four cases a person must act on (expected order: stockout 900, excess 300, order 300 —
    a tie the key breaks —, safety stock 50), one held back, one decided since the plan, and the grocery
    team's high case awaiting a buyer (priority 5,000)."""
    rows = {
        "stockout": case("projected_stockout:SKU-11@DC-1", severity, 900.0, last_change="opened",
                         sentence="SKU-11 at DC-1: stockout week of 30 Nov, 2 order lines of CUST-0028 short 96 units."),
        "excess": case("excess_stock:SKU-12@DC-1", severity, 300.0, loss_kind="excess", expected_loss=300.0, last_change="updated",
                       act_by=T0 + timedelta(days=7), sentence="SKU-12 at DC-1: available 1,450 against forecast 20/wk = 507 days of cover "
                       "(threshold 120); 1,110 units worth 4,400 beyond need, costing about 300 to hold until used."),
        "order": case("order_at_risk:SKU-13@DC-1", severity, 300.0),
        "safety": case("below_safety_stock:SKU-14@DC-1", severity, 50.0, act_by=T0 - timedelta(days=1)),
        "held": case("supplier_delay:SKU-15@DC-1", severity, 4_000.0, for_person=False),
        "decided": case("projected_stockout:SKU-16@DC-1", severity, 2_000.0),
        "grocery": case("projected_stockout:SKU-21@DC-2", "high", 5_000.0, team="team:buying-grocery", channel=GROCERY, user=GROCERY_LEAD,
                        category="grocery"),
    }
    actions = [
        action(rows["stockout"], "A-0000000000000011", expected_impact="orders 480 from SUP-1 today to land by 30 Nov"),
        action(rows["excess"], "A-0000000000000012", approver="planner", action_type="reschedule_out",
               expected_impact="moves PO PO-7000072/1 (400 units) from 30 Nov to 29 Jan, freeing 1,600 of working capital meanwhile"),
        action(rows["order"], "A-0000000000000013", approver="manager", action_type="notify_customer",
               expected_impact="tells CUST-0028 that 12 of 40 units of order SO-9/1 promised 30 Nov will ship by 7 Dec"),
        action(rows["decided"], "A-0000000000000016"),
        action(rows["grocery"], "A-0000000000000021"),
    ]
    write_plan(warehouse, list(rows.values()), actions)
    warehouse.replace_rows("action_decisions", pd.DataFrame([{
        "action_id": "A-0000000000000016", "decision": "approved", "decided_by": BUYER, "role": "buyer", "decided_at": T0 + timedelta(minutes=30),
    }]))
    loaded = {"source_system": "test", "loaded_at": T0}
    warehouse.replace_rows("supplier", pd.DataFrame([{"supplier_id": "SUP-1", "name": NAMES["SUP-1"], **loaded}]))
    warehouse.replace_rows("customer", pd.DataFrame([{"customer_id": "CUST-0028", "name": NAMES["CUST-0028"], "tier": "key", "region": "North", **loaded}]))
    warehouse.replace_rows("plan_runs", pd.DataFrame([{
        "run_id": "plan-1", "scope": "full", "sku_locations": 7, "as_of": T0.date(), "horizon_start": T0.date(), "bucket_days": 7, "planned_at": T0,
    }]))
    return rows


FRESH_ORDER = ["projected_stockout:SKU-11@DC-1", "excess_stock:SKU-12@DC-1", "order_at_risk:SKU-13@DC-1", "below_safety_stock:SKU-14@DC-1"]
BUYER_ORDER = ["projected_stockout:SKU-21@DC-2", "projected_stockout:SKU-11@DC-1"]
