"""The event path without the gateway: inbox rows → the inbox sensor's run requests → the replan job
applies them and re-plans only the SKU-locations they touch; the audit chain holds."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd
import pytest
from sqlalchemy import insert

from demand_control.infra import clock
from demand_control.schema import tables
from demand_control.resources.warehouse import Warehouse
from demand_control.services.audit import verify_chain
from demand_control.definitions import build_definitions
from demand_control.ops.replan import REPLAN_JOB_NAME
from demand_control.planning.event_effects import apply_events
from demand_control.resources import FileDropSource, QualitySettings
from demand_control.sensors.inbox import inbox_sensor, pending_batches
from demand_control.sensors.run_failure import failure_notice, record_notice
from tests.conftest import AS_OF
from tests.demand_assets.test_decision_assets import planned# noqa: F401  (module fixture: a planned warehouse)


@pytest.fixture(autouse=True)
def no_idle_wait(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("DEMAND_CONTROL_INBOX_WAIT_SECONDS", "0")


def _event(inbox_id: int, kind: str, data: dict, **refs) -> dict:
    return {"inbox_id": inbox_id, "webhook_id": f"wh-{inbox_id}", "event_type": kind,
            "payload": json.dumps({"type": kind, "data": data, "occurred_at": "2026-03-02T08:00:00Z"}), **refs}


def test_apply_events_in_arrival_order() -> None:
    po = pd.DataFrame([{"po_id": "PO-1", "line_no": 1, "supplier_id": "S", "sku": "A", "location_id": "DC1", "qty_open": 50.0,
                        "order_date": date(2026, 2, 1), "expected_date": date(2026, 3, 9), "confirmed_date": None, "status": "sent"}])
    so = pd.DataFrame([{"order_id": "SO-1", "line_no": 1, "customer_id": "C", "sku": "A", "location_id": "DC1", "qty_open": 5.0,
                        "promise_date": date(2026, 3, 10), "priority": 3, "status": "open"}])
    inbox = pd.DataFrame([
        _event(1, "supplier.confirmation", {"supplier_id": "S", "po_id": "PO-1", "line_no": 1, "new_date": "2026-03-09"}),
        _event(2, "supplier.delay", {"supplier_id": "S", "po_id": "PO-1", "line_no": 1, "new_date": "2026-03-23"}),
        _event(3, "order.change", {"order_id": "SO-1", "line_no": 1, "changes": {"qty_open": 12}}),
        _event(4, "order.new", {"order_id": "SO-2", "line_no": 1, "customer_id": "C", "sku": "B", "location_id": "DC1", "qty_open": 3, "promise_date": "2026-03-12"}),
        _event(5, "supplier.cancellation", {"supplier_id": "S", "po_id": "PO-9", "line_no": 1}),
    ])
    out = apply_events(inbox, po, so, datetime(2026, 3, 2, tzinfo=UTC))
    line = out.purchase_lines.iloc[0]
    assert line["confirmed_date"] == date(2026, 3, 23) and line["status"] == "confirmed"
    assert set(out.order_lines["order_id"]) == {"SO-1", "SO-2"}
    assert out.order_lines.set_index("order_id").loc["SO-1", "qty_open"] == 12
    outcomes = out.outcomes.set_index("inbox_id")["outcome"]
    assert outcomes[2] == "PO PO-1/1 confirmed date 2026-03-09 → 2026-03-23"
    assert outcomes[5] == "no open PO line PO-9/1: nothing changed"
    assert len(out.supplier_events) == 3 and list(out.supplier_events["type"]) == ["confirmation", "delay", "cancellation"]


def _store(warehouse, rows: list[dict]) -> None:  # noqa: ANN001
    now = clock.now()
    full = [{"source": "acme", "received_at": now, "sent_at": now, "payload_sha256": "0" * 64, **r} for r in rows]
    with warehouse.engine.begin() as conn:
        conn.execute(insert(tables.inbox_events), full)


def test_sensor_requests_one_run_per_batch_and_skips_when_idle(tmp_path) -> None:
    from demand_control.resources import Warehouse

    warehouse = Warehouse(home=str(tmp_path))
    warehouse.migrate()
    with dg.instance_for_test() as instance:
        idle = inbox_sensor(dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse}))
        assert isinstance(idle, dg.SkipReason) and "no inbox events after id 0" in idle.skip_message
        _store(warehouse, [_event(i, "order.cancel", {"order_id": f"SO-{i}", "line_no": 1}, order_id=f"SO-{i}", order_line_no=1) | {"inbox_id": i} for i in range(1, 451)])
        result = inbox_sensor(dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse}))
        assert [r.run_key for r in result.run_requests] == ["inbox:1-200", "inbox:201-400", "inbox:401-450"]
        assert result.cursor == "450"
        # A tick that failed before committing its cursor asks again with the same keys: Dagster launches once.
        again = inbox_sensor(dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse}, cursor="0"))
        assert [r.run_key for r in again.run_requests] == [r.run_key for r in result.run_requests]
        later = inbox_sensor(dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse}, cursor="450"))
        assert isinstance(later, dg.SkipReason)


@pytest.mark.timed_waits  # a threading.Timer stores the event while the sensor waits
def test_an_idle_evaluation_picks_up_an_event_that_arrives_while_it_waits(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    import threading

    from demand_control.resources import Warehouse

    monkeypatch.setenv("DEMAND_CONTROL_INBOX_WAIT_SECONDS", "10")
    warehouse = Warehouse(home=str(tmp_path))
    warehouse.migrate()
    timer = threading.Timer(0.5, _store, args=(warehouse, [_event(1, "order.cancel", {"order_id": "SO-1", "line_no": 1})]))
    timer.start()
    with dg.instance_for_test() as instance:
        result = inbox_sensor(dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse}))
    timer.join()
    assert [r.run_key for r in result.run_requests] == ["inbox:1-1"]


def test_a_large_backlog_is_paged_in_bounded_batches(tmp_path) -> None:
    from demand_control.resources import Warehouse

    warehouse = Warehouse(home=str(tmp_path))
    warehouse.migrate()
    _store(warehouse, [_event(i, "order.cancel", {"order_id": "SO", "line_no": 1}) for i in range(1, 10_001)])
    batches = pending_batches(warehouse, 0)
    assert len(batches) == 50 and batches[0] == (1, 200) and batches[-1] == (9_801, 10_000)


def test_replan_applies_a_supplier_delay_and_replans_only_its_sku_location(planned) -> None:  # noqa: F811
    warehouse, _, _ = planned
    purchases = warehouse.read("purchase_order_line")
    line = purchases[purchases["status"].isin(["sent", "confirmed"])].iloc[0]
    new_date = (AS_OF + timedelta(days=70)).isoformat()
    before_projection = warehouse.read("projected_inventory")
    audit_before = warehouse.count("audit_log")
    _store(warehouse, [_event(900_001, "supplier.delay", {"supplier_id": line["supplier_id"], "po_id": line["po_id"], "line_no": int(line["line_no"]), "new_date": new_date},
                              po_id=line["po_id"], po_line_no=int(line["line_no"]), sku=line["sku"], location_id=line["location_id"])])
    defs = build_definitions({"warehouse": warehouse, "signal_source": FileDropSource(folder="."), "quality_settings": QualitySettings()})
    config = {"ops": {"replan_from_inbox": {"config": {"inbox_from": 900_001, "inbox_to": 900_001, "horizon_start": AS_OF.isoformat()}}}}
    result = defs.resolve_job_def(REPLAN_JOB_NAME).execute_in_process(run_config=config)
    assert result.success

    updated = warehouse.read("purchase_order_line").set_index(["po_id", "line_no"]).loc[(line["po_id"], line["line_no"])]
    assert str(updated["confirmed_date"]) == new_date
    delay_key = f"supplier_delay:{line['po_id']}/{int(line['line_no'])}"
    exceptions = warehouse.read("planning_exceptions").set_index("exception_key")
    assert delay_key in exceptions.index
    assert json.loads(exceptions.loc[delay_key, "trigger_values"])["confirmed_date"] == new_date
    inbox = warehouse.read("inbox_events").set_index("inbox_id").loc[900_001]
    assert inbox["process_run_id"] == result.run_id and "→ " + new_date in inbox["process_outcome"]

    after_projection = warehouse.read("projected_inventory")
    mine = (after_projection["sku"] == line["sku"]) & (after_projection["location_id"] == line["location_id"])
    others_before = before_projection[~((before_projection["sku"] == line["sku"]) & (before_projection["location_id"] == line["location_id"]))]
    pd.testing.assert_frame_equal(
        others_before.sort_values(["sku", "location_id", "period_start"]).reset_index(drop=True),
        after_projection[~mine].sort_values(["sku", "location_id", "period_start"]).reset_index(drop=True),
    )
    assert len(after_projection) == len(before_projection)
    assert warehouse.count("audit_log") > audit_before and verify_chain(warehouse.engine).ok

    # The same batch again (a retried run) changes nothing.
    again = defs.resolve_job_def(REPLAN_JOB_NAME).execute_in_process(run_config=config)
    assert again.success and warehouse.read("inbox_events").set_index("inbox_id").loc[900_001, "process_run_id"] == result.run_id


def test_run_failure_notice_is_recorded_once(tmp_path) -> None:
    from demand_control.resources import Warehouse

    warehouse = Warehouse(home=str(tmp_path))
    notice = failure_notice("replan", "0123456789abcdef", "boom", "replan_from_inbox")
    record_notice(warehouse, notice)
    record_notice(warehouse, notice)
    rows = warehouse.read("notifications")
    assert len(rows) == 1 and rows.iloc[0]["text"] == "Run 01234567 of job replan failed in step replan_from_inbox: boom"
    assert rows.iloc[0]["channel"] == "#demand-control-ops"


@pytest.mark.parametrize("cursor", ["0", None])
def test_sensor_cursor_defaults(cursor, tmp_path) -> None:  # noqa: ANN001
    from demand_control.resources import Warehouse

    warehouse = Warehouse(home=str(tmp_path))
    with dg.instance_for_test() as instance:
        assert isinstance(inbox_sensor(dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse}, cursor=cursor)), dg.SkipReason)


def test_action_status_reads_what_happened_to_each_action(tmp_path) -> None:  # noqa: ANN001
    """The action_status view: awaiting, approved and written back, each one status (not the policy's first word)."""
    from sqlalchemy import text

    warehouse = Warehouse(home=str(tmp_path))
    warehouse.migrate()
    now = clock.now()
    base = {"exception_key": "projected_stockout:S@D", "occurrence": 1, "exception_type": "projected_stockout", "rank": 1, "sku": "S",
            "location_id": "D", "value": 100.0, "confidence": 0.9, "expected_impact": "x", "policy_decision": "awaiting_approval", "policy_reasons": "r",
            "data_fresh": True, "forecast_degraded": False, "created_at": now, "updated_at": now}
    warehouse.append_rows("recommended_actions", pd.DataFrame([
        {**base, "action_id": "A-wait", "action_type": "expedite"},
        {**base, "action_id": "A-done", "action_type": "replenish", "rank": 2},
        {**base, "action_id": "A-queued", "action_type": "transfer", "rank": 3},
    ]))
    warehouse.append_rows("action_decisions", pd.DataFrame([
        {"action_id": a, "decision": "approved", "decided_by": "ana.planner", "decided_at": now} for a in ("A-done", "A-queued")
    ]))
    warehouse.append_rows("erp_outbox", pd.DataFrame([
        {"action_id": "A-done", "kind": "replenish", "payload": "{}", "status": "done", "attempts": 1, "created_at": now, "updated_at": now},
        {"action_id": "A-queued", "kind": "replenish", "payload": "{}", "status": "pending", "attempts": 0, "created_at": now, "updated_at": now},
    ]))
    with warehouse.engine.connect() as conn:
        status = dict(conn.execute(text("SELECT action_id, status FROM action_status")).all())
    assert status == {"A-wait": "awaiting_approval", "A-done": "written_to_erp", "A-queued": "queued_for_erp"}


def test_a_degraded_forecast_holds_autonomy_only_where_a_person_is_asked_to_review_it() -> None:
    from demand_control.services.replan import forecasts_holding_autonomy

    degraded = pd.DataFrame({"sku": ["A", "B", "C"], "location_id": "DC1", "recent_rmsse": [2.0, 2.0, 2.0]})
    cases = pd.DataFrame({
        "exception_type": ["forecast_degradation", "forecast_degradation", "forecast_degradation", "projected_stockout"],
        "sku": ["A", "B", "C", "B"], "location_id": "DC1",
        # B is outside class A: recorded, not sent; the stockout on B is another case and changes nothing.
        "suppressed_reason": [None, "outside the SKU-locations making up 80% of forecast value", None, None],
    })
    reviewed = pd.DataFrame({"sku": ["C"], "location_id": ["DC1"]})  # a person approved C's review_forecast
    held = forecasts_holding_autonomy(degraded, cases, reviewed)
    assert held.to_dict("records") == [{"sku": "A", "location_id": "DC1"}]
    assert forecasts_holding_autonomy(degraded, cases.assign(suppressed_reason=None), reviewed.iloc[:0])["sku"].tolist() == ["A", "B", "C"]


def test_a_failed_gate_withholds_the_replans_auto_approval_as_it_does_the_plans(planned) -> None:  # noqa: F811
    from demand_control.planning.policy import load_policy
    from demand_control.services.replan import PlanSettings, replan_inbox_batch

    warehouse, _, _ = planned
    purchases = warehouse.read("purchase_order_line")
    line = purchases[purchases["status"].isin(["sent", "confirmed"])].iloc[1]
    new_date = (AS_OF + timedelta(days=63)).isoformat()
    _store(warehouse, [_event(900_101, "supplier.delay", {"supplier_id": line["supplier_id"], "po_id": line["po_id"], "line_no": int(line["line_no"]), "new_date": new_date},
                              po_id=line["po_id"], po_line_no=int(line["line_no"]), sku=line["sku"], location_id=line["location_id"])])
    now = datetime.combine(AS_OF, datetime.min.time(), tzinfo=UTC) + timedelta(hours=10)
    decided_before = warehouse.count("action_decisions")
    with clock.use(now):
        replan_inbox_batch(warehouse, load_policy(), PlanSettings(horizon_start=AS_OF), now, 900_101, 900_101, run_id="gated",
                           failed_gates=["demand_forecast:forecast_values_valid"])
    audit = warehouse.read("audit_log")
    withheld = audit[(audit["event_type"] == "refusal") & audit["payload"].astype(str).str.contains("data-quality gate")]
    assert len(withheld) > 0  # the delay's follow-up (auto-approvable) waited for a person
    assert warehouse.count("action_decisions") == decided_before


def test_a_replan_records_itself_in_replan_log_and_only_observes_the_full_plans_tables(planned) -> None:  # noqa: F811
    """The latest materialization of the planning tables stays the full plan's: the replan materializes
    replan_log (with its row count) and reports observations of the tables it rewrote for its scope."""
    warehouse, _, _ = planned
    purchases = warehouse.read("purchase_order_line")
    line = purchases[purchases["status"].isin(["sent", "confirmed"])].iloc[2]
    _store(warehouse, [_event(900_201, "supplier.delay", {"supplier_id": line["supplier_id"], "po_id": line["po_id"], "line_no": int(line["line_no"]),
                                                          "new_date": (AS_OF + timedelta(days=77)).isoformat()},
                              po_id=line["po_id"], po_line_no=int(line["line_no"]), sku=line["sku"], location_id=line["location_id"])])
    defs = build_definitions({"warehouse": warehouse, "signal_source": FileDropSource(folder="."), "quality_settings": QualitySettings()})
    instance = dg.DagsterInstance.ephemeral()
    for name in ("projected_inventory", "planning_exceptions", "allocation_scenarios", "recommended_actions"):  # what the full plan recorded
        instance.report_runless_asset_event(dg.AssetMaterialization(name, metadata={"dagster/row_count": warehouse.count(name)}))
    full_plan = {name: instance.get_latest_materialization_event(dg.AssetKey(name)) for name in ("projected_inventory", "planning_exceptions", "allocation_scenarios", "recommended_actions")}
    log_before = warehouse.count("replan_log")
    config = {"ops": {"replan_from_inbox": {"config": {"inbox_from": 900_201, "inbox_to": 900_201, "horizon_start": AS_OF.isoformat()}}}}
    result = defs.resolve_job_def(REPLAN_JOB_NAME).execute_in_process(instance=instance, run_config=config)
    assert result.success

    materialized = {e.asset_key.to_user_string(): e.materialization for e in result.get_asset_materialization_events()}
    assert set(materialized) == {"replan_log"}
    assert materialized["replan_log"].metadata["dagster/row_count"].value == warehouse.count("replan_log") == log_before + 1
    for name, latest in full_plan.items():
        assert latest is not None and instance.get_latest_materialization_event(dg.AssetKey(name)) == latest, f"the replan replaced {name}'s materialization"
    observed = {
        e.event_specific_data.asset_observation.asset_key.to_user_string(): e.event_specific_data.asset_observation.metadata
        for e in result.all_events if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION
    }
    assert set(observed) == {"projected_inventory", "planning_exceptions", "allocation_scenarios", "recommended_actions"}
    for name, metadata in observed.items():
        assert metadata["dagster/row_count"].value == warehouse.count(name), name
        assert metadata["sku_locations"].value == 1 and metadata["events"].value == 1, name
    mine = (warehouse.read("projected_inventory")[["sku", "location_id"]] == [line["sku"], line["location_id"]]).all(axis=1).sum()
    assert observed["projected_inventory"]["replanned_rows"].value == mine > 0

    row = warehouse.read("replan_log").sort_values("replan_id").iloc[-1]
    assert row["run_id"] == result.run_id and (row["inbox_from"], row["inbox_to"], row["events"], row["sku_locations"]) == (900_201, 900_201, 1, 1)
    delay_key = f"supplier_delay:{line['po_id']}/{int(line['line_no'])}"
    assert row["exceptions_opened"] + row["exceptions_updated"] >= 1 and delay_key in set(warehouse.read("planning_exceptions")["exception_key"])
    assert row["erp_sku_locations"] == 0 and row["actions"] >= 1
