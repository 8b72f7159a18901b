"""From staged tables to decisions on the embedded warehouse: ingest, forecast, then the plan_decisions job
raises exceptions, routes them, recommends actions with a policy decision, compares allocations and
refreshes the KPIs; a re-run on unchanged data duplicates nothing, and cleared data auto-resolves.

Besides the general properties, the first plan is checked case by case where its numbers follow from the
landscape's facts rather than from the forecast: a strategic customer's order planted at a SKU-location
with no other orders and no purchase order (it cannot be met in full from the stock there), a purchase line
the landscape has confirmed late, and a routine order whose MOQ binds."""

from __future__ import annotations

import json

import dagster as dg
import pandas as pd
import pytest

from demand_control.definitions import build_definitions
from demand_control.demand_assets.jobs import DECISION_JOB_NAME, FORECAST_JOB_NAME
from demand_control.planning.vocabulary import ACTION_TYPES, EXCEPTION_TYPES, ROOT_CAUSES
from demand_control.resources import FileDropSource, QualitySettings, Warehouse
from demand_control.sample.export import write_landscape
from tests.conftest import AS_OF
from tests.demand_assets.test_ingestion import run_ingestion

HORIZON = 13
PLAN_OPS = ("inventory_policy", "projected_inventory", "planning_exceptions", "allocation_scenarios", "recommended_actions")
# SKU-000026 at DC-01 holds 170 on hand, 31 allocated, nothing in transit, and has no open order and no purchase
# line in the landscape (seed 11): 139 can serve this strategic customer's 164 promised tomorrow, 25 cannot.
PLANTED_ORDER = pd.DataFrame([{
    "order_id": "SO-PLANTED", "line_no": 1, "customer_id": "CUST-0001", "sku": "SKU-000026", "location_id": "DC-01", "qty_open": 164.0,
    "promise_date": pd.Timestamp("2026-11-24"), "priority": 1, "status": "open",
}])


@pytest.fixture(scope="module")
def planned(tmp_path_factory, small_landscape_frames):  # noqa: ANN001, ANN201
    tmp = tmp_path_factory.mktemp("decisions")
    file_drop = tmp / "drop"
    frames = {k: v.copy() for k, v in small_landscape_frames.items()}
    orders = frames["customer_order_line"]
    frames["customer_order_line"] = pd.concat([orders, PLANTED_ORDER.astype(orders.dtypes.to_dict())], ignore_index=True)
    write_landscape(frames, file_drop, "parquet")
    warehouse = Warehouse(home=str(tmp / "state"))
    instance = dg.DagsterInstance.ephemeral()
    assert run_ingestion(file_drop, warehouse, instance=instance).success
    defs = build_definitions({"warehouse": warehouse, "signal_source": FileDropSource(folder=str(file_drop)), "quality_settings": QualitySettings()})
    forecast_config = {"resources": {"forecast_settings": {"config": {"horizon": HORIZON, "n_jobs": 1}}}}
    assert defs.resolve_job_def(FORECAST_JOB_NAME).execute_in_process(instance=instance, run_config=forecast_config).success

    def plan() -> dg.ExecuteInProcessResult:
        ops = {op: {"config": {"horizon_start": AS_OF.isoformat()}} for op in PLAN_OPS}
        result = defs.resolve_job_def(DECISION_JOB_NAME).execute_in_process(instance=instance, run_config={"ops": ops, **forecast_config})
        assert result.success
        return result

    plan()
    # What the first plan decided, before the tests below re-plan on changed data.
    first = {name: warehouse.read(name) for name in ("planning_exceptions", "recommended_actions", "allocation_scenarios", "erp_outbox")}
    return warehouse, plan, first


