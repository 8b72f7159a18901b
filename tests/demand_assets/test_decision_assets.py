"""From staged tables to decisions on the embedded warehouse: ingest, forecast, then the plan_decisions job
raises exceptions, routes them, recommends actions with a policy decision, compares allocations and
refreshes the KPIs; a re-run on unchanged data duplicates nothing, and cleared data auto-resolves."""

from __future__ import annotations

import json

import dagster as dg
import pandas as pd
import pytest

from demand_control.definitions import build_definitions
from demand_control.demand_assets.jobs import DECISION_JOB_NAME, FORECAST_JOB_NAME
from demand_control.planning.vocabulary import ACTION_TYPES, EXCEPTION_TYPES
from demand_control.resources import FileDropSource, QualitySettings, Warehouse
from demand_control.sample.export import write_landscape
from tests.conftest import AS_OF
from tests.demand_assets.test_ingestion import run_ingestion

HORIZON = 13
PLAN_OPS = ("inventory_policy", "projected_inventory", "planning_exceptions", "allocation_scenarios", "recommended_actions")


@pytest.fixture(scope="module")
def planned(tmp_path_factory, small_landscape_frames):  # noqa: ANN001, ANN201
    tmp = tmp_path_factory.mktemp("decisions")
    file_drop = tmp / "drop"
    write_landscape({k: v.copy() for k, v in small_landscape_frames.items()}, file_drop, "parquet")
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

    return warehouse, plan, plan()


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
