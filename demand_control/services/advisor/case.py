"""What the advisor is told about one case, and what it may look up: the case's trusted facts (the exception,
its recommended actions), the untrusted free text that concerns it (supplier notes, customer comments,
webhook text) kept apart as quoted data, and the read-only lookups scoped to the case's SKU-locations,
supplier, purchase orders and customer orders."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import and_, or_

from demand_control.resources.warehouse import Warehouse
from demand_control.services.audit import canonical_json

EXCEPTION_FACTS: tuple[str, ...] = (
    "exception_key", "occurrence", "exception_type", "entity", "sku", "location_id", "supplier_id", "po_id", "po_line_no",
    "category", "region", "customer_tier", "severity", "window_start", "units_at_risk", "money_at_risk", "sentence",
)
ACTION_FACTS: tuple[str, ...] = (
    "action_id", "action_type", "rank", "sku", "location_id", "from_location_id", "supplier_id", "po_id", "po_line_no",
    "order_id", "order_line_no", "customer_id", "substitute_sku", "quantity", "value", "order_by", "needed_by", "new_date",
    "confidence", "expected_impact", "policy_decision",
)
# Free-text fields of an event payload: what a sender wrote, never an instruction to the advisor.
FREE_TEXT_KEYS: tuple[str, ...] = ("note", "notes", "comment", "comments", "message", "reason", "text", "description")
MAX_QUOTED_CHARS = 2000  # per quoted text: a long note is cut, never allowed to crowd out the facts
MAX_LOOKUP_ROWS = 26


def plain(value: Any) -> Any:
    """A JSON-able value: NaN/NaT/NA → None, timestamps → dates or ISO text, numpy scalars → Python."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (list, dict, str, bool, int, float)):
        return value
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else (value.date() if value == value.normalize() and value.tzinfo is None else value.to_pydatetime())
    if isinstance(value, (date, datetime)):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value.item() if hasattr(value, "item") else value


def _row(record: Mapping[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    return {c: plain(record.get(c)) for c in columns if c in record and plain(record.get(c)) is not None}


def _json_or_none(text: Any) -> Any:
    if not isinstance(text, str) or not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def free_texts(payload: Any, path: str = "") -> list[tuple[str, str]]:
    """(field path, text) of every free-text field in an event payload, however deep."""
    found: list[tuple[str, str]] = []
    if isinstance(payload, Mapping):
        for key, value in payload.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(value, str) and str(key).lower() in FREE_TEXT_KEYS and value.strip():
                found.append((where, value[:MAX_QUOTED_CHARS]))
            elif isinstance(value, (Mapping, list)):
                found.extend(free_texts(value, where))
    elif isinstance(payload, list):
        for i, item in enumerate(payload):
            found.extend(free_texts(item, f"{path}[{i}]"))
    return found


@dataclass
class CaseScope:
    """What the case's lookups may read: anything else is refused (and the refusal is what the model sees)."""

    sku_locations: set[tuple[str, str]] = field(default_factory=set)
    suppliers: set[str] = field(default_factory=set)
    purchase_orders: set[str] = field(default_factory=set)
    orders: set[str] = field(default_factory=set)


@dataclass
class Case:
    """One case as the advisor sees it."""

    exception_key: str
    occurrence: int
    facts: dict[str, Any]
    quoted: list[dict[str, str]]
    scope: CaseScope
    template_narrative: str
    followup_action_id: str | None
    template_followup: str | None

    @property
    def facts_hash(self) -> str:
        return hashlib.sha256(canonical_json({"facts": self.facts, "quoted": self.quoted}).encode()).hexdigest()


def load_case(warehouse: Warehouse, exception: Mapping[str, Any], actions: pd.DataFrame) -> Case:
    """The case of one active exception (a `planning_exceptions` record) and its recommended actions."""
    facts = _row(exception, EXCEPTION_FACTS)
    for name in ("trigger_values", "affected_orders"):
        parsed = _json_or_none(exception.get(name))
        if parsed is not None:
            facts[name] = parsed
    planner_actions = actions[actions["source"].fillna("planner") == "planner"] if "source" in actions else actions
    facts["recommended_actions"] = [_row(a, ACTION_FACTS) for a in planner_actions.sort_values("rank").to_dict("records")]

    scope = CaseScope()
    for record in [exception, *planner_actions.to_dict("records")]:
        sku, loc = plain(record.get("sku")), plain(record.get("location_id"))
        if sku and loc:
            scope.sku_locations.add((str(sku), str(loc)))
        if plain(record.get("supplier_id")):
            scope.suppliers.add(str(record["supplier_id"]))
        if plain(record.get("po_id")):
            scope.purchase_orders.add(str(record["po_id"]))
        if plain(record.get("order_id")):
            scope.orders.add(str(record["order_id"]))
    for line in facts.get("affected_orders") or []:
        if isinstance(line, Mapping) and line.get("order_id"):
            scope.orders.add(str(line["order_id"]))

    followup = planner_actions[planner_actions["action_type"] == "supplier_followup"].sort_values("rank")
    followup_id = str(followup.iloc[0]["action_id"]) if len(followup) else None
    followup_text = plain(followup.iloc[0]["message"]) if len(followup) else None
    return Case(
        exception_key=str(exception["exception_key"]), occurrence=int(plain(exception.get("occurrence")) or 1),
        facts=facts, quoted=_quoted_texts(warehouse, scope), scope=scope,
        template_narrative=str(plain(exception.get("sentence")) or ""), followup_action_id=followup_id,
        template_followup=followup_text if isinstance(followup_text, str) else None,
    )


def _quoted_texts(warehouse: Warehouse, scope: CaseScope) -> list[dict[str, str]]:
    """The free text senders wrote about the case's purchase orders, orders and SKU-locations (inbox events),
    oldest first: data to quote, never instructions."""
    c = warehouse.table("inbox_events").c
    conditions = []
    if scope.purchase_orders:
        conditions.append(c.po_id.in_(sorted(scope.purchase_orders)))
    if scope.orders:
        conditions.append(c.order_id.in_(sorted(scope.orders)))
    conditions += [and_(c.sku == sku, c.location_id == loc) for sku, loc in sorted(scope.sku_locations)]
    if not conditions:
        return []
    events = warehouse.read("inbox_events", columns=["inbox_id", "source", "event_type", "payload"], where=or_(*conditions))
    quoted = []
    for event in events.sort_values("inbox_id").to_dict("records"):
        for where, text in free_texts(_json_or_none(event["payload"])):
            quoted.append({"from": f"{event['source']} {event['event_type']} (inbox {event['inbox_id']}) {where}", "text": text})
    return quoted


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: plain(v) for k, v in row.items() if plain(v) is not None} for row in frame.head(MAX_LOOKUP_ROWS).to_dict("records")]