def test_exceptions_are_typed_routed_and_explained(planned) -> None:  # noqa: ANN001
    warehouse, _, _ = planned
    snapshot = warehouse.read("planning_exceptions")
    assert len(snapshot) > 0
    assert set(snapshot["exception_type"]) <= set(EXCEPTION_TYPES)
    assert snapshot["exception_key"].is_unique
    assert (snapshot["exception_key"] == snapshot["exception_type"] + ":" + snapshot["entity"]).all()
    assert snapshot["state"].eq("open").all()
    assert snapshot["severity"].isin(["critical", "high", "medium", "low"]).all()
    assert snapshot["owner_team"].notna().all() and snapshot["owner_channel"].str.startswith("#").all()
    assert snapshot["sla_due_at"].notna().all()
    assert snapshot["sentence"].str.len().gt(30).all()
    for text in snapshot["trigger_values"]:
        assert isinstance(json.loads(text), dict)
    for text in snapshot["affected_orders"]:
        assert isinstance(json.loads(text), list)
    # Why each happened: a cause from the vocabulary, its confidence and the evidence (migration 0018).
    assert snapshot["root_cause"].isin(ROOT_CAUSES).all()
    assert snapshot["root_cause_confidence"].between(0, 1).all()
    assert snapshot["root_cause_evidence"].str.len().gt(10).all()
    assert (snapshot["root_cause"] != "unknown").any()


def test_actions_carry_ids_impact_confidence_and_a_policy_decision(planned) -> None:  # noqa: ANN001
    warehouse, _, _ = planned
    actions = warehouse.read("recommended_actions")
    exceptions = warehouse.read("planning_exceptions")
    assert len(actions) > 0 and actions["action_id"].is_unique
    assert set(actions["action_type"]) <= set(ACTION_TYPES)
    assert set(actions["exception_key"]) <= set(exceptions["exception_key"])
    assert actions["confidence"].between(0, 1).all()
    assert actions["expected_impact"].str.len().gt(10).all()
    assert actions["policy_decision"].isin(["auto_approved", "awaiting_approval"]).all()
    assert actions["policy_reasons"].str.len().gt(0).all()
    waiting = actions[actions["policy_decision"] == "awaiting_approval"]
    assert waiting["approver_role"].notna().all()
    # Every shortage is acted on: by a rank-1 action of its own, through the case it is a symptom of (the
    # routine order, a supplier's slip), or — when nothing automatic can reach it — by a person.
    short = exceptions[exceptions["exception_type"].isin(["projected_stockout", "below_safety_stock", "replenishment_due"])]
    ranked = set(actions.loc[actions["rank"] == 1, "exception_key"])
    handled = short["exception_key"].isin(ranked) | short["cause_key"].notna() | short["for_person"].astype(bool) | short["suppressed_reason"].notna()
    assert handled.all(), short.loc[~handled, "exception_key"].tolist()


def test_rerun_on_unchanged_data_updates_in_place(planned) -> None:  # noqa: ANN001
    warehouse, plan, _ = planned
    # The first plan's auto-approved orders are in the outbox now, which the next plan counts as planned
    # receipts; once they are counted, the data is unchanged and a re-run must change nothing.
    plan()
    before_ex = warehouse.read("exception_lifecycle")
    before_actions = warehouse.read("recommended_actions")
    plan()
    after_ex = warehouse.read("exception_lifecycle")
    assert len(after_ex) == len(before_ex)
    assert set(after_ex["last_change"]) <= {"unchanged", "untouched"}
    merged = before_ex.merge(after_ex, on="exception_key", suffixes=("_before", "_after"))
    assert (pd.to_datetime(merged["first_seen_at_before"]) == pd.to_datetime(merged["first_seen_at_after"])).all()
    after_actions = warehouse.read("recommended_actions")
    assert set(after_actions["action_id"]) == set(before_actions["action_id"])
    kept = before_actions.merge(after_actions, on="action_id")
    assert (pd.to_datetime(kept["created_at_x"]) == pd.to_datetime(kept["created_at_y"])).all()


