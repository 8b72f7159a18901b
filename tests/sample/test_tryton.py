"""The local Tryton: created, seeded from the landscape, served on loopback, checked over real JSON-RPC."""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import socket
import time
from decimal import Decimal

import httpx
import pandas as pd
import pytest

from demand_control.resources.erp.mapping import (
    OPPORTUNITY_STATE_BY_STAGE,
    PRIMARY_SEQUENCE,
    PURCHASE_STATE_BY_STATUS,
    UNIT_BY_UOM_SYMBOL,
    parse_tags,
)
from demand_control.sample.tryton import (
    TrytonSetupError,
    TrytonSite,
    init_database,
    is_serving,
    restore_or_init,
    serve,
)
from tests.tryton_fixtures import (  # noqa: F401
    TRYTON_AS_OF,
    TrytonRpc,
    TrytonServer,
    tryton_rpc,
    tryton_server,
)


def _date(value: dict | None) -> dt.date | None:
    if value is None:
        return None
    assert value["__class__"] == "date"
    return dt.date(value["year"], value["month"], value["day"])


def _encode_date(value: dt.date) -> dict:
    return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}


def _decimal(value: dict) -> Decimal:
    assert value["__class__"] == "Decimal"
    return Decimal(value["decimal"])


def _day(value) -> dt.date:
    return pd.Timestamp(value).date()


def test_init_creates_the_database_and_refuses_to_overwrite_it(tryton_server: TrytonServer) -> None:
    site = tryton_server.site
    assert site.sqlite_path.stat().st_size > 1_000_000
    assert f"path = {site.data_folder}" in site.config_path.read_text()
    assert f"listen = 127.0.0.1:{site.port}" in site.config_path.read_text()
    with pytest.raises(TrytonSetupError, match="already exists"):
        init_database(site, tryton_server.frames)


def test_server_answers_a_login_over_http(tryton_server: TrytonServer) -> None:
    response = httpx.post(
        tryton_server.rpc_url,
        json={"method": "common.db.login", "params": [tryton_server.login, {"password": tryton_server.password}], "id": 1},
        timeout=10,
    )
    user_id, session = response.json()["result"][:2]
    token = base64.b64encode(f"{tryton_server.login}:{user_id}:{session}".encode()).decode()
    users = httpx.post(
        tryton_server.rpc_url,
        json={"method": "model.res.user.search_read", "params": [[], 0, 10, None, ["login"], {}], "id": 2},
        headers={"Authorization": f"Session {token}"},
        timeout=10,
    ).json()["result"]
    assert [u["login"] for u in users] == ["admin"]
    assert is_serving(tryton_server.site)
    wrong = TrytonSite(**{**tryton_server.site.__dict__, "password": "not-the-password"})
    assert not is_serving(wrong)


def test_master_data_matches_the_landscape(tryton_rpc: TrytonRpc, tryton_server: TrytonServer) -> None:
    frames = tryton_server.frames
    products = tryton_rpc.search_read(
        "product.product",
        [],
        ["code", "active", "cost_price", "list_price_used", "template.name", "default_uom.symbol", "template.categories"],
        {"active_test": False},
    )
    expected = frames["product"].set_index("sku")
    assert sorted(p["code"] for p in products) == sorted(expected.index)
    categories = {c["id"]: c["name"] for c in tryton_rpc.search_read("product.category", [], ["name"])}
    for p in products:
        row = expected.loc[p["code"]]
        assert p["active"] == bool(row["active"])
        assert _decimal(p["cost_price"]) == Decimal(str(row["unit_cost"]))
        assert _decimal(p["list_price_used"]) == Decimal(str(row["unit_price"]))
        assert p["template."]["name"] == row["description"]
        assert UNIT_BY_UOM_SYMBOL[p["default_uom."]["symbol"]] == row["unit"]
        assert [categories[c] for c in p["template."]["categories"]] == [row["category"]]

    warehouses = tryton_rpc.search_read("stock.location", [["type", "=", "warehouse"]], ["code", "name"])
    assert {w["code"]: w["name"] for w in warehouses} == dict(
        zip(frames["location"]["location_id"], frames["location"]["name"], strict=True)
    )

    parties = tryton_rpc.search_read("party.party", [], ["code", "name", "categories.name", "contact_mechanisms"])
    by_code = {p["code"]: p for p in parties}
    for row in frames["customer"].itertuples(index=False):
        names = {c["name"] for c in by_code[row.customer_id]["categories."]}
        assert by_code[row.customer_id]["name"] == row.name
        assert names == {"Customers", row.tier, row.region}
    for row in frames["supplier"].itertuples(index=False):
        assert by_code[row.supplier_id]["name"] == row.name
        assert {c["name"] for c in by_code[row.supplier_id]["categories."]} == {"Suppliers"}
    emails = tryton_rpc.search_read("party.contact_mechanism", [["type", "=", "email"]], ["party.code", "value"])
    assert {e["party."]["code"]: e["value"] for e in emails} == {
        **dict(zip(frames["customer"]["customer_id"], frames["customer"]["notify_email"], strict=True)),
        **dict(zip(frames["supplier"]["supplier_id"], frames["supplier"]["contact"], strict=True)),
    }

    lanes = tryton_rpc.search_read(
        "purchase.product_supplier", [], ["product.code", "code", "party.code", "lead_time", "sequence", "prices"]
    )
    prices = {p["id"]: p for p in tryton_rpc.search_read("purchase.product_supplier.price", [], ["quantity", "unit_price"])}
    seeded = {
        (lane["product."]["code"], lane["code"], lane["party."]["code"]): (
            round(lane["lead_time"]["seconds"] / 86400, 6),
            prices[lane["prices"][0]]["quantity"],
            _decimal(prices[lane["prices"][0]]["unit_price"]),
            lane["sequence"] == PRIMARY_SEQUENCE,
        )
        for lane in lanes
    }
    assert seeded == {
        (r.sku, r.location_id, r.supplier_id): (r.lead_time_days, r.moq, Decimal(str(r.unit_cost)), bool(r.primary))
        for r in frames["sourcing"].itertuples(index=False)
    }


