"""How the canonical objects map onto Tryton records: the categories, sequences, units, states and note
tags that the extractor reads back and the sample seeding writes, defined once for both.

Where each canonical key and value lives in Tryton:

| canonical | Tryton model.field |
|---|---|
| product.sku | `product.product.code` (= `product.template.code`; no suffix code) |
| product.description | `product.template.name` |
| product.category | `product.template.categories`: the one non-accounting `product.category`, its `name` |
| product.unit | `product.template.default_uom.symbol`, mapped by `UNIT_BY_UOM_SYMBOL` |
| product.unit_cost / unit_price | `product.product.cost_price` / `product.template.list_price` (= the variant's `list_price_used`); both need `company` in the context |
| product.active | `product.template.active` and `product.product.active` (search with `active_test=False`) |
| location.location_id | `stock.location.code` of the `type = 'warehouse'` location; `name` = location.name |
| location.region | the warehouse's `address` (a `party.address` of the company's party): its `subdivision.name` (type region, in country `ZZ`) |
| customer.customer_id | `party.party.code`; the party is in `party.category` "Customers" |
| customer.tier / region | `party.party.categories`: child of "Customers" named the tier; child of "Regions" named the region |
| customer.notify_email, supplier.contact | `party.contact_mechanism.value` with `type = 'email'` |
| supplier.supplier_id | `party.party.code`; the party is in `party.category` "Suppliers" |
| sourcing (sku, location_id, supplier_id) | `purchase.product_supplier`: `product.code`, `code` (= location_id, the receiving DC: Tryton has no warehouse on it), `party.code` |
| sourcing.lead_time_days | `purchase.product_supplier.lead_time` (a timedelta) |
| sourcing.moq / unit_cost | its one `purchase.product_supplier.price`: `quantity` / `unit_price` |
| sourcing.primary | `purchase.product_supplier.sequence` == `PRIMARY_SEQUENCE` (alternates: `ALTERNATE_SEQUENCE`) |
| inventory_position.on_hand | done stock at `as_of` in the warehouse (`product.product` quantity, context `locations=[warehouse]`, `stock_date_end=as_of`); set by one done `stock.inventory` per warehouse dated `as_of` |
| customer_order_line.order_id | `sale.sale.reference` (the sale is confirmed and processed: state `processing`) |
| customer_order_line.line_no | `sale.line.sequence` |
| customer_order_line.customer_id / location_id | `sale.sale.party.code` / `sale.sale.warehouse.code` |
| customer_order_line.qty_open | `sale.line.quantity` |
| customer_order_line.promise_date | `sale.sale.shipping_date`, and the line's `shipping_date` (= its moves' `planned_date`) |
| customer_order_line.priority / status | `sale.line.note`: `priority=<n>` and `status=<status>` lines (`parse_tags`) |
| purchase_order_line.po_id | `purchase.purchase.reference`; `purchase_date` = order_date |
| purchase_order_line.line_no | `purchase.line.sequence`; `purchase.line.product_supplier` is the sourcing lane |
| purchase_order_line.supplier_id / location_id | `purchase.purchase.party.code` / `purchase.purchase.warehouse.code` |
| purchase_order_line.qty_open | `purchase.line.quantity` |
| purchase_order_line.confirmed_date | `purchase.line.delivery_date` when the line's `note` status is confirmed or partial, else none |
| purchase_order_line.expected_date | `stock.move.origin_planned_date` of the line's move (`purchase.line.moves`) once processed; `purchase.line.delivery_date` for draft and quotation purchases |
| purchase_order_line.status | `purchase.line.note` `status=<status>`; Tryton state: draft→draft, sent→quotation, confirmed/partial→processing |
| pipeline_opportunity.opportunity_id | `sale.opportunity.reference` |
| pipeline_opportunity.sku / qty | `sale.opportunity.line`: `product.code` / `quantity` |
| pipeline_opportunity.customer_id | `sale.opportunity.party.code` |
| pipeline_opportunity.probability | `sale.opportunity.conversion_probability` |
| pipeline_opportunity.expected_date | `sale.opportunity.end_date` |
| pipeline_opportunity.stage | `sale.opportunity.description`; Tryton state by `OPPORTUNITY_STATE_BY_STAGE` |
| demand_history (sku, location_id, period_start, qty) | done `stock.move` from the warehouse's storage location to the customer location (`code = 'CUS'`): one move per SKU-location-week with `qty > 0`, `effective_date` = period_start (the Monday), `quantity` = qty |

Over JSON-RPC, pass the user's preferences as the context (`model.res.user.get_preferences(True, {})`, it
carries `company`): without it cost and list prices read as null. Search products with
`active_test=False` to see discontinued ones.

Not represented in Tryton (no field for it): product.substitute_skus, location.type (every warehouse is a DC), supplier
reliability and lead-time mean/spread (lanes carry the lead time), sourcing lead_time_std_days and
pack_size, inventory_position allocated and in_transit. The opening balance that keeps stock from going
negative is one done move per SKU-location from Lost and Found into storage the day before the first
history week.
"""

from __future__ import annotations

from collections.abc import Mapping

# Party categories: a customer is in CUSTOMER_CATEGORY and in the children of it and of REGION_CATEGORY
# named its tier and region; a supplier is in SUPPLIER_CATEGORY.
CUSTOMER_CATEGORY = "Customers"
SUPPLIER_CATEGORY = "Suppliers"
REGION_CATEGORY = "Regions"
# The sequence of a sourcing lane (`purchase.product_supplier`) says whether it is the primary one.
PRIMARY_SEQUENCE = 1
ALTERNATE_SEQUENCE = 10
# Canonical units and Tryton units of measure; Tryton has no case, so the seeding creates one with this symbol.
CASE_UOM_SYMBOL = "case"
UOM_XML_ID_BY_UNIT: dict[str, str] = {
    "each": "uom_unit",
    "kg": "uom_kilogram",
    "l": "uom_liter",
    "m": "uom_meter",
}
UNIT_BY_UOM_SYMBOL: dict[str, str] = {"u": "each", "kg": "kg", "l": "l", "m": "m", CASE_UOM_SYMBOL: "case"}
# Canonical pipeline stages and purchase-order statuses as Tryton states. Several share one state, so the
# stage itself is kept in the opportunity's description and the status in the line's note tags.
OPPORTUNITY_STATE_BY_STAGE: dict[str, str] = {
    "prospecting": "lead",
    "qualification": "opportunity",
    "proposal": "opportunity",
    "negotiation": "opportunity",
    "won": "won",
    "lost": "lost",
}
PURCHASE_STATE_BY_STATUS: dict[str, str] = {
    "draft": "draft",
    "sent": "quotation",
    "confirmed": "processing",
    "partial": "processing",
}


def format_tags(tags: Mapping[str, object]) -> str:
    """The `key=value` lines stored in a Tryton note for values Tryton has no field for."""
    return "\n".join(f"{key}={value}" for key, value in tags.items())


def parse_tags(note: str | None) -> dict[str, str]:
    """Inverse of `format_tags`; lines without `=` (a human's remark) are ignored."""
    tags: dict[str, str] = {}
    for line in (note or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            tags[key.strip()] = value.strip()
    return tags
