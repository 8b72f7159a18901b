"""Tryton 8.x as the ERP: JSON-RPC over HTTP to a running trytond, never Tryton imported in-process.

Keys: our SKU is the product's `code`, a DC is a warehouse location's `code`, suppliers and customers are
parties by `code`, a customer order is a sale by `reference` and its lines by `sequence`, a purchase order
is a purchase by `reference` and its lines by `sequence`, an opportunity is a `sale.opportunity` by
`reference` (see `mapping.py`; the sample seeding writes them that way).

Write-back, per action kind, and where the action id travels (RELIABILITY.md §11):
- replenish → a draft `purchase.purchase` with one line, on the named supplier's lane or the DC's primary
  lane; the id is in the purchase's `description`. Not a `purchase.request`: Tryton creates those itself
  (stock_supply) and refuses their product and warehouse from any external caller ("You are not allowed to
  modify the field"), whereas a draft purchase is Tryton's own proposal state that the buyer reviews,
  edits and confirms in the usual purchase workflow.
- accept_delay → the purchase line's `delivery_date` (its open receipt moves' planned date once the purchase
  is processing); the id is appended to the line's `note`.
- publish_forecast → a confirmed `stock.forecast` for the warehouse and bucket, one line per product, which
  `stock_supply_forecast` counts as demand; Tryton allows one forecast per warehouse, destination and
  period, which is the natural key looked up first, and the id is kept in an `ir.note` on the forecast.
- revise_promise → the planned date of the sale line's open outgoing moves (which is what the line's
  `shipping_date` shows); the id is appended to the line's `note`.
Each writer looks its action up before writing, and the look-up plus write is what is retried, so a replay
or a retry after a lost answer finds the first write instead of making a second.
"""

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import Field, PrivateAttr, TypeAdapter

from demand_control.infra import clock
from demand_control.resources.erp.base import (
    Difference,
    Erp,
    ErpAction,
    ForecastPublication,
    PromiseRevision,
    ReplenishOrder,
    SupplierDelay,
    WriteOutcome,
)
from demand_control.resources.sources import Extract
from demand_control.resources.erp.client import TrytonClient, TrytonUserError
from demand_control.resources.erp.changes import changed_order_lines
from demand_control.resources.erp.extract import customer_location_id, extract_object

ACTION_ADAPTER: TypeAdapter[ErpAction] = TypeAdapter(ErpAction)


def proposal_reference(action: ReplenishOrder) -> str:
    """The purchase-order reference of the draft a replenishment creates (its po_id once extracted)."""
    return f"DC-{action.action_id}"[:64]


class ErpReferenceError(TrytonUserError):
    """The action names something Tryton does not have (an unknown SKU, DC, order line)."""

    def __init__(self, message: str) -> None:
        super().__init__("UserError", message)


class TrytonErp(Erp):
    """A trytond server reached over HTTP JSON-RPC."""

    source_system: ClassVar[str] = "tryton"

    url: str = Field(default="http://127.0.0.1:8765", description="Base URL of trytond, without the database.")
    database: str = Field(default="demand_control", description="Tryton database name.")
    login: str = Field(default="admin", description="Tryton user demand-control acts as.")
    password: str = Field(default="admin", description="That user's password (from an EnvVar in production).")
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, description="Attempts per call when the transport fails.")
    max_retry_seconds: float = Field(default=60.0, gt=0)
    cursor_overlap_seconds: float = Field(
        default=10.0, ge=0,
        description="Incremental extracts re-read this much before the cursor, for transactions that committed late.",
    )

    _client: TrytonClient | None = PrivateAttr(default=None)

    @property
    def client(self) -> TrytonClient:
        if self._client is None:
            self._client = TrytonClient(
                self.url,
                self.database,
                self.login,
                self.password,
                timeout=self.timeout_seconds,
                max_attempts=self.max_attempts,
                max_retry_seconds=self.max_retry_seconds,
            )
        return self._client

    def describe(self) -> str:
        return f"Tryton {self.database} at {self.url}"

    def extract(self, object_name: str, since: str | None = None) -> Extract:
        return extract_object(
            self.client, object_name, since, source_uri=f"{self.url}/{self.database}",
            overlap=dt.timedelta(seconds=self.cursor_overlap_seconds),
        )

    def changed_order_lines(self, since: dt.datetime | None, limit: int, *, timeout_seconds: float = 5.0) -> dict[str, Any]:
        """Sale and purchase lines changed in Tryton after `since` (see `changes.changed_order_lines`).

        Meant for a sensor polling every few seconds: its own client with a short timeout and a single attempt
        (the next evaluation is the retry), so a down or hung ERP costs at most a few timeouts, never the
        long retry budget of extraction and write-back. Raises the client's transport or server error.
        """
        client = TrytonClient(
            self.url, self.database, self.login, self.password,
            timeout=min(self.timeout_seconds, timeout_seconds), max_attempts=1,
        )
        try:
            return changed_order_lines(client, since, limit)
        finally:
            client.close()

    def apply(self, action: ErpAction | dict[str, Any]) -> WriteOutcome:
        """Apply an approved action exactly once; retried as a unit on transport errors."""
        action = ACTION_ADAPTER.validate_python(action) if isinstance(action, dict) else action
        writer = _Writer(self.client)
        outcome = self.client.retrying(lambda: writer.apply(action))
        differences = self.reconcile(action)
        return outcome.model_copy(update={"differences": differences})

    def reconcile(self, action: ErpAction) -> tuple[Difference, ...]:
        """Read the action's record(s) back and list every field that differs from what was written."""
        writer = _Writer(self.client)
        return self.client.retrying(lambda: writer.reconcile(action))