def test_open_orders_and_pipeline_match_the_landscape(tryton_rpc: TrytonRpc, tryton_server: TrytonServer) -> None:
    frames = tryton_server.frames
    sale_lines = tryton_rpc.search_read(
        "sale.line",
        [],
        ["sale.reference", "sale.state", "sale.party.code", "sale.warehouse.code", "sale.shipping_date",
         "sequence", "product.code", "quantity", "shipping_date", "note"],
    )
    seeded = set()
    for line in sale_lines:
        sale = line["sale."]
        assert sale["state"] == "processing"
        assert _date(line["shipping_date"]) == _date(sale["shipping_date"])
        tags = parse_tags(line["note"])
        seeded.add((
            sale["reference"], line["sequence"], sale["party."]["code"], line["product."]["code"],
            sale["warehouse."]["code"], line["quantity"], _date(line["shipping_date"]), int(tags["priority"]),
            tags["status"],
        ))
    assert seeded == {
        (r.order_id, r.line_no, r.customer_id, r.sku, r.location_id, r.qty_open, _day(r.promise_date), r.priority,
         r.status)
        for r in frames["customer_order_line"].itertuples(index=False)
    }

    purchase_lines = tryton_rpc.search_read(
        "purchase.line",
        [],
        ["purchase.reference", "purchase.state", "purchase.party.code", "purchase.warehouse.code",
         "purchase.purchase_date", "sequence", "product.code", "quantity", "delivery_date", "note", "moves"],
    )
    move_ids = [m for line in purchase_lines for m in line["moves"]]
    moves = {m["id"]: m for m in tryton_rpc.search_read("stock.move", [["id", "in", move_ids]], ["origin_planned_date"])}
    seeded = set()
    for line in purchase_lines:
        purchase = line["purchase."]
        status = parse_tags(line["note"])["status"]
        assert purchase["state"] == PURCHASE_STATE_BY_STATUS[status]
        delivery = _date(line["delivery_date"])
        if line["moves"]:
            expected_date = _date(moves[line["moves"][0]]["origin_planned_date"])
        else:
            expected_date = delivery
        confirmed = delivery if status in ("confirmed", "partial") else None
        seeded.add((
            purchase["reference"], line["sequence"], purchase["party."]["code"], line["product."]["code"],
            purchase["warehouse."]["code"], line["quantity"], _date(purchase["purchase_date"]), expected_date,
            confirmed, status,
        ))
    assert seeded == {
        (r.po_id, r.line_no, r.supplier_id, r.sku, r.location_id, r.qty_open, _day(r.order_date),
         _day(r.expected_date), None if pd.isna(r.confirmed_date) else _day(r.confirmed_date), r.status)
        for r in frames["purchase_order_line"].itertuples(index=False)
    }

    opportunity_lines = tryton_rpc.search_read(
        "sale.opportunity.line",
        [],
        ["opportunity.reference", "opportunity.party.code", "opportunity.conversion_probability",
         "opportunity.end_date", "opportunity.description", "opportunity.state", "product.code", "quantity"],
    )
    seeded = set()
    for line in opportunity_lines:
        opp = line["opportunity."]
        assert opp["state"] == OPPORTUNITY_STATE_BY_STAGE[opp["description"]]
        seeded.add((
            opp["reference"], line["product."]["code"], opp["party."]["code"], line["quantity"],
            opp["conversion_probability"], _date(opp["end_date"]), opp["description"],
        ))
    assert seeded == {
        (r.opportunity_id, r.sku, r.customer_id, r.qty, r.probability, _day(r.expected_date), r.stage)
        for r in frames["pipeline_opportunity"].itertuples(index=False)
    }


