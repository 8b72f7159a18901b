"""The ERP change sensor against a real trytond: it starts at the ERP's newest change, requests one
sync_erp_orders run per batch of changed lines keyed by the newest change, advances its cursor only that
far, skips (never raises) when Tryton is down, and a successful sync run becomes one replan run scoped to
the SKU-locations it touched."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from demand_control.infra import clock
from demand_control.definitions import build_definitions
from demand_control.demand_assets.jobs import ERP_SYNC_JOB_NAME
from demand_control.ops.replan import REPLAN_JOB_NAME
from demand_control.resources import QualitySettings, Warehouse
from demand_control.resources.erp.write import TrytonErp
from demand_control.sensors.erp_changes import MANY, SKU_LOCATIONS_TAG, erp_change_sensor
from demand_control.sensors.erp_sync_replan import erp_sync_replan
from tests.tryton_fixtures import TrytonRpc, TrytonServer, free_port, private_tryton


@pytest.fixture(scope="module")
def erp_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrytonServer]:
    """A private copy of the seeded database: these tests change orders in it."""
    with private_tryton(request, tmp_path_factory, "sensor") as server:
        yield server


@pytest.fixture
def rpc(erp_db: TrytonServer) -> Iterator[TrytonRpc]:
    client = TrytonRpc(erp_db)
    try:
        yield client
    finally:
        client.close()


def erp_for(server: TrytonServer, url: str | None = None, **kwargs) -> TrytonErp:
    return TrytonErp(url=url or server.url, database=server.database, login=server.login, password=server.password, **kwargs)


def evaluate(erp: TrytonErp, cursor: str | None, instance: dg.DagsterInstance | None = None):
    if instance is not None:
        return erp_change_sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources={"erp": erp}))
    with dg.instance_for_test() as fresh:
        return erp_change_sensor(dg.build_sensor_context(instance=fresh, cursor=cursor, resources={"erp": erp}))


def since_of(cursor: str) -> datetime:
    since = datetime.fromisoformat(json.loads(cursor)["since"])
    assert since.tzinfo is not None, "the cursor keeps timezone-aware timestamps"
    return since


def as_utc(stamp: dict) -> datetime:
    """A datetime as Tryton's JSON-RPC sends it (naive UTC, encoded as a dict)."""
    return datetime(stamp["year"], stamp["month"], stamp["day"], stamp["hour"], stamp["minute"], stamp["second"],
                    stamp["microsecond"], tzinfo=UTC)


def newest_in_tryton(rpc: TrytonRpc) -> datetime:
    return max(
        as_utc(row["last_modified_at"])
        for model in ("sale.line", "purchase.line", "sale.sale", "purchase.purchase")
        for row in rpc.call(f"model.{model}.search_read", [], 0, 1, [["last_modified_at", "DESC"]], ["last_modified_at"], rpc.context)
    )


def write_date(rpc: TrytonRpc, model: str, record_id: int) -> datetime:
    return as_utc(rpc.search_read(model, [("id", "=", record_id)], ["write_date"])[0]["write_date"])


def started(erp: TrytonErp) -> str:
    """The cursor after the sensor's first evaluation."""
    first = evaluate(erp, None)
    assert isinstance(first, dg.SensorResult) and not first.run_requests
    return first.cursor


def new_draft_sale(rpc: TrytonRpc, reference: str) -> tuple[int, str]:
    """A new draft sale with one line, like one an order clerk keys in; (line id, its SKU@LOCATION)."""
    sale = rpc.search_read("sale.sale", [], ["party", "warehouse", "currency", "company"])[0]
    model = rpc.search_read("sale.line", [("sale", "=", sale["id"]), ("type", "=", "line")], ["product", "unit", "unit_price"])[0]
    line = {"type": "line", "sequence": 1, "product": model["product"], "unit": model["unit"], "unit_price": model["unit_price"], "quantity": 3.0}
    ids = rpc.call("model.sale.sale.create", [{
        "party": sale["party"], "warehouse": sale["warehouse"], "currency": sale["currency"], "company": sale["company"],
        "reference": reference, "lines": [["create", [line]]],
    }], rpc.context)
    created = rpc.search_read("sale.line", [("sale", "in", ids)], ["id", "product.code", "sale.warehouse.code"])[0]
    return created["id"], f"{created['product.']['code']}@{created['sale.']['warehouse.']['code']}"