def test_cleared_stock_auto_resolves_and_kpis_count_it(planned) -> None:  # noqa: ANN001
    warehouse, plan, _ = planned
    stockouts = warehouse.read("planning_exceptions").query("exception_type == 'projected_stockout'")
    assert len(stockouts) > 0
    target = stockouts.iloc[0]
    stock = warehouse.read("inventory_position")
    hit = (stock["sku"] == target["sku"]) & (stock["location_id"] == target["location_id"])
    stock.loc[hit, "on_hand"] = stock.loc[hit, "on_hand"] + 1_000_000  # far more than the horizon needs
    warehouse.replace_rows("inventory_position", stock)
    plan()
    record = warehouse.read("exception_lifecycle").set_index("exception_key").loc[target["exception_key"]]
    assert record["state"] == "auto_resolved" and record["last_change"] == "auto_resolved"
    assert target["exception_key"] not in set(warehouse.read("planning_exceptions")["exception_key"])
    # The same stock now raises excess_stock instead.
    assert f"excess_stock:{target['sku']}@{target['location_id']}" in set(warehouse.read("planning_exceptions")["exception_key"])
    kpis = warehouse.read("coordination_kpis").set_index(["kpi", "dimension", "member"])
    assert kpis.loc[("auto_resolved_share", "all", "all"), "value"] == pytest.approx(1.0)
    assert kpis.loc[("open_exceptions", "all", "all"), "value"] == len(warehouse.read("planning_exceptions"))
    assert kpis.loc[("exception_cycle_time_hours", "all", "all"), "value"] >= 0


def test_every_plan_records_its_as_of(planned) -> None:  # noqa: ANN001
    warehouse, _, _ = planned
    plans = warehouse.read("plan_runs")
    assert len(plans) >= 1 and (plans["scope"] == "full").all()
    assert {str(d) for d in plans["as_of"]} == {AS_OF.isoformat()} and {str(d) for d in plans["horizon_start"]} == {AS_OF.isoformat()}
    assert (plans["sku_locations"] == warehouse.read("projected_inventory")[["sku", "location_id"]].drop_duplicates().shape[0]).all()
    assert plans["run_id"].notna().all()


def test_the_planted_order_is_at_risk_told_to_a_person_and_allocated(planned, small_landscape_frames) -> None:  # noqa: ANN001
    _, _, first = planned
    stock = small_landscape_frames["inventory_position"].set_index(["sku", "location_id"]).loc[("SKU-000026", "DC-01")]
    assert (stock["on_hand"], stock["allocated"], stock["in_transit"]) == (170.0, 31.0, 0.0)
    price = float(small_landscape_frames["product"].set_index("sku").loc["SKU-000026", "unit_price"])
    exceptions = first["planning_exceptions"]
    here = exceptions[(exceptions["sku"] == "SKU-000026") & (exceptions["location_id"] == "DC-01")]
    assert list(here["exception_key"]) == ["order_at_risk:SKU-000026@DC-01"]
    case = here.iloc[0]
    assert (case["customer_tier"], case["units_at_risk"], case["affected_order_count"]) == ("strategic", 25.0, 1)
    assert [(o["order_id"], o["line_no"], o["customer_id"], o["qty_open"], o["short"], o["promise_date"], o["revised_date"])
            for o in json.loads(case["affected_orders"])] == [("SO-PLANTED", 1, "CUST-0001", 164.0, 25.0, "2026-11-24", None)]
    assert case["sentence"] == (
        "SKU-000026 at DC-01: 1 order lines of 1 customers (strategic first) cannot be met on their promise dates from 24 Nov; 25 units short of supply."
    )

    actions = first["recommended_actions"]
    mine = actions[actions["exception_key"] == case["exception_key"]].sort_values("rank")
    assert list(mine["action_type"]) == ["notify_customer", "allocate"]
    notice, allocate = mine.iloc[0], mine.iloc[1]
    assert (notice["order_id"], notice["order_line_no"], notice["customer_id"], notice["quantity"]) == ("SO-PLANTED", 1, "CUST-0001", 25.0)
    assert notice["value"] == pytest.approx(25 * price)
    assert str(notice["needed_by"]) == "2026-11-24" and pd.isna(notice["new_date"])
    assert (notice["policy_decision"], notice["policy_reasons"]) == ("awaiting_approval", "a strategic customer's order: a person decides")
    assert (allocate["quantity"], allocate["policy_decision"]) == (139.0, "awaiting_approval")
    assert json.loads(allocate["details"])["scenario"] == "fair_share"
    scenarios = first["allocation_scenarios"]
    mine = scenarios[(scenarios["sku"] == "SKU-000026") & (scenarios["location_id"] == "DC-01")]
    assert set(mine["supply"]) == {139.0} and set(mine["demand"]) == {164.0} and mine["recommended"].sum() == 1
    assert set(mine.loc[mine["recommended"], "scenario"]) == {"fair_share"}
    # A person decides it: nothing of it was queued for the ERP.
    assert not set(first["erp_outbox"]["action_id"]) & set(actions.loc[actions["exception_key"] == case["exception_key"], "action_id"])