def test_done_moves_form_the_weekly_demand_history_and_stock_on_hand(
    tryton_rpc: TrytonRpc, tryton_server: TrytonServer
) -> None:
    frames = tryton_server.frames
    warehouses = tryton_rpc.search_read("stock.location", [["type", "=", "warehouse"]], ["code", "storage_location"])
    dc_by_storage = {w["storage_location"]: w["code"] for w in warehouses}
    moves = tryton_rpc.search_read(
        "stock.move",
        [["state", "=", "done"], ["to_location.type", "=", "customer"]],
        ["product.code", "from_location", "effective_date", "quantity"],
        {"active_test": False},
    )
    seeded = pd.DataFrame(
        {
            "sku": [m["product."]["code"] for m in moves],
            "location_id": [dc_by_storage[m["from_location"]] for m in moves],
            "period_start": [_date(m["effective_date"]) for m in moves],
            "qty": [m["quantity"] for m in moves],
        }
    )
    assert (pd.to_datetime(seeded["period_start"]).dt.weekday == 0).all()
    history = frames["demand_history"].astype({"sku": str, "location_id": str})
    nonzero = history[history["qty"] > 0]
    assert len(seeded) == len(nonzero)
    weekly = seeded.assign(period_start=pd.to_datetime(seeded["period_start"])).set_index(
        ["sku", "location_id", "period_start"]
    )["qty"].sort_index()
    expected_weekly = nonzero.set_index(["sku", "location_id", "period_start"])["qty"].sort_index()
    pd.testing.assert_series_equal(weekly, expected_weekly, check_exact=False, rtol=1e-9, check_index_type=False)
    totals = seeded.groupby(["sku", "location_id"])["qty"].sum()
    expected_totals = history.groupby(["sku", "location_id"])["qty"].sum()
    expected_totals = expected_totals[expected_totals > 0]
    pd.testing.assert_series_equal(totals.sort_index(), expected_totals.sort_index(), check_exact=False, rtol=1e-9)

    positions = frames["inventory_position"]
    for warehouse in warehouses:
        on_hand = tryton_rpc.search_read(
            "product.product",
            [],
            ["code", "quantity"],
            {"active_test": False, "locations": [warehouse["id"]], "stock_date_end": _encode_date(TRYTON_AS_OF)},
        )
        mine = positions[positions["location_id"] == warehouse["code"]]
        assert {p["code"]: p["quantity"] for p in on_hand} == dict(zip(mine["sku"], mine["on_hand"], strict=True))


def test_restoring_the_cached_template_takes_a_file_copy(tryton_server: TrytonServer, tmp_path) -> None:
    site = TrytonSite(
        home=tmp_path / "copy", database="restored", password=tryton_server.password,
        port=tryton_server.site.port, database_uri=None, template_folder=tryton_server.site.templates,
    )
    from tests.tryton_fixtures import TRYTON_LANDSCAPE

    started = time.perf_counter()
    report = restore_or_init(
        site, tryton_server.frames, cache_key="-".join(f"{k}{v}" for k, v in TRYTON_LANDSCAPE.items())
        + f"-{TRYTON_AS_OF.isoformat()}",
    )
    assert report.restored
    assert time.perf_counter() - started < 5
    assert site.sqlite_path.stat().st_size == tryton_server.site.sqlite_path.stat().st_size


def test_serve_reports_the_servers_error_when_it_cannot_start(tryton_server: TrytonServer, tmp_path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        site = TrytonSite(
            home=tmp_path / "busy", database=tryton_server.database, password=tryton_server.password,
            port=taken.getsockname()[1], database_uri=None,
        )
        site.write_config()
        shutil.copyfile(tryton_server.site.sqlite_path, site.sqlite_path)
        with pytest.raises(TrytonSetupError, match="(?s)exited with code.*already in use"):
            serve(site, timeout=30)
