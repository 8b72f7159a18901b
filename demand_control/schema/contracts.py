"""The canonical business objects of DOMAIN.md, declared once.

These declarations are the single source of truth for the warehouse DDL (`tables.py`), the Great
Expectations suites (`quality/`), the Dagster `TableSchema` metadata and the contract table in the README.
Nothing here imports Dagster, SQLAlchemy or Great Expectations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from demand_control.planning.vocabulary import TIERS

ColumnType = Literal["string", "integer", "float", "boolean", "date", "datetime", "json"]

# Dates before this are not plausible for any live planning record.
EARLIEST_PLAUSIBLE_DATE = date(2000, 1, 1)
# Promise, expected and confirmed dates further ahead than this are typos, not plans.
MAX_FUTURE_DAYS = 3 * 365


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    description: str
    required: bool = True
    allowed: tuple[str, ...] | None = None
    min_value: float | None = None
    max_value: float | None = None
    references: str | None = None  # "object.column" this value must exist in
    not_in_future: bool = False  # facts (stock counts, shipped demand) cannot be dated tomorrow
    list_of: str | None = None  # a ";"-separated list whose items reference "object.column"


@dataclass(frozen=True)
class Contract:
    name: str
    description: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    freshness_hours: float = 26.0
    file_drop: bool = True  # delivered as a file per object; events arrive through the gateway instead
    metadata_columns: tuple[Column, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        missing = [k for k in self.key if k not in names]
        if missing:
            raise ValueError(f"contract {self.name}: key columns {missing} are not declared")
        if len(set(names)) != len(names):
            raise ValueError(f"contract {self.name}: duplicate column names")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def all_columns(self) -> tuple[Column, ...]:
        """Business columns plus the lineage columns every staged table carries."""
        return self.columns + LINEAGE_COLUMNS

    def column(self, name: str) -> Column:
        for c in self.all_columns:
            if c.name == name:
                return c
        raise KeyError(f"contract {self.name} has no column {name!r}")

    @property
    def referenced_objects(self) -> list[str]:
        refs = [c.references or c.list_of for c in self.columns if c.references or c.list_of]
        return sorted({r.split(".")[0] for r in refs if r} - {self.name})


LINEAGE_COLUMNS: tuple[Column, ...] = (
    Column("source_system", "string", "System the row was extracted from (file_drop, tryton, gateway)."),
    Column("loaded_at", "datetime", "When demand-control loaded the row (UTC)."),
)

CONTRACTS: dict[str, Contract] = {}


def _register(contract: Contract) -> Contract:
    CONTRACTS[contract.name] = contract
    return contract


PRODUCT = _register(
    Contract(
        name="product",
        description="Sellable items (SKUs) with their category, unit economics and allowed substitutes.",
        key=("sku",),
        freshness_hours=7 * 24,
        columns=(
            Column("sku", "string", "Stock-keeping unit, the item's code."),
            Column("description", "string", "Item name as the customer sees it."),
            Column("category", "string", "Merchandise category; drives ownership and service level."),
            Column("unit", "string", "Unit of measure of every quantity of this SKU.", allowed=("each", "case", "kg", "l", "m")),
            Column("unit_cost", "float", "Standard cost per unit.", min_value=0),
            Column("unit_price", "float", "List price per unit.", min_value=0),
            Column(
                "substitute_skus",
                "string",
                "SKUs that may replace this one, separated by ';'.",
                required=False,
                list_of="product.sku",
            ),
            Column("active", "boolean", "False once the SKU is discontinued."),
        ),
    )
)

LOCATION = _register(
    Contract(
        name="location",
        description="Distribution centres, stores and supplier sites that hold or ship stock.",
        key=("location_id",),
        freshness_hours=30 * 24,
        columns=(
            Column("location_id", "string", "Location code."),
            Column("name", "string", "Location name."),
            Column("region", "string", "Sales region the location serves."),
            Column("type", "string", "Kind of location.", allowed=("dc", "store", "supplier_site")),
        ),
    )
)

CUSTOMER = _register(
    Contract(
        name="customer",
        description="Ship-to customers with their service tier and where to notify them.",
        key=("customer_id",),
        freshness_hours=7 * 24,
        columns=(
            Column("customer_id", "string", "Customer code."),
            Column("name", "string", "Customer name."),
            Column("tier", "string", "Service tier; sets service level and allocation priority.", allowed=TIERS),
            Column("region", "string", "Sales region of the customer."),
            Column("notify_email", "string", "Address for delay and allocation notices.", required=False),
        ),
    )
)

SUPPLIER = _register(
    Contract(
        name="supplier",
        description="Vendors, their contact and how reliably they deliver on time.",
        key=("supplier_id",),
        freshness_hours=7 * 24,
        columns=(
            Column("supplier_id", "string", "Supplier code."),
            Column("name", "string", "Supplier name."),
            Column("contact", "string", "Contact address for follow-ups.", required=False),
            Column(
                "reliability",
                "float",
                "Share of receipts delivered on time (0..1), derived; empty until receipts have been seen.",
                required=False,
                min_value=0,
                max_value=1,
            ),
            Column("lead_time_mean_days", "float", "Typical quoted lead time in days.", required=False, min_value=0, max_value=365),
            Column("lead_time_std_days", "float", "Spread of the actual lead time in days.", required=False, min_value=0, max_value=365),
        ),
    )
)

SOURCING = _register(
    Contract(
        name="sourcing",
        description="Which supplier replenishes which SKU at which location, with lead time and order rules.",
        key=("sku", "location_id", "supplier_id"),
        freshness_hours=7 * 24,
        columns=(
            Column("sku", "string", "SKU sourced.", references="product.sku"),
            Column("location_id", "string", "Receiving location.", references="location.location_id"),
            Column("supplier_id", "string", "Supplier of the lane.", references="supplier.supplier_id"),
            Column("lead_time_days", "float", "Mean lead time of the lane in days.", min_value=0, max_value=365),
            Column("lead_time_std_days", "float", "Standard deviation of the lane's lead time in days.", min_value=0, max_value=365),
            Column("moq", "float", "Minimum order quantity in units.", min_value=0),
            Column("pack_size", "float", "Order multiple in units.", min_value=0),
            Column("unit_cost", "float", "Purchase price per unit on this lane.", min_value=0),
            Column("primary", "boolean", "True for the default supplier of the SKU-location."),
        ),
    )
)

INVENTORY_POSITION = _register(
    Contract(
        name="inventory_position",
        description="Stock on hand, allocated and in transit per SKU-location at a point in time.",
        key=("sku", "location_id", "as_of"),
        freshness_hours=26,
        columns=(
            Column("sku", "string", "SKU counted.", references="product.sku"),
            Column("location_id", "string", "Location holding the stock.", references="location.location_id"),
            Column("as_of", "date", "Date of the snapshot.", not_in_future=True),
            Column("on_hand", "float", "Physical units on hand.", min_value=0),
            Column("allocated", "float", "Units reserved for released orders.", min_value=0),
            Column("in_transit", "float", "Units shipped to this location, not yet received.", min_value=0),
        ),
    )
)

CUSTOMER_ORDER_LINE = _register(
    Contract(
        name="customer_order_line",
        description="Open customer order lines: what each customer is waiting for and the date promised.",
        key=("order_id", "line_no"),
        freshness_hours=26,
        columns=(
            Column("order_id", "string", "Sales order number."),
            Column("line_no", "integer", "Line number within the order.", min_value=1),
            Column("customer_id", "string", "Ordering customer.", references="customer.customer_id"),
            Column("sku", "string", "SKU ordered.", references="product.sku"),
            Column("location_id", "string", "Shipping location.", references="location.location_id"),
            Column("qty_open", "float", "Units still to ship.", min_value=0),
            Column("promise_date", "date", "Date promised to the customer."),
            Column("priority", "integer", "Order priority, 1 (highest) to 5.", min_value=1, max_value=5),
            Column("status", "string", "Line status.", allowed=("open", "partial", "backordered", "on_hold")),
        ),
    )
)

PURCHASE_ORDER_LINE = _register(
    Contract(
        name="purchase_order_line",
        description="Open purchase order lines: supply on its way with the expected and confirmed dates.",
        key=("po_id", "line_no"),
        freshness_hours=26,
        columns=(
            Column("po_id", "string", "Purchase order number."),
            Column("line_no", "integer", "Line number within the order.", min_value=1),
            Column("supplier_id", "string", "Supplier delivering.", references="supplier.supplier_id"),
            Column("sku", "string", "SKU ordered.", references="product.sku"),
            Column("location_id", "string", "Receiving location.", references="location.location_id"),
            Column("qty_open", "float", "Units still to receive.", min_value=0),
            Column("order_date", "date", "Date the order was placed.", not_in_future=True),
            Column("expected_date", "date", "Date the buyer expects the goods (order date + lead time)."),
            Column("confirmed_date", "date", "Delivery date the supplier confirmed.", required=False),
            Column("status", "string", "Line status.", allowed=("draft", "sent", "confirmed", "partial")),
        ),
    )
)

DEMAND_HISTORY = _register(
    Contract(
        name="demand_history",
        description="Demand per SKU-location and bucket (shipped or ordered units), the forecasting input.",
        key=("sku", "location_id", "period_start"),
        freshness_hours=8 * 24,
        columns=(
            Column("sku", "string", "SKU demanded.", references="product.sku"),
            Column("location_id", "string", "Location that served the demand.", references="location.location_id"),
            Column("period_start", "date", "First day of the bucket (Monday for weeks).", not_in_future=True),
            Column("qty", "float", "Units demanded in the bucket.", min_value=0),
        ),
    )
)

PIPELINE_OPPORTUNITY = _register(
    Contract(
        name="pipeline_opportunity",
        description="CRM opportunities: demand customers may place, with its probability and timing.",
        key=("opportunity_id", "sku"),
        freshness_hours=7 * 24,
        columns=(
            Column("opportunity_id", "string", "CRM opportunity id."),
            Column("sku", "string", "SKU quoted.", references="product.sku"),
            Column("customer_id", "string", "Prospective customer.", references="customer.customer_id"),
            Column("qty", "float", "Units quoted.", min_value=0),
            Column("probability", "float", "Chance of winning (0..1).", min_value=0, max_value=1),
            Column("expected_date", "date", "Date the order would be placed."),
            Column(
                "stage",
                "string",
                "Sales stage.",
                allowed=("prospecting", "qualification", "proposal", "negotiation", "won", "lost"),
            ),
        ),
    )
)

SUPPLIER_EVENT = _register(
    Contract(
        name="supplier_event",
        description="A supplier's signal about a purchase order line: delay, confirmation, shortfall, cancellation.",
        key=("event_id",),
        file_drop=False,
        columns=(
            Column("event_id", "string", "Sender's event id (the webhook id)."),
            Column("supplier_id", "string", "Supplier that sent the event.", references="supplier.supplier_id"),
            Column("type", "string", "What happened.", allowed=("delay", "confirmation", "shortfall", "cancellation")),
            Column("po_id", "string", "Purchase order concerned."),
            Column("line_no", "integer", "Purchase order line concerned.", min_value=1),
            Column("new_date", "date", "New delivery date, for delays and confirmations.", required=False),
            Column("new_qty", "float", "New quantity, for shortfalls.", required=False, min_value=0),
            Column("occurred_at", "datetime", "When the supplier recorded the event.", not_in_future=True),
        ),
    )
)

ORDER_EVENT = _register(
    Contract(
        name="order_event",
        description="A customer order created, changed or cancelled outside the nightly extract.",
        key=("event_id",),
        file_drop=False,
        columns=(
            Column("event_id", "string", "Sender's event id (the webhook id)."),
            Column("type", "string", "What happened.", allowed=("new", "change", "cancel")),
            Column("order_id", "string", "Sales order concerned."),
            Column("line_no", "integer", "Order line concerned.", min_value=1),
            Column("changes", "json", "Changed fields and their new values.", required=False),
            Column("occurred_at", "datetime", "When the order system recorded the event.", not_in_future=True),
        ),
    )
)

# The order in which file-drop objects must be staged so that references resolve.
FILE_DROP_OBJECTS: tuple[str, ...] = tuple(name for name, c in CONTRACTS.items() if c.file_drop)


def contracts_markdown() -> str:
    """The contract table the README embeds, generated so it cannot drift from the code."""
    lines = [
        "| object | key | columns | freshness |",
        "|---|---|---|---|",
    ]
    for c in CONTRACTS.values():
        cols = []
        for col in c.columns:
            if col.name in c.key:
                continue
            text = f"`{col.name}` {col.type}"
            if not col.required:
                text += " (optional)"
            if col.allowed:
                text += " ∈ {" + ", ".join(col.allowed) + "}"
            if col.references:
                text += f" → {col.references}"
            cols.append(text)
        key = ", ".join(f"**{k}**" for k in c.key)
        fresh = f"{c.freshness_hours:g} h" if c.file_drop else "event"
        lines.append(f"| `{c.name}` | {key} | {'; '.join(cols)} | {fresh} |")
    return "\n".join(lines)