def quotation_purchase_line(rpc: TrytonRpc, index: int = 0) -> dict:
    lines = rpc.search_read(
        "purchase.line", [("type", "=", "line"), ("purchase.state", "=", "quotation")],
        ["id", "purchase", "delivery_date", "product.code", "purchase.warehouse.code", "purchase.reference", "sequence"],
    )
    line = sorted(lines, key=lambda r: r["id"])[index]
    line["sku_location"] = f"{line['product.']['code']}@{line['purchase.']['warehouse.']['code']}"
    return line


def move_delivery_date(rpc: TrytonRpc, line: dict, days: int) -> None:
    current = date(line["delivery_date"]["year"], line["delivery_date"]["month"], line["delivery_date"]["day"])
    new = current + timedelta(days=days)
    rpc.call("model.purchase.line.write", [line["id"]], {
        "delivery_date_edit": True,
        "delivery_date": {"__class__": "date", "year": new.year, "month": new.month, "day": new.day},
    }, rpc.context)


def test_first_evaluation_skips_and_starts_at_the_erps_newest_change(erp_db: TrytonServer, rpc: TrytonRpc) -> None:
    erp = erp_for(erp_db)
    first = evaluate(erp, None)
    assert isinstance(first, dg.SensorResult)
    assert not first.run_requests, "switching the sensor on must not re-sync and re-plan the world"
    assert "first evaluation" in first.skip_reason.skip_message and "not re-planned" in first.skip_reason.skip_message
    since = since_of(first.cursor)
    assert since == newest_in_tryton(rpc), "the cursor starts at the ERP's own newest change"
    assert since <= datetime.now(UTC)

    idle = evaluate(erp, first.cursor)
    assert isinstance(idle, dg.SkipReason)
    assert f"since {since.isoformat()}" in idle.skip_message


def test_changed_lines_request_one_sync_run_keyed_by_the_newest_change(erp_db: TrytonServer, rpc: TrytonRpc) -> None:
    erp = erp_for(erp_db)
    sale_line, sale_sku_location = new_draft_sale(rpc, "SO-SENSOR-1")
    cursor = started(erp)

    rpc.call("model.sale.line.write", [sale_line], {"quantity": 7.0}, rpc.context)
    purchase_line = quotation_purchase_line(rpc)
    move_delivery_date(rpc, purchase_line, days=9)
    newest = max(write_date(rpc, "sale.line", sale_line), write_date(rpc, "purchase.line", purchase_line["id"]))

    result = evaluate(erp, cursor)
    assert isinstance(result, dg.SensorResult)
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    assert request.run_key == f"erp:{newest.isoformat()}"
    assert request.tags[SKU_LOCATIONS_TAG] == ",".join(sorted({sale_sku_location, purchase_line["sku_location"]}))
    assert since_of(result.cursor) == newest > since_of(cursor), "the cursor advances to the newest change requested"

    again = evaluate(erp, result.cursor)
    assert isinstance(again, dg.SkipReason), "nothing changed after the new cursor"

    replayed = evaluate(erp, cursor)
    assert isinstance(replayed, dg.SensorResult)
    assert [r.run_key for r in replayed.run_requests] == [request.run_key], "same changes, same run_key: launched once"


def test_a_cancelled_purchase_is_seen_through_its_header(erp_db: TrytonServer, rpc: TrytonRpc) -> None:
    erp = erp_for(erp_db)
    line = quotation_purchase_line(rpc, index=-1)
    cursor = started(erp)
    rpc.call("model.purchase.purchase.cancel", [line["purchase"]], rpc.context)

    result = evaluate(erp, cursor)
    assert isinstance(result, dg.SensorResult) and len(result.run_requests) == 1
    assert line["sku_location"] in result.run_requests[0].tags[SKU_LOCATIONS_TAG].split(",")
    assert result.run_requests[0].run_key == f"erp:{write_date(rpc, 'purchase.purchase', line['purchase']).isoformat()}"


