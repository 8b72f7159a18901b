"""The sample landscape written into Tryton's records with bulk ORM calls, one step per transaction; it runs
inside the seeding child process, with trytond imported and its pool initialised."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal

import numpy as np
import pandas as pd

from demand_control.resources.erp.mapping import (
    ALTERNATE_SEQUENCE,
    CASE_UOM_SYMBOL,
    CUSTOMER_CATEGORY,
    OPPORTUNITY_STATE_BY_STAGE,
    PRIMARY_SEQUENCE,
    PURCHASE_STATE_BY_STATUS,
    REGION_CATEGORY,
    SUPPLIER_CATEGORY,
    UOM_XML_ID_BY_UNIT,
    format_tags,
)
from demand_control.sample.tryton.bulk import (
    create_in_batches,
    insert_done_moves,
    write_in_batches,
)


def _money(value: float) -> Decimal:
    return Decimal(str(round(float(value), 4)))


def _day(value) -> dt.date:
    return pd.Timestamp(value).date()


class Seeder:
    """Writes the landscape into Tryton with bulk ORM calls, one step per transaction."""

    def __init__(self, pool, frames: Mapping[str, pd.DataFrame], as_of: dt.date):
        self.pool = pool
        self.frames = frames
        self.as_of = as_of
        self.counts: dict[str, int] = {}

    def _get(self, name: str):
        return self.pool.get(name)

    def _load_refs(self) -> None:
        """Ids of what earlier steps created, looked up again because each step is its own transaction."""
        Company = self._get("company.company")
        Location = self._get("stock.location")
        Product = self._get("product.product")
        Party = self._get("party.party")
        PaymentTerm = self._get("account.invoice.payment_term")
        Employee = self._get("company.employee")
        self.company, = Company.search([])
        self.currency = self.company.currency
        self.payment_term, = PaymentTerm.search([("name", "=", "Direct")])
        self.employee, = Employee.search([])
        self.customer_location, = Location.search([("code", "=", "CUS"), ("type", "=", "customer")])
        self.lost_found, = Location.search([("type", "=", "lost_found")])
        self.warehouses = {w.code: w for w in Location.search([("type", "=", "warehouse")])}
        from trytond.transaction import Transaction

        with Transaction().set_context(active_test=False):
            self.products = {p.code: p for p in Product.search([])}
        self.parties = {p.code: p for p in Party.search([])}

    def masters(self) -> None:
        f = self.frames
        Uom = self._get("product.uom")
        UomCategory = self._get("product.uom.category")
        ModelData = self._get("ir.model.data")
        Category = self._get("product.category")
        Template = self._get("product.template")
        PartyCategory = self._get("party.category")
        Party = self._get("party.party")
        Location = self._get("stock.location")
        ProductSupplier = self._get("purchase.product_supplier")
        Company = self._get("company.company")

        company, = Company.search([])
        currency = company.currency
        uoms = {unit: ModelData.get_id("product", xml_id) for unit, xml_id in UOM_XML_ID_BY_UNIT.items()}
        # Tryton has no "case" unit; a category of its own keeps it from converting to pieces.
        case_category, = UomCategory.create([{"name": "Case"}])
        case_uom, = Uom.create(
            [{"name": "Case", "symbol": CASE_UOM_SYMBOL, "category": case_category.id, "factor": 1.0, "rate": 1.0,
              "rounding": 1.0, "digits": 0}]
        )
        uoms["case"] = case_uom.id

        accounting, = Category.search([("accounting", "=", True)])
        products = f["product"]
        categories = Category.create([{"name": name} for name in sorted(products["category"].unique())])
        category_ids = {c.name: c.id for c in categories}
        templates = []
        for row in products.itertuples(index=False):
            uom = uoms[row.unit]
            templates.append({
                "name": row.description,
                "code": row.sku,
                "type": "goods",
                "default_uom": uom,
                "sale_uom": uom,
                "purchase_uom": uom,
                "salable": True,
                "purchasable": True,
                "list_price": _money(row.unit_price),
                "cost_price_method": "fixed",
                "account_category": accounting.id,
                "categories": [("add", [category_ids[row.category]])],
                "products": [("create", [{"cost_price": _money(row.unit_cost)}])],
            })
        create_in_batches(Template, templates)
        self.counts["products"] = len(templates)

        roots = PartyCategory.create(
            [{"name": CUSTOMER_CATEGORY}, {"name": SUPPLIER_CATEGORY}, {"name": REGION_CATEGORY}]
        )
        customers_root, suppliers_root, regions_root = roots
        customers = f["customer"]
        tiers = PartyCategory.create(
            [{"name": t, "parent": customers_root.id} for t in sorted(customers["tier"].unique())]
        )
        tier_ids = {c.name: c.id for c in tiers}
        regions = PartyCategory.create(
            [{"name": r, "parent": regions_root.id} for r in sorted(customers["region"].unique())]
        )
        region_ids = {c.name: c.id for c in regions}
        parties = []
        for row in customers.itertuples(index=False):
            parties.append(_party_values(
                row.customer_id, row.name, row.notify_email,
                [customers_root.id, tier_ids[row.tier], region_ids[row.region]],
            ))
        for row in f["supplier"].itertuples(index=False):
            parties.append(_party_values(row.supplier_id, row.name, row.contact, [suppliers_root.id]))
        create_in_batches(Party, parties)
        self.counts["customers"] = len(customers)
        self.counts["suppliers"] = len(f["supplier"])

        locations = f["location"]
        first, = Location.search([("type", "=", "warehouse")])
        rows = list(locations.itertuples(index=False))
        # Tryton ships one warehouse (WH); it becomes the first DC, the others are copies of it.
        Location.write([first], {"name": rows[0].name, "code": rows[0].location_id})
        for row in rows[1:]:
            Location.copy([first], default={"name": row.name, "code": row.location_id})
        # A warehouse has no region in Tryton; its address does, as a subdivision of the company's country
        # (ZZ, the ISO code reserved for user-assigned use).
        Country = self._get("country.country")
        Subdivision = self._get("country.subdivision")
        Address = self._get("party.address")
        country, = Country.create([{"name": "Distribution network", "code": "ZZ"}])
        region_names = sorted({row.region for row in rows})
        subdivisions = Subdivision.create([
            {"country": country.id, "name": name, "code": f"ZZ-{i:02d}", "type": "region"}
            for i, name in enumerate(region_names, start=1)
        ])
        subdivision_of = {sub.name: sub.id for sub in subdivisions}
        addresses = Address.create([
            {"party": company.party.id, "country": country.id, "subdivision": subdivision_of[row.region]}
            for row in rows
        ])
        for row, address in zip(rows, addresses, strict=True):
            warehouse, = Location.search([("type", "=", "warehouse"), ("code", "=", row.location_id)])
            Location.write([warehouse], {"address": address.id})
        self.counts["warehouses"] = len(rows)

        self._load_refs()
        lanes = []
        for row in f["sourcing"].itertuples(index=False):
            product = self.products[row.sku]
            lanes.append({
                "template": product.template.id,
                "product": product.id,
                "party": self.parties[row.supplier_id].id,
                "code": row.location_id,
                "sequence": PRIMARY_SEQUENCE if row.primary else ALTERNATE_SEQUENCE,
                "lead_time": dt.timedelta(days=float(row.lead_time_days)),
                "currency": currency.id,
                "company": company.id,
                "prices": [("create", [{"quantity": float(row.moq), "unit_price": _money(row.unit_cost)}])],
            })
        create_in_batches(ProductSupplier, lanes)
        self.counts["product_suppliers"] = len(lanes)

    def stock(self) -> None:
        """Opening balance, one done move per SKU-location-week of demand, then a count at `as_of`."""
        self._load_refs()
        Move = self._get("stock.move")
        Inventory = self._get("stock.inventory")
        f = self.frames
        hist = f["demand_history"]
        hist = hist[hist["qty"] > 0]
        sku = hist["sku"].astype(str).to_numpy()
        loc = hist["location_id"].astype(str).to_numpy()
        period = pd.to_datetime(hist["period_start"]).dt.date.to_numpy()
        qty = np.round(hist["qty"].to_numpy(dtype=np.float64), 2)
        prices = f["product"].set_index("sku")

        storage = {code: w.storage_location.id for code, w in self.warehouses.items()}
        product_ids = {code: p.id for code, p in self.products.items()}
        uom_ids = {code: p.default_uom.id for code, p in self.products.items()}
        unit_price = {s: _money(v) for s, v in prices["unit_price"].items()}
        cost_price = {s: _money(v) for s, v in prices["unit_cost"].items()}
        company, currency, customer = self.company.id, self.currency.id, self.customer_location.id

        opening_date = pd.Timestamp(f["demand_history"]["period_start"].min()).date() - dt.timedelta(days=1)
        opening = hist.groupby(["sku", "location_id"], observed=True)["qty"].sum()
        opening_moves = [
            {
                "product": product_ids[s], "unit": uom_ids[s], "quantity": round(float(q), 2),
                "internal_quantity": round(float(q), 2),
                "from_location": self.lost_found.id, "to_location": storage[l],
                "planned_date": opening_date, "effective_date": opening_date,
                "company": company, "cost_price": cost_price[s],
            }
            for (s, l), q in opening.items()
        ]
        history_moves = [
            {
                "product": product_ids[s], "unit": uom_ids[s], "quantity": float(q), "internal_quantity": float(q),
                "from_location": storage[l], "to_location": customer,
                "planned_date": d, "effective_date": d,
                "company": company, "unit_price": unit_price[s], "currency": currency, "cost_price": cost_price[s],
            }
            for s, l, d, q in zip(sku, loc, period, qty, strict=True)
        ]
        insert_done_moves(Move, opening_moves)
        insert_done_moves(Move, history_moves)
        self.counts["opening_moves"] = len(opening_moves)
        self.counts["history_moves"] = len(history_moves)

        positions = f["inventory_position"]
        inventories = []
        for code, rows in positions.groupby("location_id", sort=True):
            inventories.append({
                "location": storage[code],
                "date": self.as_of,
                "company": company,
                "lines": [("create", [
                    {"product": product_ids[r.sku], "quantity": float(r.on_hand)}
                    for r in rows.itertuples(index=False)
                ])],
            })
        created = create_in_batches(Inventory, inventories)
        Inventory.confirm(created)
        self.counts["inventories"] = len(created)

    def sales(self) -> None:
        self._load_refs()
        Sale = self._get("sale.sale")
        lines = self.frames["customer_order_line"].sort_values(["order_id", "line_no"])
        prices = self.frames["product"].set_index("sku")["unit_price"]
        values = []
        for order_id, rows in lines.groupby("order_id", sort=True):
            head = rows.iloc[0]
            party = self.parties[head["customer_id"]]
            address = party.addresses[0].id
            promise = _day(head["promise_date"])
            values.append({
                "party": party.id,
                "invoice_address": address,
                "shipment_address": address,
                "warehouse": self.warehouses[head["location_id"]].id,
                "reference": order_id,
                "sale_date": min(self.as_of, promise),
                "shipping_date": promise,
                "payment_term": self.payment_term.id,
                "invoice_method": "fulfillment",
                "shipment_method": "order",
                "company": self.company.id,
                "currency": self.currency.id,
                "lines": [("create", [{
                    "type": "line",
                    "sequence": int(r.line_no),
                    "product": self.products[r.sku].id,
                    "unit": self.products[r.sku].default_uom.id,
                    "quantity": float(r.qty_open),
                    "unit_price": _money(prices[r.sku]),
                    "note": format_tags({"priority": int(r.priority), "status": r.status}),
                } for r in rows.itertuples(index=False)])],
            })
        sales = create_in_batches(Sale, values)
        Sale.quote(sales)
        Sale.confirm(sales)
        self.counts["sales"] = len(sales)
        self.counts["sale_lines"] = len(lines)

    def purchases(self) -> None:
        self._load_refs()
        Purchase = self._get("purchase.purchase")
        ProductSupplier = self._get("purchase.product_supplier")
        lanes = {
            (ps.product.code, ps.code, ps.party.code): ps
            for ps in ProductSupplier.search([])
        }
        lines = self.frames["purchase_order_line"].sort_values(["po_id", "line_no"])
        values, statuses = [], []
        for po_id, rows in lines.groupby("po_id", sort=True):
            head = rows.iloc[0]
            party = self.parties[head["supplier_id"]]
            line_values = []
            for r in rows.itertuples(index=False):
                lane = lanes[(r.sku, r.location_id, r.supplier_id)]
                delivery = r.confirmed_date if not pd.isna(r.confirmed_date) else r.expected_date
                line_values.append({
                    "type": "line",
                    "sequence": int(r.line_no),
                    "product": self.products[r.sku].id,
                    "product_supplier": lane.id,
                    "unit": self.products[r.sku].default_uom.id,
                    "quantity": float(r.qty_open),
                    "unit_price": lane.prices[0].unit_price,
                    "delivery_date_edit": True,
                    "delivery_date_store": _day(delivery),
                    "note": format_tags({"status": r.status}),
                })
            values.append({
                "party": party.id,
                "invoice_address": party.addresses[0].id,
                "warehouse": self.warehouses[head["location_id"]].id,
                "reference": po_id,
                "purchase_date": _day(head["order_date"]),
                "payment_term": self.payment_term.id,
                "invoice_method": "fulfillment",
                "company": self.company.id,
                "currency": self.currency.id,
                "lines": [("create", line_values)],
            })
            statuses.append(head["status"])
        purchases = create_in_batches(Purchase, values)
        states = [PURCHASE_STATE_BY_STATUS[s] for s in statuses]
        to_quote = [p for p, state in zip(purchases, states, strict=True) if state != "draft"]
        to_confirm = [p for p, state in zip(purchases, states, strict=True) if state == "processing"]
        Purchase.quote(to_quote)
        Purchase.confirm(to_confirm)
        self.counts["purchases"] = len(purchases)
        self.counts["purchase_lines"] = len(lines)

    def opportunities(self) -> None:
        self._load_refs()
        Opportunity = self._get("sale.opportunity")
        rows_all = self.frames["pipeline_opportunity"]
        values = []
        for opp_id, rows in rows_all.groupby("opportunity_id", sort=True):
            head = rows.iloc[0]
            party = self.parties[head["customer_id"]]
            expected = _day(head["expected_date"])
            values.append({
                "reference": opp_id,
                "description": head["stage"],
                "party": party.id,
                "address": party.addresses[0].id,
                "employee": self.employee.id,
                "payment_term": self.payment_term.id,
                "company": self.company.id,
                "currency": self.currency.id,
                "start_date": min(self.as_of, expected),
                "end_date": expected,
                "conversion_probability": float(head["probability"]),
                # Written directly: won and lost are reached through sales in Tryton's workflow, and the
                # pipeline must not turn into extra sale orders.
                "state": OPPORTUNITY_STATE_BY_STAGE[head["stage"]],
                "lines": [("create", [{
                    "product": self.products[r.sku].id,
                    "unit": self.products[r.sku].default_uom.id,
                    "quantity": float(r.qty),
                } for r in rows.itertuples(index=False)])],
            })
        create_in_batches(Opportunity, values)
        self.counts["opportunities"] = len(values)
        self.counts["opportunity_lines"] = len(rows_all)

    def finish(self) -> None:
        """Put back the dates processing changed, and retire discontinued products."""
        self._load_refs()
        Move = self._get("stock.move")
        SaleLine = self._get("sale.line")
        PurchaseLine = self._get("purchase.line")
        Template = self._get("product.template")
        Product = self._get("product.product")

        # Processing plans a customer move no earlier than today; an overdue promise must stay overdue.
        promises = {
            r.order_id: _day(r.promise_date) for r in self.frames["customer_order_line"].itertuples(index=False)
        }
        by_date: dict[dt.date, list] = {}
        for line in SaleLine.search([("sale.reference", "in", list(promises))]):
            promise = promises[line.sale.reference]
            for move in line.moves:
                if move.planned_date != promise:
                    by_date.setdefault(promise, []).append(move)
        for date, moves in by_date.items():
            write_in_batches(Move, moves, {"planned_date": date, "origin_planned_date": date})

        # Processing blanks the planned date of a move already overdue, and plans from the confirmed date
        # only: the overdue date must stay (a late supplier is the signal), and the buyer's expected date
        # is kept as the move's origin planned date.
        targets = {}
        for r in self.frames["purchase_order_line"].itertuples(index=False):
            delivery = r.confirmed_date if not pd.isna(r.confirmed_date) else r.expected_date
            targets[(r.po_id, int(r.line_no))] = (_day(delivery), _day(r.expected_date))
        by_dates: dict[tuple[dt.date, dt.date], list] = {}
        for line in PurchaseLine.search([("purchase.reference", "in", sorted({k[0] for k in targets}))]):
            target = targets[(line.purchase.reference, line.sequence)]
            for move in line.moves:
                if (move.planned_date, move.origin_planned_date) != target:
                    by_dates.setdefault(target, []).append(move)
        for (planned, origin), moves in by_dates.items():
            write_in_batches(Move, moves, {"planned_date": planned, "origin_planned_date": origin})

        products = self.frames["product"]
        inactive = set(products.loc[~products["active"].astype(bool), "sku"])
        retired = [self.products[s] for s in sorted(inactive)]
        if retired:
            write_in_batches(Product, retired, {"active": False})
            write_in_batches(Template, [p.template for p in retired], {"active": False})
        self.counts["inactive_products"] = len(retired)


def _party_values(code: str, name: str, email: str | None, categories: list[int]) -> dict:
    values: dict = {
        "code": code,
        "name": name,
        "addresses": [("create", [{}])],
        "categories": [("add", categories)],
    }
    if isinstance(email, str) and email:
        values["contact_mechanisms"] = [("create", [{"type": "email", "value": email}])]
    return values