def lookup_projection(warehouse: Warehouse, scope: CaseScope, sku: str, location_id: str) -> dict[str, Any]:
    """The projected available balance of one of the case's SKU-locations, bucket by bucket."""
    if (sku, location_id) not in scope.sku_locations:
        return {"refused": f"{sku}@{location_id} is not a SKU-location of this case"}
    c = warehouse.table("projected_inventory").c
    rows = warehouse.read("projected_inventory", columns=["period_start", "opening", "receipts", "demand", "closing", "safety_stock"],
                          where=and_(c.sku == sku, c.location_id == location_id)).sort_values("period_start")
    return {"sku": sku, "location_id": location_id, "buckets": _records(rows)}


def lookup_supplier(warehouse: Warehouse, scope: CaseScope, supplier_id: str) -> dict[str, Any]:
    """The case's supplier: its on-time reliability and its open purchase lines for the case's SKU-locations."""
    if supplier_id not in scope.suppliers:
        return {"refused": f"{supplier_id} is not the supplier of this case"}
    supplier = warehouse.read("supplier", columns=["supplier_id", "name", "reliability"], where=warehouse.table("supplier").c.supplier_id == supplier_id)
    c = warehouse.table("purchase_order_line").c
    lines = warehouse.read("purchase_order_line", columns=["po_id", "line_no", "sku", "location_id", "qty_open", "expected_date", "confirmed_date", "status"],
                           where=c.supplier_id == supplier_id)
    lines = lines[[(s, l) in scope.sku_locations for s, l in zip(lines["sku"], lines["location_id"])]]
    return {"supplier": _records(supplier)[:1], "open_lines": _records(lines)}


def lookup_order(warehouse: Warehouse, scope: CaseScope, order_id: str) -> dict[str, Any]:
    """One of the case's customer orders: its open lines."""
    if order_id not in scope.orders:
        return {"refused": f"{order_id} is not an order of this case"}
    c = warehouse.table("customer_order_line").c
    lines = warehouse.read("customer_order_line", columns=["order_id", "line_no", "customer_id", "sku", "location_id", "qty_open", "promise_date", "status"],
                           where=c.order_id == order_id)
    return {"order_id": order_id, "lines": _records(lines)}
