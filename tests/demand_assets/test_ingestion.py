"""The ingestion graph end to end on the embedded SQLite warehouse: good rows flow, bad rows are
quarantined with their reason, structural problems block downstream and nothing stored is lost."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from demand_control.schema.contracts import FILE_DROP_OBJECTS
from demand_control.definitions import build_definitions
from demand_control.demand_assets.jobs import INGEST_JOB_NAME
from demand_control.sample import write_landscape
from demand_control.sample.defects import plant_defects
from demand_control.quality.checks import CONTRACT_RULES_CHECK
from demand_control.resources import QualitySettings
from demand_control.quality.feeds import latest_load
from demand_control.resources import FileDropSource, Warehouse


def run_ingestion(folder: Path, warehouse: Warehouse, instance: dg.DagsterInstance | None = None, limit: float = 0.05):
    defs = build_definitions(
        {
            "warehouse": warehouse,
            "signal_source": FileDropSource(folder=str(folder)),
            "quality_settings": QualitySettings(quarantine_limit=limit),
        }
    )
    job = defs.resolve_job_def(INGEST_JOB_NAME)
    return job.execute_in_process(instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=False)


def check_results(result) -> dict[tuple[str, str], bool]:
    return {(e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()}


def materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def quarantine(warehouse: Warehouse, object_name: str) -> pd.DataFrame:
    load = latest_load(warehouse, object_name)
    q = warehouse.read("quarantine")
    return q[(q["object"] == object_name) & (q["load_id"] == load.load_id)]


def test_clean_landscape_flows_through_every_table(tmp_path, file_drop, small_landscape_frames) -> None:
    warehouse = Warehouse(home=str(tmp_path / "state"))
    result = run_ingestion(file_drop, warehouse)
    assert result.success
    assert all(check_results(result).values()), check_results(result)
    for name in FILE_DROP_OBJECTS:
        assert warehouse.count(name) == len(small_landscape_frames[name]), name
        assert warehouse.count(f"raw_{name}") == len(small_landscape_frames[name]), name
    assert warehouse.count("quarantine") == 0
    staged = warehouse.read("customer_order_line")
    assert set(staged["source_system"]) == {"file_drop"}
    assert staged["loaded_at"].notna().all()


def test_planted_defects_are_quarantined_and_good_rows_kept(tmp_path, small_landscape_frames) -> None:
    frames = small_landscape_frames
    folder = tmp_path / "drop"
    write_landscape({k: v.copy() for k, v in frames.items()}, folder, "parquet")
    assert len(plant_defects(folder, seed=3)) == 4
    warehouse = Warehouse(home=str(tmp_path / "state"))

    result = run_ingestion(folder, warehouse)

    assert result.success
    assert all(check_results(result).values()), "a few bad rows stay under the quarantine limit"
    expectations = {
        "inventory_position": ("min_value", "on_hand", "-5"),
        "customer_order_line": ("references:product.sku", "sku", "SKU-UNKNOWN"),
        "purchase_order_line": ("unique_key", None, None),
        "demand_history": ("type:date", "period_start", "2024-13-45"),
    }
    for name, (rule, column, value) in expectations.items():
        q = quarantine(warehouse, name)
        assert len(q) == 1, (name, q)
        assert q.iloc[0]["rule"] == rule
        if column:
            assert q.iloc[0]["column"] == column
            assert q.iloc[0]["offending_value"].startswith(value)
        delivered = len(frames[name]) + (1 if name == "purchase_order_line" else 0)
        assert warehouse.count(name) == delivered - 1, f"{name}: every good row must be staged"


@pytest.mark.parametrize("problem", ["missing_column", "empty_file"])
def test_structural_problem_blocks_downstream_and_keeps_stored_rows(tmp_path, file_drop, problem) -> None:
    warehouse = Warehouse(home=str(tmp_path / "state"))
    assert run_ingestion(file_drop, warehouse).success
    products_before = warehouse.read("product")

    path = file_drop / "product.parquet"
    frame = pd.read_parquet(path)
    if problem == "missing_column":
        frame.drop(columns=["unit_cost"]).to_parquet(path, index=False)
    else:
        path.unlink()
        (file_drop / "product.csv").write_text(",".join(frame.columns) + "\n")

    result = run_ingestion(file_drop, warehouse)

    checks = check_results(result)
    assert checks[("product", CONTRACT_RULES_CHECK)] is False
    evaluation = next(e for e in result.get_asset_check_evaluations() if e.asset_key.to_user_string() == "product" and e.check_name == CONTRACT_RULES_CHECK)
    assert ("unit_cost" in evaluation.description) if problem == "missing_column" else ("empty" in evaluation.description)
    # Downstream of product is blocked; independent feeds still load.
    ran = materialized(result)
    for blocked in ("sourcing", "inventory_position", "customer_order_line", "demand_history"):
        assert blocked not in ran, blocked
    assert "location" in ran
    # Nothing stored is lost: the staged products are exactly the previous ones.
    pd.testing.assert_frame_equal(warehouse.read("product"), products_before)
    assert latest_load(warehouse, "product").status == "rejected"


def test_too_many_quarantined_rows_block_downstream(tmp_path, small_landscape_frames) -> None:
    frames = {k: v.copy() for k, v in small_landscape_frames.items()}
    frames["location"].loc[0, "type"] = "warehouse"  # 1 of 2 locations = 50% quarantined
    folder = tmp_path / "drop"
    write_landscape(frames, folder, "parquet")
    warehouse = Warehouse(home=str(tmp_path / "state"))
    result = run_ingestion(folder, warehouse, limit=0.2)
    assert check_results(result)[("location", CONTRACT_RULES_CHECK)] is False
    assert "inventory_position" not in materialized(result)


def test_missing_feed_file_fails_with_its_name(tmp_path, file_drop) -> None:
    (file_drop / "supplier.parquet").unlink()
    warehouse = Warehouse(home=str(tmp_path / "state"))
    result = run_ingestion(file_drop, warehouse)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "supplier.parquet" in failure.event_specific_data.error.message + str(failure.event_specific_data.error)


def test_an_increment_replaces_changed_rows_drops_removed_ones_and_keeps_the_rest() -> None:
    from datetime import date

    from demand_control.schema.contracts import CONTRACTS
    from demand_control.demand_assets.ingestion import merge_increment

    contract = CONTRACTS["customer_order_line"]
    previous = pd.DataFrame(
        {"order_id": ["SO-1", "SO-1", "SO-2"], "line_no": [1, 2, 1], "qty_open": [5.0, 6.0, 7.0],
         "promise_date": [date(2026, 12, 1)] * 3}
    )
    changed = pd.DataFrame({"order_id": ["SO-1", "SO-3"], "line_no": [2, 1], "qty_open": [60.0, 1.0],
                            "promise_date": [date(2026, 12, 8)] * 2})
    removed = pd.DataFrame({"order_id": ["SO-2"], "line_no": ["1"]})  # raw text, as the raw table keeps it
    merged = merge_increment(previous, changed, removed, contract).sort_values(["order_id", "line_no"])
    assert merged[["order_id", "line_no", "qty_open"]].values.tolist() == [["SO-1", 1, 5.0], ["SO-1", 2, 60.0], ["SO-3", 1, 1.0]]
