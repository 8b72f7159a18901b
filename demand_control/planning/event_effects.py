"""Applying inbox events to the open orders and purchase lines, before the next extract brings the same
facts from the source: a supplier delay moves the PO line's confirmed date, a shortfall its quantity, a
cancellation removes it; a new, changed or cancelled customer order line changes open demand.

Pure: takes the inbox rows (in arrival order) and the current lines, returns the changed lines, the keys
removed, the staged event records and one outcome sentence per event. Events about lines the warehouse
does not know change nothing and say so (the gateway already flagged them for data quality).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

PO_KEY = ["po_id", "line_no"]
ORDER_KEY = ["order_id", "line_no"]


@dataclass
class AppliedEvents:
    purchase_lines: pd.DataFrame  # changed or new PO lines (full rows)
    purchase_removed: pd.DataFrame  # po_id, line_no of cancelled lines
    order_lines: pd.DataFrame  # changed or new order lines (full rows)
    order_removed: pd.DataFrame  # order_id, line_no of cancelled lines
    supplier_events: pd.DataFrame  # staged supplier_event rows
    order_events: pd.DataFrame  # staged order_event rows
    outcomes: pd.DataFrame  # inbox_id, outcome, sku, location_id


def _occurred(body: dict, received: datetime) -> datetime:
    """When the event happened at the sender; when it does not say, when we applied it."""
    value = pd.Timestamp(body.get("occurred_at") or received)
    return (value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")).to_pydatetime()


def event_id(inbox_row: dict) -> str:
    """The staged supplier_event / order_event key of an inbox row: `<source>:<webhook-id>`. The inbox
    deduplicates per source, so two sources may send the same webhook-id; rows without a source (built by
    the twin or the seed scenario) keep the bare id."""
    source = inbox_row.get("source")
    return f"{source}:{inbox_row['webhook_id']}" if isinstance(source, str) and source else str(inbox_row["webhook_id"])


def apply_events(inbox: pd.DataFrame, purchase_lines: pd.DataFrame, order_lines: pd.DataFrame, now: datetime) -> AppliedEvents:
    """Apply `inbox` rows (inbox_id, webhook_id, event_type, payload) in inbox order to the given lines.

    `purchase_lines` and `order_lines` need only hold the lines the events name (the caller reads them by
    key). Later events on the same line see the earlier ones' effect."""
    po = {(r["po_id"], int(r["line_no"])): dict(r) for r in purchase_lines.to_dict("records")}
    so = {(r["order_id"], int(r["line_no"])): dict(r) for r in order_lines.to_dict("records")}
    po_touched: set[tuple[str, int]] = set()
    so_touched: set[tuple[str, int]] = set()
    po_gone: set[tuple[str, int]] = set()
    so_gone: set[tuple[str, int]] = set()
    supplier_rows, order_rows, outcomes = [], [], []
    for event in inbox.sort_values("inbox_id").to_dict("records"):
        body = json.loads(event["payload"])
        data = body.get("data", {})
        kind = event["event_type"]
        occurred = _occurred(body, now)
        sku = loc = None
        if kind.startswith("supplier."):
            key = (data["po_id"], int(data["line_no"]))
            change = kind.split(".", 1)[1]
            supplier_rows.append({
                "event_id": event_id(event), "supplier_id": data.get("supplier_id"), "type": change, "po_id": key[0], "line_no": key[1],
                "new_date": pd.Timestamp(data["new_date"]).date() if data.get("new_date") else None,
                "new_qty": float(data["new_qty"]) if data.get("new_qty") is not None else None,
                "occurred_at": occurred, "source_system": "gateway", "loaded_at": now,
            })
            line = po.get(key)
            if line is None or key in po_gone:
                outcomes.append((event["inbox_id"], f"no open PO line {key[0]}/{key[1]}: nothing changed", None, None))
                continue
            sku, loc = line["sku"], line["location_id"]
            if change in ("delay", "confirmation"):
                before = line.get("confirmed_date")
                line["confirmed_date"] = pd.Timestamp(data["new_date"]).date()
                if change == "confirmation" and line.get("status") == "sent":
                    line["status"] = "confirmed"
                text = f"PO {key[0]}/{key[1]} confirmed date {before or 'none'} → {line['confirmed_date']}"
            elif change == "shortfall":
                before = line["qty_open"]
                line["qty_open"] = float(data["new_qty"])
                text = f"PO {key[0]}/{key[1]} open quantity {before:g} → {line['qty_open']:g}"
            else:
                po_gone.add(key)
                text = f"PO {key[0]}/{key[1]} cancelled by the supplier"
            po_touched.add(key)
        else:
            key = (data["order_id"], int(data["line_no"]))
            change = kind.split(".", 1)[1]
            changes = data.get("changes") or {}
            order_rows.append({
                "event_id": event_id(event), "type": change, "order_id": key[0], "line_no": key[1],
                "changes": json.dumps(changes if change != "new" else {k: v for k, v in data.items() if k not in ("order_id", "line_no")}, sort_keys=True),
                "occurred_at": occurred, "source_system": "gateway", "loaded_at": now,
            })
            if change == "new":
                line = {
                    "order_id": key[0], "line_no": key[1], "customer_id": data["customer_id"], "sku": data["sku"], "location_id": data["location_id"],
                    "qty_open": float(data["qty_open"]), "promise_date": pd.Timestamp(data["promise_date"]).date(),
                    "priority": int(data.get("priority", 3)), "status": "open",
                }
                so[key] = line
                so_gone.discard(key)
                text = f"order {key[0]}/{key[1]} added: {line['qty_open']:g} × {line['sku']} at {line['location_id']} promised {line['promise_date']}"
            else:
                line = so.get(key)
                if line is None or key in so_gone:
                    outcomes.append((event["inbox_id"], f"no open order line {key[0]}/{key[1]}: nothing changed", None, None))
                    continue
                if change == "change":
                    parts = []
                    for field_name in ("qty_open", "promise_date", "location_id"):
                        if field_name in changes:
                            value = changes[field_name]
                            value = float(value) if field_name == "qty_open" else pd.Timestamp(value).date() if field_name == "promise_date" else value
                            parts.append(f"{field_name} {line[field_name]} → {value}")
                            line[field_name] = value
                    text = f"order {key[0]}/{key[1]} changed: " + ", ".join(parts)
                else:
                    so_gone.add(key)
                    text = f"order {key[0]}/{key[1]} cancelled"
            sku, loc = line["sku"], line["location_id"]
            so_touched.add(key)
        outcomes.append((event["inbox_id"], text, sku, loc))

    def frame(store: dict, touched: set, gone: set, columns: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
        kept = [store[k] for k in sorted(touched - gone)]
        removed = pd.DataFrame(sorted(gone), columns=columns)
        return pd.DataFrame(kept), removed

    purchase_changed, purchase_removed = frame(po, po_touched, po_gone, PO_KEY)
    order_changed, order_removed = frame(so, so_touched, so_gone, ORDER_KEY)
    return AppliedEvents(
        purchase_lines=purchase_changed,
        purchase_removed=purchase_removed,
        order_lines=order_changed,
        order_removed=order_removed,
        supplier_events=pd.DataFrame(supplier_rows),
        order_events=pd.DataFrame(order_rows),
        outcomes=pd.DataFrame(outcomes, columns=["inbox_id", "outcome", "sku", "location_id"]),
    )
