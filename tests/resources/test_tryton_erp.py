"""The Tryton adapter against a real trytond on loopback: extraction equals the seed, ingestion runs from
Tryton incrementally, every write-back round-trips exactly once, business errors fail fast, and a dead ERP
gets bounded retries and a clear failure."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import dagster as dg
import pandas as pd
import pytest

from demand_control.schema.contracts import CONTRACTS, FILE_DROP_OBJECTS
from demand_control.definitions import build_definitions
from demand_control.demand_assets.jobs import INGEST_JOB_NAME
from demand_control.resources import QualitySettings, Warehouse
from demand_control.resources.erp.base import ForecastPublication, PromiseRevision, ReplenishOrder, SupplierDelay
from demand_control.resources.erp.client import TrytonUnavailableError, TrytonUserError
from demand_control.resources.erp.write import TrytonErp
from tests.lossy_proxy import LossyProxy
from tests.tryton_fixtures import TRYTON_AS_OF, TrytonRpc, TrytonServer, free_port, private_tryton

# Canonical values Tryton has no field for (see resources/erp/mapping.py); they are not compared.
NOT_IN_TRYTON = {
    "product": {"substitute_skus"},
    "supplier": {"reliability", "lead_time_mean_days", "lead_time_std_days", "contact"},
    "sourcing": {"lead_time_std_days", "pack_size", "moq", "unit_cost"},
    "inventory_position": {"allocated", "in_transit", "as_of"},
}


@pytest.fixture(scope="module")
def own_tryton(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrytonServer]:
    """A private copy of the seeded database: these tests write to it."""
    with private_tryton(request, tmp_path_factory, "rw") as server:
        yield server


def erp_for(server: TrytonServer, url: str | None = None, **kwargs) -> TrytonErp:
    return TrytonErp(url=url or server.url, database=server.database, login=server.login, password=server.password, **kwargs)


def _normalised(frame: pd.DataFrame, object_name: str) -> pd.DataFrame:
    contract = CONTRACTS[object_name]
    columns = [c for c in contract.column_names if c not in NOT_IN_TRYTON.get(object_name, set())]
    out = frame[columns].copy()
    for col in columns:
        kind = contract.column(col).type
        if kind == "date":
            out[col] = pd.to_datetime(out[col]).dt.date
        elif kind == "float":
            out[col] = out[col].astype(float).round(4)
        elif kind == "integer":
            out[col] = out[col].astype("int64")
        elif kind == "string":
            out[col] = out[col].astype(object).where(out[col].notna(), None).map(lambda v: None if v is None else str(v))
    return out.sort_values([k for k in contract.key if k in columns]).reset_index(drop=True)


@pytest.mark.parametrize("object_name", FILE_DROP_OBJECTS)
def test_extraction_equals_what_was_seeded(tryton_server: TrytonServer, object_name: str) -> None:
    extract = erp_for(tryton_server).extract(object_name)
    seeded = tryton_server.frames[object_name]
    if object_name == "location":
        seeded = seeded.assign(type="dc")
    got = _normalised(extract.frame, object_name)
    want = _normalised(seeded, object_name)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert extract.mode == "snapshot" and extract.source_system == "tryton"


def test_ingestion_reads_tryton_then_only_what_changed(own_tryton: TrytonServer, tmp_path) -> None:
    erp = erp_for(own_tryton, cursor_overlap_seconds=0)
    warehouse = Warehouse(home=str(tmp_path))
    defs = build_definitions({"warehouse": warehouse, "signal_source": erp, "quality_settings": QualitySettings()})
    job = defs.resolve_job_def(INGEST_JOB_NAME)
    first = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert first.success
    assert all(e.passed for e in first.get_asset_check_evaluations() if e.check_name == "contract_rules")
    assert warehouse.count("customer_order_line") == len(own_tryton.frames["customer_order_line"])

    rpc = TrytonRpc(own_tryton)
    order = own_tryton.frames["customer_order_line"].iloc[0]
    line = rpc.search_read("sale.line", [("sale.reference", "=", order["order_id"]), ("sequence", "=", int(order["line_no"]))], ["id", "note"])[0]
    rpc.call("model.sale.line.write", [line["id"]], {"note": (line["note"] or "") + "\npriority=1"}, rpc.context)

    second = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert second.success
    loads = warehouse.read("feed_load")
    latest = loads[loads["object"] == "customer_order_line"].iloc[-1]
    assert latest["mode"] == "incremental"
    assert latest["rows_extracted"] == 1
    staged = warehouse.read("customer_order_line")
    assert len(staged) == len(own_tryton.frames["customer_order_line"]), "unchanged rows are kept"
    row = staged[(staged["order_id"] == order["order_id"]) & (staged["line_no"] == int(order["line_no"]))].iloc[0]
    assert row["priority"] == 1


def _count(rpc: TrytonRpc, model: str, domain: list) -> int:
    return len(rpc.search_read(model, domain, ["id"]))


def test_replenishment_becomes_one_draft_purchase_even_when_replayed(own_tryton: TrytonServer) -> None:
    erp, rpc = erp_for(own_tryton), TrytonRpc(own_tryton)
    sourcing = own_tryton.frames["sourcing"].iloc[0]
    action = ReplenishOrder(action_id="act-replenish-0001", sku=sourcing["sku"], location_id=sourcing["location_id"],
                            quantity=48, supplier_id=sourcing["supplier_id"], needed_by=TRYTON_AS_OF + timedelta(days=21))
    first = erp.apply(action)
    again = erp.apply(action)
    assert first.created and not again.created
    assert first.record_ids == again.record_ids and first.reconciled
    purchases = rpc.search_read("purchase.purchase", [("description", "like", f"{action.marker} %")], ["state", "party.code", "lines"])
    assert len(purchases) == 1
    assert purchases[0]["state"] == "draft" and purchases[0]["party."]["code"] == sourcing["supplier_id"]
    lines = rpc.search_read("purchase.line", [("purchase", "=", purchases[0]["id"])], ["quantity", "product.code"])
    assert [(line["quantity"], line["product."]["code"]) for line in lines] == [(48, sourcing["sku"])]
    # The proposal is open supply to the planner: it extracts as a valid draft purchase-order line.
    extracted = erp.extract("purchase_order_line").frame
    mine = extracted[extracted["po_id"] == f"DC-{action.action_id}"]
    assert mine[["line_no", "sku", "qty_open", "status"]].values.tolist() == [[1, sourcing["sku"], 48.0, "draft"]]
    assert mine["order_date"].notna().all() and mine["expected_date"].notna().all()


def test_supplier_delay_moves_the_purchase_line_date_once(own_tryton: TrytonServer) -> None:
    erp, rpc = erp_for(own_tryton), TrytonRpc(own_tryton)
    po = own_tryton.frames["purchase_order_line"].iloc[0]
    new_date = TRYTON_AS_OF + timedelta(days=30)
    action = SupplierDelay(action_id="act-delay-0001", po_id=po["po_id"], line_no=int(po["line_no"]), new_date=new_date)
    assert erp.apply(action).reconciled
    assert not erp.apply(action).created
    line = rpc.search_read("purchase.line", [("purchase.reference", "=", po["po_id"]), ("sequence", "=", int(po["line_no"]))], ["delivery_date", "note"])[0]
    assert line["delivery_date"] == {"__class__": "date", "year": new_date.year, "month": new_date.month, "day": new_date.day}
    assert line["note"].count(action.marker) == 1


def test_forecast_is_published_as_a_confirmed_stock_forecast_once(own_tryton: TrytonServer) -> None:
    erp, rpc = erp_for(own_tryton), TrytonRpc(own_tryton)
    skus = own_tryton.frames["product"]["sku"].head(3).tolist()
    dc = own_tryton.frames["location"]["location_id"].iloc[0]
    start = TRYTON_AS_OF + timedelta(days=7)
    action = ForecastPublication(action_id="act-forecast-0001", location_id=dc, period_start=start,
                                 period_end=start + timedelta(days=6), quantities={s: 10.0 + i for i, s in enumerate(skus)})
    outcome = erp.apply(action)
    assert outcome.created and outcome.reconciled
    assert not erp.apply(action).created
    # Tryton hides a forecast once its period has passed on its own clock: read it whatever today is there.
    forecasts = rpc.search_read("stock.forecast", [("id", "in", list(outcome.record_ids))], ["state", "lines"], {"active_test": False})
    assert forecasts[0]["state"] == "done" or forecasts[0]["state"] == "confirmed"
    assert len(forecasts[0]["lines"]) == 3
    notes = rpc.search_read("ir.note", [("resource", "=", f"stock.forecast,{outcome.record_ids[0]}")], ["message"])
    assert [n["message"] for n in notes] == [action.marker]


def test_a_forecast_for_a_period_already_past_is_found_again_not_written_twice(own_tryton: TrytonServer) -> None:
    erp = erp_for(own_tryton)
    dc = own_tryton.frames["location"]["location_id"].iloc[-1]
    start = date(2020, 1, 6)  # past on any clock this suite runs on: Tryton treats the forecast as inactive
    action = ForecastPublication(action_id="act-forecast-past-01", location_id=dc, period_start=start,
                                 period_end=start + timedelta(days=6), quantities={own_tryton.frames["product"]["sku"].iloc[1]: 3.0})
    first = erp.apply(action)
    again = erp.apply(action)
    assert first.created and not again.created and again.record_ids == first.record_ids


def test_revised_promise_changes_the_sale_line_shipping_date_once(own_tryton: TrytonServer) -> None:
    erp, rpc = erp_for(own_tryton), TrytonRpc(own_tryton)
    order = own_tryton.frames["customer_order_line"].iloc[-1]
    new_date = TRYTON_AS_OF + timedelta(days=40)
    action = PromiseRevision(action_id="act-promise-0001", order_id=order["order_id"], line_no=int(order["line_no"]), new_date=new_date)
    assert erp.apply(action).reconciled
    assert not erp.apply(action).created
    line = rpc.search_read("sale.line", [("sale.reference", "=", order["order_id"]), ("sequence", "=", int(order["line_no"]))], ["shipping_date", "note"])[0]
    assert line["shipping_date"]["day"] == new_date.day and line["shipping_date"]["month"] == new_date.month
    assert line["note"].count(action.marker) == 1


def test_a_lost_answer_after_commit_still_yields_exactly_one_record(own_tryton: TrytonServer) -> None:
    rpc = TrytonRpc(own_tryton)
    sourcing = own_tryton.frames["sourcing"].iloc[1]
    action = ReplenishOrder(action_id="act-lost-answer-01", sku=sourcing["sku"], location_id=sourcing["location_id"],
                            quantity=12, needed_by=TRYTON_AS_OF + timedelta(days=14))
    with LossyProxy(own_tryton.url) as proxy:
        proxy.drop_next(1, when=lambda body: b"purchase.purchase.create" in body)
        erp = erp_for(own_tryton, url=proxy.url, max_attempts=4)
        outcome = erp.apply(action)
        assert len(proxy.dropped) == 1, "the create reached Tryton and its answer was dropped"
    assert not outcome.created, "the retry found the record the lost answer had created"
    assert _count(rpc, "purchase.purchase", [("description", "like", f"{action.marker} %")]) == 1


def test_tryton_user_error_fails_at_once_with_its_message(own_tryton: TrytonServer) -> None:
    dc = own_tryton.frames["location"]["location_id"].iloc[-1]
    sku = own_tryton.frames["product"]["sku"].iloc[0]
    start = TRYTON_AS_OF + timedelta(days=70)
    with LossyProxy(own_tryton.url) as proxy:
        erp = erp_for(own_tryton, url=proxy.url)
        erp.apply(ForecastPublication(action_id="act-forecast-a01", location_id=dc, period_start=start,
                                      period_end=start + timedelta(days=6), quantities={sku: 5}))
        before = len(proxy.seen)
        overlapping = ForecastPublication(action_id="act-forecast-b01", location_id=dc, period_start=start + timedelta(days=3),
                                          period_end=start + timedelta(days=9), quantities={sku: 7})
        with pytest.raises(TrytonUserError) as raised:
            erp.apply(overlapping)
        creates = [body for body in proxy.seen[before:] if b"stock.forecast.create" in body]
    assert "overlap" in str(raised.value).lower() or "forecast" in str(raised.value).lower()
    assert len(creates) == 1, f"a business error is not retried ({len(creates)} creates sent)"


def test_erp_down_gets_bounded_retries_then_a_clear_failure_and_nothing_written(own_tryton: TrytonServer) -> None:
    rpc = TrytonRpc(own_tryton)
    dead = erp_for(own_tryton, url=f"http://127.0.0.1:{free_port()}", max_attempts=3, max_retry_seconds=10)
    sourcing = own_tryton.frames["sourcing"].iloc[2]
    action = ReplenishOrder(action_id="act-erp-down-001", sku=sourcing["sku"], location_id=sourcing["location_id"],
                            quantity=5, needed_by=TRYTON_AS_OF + timedelta(days=14))
    with pytest.raises(TrytonUnavailableError) as raised:
        dead.apply(action)
    assert "after 3 attempts" in str(raised.value)
    assert _count(rpc, "purchase.purchase", [("description", "like", f"{action.marker} %")]) == 0


def test_bad_action_names_the_field_and_value(own_tryton: TrytonServer) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as raised:
        erp_for(own_tryton).apply({"kind": "replenish", "action_id": "act-bad-00001", "sku": "X", "location_id": "DC-01",
                                   "quantity": -3, "needed_by": "2026-12-01"})
    assert "quantity" in str(raised.value) and "-3" in str(raised.value)
    with pytest.raises(TrytonUserError, match="SKU-NOPE"):
        erp_for(own_tryton).apply(ReplenishOrder(action_id="act-bad-00002", sku="SKU-NOPE", location_id="DC-01",
                                                 quantity=1, needed_by=date(2026, 12, 1)))


def test_a_discontinued_sku_keeps_its_lanes_stock_and_history(own_tryton: TrytonServer) -> None:
    rpc = TrytonRpc(own_tryton)
    sku = own_tryton.frames["product"]["sku"].iloc[-1]
    product = rpc.search_read("product.product", [("code", "=", sku)], ["template"])[0]
    # Tryton warns before deactivating a product with stock; confirm the warning, as a user does in the client.
    deactivate = ("model.product.template.write", [product["template"]], {"active": False}, rpc.context)
    with pytest.raises(AssertionError, match="UserWarning") as warned:
        rpc.call(*deactivate)
    warning_name = str(warned.value).split("['UserWarning', ['")[1].split("'")[0]
    user_id = rpc.search_read("res.user", [("login", "=", own_tryton.login)], ["id"])[0]["id"]
    rpc.call("model.res.user.warning.create", [{"user": user_id, "name": warning_name, "always": True}], rpc.context)
    rpc.call(*deactivate)
    erp = erp_for(own_tryton)
    products = erp.extract("product").frame
    assert not products.loc[products["sku"] == sku, "active"].iloc[0]
    for name in ("sourcing", "inventory_position", "demand_history"):
        extracted = erp.extract(name).frame
        seeded = own_tryton.frames[name]
        assert (extracted["sku"] == sku).sum() == (seeded["sku"] == sku).sum() > 0, name


# Read-back that differs --------------------------------------------------------------------------------
# Between a write and its read-back a buyer works in Tryton too: the draft purchase is theirs to edit, and a
# purchase line's date is theirs to move. The read-back must report what Tryton now holds, field by field.

def _buyer_edits(rpc: TrytonRpc, model: str, record_id: int, values: dict) -> None:
    rpc.call(f"model.{model}.write", [record_id], values, rpc.context)


def _buyer_moves_the_delivery_date(rpc: TrytonRpc, line_id: int, new: date) -> None:
    """As a buyer does: on the receipt moves once the purchase is processing, else on the line itself."""
    moves = rpc.search_read("stock.move", [("origin", "=", f"purchase.line,{line_id}"), ("state", "in", ["draft", "staging", "assigned"])], ["id"])
    when = {"__class__": "date", "year": new.year, "month": new.month, "day": new.day}
    if moves:
        rpc.call("model.stock.move.write", [m["id"] for m in moves], {"planned_date": when}, rpc.context)
    else:
        _buyer_edits(rpc, "purchase.line", line_id, {"delivery_date_edit": True, "delivery_date": when})


def test_a_read_back_that_differs_from_the_write_names_each_field_and_what_tryton_holds(own_tryton: TrytonServer) -> None:
    from demand_control.resources.erp.base import Difference

    erp, rpc = erp_for(own_tryton), TrytonRpc(own_tryton)
    sourcing = own_tryton.frames["sourcing"].iloc[3]
    order = ReplenishOrder(action_id="act-readback-0001", sku=sourcing["sku"], location_id=sourcing["location_id"], quantity=48,
                           supplier_id=sourcing["supplier_id"], needed_by=TRYTON_AS_OF + timedelta(days=21))
    assert erp.apply(order).reconciled
    [purchase] = rpc.search_read("purchase.purchase", [("description", "like", f"{order.marker} %")], ["lines"])
    _buyer_edits(rpc, "purchase.line", purchase["lines"][0], {"quantity": 30})
    replayed = erp.apply(order)
    assert not replayed.created and not replayed.reconciled
    assert replayed.differences == (Difference(field="quantity", expected=48, actual=30.0),)
    assert erp.reconcile(order) == replayed.differences

    po = own_tryton.frames["purchase_order_line"].iloc[1]
    delay = SupplierDelay(action_id="act-readback-0002", po_id=po["po_id"], line_no=int(po["line_no"]), new_date=TRYTON_AS_OF + timedelta(days=30))
    assert erp.apply(delay).reconciled
    [line] = rpc.search_read("purchase.line", [("purchase.reference", "=", po["po_id"]), ("sequence", "=", int(po["line_no"]))], ["id"])
    moved_again = TRYTON_AS_OF + timedelta(days=44)
    _buyer_moves_the_delivery_date(rpc, line["id"], moved_again)
    replayed = erp.apply(delay)
    assert not replayed.created
    assert replayed.differences == (Difference(field="delivery_date", expected=delay.new_date, actual=moved_again),)


def test_a_write_whose_read_back_differs_is_recorded_unreconciled_and_its_owner_told(own_tryton: TrytonServer, tmp_path) -> None:
    """Through the outbox: the create commits but its answer is lost; before the retry's read-back the buyer
    cuts the draft's quantity. The retry finds the purchase (nothing created twice), marks the row done and
    unreconciled with the difference, audits it, and tells the action's owner in their channel."""
    import json

    from sqlalchemy import insert, select

    from demand_control.infra import clock
    from demand_control.infra.circuit import CircuitBreaker
    from demand_control.schema import tables
    from demand_control.services.outbox import UNRECONCILED_KIND, WriteBackSettings, drain_outbox

    warehouse = Warehouse(home=str(tmp_path))
    warehouse.migrate()
    rpc = TrytonRpc(own_tryton)
    sourcing = own_tryton.frames["sourcing"].iloc[4]
    action = ReplenishOrder(action_id="act-readback-0003", sku=sourcing["sku"], location_id=sourcing["location_id"], quantity=36,
                            supplier_id=sourcing["supplier_id"], needed_by=TRYTON_AS_OF + timedelta(days=21))
    now = clock.now()
    key = f"replenishment_due:{action.sku}@{action.location_id}"
    with warehouse.engine.begin() as conn:
        conn.execute(insert(tables.erp_outbox).values(action_id=action.action_id, kind=action.kind, payload=action.model_dump_json(),
                                                      status="pending", attempts=0, created_at=now, updated_at=now))
        conn.execute(insert(tables.recommended_actions).values(
            action_id=action.action_id, exception_key=key, occurrence=1, exception_type="replenishment_due", action_type="replenish",
            rank=1, sku=action.sku, location_id=action.location_id, quantity=action.quantity, value=360.0, confidence=0.9,
            expected_impact="restores cover", data_fresh=True, forecast_degraded=False, policy_decision="auto_approved",
            policy_reasons="value 360 ≤ limit", owner_team="team:buyers", owner_channel="#buyers-east", created_at=now, updated_at=now,
        ))
    quick = WriteBackSettings(backoff_seconds=0.01, backoff_max_seconds=0.1, backoff_jitter_seconds=0.01, fallback_channel="#ops-test")
    breaker = CircuitBreaker(failure_threshold=3)
    with LossyProxy(own_tryton.url) as proxy:
        proxy.drop_next(1, when=lambda body: b"purchase.purchase.create" in body)
        erp = erp_for(own_tryton, url=proxy.url, max_attempts=1)
        first = drain_outbox(warehouse, erp, settings=quick, breaker=breaker)
        assert (first.retry_scheduled, len(proxy.dropped)) == (1, 1), "the create committed and its answer was lost"
        [purchase] = rpc.search_read("purchase.purchase", [("description", "like", f"{action.marker} %")], ["lines"])
        _buyer_edits(rpc, "purchase.line", purchase["lines"][0], {"quantity": 24})
        second = drain_outbox(warehouse, erp, now=now + timedelta(hours=1), settings=quick, breaker=breaker)
    assert (second.written, second.created, second.unreconciled) == (1, 0, 1)

    with warehouse.engine.connect() as conn:
        row = conn.execute(select(tables.erp_outbox).where(tables.erp_outbox.c.action_id == action.action_id)).one()
        notices = conn.execute(select(tables.notifications).where(tables.notifications.c.subject == action.action_id)).all()
        writes = conn.execute(select(tables.audit_log).where(tables.audit_log.c.subject == action.action_id,
                                                             tables.audit_log.c.event_type == "erp_write")).all()
    assert (row.status, row.reconciled, row.erp_record_ids) == ("done", False, str(purchase["id"]))
    assert row.last_error == "quantity: expected 36.0, ERP has 24.0"
    [alert] = [n for n in notices if n.kind == UNRECONCILED_KIND]
    assert (alert.channel, alert.status) == ("#buyers-east", "pending")
    assert "reading it back differs: quantity: expected 36.0, ERP has 24.0" in alert.text
    assert json.loads(alert.payload)["differences"] == "quantity: expected 36.0, ERP has 24.0"
    [audited] = writes
    payload = json.loads(audited.payload)
    assert payload["reconciled"] is False and payload["differences"] == [{"field": "quantity", "expected": 36.0, "actual": 24.0}]