class _Writer:
    """The look-up-then-write logic per action kind, over one client."""

    def __init__(self, client: TrytonClient) -> None:
        self.c = client

    def apply(self, action: ErpAction) -> WriteOutcome:
        if isinstance(action, ReplenishOrder):
            return self._replenish(action)
        if isinstance(action, SupplierDelay):
            return self._accept_delay(action)
        if isinstance(action, ForecastPublication):
            return self._publish_forecast(action)
        if isinstance(action, PromiseRevision):
            return self._revise_promise(action)
        raise TypeError(f"unknown action {action!r}")

    def reconcile(self, action: ErpAction) -> tuple[Difference, ...]:
        if isinstance(action, ReplenishOrder):
            found = self._purchases_of(action)
            if not found:
                return (Difference(field="purchase.purchase", expected=action.marker, actual=None),)
            purchase = found[0]
            lines = self.c.search_read("purchase.line", [("purchase", "=", purchase["id"]), ("type", "=", "line")],
                                       ["quantity", "product", "delivery_date"])
            return _differences(
                {"warehouse": self._warehouse(action.location_id), "lines": 1}, {**purchase, "lines": len(lines)}
            ) + _differences(
                {"quantity": action.quantity, "product": self._product(action.sku)["id"], "delivery_date": action.needed_by},
                lines[0] if lines else {},
            )
        if isinstance(action, SupplierDelay):
            line = self._purchase_line(action.po_id, action.line_no)
            return _differences({"delivery_date": action.new_date}, line)
        if isinstance(action, ForecastPublication):
            forecast = self._forecast_of(action)
            if forecast is None:
                return (Difference(field="stock.forecast", expected=action.period_start, actual=None),)
            lines = self.c.search_read("stock.forecast.line", [("forecast", "=", forecast["id"])], ["product.code", "quantity"])
            actual = {line["product."]["code"]: line["quantity"] for line in lines}
            diffs = [
                Difference(field=f"quantity[{sku}]", expected=qty, actual=actual.get(sku))
                for sku, qty in sorted(action.quantities.items())
                if actual.get(sku) is None or abs(actual[sku] - qty) > 1e-6
            ]
            if forecast["state"] != "done" and forecast["state"] != "confirmed":
                diffs.append(Difference(field="state", expected="confirmed", actual=forecast["state"]))
            return tuple(diffs)
        if isinstance(action, PromiseRevision):
            line = self._sale_line(action.order_id, action.line_no)
            return _differences({"shipping_date": action.new_date}, line)
        raise TypeError(f"unknown action {action!r}")

    def _replenish(self, action: ReplenishOrder) -> WriteOutcome:
        existing = self._purchases_of(action)
        if existing:
            return WriteOutcome(action_id=action.action_id, kind=action.kind, model="purchase.purchase",
                                record_ids=tuple(p["id"] for p in existing), created=False)
        product = self._product(action.sku)
        warehouse = self._warehouse(action.location_id)
        lane = self._lane(action)
        company = self._company()
        currency = self.c.search_read("company.company", [("id", "=", company)], ["currency"])[0]["currency"]
        unit = product["purchase_uom"] or product["default_uom"]
        line = {
            "type": "line",
            "sequence": 1,
            "product": product["id"],
            "product_supplier": lane["id"],
            "quantity": action.quantity,
            "unit": unit,
            "unit_price": lane["unit_price"],
            "description": f"{action.sku} for {action.location_id}",
        }
        ids = self.c.model(
            "purchase.purchase", "create",
            [{
                "company": company,
                "currency": currency,
                "party": lane["party"],
                "warehouse": warehouse,
                # The reference is how purchase orders are keyed in the canonical purchase_order_line.
                "reference": proposal_reference(action),
                "purchase_date": clock.today(),
                "delivery_date": action.needed_by,
                "description": f"{action.marker} replenish {action.quantity:g} {action.sku} at {action.location_id} "
                f"by {action.needed_by.isoformat()}",
                "lines": [["create", [line]]],
            }],
        )
        return WriteOutcome(action_id=action.action_id, kind=action.kind, model="purchase.purchase",
                            record_ids=tuple(ids), created=True)

    def _purchases_of(self, action: ReplenishOrder) -> list[dict[str, Any]]:
        return self.c.search_read(
            "purchase.purchase", [("description", "like", f"{action.marker} %")],
            ["id", "state", "warehouse", "delivery_date", "lines"],
        )

    def _lane(self, action: ReplenishOrder) -> dict[str, Any]:
        """The sourcing lane to buy on: the named supplier's, else the DC's primary lane for the SKU."""
        domain: list[Any] = [("product.code", "=", action.sku), ("code", "=", action.location_id)]
        if action.supplier_id:
            domain.append(("party.code", "=", action.supplier_id))
        lanes = self.c.search_read(
            "purchase.product_supplier", domain, ["id", "party", "prices"], order=[("sequence", "ASC"), ("id", "ASC")],
            limit=1,
        )
        if not lanes:
            who = f"supplier {action.supplier_id!r}" if action.supplier_id else "any supplier"
            raise ErpReferenceError(f"no sourcing lane for sku {action.sku!r} at {action.location_id!r} from {who}")
        lane = lanes[0]
        prices = self.c.search_read("purchase.product_supplier.price", [("id", "in", lane["prices"])], ["unit_price"]) if lane["prices"] else []
        lane["unit_price"] = prices[0]["unit_price"] if prices else Decimal(0)
        return lane

    def _accept_delay(self, action: SupplierDelay) -> WriteOutcome:
        line = self._purchase_line(action.po_id, action.line_no)
        note = line["note"] or ""
        if action.marker in note:
            return WriteOutcome(action_id=action.action_id, kind=action.kind, model="purchase.line",
                                record_ids=(line["id"],), created=False)
        entry = f"{action.marker} delivery date {line['delivery_date']} -> {action.new_date.isoformat()}"
        moves = self._open_moves("purchase.line", line["id"])
        if moves:
            # Once a purchase is processing, its line's delivery date is its receipt moves' planned date.
            self.c.model("stock.move", "write", moves, {"planned_date": action.new_date})
            self.c.model("purchase.line", "write", [line["id"]], {"note": _append(note, entry)})
        else:
            self.c.model(
                "purchase.line", "write", [line["id"]],
                {"delivery_date_edit": True, "delivery_date": action.new_date, "note": _append(note, entry)},
            )
        return WriteOutcome(action_id=action.action_id, kind=action.kind, model="purchase.line",
                            record_ids=(line["id"],), created=True)

    def _open_moves(self, origin_model: str, line_id: int) -> list[int]:
        moves = self.c.search_read(
            "stock.move", [("origin", "=", f"{origin_model},{line_id}"), ("state", "in", ["draft", "staging", "assigned"])],
            ["id"],
        )
        return [m["id"] for m in moves]

    def _publish_forecast(self, action: ForecastPublication) -> WriteOutcome:
        existing = self._forecast_of(action)
        if existing is not None:
            return WriteOutcome(action_id=action.action_id, kind=action.kind, model="stock.forecast",
                                record_ids=(existing["id"],), created=False)
        warehouse = self._warehouse(action.location_id)
        lines = []
        for sku, quantity in sorted(action.quantities.items()):
            product = self._product(sku)
            lines.append({"product": product["id"], "quantity": quantity, "minimal_quantity": 0,
                          "unit": product["default_uom"]})
        ids = self.c.model(
            "stock.forecast", "create",
            [{
                "warehouse": warehouse,
                "destination": self._customer_location(),
                "from_date": action.period_start,
                "to_date": action.period_end,
                "company": self._company(),
                "lines": [["create", lines]],
            }],
        )
        self.c.model("ir.note", "create", [{"resource": f"stock.forecast,{ids[0]}", "message": action.marker}])
        self.c.model("stock.forecast", "confirm", ids)
        return WriteOutcome(action_id=action.action_id, kind=action.kind, model="stock.forecast",
                            record_ids=tuple(ids), created=True)

    def _forecast_of(self, action: ForecastPublication) -> dict[str, Any] | None:
        found = self.c.search_read(
            "stock.forecast",
            [("warehouse", "=", self._warehouse(action.location_id)), ("from_date", "=", action.period_start),
             ("to_date", "=", action.period_end), ("destination", "=", self._customer_location())],
            ["id", "state"],
            # Tryton hides a forecast whose period has ended (`active` is to_date >= today): without this a
            # replayed publication of a past period would not find the first and write it twice.
            context={"active_test": False},
        )
        return found[0] if found else None

    def _revise_promise(self, action: PromiseRevision) -> WriteOutcome:
        line = self._sale_line(action.order_id, action.line_no)
        note = line["note"] or ""
        if action.marker in note:
            return WriteOutcome(action_id=action.action_id, kind=action.kind, model="sale.line",
                                record_ids=(line["id"],), created=False)
        moves = self._open_moves("sale.line", line["id"])
        if not moves:
            raise ErpReferenceError(
                f"sale {action.order_id} line {action.line_no} has no open shipment move to reschedule"
            )
        entry = f"{action.marker} shipping date {line['shipping_date']} -> {action.new_date.isoformat()}"
        self.c.model("stock.move", "write", moves, {"planned_date": action.new_date})
        self.c.model("sale.line", "write", [line["id"]], {"note": _append(note, entry)})
        return WriteOutcome(action_id=action.action_id, kind=action.kind, model="sale.line",
                            record_ids=(line["id"],), created=True)

    def _one(self, model: str, domain: list[Any], fields: list[str], what: str) -> dict[str, Any]:
        found = self.c.search_read(model, domain, fields, limit=2)
        if len(found) != 1:
            raise ErpReferenceError(f"{what}: {'not found' if not found else 'ambiguous'} in Tryton ({model})")
        return found[0]

    def _product(self, sku: str) -> dict[str, Any]:
        return self._one("product.product", [("code", "=", sku)], ["id", "default_uom", "purchase_uom"], f"sku {sku!r}")

    def _warehouse(self, location_id: str) -> int:
        return self._one(
            "stock.location", [("type", "=", "warehouse"), ("code", "=", location_id)], ["id"],
            f"location_id {location_id!r}",
        )["id"]

    def _customer_location(self) -> int:
        return customer_location_id(self.c)

    def _party(self, code: str) -> int:
        return self._one("party.party", [("code", "=", code)], ["id"], f"party {code!r}")["id"]

    def _company(self) -> int:
        company = self.c.context.get("company")
        if company:
            return company
        return self.c.search_read("company.company", [], ["id"], limit=1)[0]["id"]

    def _purchase_line(self, po_id: str, line_no: int) -> dict[str, Any]:
        return self._one(
            "purchase.line",
            [("purchase.reference", "=", po_id), ("sequence", "=", line_no), ("type", "=", "line")],
            ["id", "note", "delivery_date", "quantity"],
            f"purchase order {po_id!r} line {line_no}",
        )

    def _sale_line(self, order_id: str, line_no: int) -> dict[str, Any]:
        return self._one(
            "sale.line",
            [("sale.reference", "=", order_id), ("sequence", "=", line_no), ("type", "=", "line")],
            ["id", "note", "shipping_date", "quantity"],
            f"customer order {order_id!r} line {line_no}",
        )


def _append(note: str, entry: str) -> str:
    return f"{note.rstrip()}\n{entry}".lstrip()


def _differences(expected: dict[str, Any], record: dict[str, Any]) -> tuple[Difference, ...]:
    diffs = []
    for field, value in expected.items():
        actual = record.get(field)
        same = abs(actual - value) < 1e-6 if isinstance(value, float) and isinstance(actual, (int, float)) else actual == value
        if not same:
            diffs.append(Difference(field=field, expected=value, actual=actual))
    return tuple(diffs)