def test_erp_down_skips_naming_the_url_and_never_raises(erp_db: TrytonServer) -> None:
    dead = erp_for(erp_db, url=f"http://127.0.0.1:{free_port()}")
    cursor = json.dumps({"since": "2026-11-23T08:00:00+00:00"})
    for given in (None, cursor):
        started_at = time.monotonic()
        result = evaluate(dead, given)
        assert isinstance(result, dg.SkipReason)
        assert dead.url in result.skip_message and "not reachable" in result.skip_message
        assert time.monotonic() - started_at < 10


def test_a_sync_run_in_flight_defers_the_next_one(erp_db: TrytonServer) -> None:
    with dg.instance_for_test() as instance:
        job = build_definitions(_resources(erp_db, None)).resolve_job_def(ERP_SYNC_JOB_NAME)
        run = instance.create_run_for_job(job, status=dg.DagsterRunStatus.STARTED)
        cursor = json.dumps({"since": "2026-11-23T08:00:00+00:00"})
        result = evaluate(erp_for(erp_db), cursor, instance=instance)
        assert isinstance(result, dg.SkipReason)
        assert run.run_id in result.skip_message and "2026-11-23T08:00:00+00:00" in result.skip_message


def _resources(server: TrytonServer, warehouse: Warehouse | None) -> dict:
    erp = erp_for(server, cursor_overlap_seconds=0)
    return {"warehouse": warehouse or Warehouse(), "signal_source": erp, "erp": erp, "quality_settings": QualitySettings()}


def test_a_successful_sync_run_becomes_one_replan_of_its_sku_locations(erp_db: TrytonServer, rpc: TrytonRpc, tmp_path) -> None:
    warehouse = Warehouse(home=str(tmp_path))
    warehouse.migrate()
    now = clock.now()
    for name in ("product", "location", "customer", "supplier"):
        # The references the order feeds are validated against, as a full ingestion would have staged them.
        frame = erp_db.frames[name].assign(source_system="tryton", loaded_at=now)
        if name == "location":
            frame = frame.assign(type="dc")
        warehouse.replace_rows(name, frame)
    defs = build_definitions(_resources(erp_db, warehouse))
    sync = defs.resolve_job_def(ERP_SYNC_JOB_NAME)
    erp = erp_for(erp_db)
    with dg.instance_for_test() as instance:
        assert sync.execute_in_process(instance=instance, raise_on_error=False).success, "first sync: the whole order book"
        cursor = started(erp)
        sale_line, sale_sku_location = new_draft_sale(rpc, "SO-SENSOR-2")
        purchase_line = quotation_purchase_line(rpc, index=1)
        move_delivery_date(rpc, purchase_line, days=4)

        request = evaluate(erp, cursor, instance=instance).run_requests[0]
        synced = sync.execute_in_process(instance=instance, tags=request.tags, raise_on_error=False)
        assert synced.success

        def replan_for(run: dg.DagsterRun) -> dg.RunRequest:
            context = dg.build_run_status_sensor_context(
                sensor_name="erp_sync_replan", dagster_event=synced.get_run_success_event(), dagster_instance=instance,
                dagster_run=run, resources={"warehouse": warehouse},
            )
            return erp_sync_replan(context)

        replan = replan_for(synced.dagster_run)
        assert isinstance(replan, dg.RunRequest)
        assert replan.run_key == f"erp-replan:{synced.run_id}"
        config = replan.run_config["ops"]["replan_from_inbox"]["config"]
        assert (config["inbox_from"], config["inbox_to"]) == (0, 0)
        # The purchase line is in the run's extract; the new draft sale's line is not an open order line yet,
        # so only the sensor's tag knows its SKU-location.
        assert config["sku_locations"] == sorted({purchase_line["sku_location"], sale_sku_location})

        untagged = replan_for(synced.dagster_run.with_tags({SKU_LOCATIONS_TAG: MANY}))
        assert untagged.run_config["ops"]["replan_from_inbox"]["config"]["sku_locations"] == [purchase_line["sku_location"]], \
            "without a precise tag the replan is scoped by what the run itself extracted"
        assert defs.resolve_sensor_def("erp_sync_replan").job_name == REPLAN_JOB_NAME
