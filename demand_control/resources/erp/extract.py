"""Read the canonical objects out of Tryton over JSON-RPC, in the same shape the file drop delivers them.

Where each key and value lives is documented in `resources/erp/mapping.py`. Objects whose records carry a
modification time are extracted incrementally: the cursor is the newest `last_modified_at` seen (Tryton's
coalesce of write and create dates), re-read with a small overlap so a transaction that committed late is
not missed (staging merges by key, so a row read twice is harmless). Records that stopped being open (a
cancelled or shipped order line) come back as removals. Inventory positions are a point-in-time snapshot
and always extracted whole.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd

from demand_control.infra import clock
from demand_control.schema.contracts import CONTRACTS
from demand_control.resources.sources import Extract
from demand_control.resources.erp.client import TrytonClient
from demand_control.resources.erp.mapping import (
    CUSTOMER_CATEGORY,
    OPPORTUNITY_STATE_BY_STAGE,
    PRIMARY_SEQUENCE,
    REGION_CATEGORY,
    SUPPLIER_CATEGORY,
    UNIT_BY_UOM_SYMBOL,
    parse_tags,
)

OPEN_SALE_STATES = ["confirmed", "processing"]
OPEN_PURCHASE_STATES = ["draft", "quotation", "confirmed", "processing"]
OPEN_MOVE_STATES = ["draft", "staging", "assigned"]
SOURCE_SYSTEM = "tryton"
INCLUDE_INACTIVE = {"active_test": False}


def extract_object(
    client: TrytonClient, object_name: str, since: str | None, source_uri: str, overlap: dt.timedelta
) -> Extract:
    """One object's rows; with `since`, only those changed after it (less `overlap`, re-read on purpose:
    a transaction that started earlier may commit after our last read)."""
    if object_name not in EXTRACTORS:
        raise KeyError(f"Tryton has no extractor for {object_name!r}")
    started = clock.now()
    since_at = dt.datetime.fromisoformat(since) - overlap if since else None
    reader = _Reader(client)
    frame, removed, cursor = EXTRACTORS[object_name](reader, since_at)
    columns = CONTRACTS[object_name].column_names
    frame = pd.DataFrame(frame, columns=columns) if not isinstance(frame, pd.DataFrame) else frame[columns]
    key = list(CONTRACTS[object_name].key)
    removed_frame = pd.DataFrame(removed, columns=key) if removed else None
    newest = cursor or (since_at + overlap if since_at else None)
    return Extract(
        object_name=object_name,
        frame=frame.reset_index(drop=True),
        source_system=SOURCE_SYSTEM,
        source_uri=f"{source_uri}#{object_name}",
        modified_at=started,
        mode="incremental" if since_at and object_name not in SNAPSHOT_ONLY else "snapshot",
        cursor=newest.isoformat() if newest else None,
        removed=removed_frame,
    )


def customer_location_id(client: TrytonClient) -> int:
    """Tryton's customer location: where shipments to customers go, and the destination of forecasts."""
    return client.search_read("stock.location", [("type", "=", "customer")], ["id"], limit=1)[0]["id"]