def test_a_purchase_line_confirmed_late_is_a_supplier_delay_with_a_drafted_follow_up(planned, small_landscape_frames) -> None:  # noqa: ANN001
    _, _, first = planned
    line = small_landscape_frames["purchase_order_line"].set_index(["po_id", "line_no"]).loc[("PO-7000003", 1)]
    assert (line["sku"], line["location_id"], line["qty_open"], line["supplier_id"]) == ("SKU-000005", "DC-01", 4.0, "SUP-002")
    assert (str(line["expected_date"].date()), str(line["confirmed_date"].date())) == ("2026-12-07", "2026-12-24")
    exceptions = first["planning_exceptions"].set_index("exception_key")
    case = exceptions.loc["supplier_delay:PO-7000003/1"]
    assert (case["exception_type"], case["sku"], case["location_id"], case["po_id"], case["po_line_no"]) == (
        "supplier_delay", "SKU-000005", "DC-01", "PO-7000003", 1)
    trigger = json.loads(case["trigger_values"])
    assert (trigger["expected_date"], trigger["confirmed_date"], trigger["slip_days"], trigger["qty_open"]) == ("2026-12-07", "2026-12-24", 17.0, 4.0)
    assert case["root_cause"] in ("supplier_chronic_lateness", "supplier_one_off_delay")
    assert case["root_cause_evidence"].startswith("SUP-002 is on time on ")
    actions = first["recommended_actions"]
    [followup] = actions[(actions["exception_key"] == "supplier_delay:PO-7000003/1") & (actions["action_type"] == "supplier_followup")].to_dict("records")
    assert (followup["rank"], followup["po_id"], followup["po_line_no"], followup["supplier_id"], followup["quantity"]) == (
        1, "PO-7000003", 1, "SUP-002", 4.0)
    assert followup["message"].startswith(
        "Hello Greenleaf Snacks Industries, PO PO-7000003/1 (4 × SKU-000005 to DC-01) is now due 24 Dec instead of 7 Dec."
    )
    # A chaser within the limits, on facts: the policy sends it by itself, and there is no ERP write for it.
    assert followup["policy_decision"] == "auto_approved"
    assert followup["action_id"] not in set(first["erp_outbox"]["action_id"])


def test_routine_orders_are_whole_lots_of_their_lane_and_the_moq_binds_where_it_should(planned, small_landscape_frames) -> None:  # noqa: ANN001
    _, _, first = planned
    actions = first["recommended_actions"]
    orders = actions[actions["action_type"] == "replenish"]
    lanes = small_landscape_frames["sourcing"]
    lanes = lanes[lanes["primary"]].set_index(["sku", "location_id"])
    assert len(orders) > 10
    for order in orders.itertuples():
        lane = lanes.loc[(order.sku, order.location_id)]
        assert order.quantity >= lane["moq"] and order.quantity / lane["pack_size"] == pytest.approx(round(order.quantity / lane["pack_size"])), order
    # SKU-000002 at DC-01: MOQ 60 in packs of 6 against 20 on hand and a few units a week: the MOQ is the order.
    [moq_bound] = orders[(orders["sku"] == "SKU-000002") & (orders["location_id"] == "DC-01")].to_dict("records")
    assert (lanes.loc[("SKU-000002", "DC-01"), "moq"], moq_bound["quantity"], moq_bound["supplier_id"]) == (60.0, 60.0, "SUP-005")
    assert moq_bound["exception_key"] == "replenishment_due:SKU-000002@DC-01"
    assert moq_bound["policy_decision"] == "auto_approved" and moq_bound["action_id"] in set(first["erp_outbox"]["action_id"])


def test_every_plan_has_its_kpi_slice_and_the_decision_assets_report_plain_numbers(planned) -> None:  # noqa: ANN001
    warehouse, plan, _ = planned
    result = plan()
    plans = warehouse.read("plan_runs")
    history = warehouse.read("kpi_history")
    # One slice per plan the KPI asset measured: every plan of this module (each ran the whole job).
    assert set(history["plan_id"]) == set(plans["plan_id"]) and len(plans) >= 2
    assert set(history.groupby("plan_id")["plan_run_id"].first()) == set(plans["run_id"])
    newest = history[history["plan_id"] == plans["plan_id"].max()]
    table = warehouse.read("coordination_kpis")
    assert len(table) == len(newest)
    merged = table.merge(newest, on=["kpi", "dimension", "member"], suffixes=("", "_history"))
    assert len(merged) == len(table) and ((merged["value"] == merged["value_history"]) | merged["value"].isna()).all()
    # The figures agree with the tables they summarise, and the checks say so.
    overall = table[table["dimension"] == "all"].set_index("kpi")["value"]
    snapshot = warehouse.read("planning_exceptions")
    assert overall["open_exceptions"] == len(snapshot)
    assert overall["money_at_risk"] == pytest.approx(snapshot["money_at_risk"].sum())
    outbox = warehouse.read("erp_outbox")
    assert overall["write_backs_waiting"] == (~outbox["status"].isin(["done", "dead_letter"])).sum()
    checks = {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations() if e.asset_key.to_user_string() == "coordination_kpis"}
    assert checks == {"kpi_open_exceptions_match_snapshot": True, "kpi_table_is_latest_history_slice": True}
    metadata = {e.materialization.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    expected = {
        "planning_exceptions": ("open_exceptions", "open_critical", "open_high", "money_at_risk", "overdue_exceptions", "human_touches"),
        "recommended_actions": ("actions", "auto_approved_share", "awaiting_approval"),
        "projected_inventory": ("sku_locations", "sku_locations_stocking_out", "fill_rate_proxy"),
        "inventory_policy": ("sku_locations", "mean_service_level"),
        "allocation_scenarios": ("short_sku_locations", "lines_short", "revenue_at_risk"),
        "coordination_kpis": ("open_exceptions", "money_at_risk", "auto_approved_share", "overdue_exceptions"),
    }
    for asset, names in expected.items():
        assert isinstance(metadata[asset]["dagster/row_count"], dg.IntMetadataValue), asset
        for name in names:
            assert isinstance(metadata[asset][name], (dg.IntMetadataValue, dg.FloatMetadataValue)), (asset, name)
    assert metadata["planning_exceptions"]["open_exceptions"].value == len(snapshot)
    assert metadata["coordination_kpis"]["plan_id"].value == plans["plan_id"].max()
    assert metadata["coordination_kpis"]["dashboard"].value == str(warehouse.state_home / "dashboard" / "kpi_history.html")