class _IncludingInactive:
    """The client, reading discontinued records too: an old SKU still has lanes, stock, history."""

    def __init__(self, client: TrytonClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def search_read(self, *args: Any, context: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        return self._client.search_read(*args, context={**INCLUDE_INACTIVE, **(context or {})}, **kwargs)

    def search_read_all(self, *args: Any, context: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        return self._client.search_read_all(*args, context={**INCLUDE_INACTIVE, **(context or {})}, **kwargs)


class _Reader:
    """Paged reads plus the look-ups every extractor shares (warehouses, parties, products)."""

    def __init__(self, client: TrytonClient) -> None:
        self.c = _IncludingInactive(client)
        self._warehouses: dict[int, dict[str, Any]] | None = None

    def all(self, model: str, domain: list[Any], fields: list[str], since: dt.datetime | None = None, header: str | None = None) -> list[dict]:
        """Rows of `model` changed after `since` (all without it). With `header` (e.g. "sale"), a row also
        counts as changed when its header record changed — confirming or cancelling an order writes the
        header only — and its `last_modified_at` becomes the later of the two."""
        stamp = [f"{header}.last_modified_at"] if header else []
        if since is not None:
            changed: list[Any] = [("last_modified_at", ">", since)]
            if header:
                changed = ["OR", changed[0], (f"{header}.last_modified_at", ">", since)]
            domain = [*domain, changed]
        rows = self.c.search_read_all(model, domain, [*fields, "last_modified_at", *stamp])
        if header:
            for row in rows:
                head = (row.get(f"{header}.") or {}).get("last_modified_at")
                if head is not None and (row["last_modified_at"] is None or head > row["last_modified_at"]):
                    row["last_modified_at"] = head
        return rows

    @property
    def warehouses(self) -> dict[int, dict[str, Any]]:
        if self._warehouses is None:
            rows = self.all(
                "stock.location", [("type", "=", "warehouse")],
                ["code", "name", "storage_location", "address.subdivision.name"],
            )
            self._warehouses = {r["id"]: r for r in rows}
        return self._warehouses

    def warehouse_of_storage(self) -> dict[int, str]:
        """Storage location id → DC code; moves out of a DC leave from its storage location."""
        return {w["storage_location"]: w["code"] for w in self.warehouses.values()}

    def customer_location(self) -> int:
        return customer_location_id(self.c)


def _newest(rows: Iterable[dict[str, Any]]) -> dt.datetime | None:
    stamps = [r["last_modified_at"] for r in rows if r.get("last_modified_at")]
    return max(stamps) if stamps else None


def _emails(reader: _Reader, party_ids: list[int]) -> dict[int, str]:
    rows = reader.c.search_read_all("party.contact_mechanism", [("party", "in", party_ids), ("type", "=", "email")], ["party", "value"])
    out: dict[int, str] = {}
    for row in sorted(rows, key=lambda r: r["id"]):
        out.setdefault(row["party"], row["value"])
    return out


def _category_children(reader: _Reader, parent_name: str) -> dict[int, str]:
    rows = reader.c.search_read_all("party.category", [("parent.name", "=", parent_name)], ["name"])
    return {r["id"]: r["name"] for r in rows}


def _products(reader: _Reader, since: dt.datetime | None):
    rows = reader.c.search_read_all(
        "product.product",
        [("active", "in", [True, False]), *([("last_modified_at", ">", since)] if since else [])],
        ["code", "name", "active", "cost_price", "list_price_used", "default_uom.symbol", "template.categories",
         "template.active", "last_modified_at"],
    )
    category_ids = sorted({c for r in rows for c in (r["template."]["categories"] or [])})
    names = {
        c["id"]: c["name"]
        for c in (reader.c.search_read_all("product.category", [("id", "in", category_ids)], ["name", "accounting"]) if category_ids else [])
        if not c.get("accounting")
    }
    out = []
    for r in rows:
        if not r["code"]:
            continue
        categories = [names[c] for c in r["template."]["categories"] or [] if c in names]
        symbol = (r.get("default_uom.") or {}).get("symbol")
        out.append({
            "sku": r["code"],
            "description": r["name"],
            "category": categories[0] if categories else None,
            "unit": UNIT_BY_UOM_SYMBOL.get(symbol, symbol),
            "unit_cost": float(r["cost_price"]) if r["cost_price"] is not None else None,
            "unit_price": float(r["list_price_used"]) if r["list_price_used"] is not None else None,
            "substitute_skus": None,
            "active": bool(r["active"]) and bool(r["template."]["active"]),
        })
    return out, [], _newest(rows)


def _locations(reader: _Reader, since: dt.datetime | None):
    rows = list(reader.warehouses.values())
    changed = [r for r in rows if since is None or (r["last_modified_at"] and r["last_modified_at"] > since)]
    out = [
        {"location_id": r["code"], "name": r["name"], "region": _region(r), "type": "dc"}
        for r in changed
    ]
    return out, [], _newest(rows)


def _region(warehouse: dict[str, Any]) -> str | None:
    address = warehouse.get("address.") or {}
    return (address.get("subdivision.") or {}).get("name")


def _parties_in(reader: _Reader, group: str, since: dt.datetime | None) -> list[dict[str, Any]]:
    return reader.all("party.party", [("categories.name", "=", group), ("active", "in", [True, False])], ["code", "name", "categories"], since)


def _customers(reader: _Reader, since: dt.datetime | None):
    parties = _parties_in(reader, CUSTOMER_CATEGORY, since)
    tiers = _category_children(reader, CUSTOMER_CATEGORY)
    regions = _category_children(reader, REGION_CATEGORY)
    emails = _emails(reader, [p["id"] for p in parties]) if parties else {}
    out = []
    for p in parties:
        out.append({
            "customer_id": p["code"],
            "name": p["name"],
            "tier": next((tiers[c] for c in p["categories"] if c in tiers), None),
            "region": next((regions[c] for c in p["categories"] if c in regions), None),
            "notify_email": emails.get(p["id"]),
        })
    return out, [], _newest(parties)


def _suppliers(reader: _Reader, since: dt.datetime | None):
    parties = _parties_in(reader, SUPPLIER_CATEGORY, since)
    emails = _emails(reader, [p["id"] for p in parties]) if parties else {}
    reliability = _on_time_share(reader, [p["id"] for p in parties]) if parties else {}
    lanes = reader.c.search_read_all("purchase.product_supplier", [("party", "in", [p["id"] for p in parties])], ["party", "lead_time"]) if parties else []
    lead_times: dict[int, list[float]] = defaultdict(list)
    for lane in lanes:
        if lane["lead_time"] is not None:
            lead_times[lane["party"]].append(lane["lead_time"].total_seconds() / 86400)
    out = []
    for p in parties:
        days = pd.Series(lead_times.get(p["id"], []), dtype=float)
        out.append({
            "supplier_id": p["code"],
            "name": p["name"],
            "contact": emails.get(p["id"]),
            "reliability": reliability.get(p["id"]),
            "lead_time_mean_days": float(days.mean()) if len(days) else None,
            "lead_time_std_days": float(days.std(ddof=0)) if len(days) else None,
        })
    return out, [], _newest(parties)


def _on_time_share(reader: _Reader, party_ids: list[int]) -> dict[int, float]:
    """Share of a supplier's received purchase moves that arrived by the date first planned."""
    moves = reader.c.search_read_all(
        "stock.move",
        [("state", "=", "done"), ("purchase.party", "in", party_ids), ("from_location.type", "=", "supplier")],
        ["purchase.party", "effective_date", "origin_planned_date"],
    )
    on_time: dict[int, list[bool]] = defaultdict(list)
    for m in moves:
        planned = m["origin_planned_date"]
        if planned and m["effective_date"]:
            on_time[m["purchase."]["party"]].append(m["effective_date"] <= planned)
    return {party: sum(flags) / len(flags) for party, flags in on_time.items() if flags}


def _sourcing(reader: _Reader, since: dt.datetime | None):
    lanes = reader.all(
        "purchase.product_supplier", [],
        ["product.code", "template.code", "code", "party.code", "lead_time", "sequence", "prices"], since,
    )
    price_ids = [p for lane in lanes for p in lane["prices"]]
    prices = {p["id"]: p for p in reader.c.search_read_all("purchase.product_supplier.price", [("id", "in", price_ids)], ["quantity", "unit_price"])} if price_ids else {}
    out = []
    for lane in lanes:
        lane_prices = [prices[p] for p in lane["prices"] if p in prices]
        first = min(lane_prices, key=lambda p: p["quantity"]) if lane_prices else None
        sku = (lane.get("product.") or {}).get("code") or (lane.get("template.") or {}).get("code")
        out.append({
            "sku": sku,
            "location_id": lane["code"],
            "supplier_id": lane["party."]["code"],
            "lead_time_days": lane["lead_time"].total_seconds() / 86400 if lane["lead_time"] is not None else None,
            "lead_time_std_days": 0.0,  # Tryton keeps one lead time per lane; the spread is learnt from receipts
            "moq": float(first["quantity"]) if first else 0.0,
            "pack_size": 1.0,
            "unit_cost": float(first["unit_price"]) if first else None,
            "primary": lane["sequence"] == PRIMARY_SEQUENCE,
        })
    return out, [], _newest(lanes)


def _inventory(reader: _Reader, since: dt.datetime | None):
    today = clock.today()
    out = []
    storage_to_dc = reader.warehouse_of_storage()
    allocated = _open_quantities(reader, [("from_location", "in", list(storage_to_dc)), ("state", "=", "assigned")], "from_location", storage_to_dc)
    for warehouse in reader.warehouses.values():
        context = {**reader.c.context, **INCLUDE_INACTIVE, "locations": [warehouse["id"]], "stock_date_end": today,
                   "with_childs": True}
        rows = reader.c.retrying(lambda context=context: reader.c.call(
            "model.product.product.search_read", [("code", "!=", None), ("type", "=", "goods")], 0, None, None,
            ["code", "quantity"], context,
        ))
        for r in rows:
            out.append({
                "sku": r["code"],
                "location_id": warehouse["code"],
                "as_of": today,
                "on_hand": max(float(r["quantity"] or 0.0), 0.0),
                "allocated": allocated.get((r["code"], warehouse["code"]), 0.0),
                "in_transit": 0.0,  # no inter-DC transit locations in this set-up
            })
    return out, [], None


def _open_quantities(reader: _Reader, domain: list[Any], location_field: str, location_to_dc: dict[int, str]) -> dict[tuple[str, str], float]:
    moves = reader.c.search_read_all("stock.move", domain, ["product.code", location_field, "quantity"])
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for m in moves:
        totals[(m["product."]["code"], location_to_dc[m[location_field]])] += float(m["quantity"])
    return dict(totals)


def _sale_lines(reader: _Reader, since: dt.datetime | None):
    fields = ["sale.reference", "sale.party.code", "sale.warehouse.code", "sale.state", "sequence", "product.code",
              "quantity", "shipping_date", "note", "moves"]
    lines = reader.all("sale.line", [("type", "=", "line")], fields, since, header="sale")
    open_moves = _open_move_quantities(reader, lines)
    out, removed = [], []
    for line in lines:
        sale = line["sale."]
        key = {"order_id": sale["reference"], "line_no": line["sequence"]}
        open_qty = open_moves.get(line["id"], float(line["quantity"])) if line["moves"] else float(line["quantity"])
        if sale["state"] not in OPEN_SALE_STATES or open_qty <= 0:
            removed.append(key)
            continue
        tags = parse_tags(line["note"])
        out.append({
            **key,
            "customer_id": sale["party."]["code"],
            "sku": line["product."]["code"],
            "location_id": sale["warehouse."]["code"],
            "qty_open": open_qty,
            "promise_date": line["shipping_date"],
            "priority": int(tags.get("priority", 3)),
            "status": tags.get("status", "partial" if open_qty < float(line["quantity"]) else "open"),
        })
    return out, removed if since else [], _newest(lines)


def _purchase_lines(reader: _Reader, since: dt.datetime | None):
    fields = ["purchase.reference", "purchase.party.code", "purchase.warehouse.code", "purchase.state",
              "purchase.purchase_date", "sequence", "product.code", "quantity", "delivery_date", "note", "moves"]
    lines = reader.all("purchase.line", [("type", "=", "line")], fields, since, header="purchase")
    moves = _moves_of(reader, lines)
    first_planned = {m["id"]: m["origin_planned_date"] for m in moves.values()}
    open_moves = _open_move_quantities(reader, lines, moves)
    out, removed = [], []
    for line in lines:
        purchase = line["purchase."]
        key = {"po_id": purchase["reference"], "line_no": line["sequence"]}
        open_qty = open_moves.get(line["id"], 0.0) if line["moves"] else float(line["quantity"])
        if purchase["state"] not in OPEN_PURCHASE_STATES or open_qty <= 0:
            removed.append(key)
            continue
        tags = parse_tags(line["note"])
        status = tags.get("status") or {"draft": "draft", "quotation": "sent"}.get(purchase["state"], "confirmed")
        planned = [first_planned[m] for m in line["moves"] if first_planned.get(m)]
        expected = min(planned) if planned else line["delivery_date"]
        out.append({
            **key,
            "supplier_id": purchase["party."]["code"],
            "sku": line["product."]["code"],
            "location_id": purchase["warehouse."]["code"],
            "qty_open": open_qty,
            "order_date": purchase["purchase_date"],
            "expected_date": expected,
            "confirmed_date": line["delivery_date"] if status in ("confirmed", "partial") else None,
            "status": status,
        })
    return out, removed if since else [], _newest(lines)


def _moves_of(reader: _Reader, lines: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    ids = [m for line in lines for m in line["moves"]]
    if not ids:
        return {}
    rows = reader.c.search_read_all("stock.move", [("id", "in", ids)], ["state", "quantity", "origin_planned_date"])
    return {m["id"]: m for m in rows}


def _open_move_quantities(
    reader: _Reader, lines: list[dict[str, Any]], moves: dict[int, dict[str, Any]] | None = None
) -> dict[int, float]:
    """Per order line, the quantity still on open moves: what has not shipped or arrived yet."""
    moves = _moves_of(reader, lines) if moves is None else moves
    return {
        line["id"]: sum(float(moves[m]["quantity"]) for m in line["moves"] if m in moves and moves[m]["state"] in OPEN_MOVE_STATES)
        for line in lines
    }


def _opportunities(reader: _Reader, since: dt.datetime | None):
    stage_by_state = {state: stage for stage, state in OPPORTUNITY_STATE_BY_STAGE.items()}
    lines = reader.all(
        "sale.opportunity.line", [],
        ["opportunity.reference", "opportunity.party.code", "opportunity.conversion_probability",
         "opportunity.end_date", "opportunity.description", "opportunity.state", "product.code", "quantity"],
        since,
    )
    out = []
    for line in lines:
        opp = line["opportunity."]
        stage = opp["description"] if opp["description"] in OPPORTUNITY_STATE_BY_STAGE else stage_by_state.get(opp["state"])
        out.append({
            "opportunity_id": opp["reference"],
            "sku": line["product."]["code"],
            "customer_id": opp["party."]["code"],
            "qty": float(line["quantity"]),
            "probability": float(opp["conversion_probability"] or 0.0),
            "expected_date": opp["end_date"],
            "stage": stage,
        })
    return out, [], _newest(lines)


def _demand_history(reader: _Reader, since: dt.datetime | None):
    storage_to_dc = reader.warehouse_of_storage()
    customer = reader.customer_location()
    base = [("state", "=", "done"), ("to_location", "=", customer), ("from_location", "in", list(storage_to_dc))]
    changed = reader.all("stock.move", base, ["product.code", "from_location", "effective_date", "quantity"], since)
    if since is None:
        moves = changed
        scope = None
    else:
        # A changed move changes its whole bucket: re-read every done move of the affected products and weeks.
        scope = {(m["product."]["code"], storage_to_dc[m["from_location"]], _monday(m["effective_date"])) for m in changed}
        if not scope:
            return [], [], _newest(changed)
        weeks = sorted({w for _, _, w in scope})
        skus = sorted({s for s, _, _ in scope})
        moves = reader.c.search_read_all(
            "stock.move",
            [*base, ("product.code", "in", skus), ("effective_date", ">=", weeks[0]), ("effective_date", "<=", weeks[-1] + dt.timedelta(days=6))],
            ["product.code", "from_location", "effective_date", "quantity"],
        )
    totals: dict[tuple[str, str, dt.date], float] = defaultdict(float)
    for m in moves:
        totals[(m["product."]["code"], storage_to_dc[m["from_location"]], _monday(m["effective_date"]))] += float(m["quantity"])
    if scope is not None:
        totals = {k: totals.get(k, 0.0) for k in scope}
    frame = pd.DataFrame(
        [(s, loc, week, qty) for (s, loc, week), qty in totals.items()],
        columns=["sku", "location_id", "period_start", "qty"],
    )
    if since is None and not frame.empty:
        frame = _dense_weeks(frame)
    return frame, [], _newest(changed)


def _dense_weeks(frame: pd.DataFrame) -> pd.DataFrame:
    """Weeks without a shipment are weeks of zero demand: fill them, from the first week seen to the last."""
    weeks = pd.date_range(frame["period_start"].min(), frame["period_start"].max(), freq="7D").date
    pairs = frame[["sku", "location_id"]].drop_duplicates()
    grid = pairs.merge(pd.DataFrame({"period_start": weeks}), how="cross")
    dense = grid.merge(frame, on=["sku", "location_id", "period_start"], how="left")
    dense["qty"] = dense["qty"].fillna(0.0)
    return dense.sort_values(["sku", "location_id", "period_start"])


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


Extractor = Callable[[_Reader, dt.datetime | None], tuple[Any, list[dict[str, Any]], dt.datetime | None]]
EXTRACTORS: dict[str, Extractor] = {
    "product": _products,
    "location": _locations,
    "customer": _customers,
    "supplier": _suppliers,
    "sourcing": _sourcing,
    "inventory_position": _inventory,
    "customer_order_line": _sale_lines,
    "purchase_order_line": _purchase_lines,
    "demand_history": _demand_history,
    "pipeline_opportunity": _opportunities,
}
SNAPSHOT_ONLY = {"inventory_position"}
