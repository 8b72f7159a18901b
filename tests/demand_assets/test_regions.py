"""Planning regions as partitions, on a sample distributor of 6 DCs in 5 regions (North holds two): the plan
run region by region, with the global step between the regions' projections and their actions, decides the
same exceptions, actions and allocations as the whole-panel plan; a region that fails leaves the others
materialized and re-runs alone, idempotently; the plan_region job runs two regions on the multiprocess
executor.

Every scenario starts from a copy of one forecast warehouse (ingested and forecast once)."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from demand_control.definitions import build_definitions
from demand_control.demand_assets import inventory as inventory_assets
from demand_control.demand_assets.jobs import DECISION_JOB_NAME, FORECAST_JOB_NAME
from demand_control.demand_assets.regions import PLAN_REGION_JOB_NAME, REGION_TAG
from demand_control.resources import FileDropSource, QualitySettings, Warehouse
from demand_control.sample import generate_landscape, write_landscape
from demand_control.services.replan import FEED_TYPES
from tests.conftest import AS_OF
from tests.demand_assets.test_ingestion import run_ingestion

HORIZON = 13
REGIONS = ("North", "South", "East", "West", "Central")
PROJECTION = ("inventory_policy", "projected_inventory")
DECISIONS = ("planning_exceptions", "allocation_scenarios", "recommended_actions")
PLAN_OPS = (*PROJECTION, *DECISIONS)
FORECAST_CONFIG = {"resources": {"forecast_settings": {"config": {"horizon": HORIZON, "n_jobs": 1}}}}
RUN_CONFIG = {"ops": {op: {"config": {"horizon_start": AS_OF.isoformat()}} for op in PLAN_OPS}, **FORECAST_CONFIG}
# Timestamps of the run (the frozen clock) are the same in both plans; these columns say which run wrote the row.
RUN_COLUMNS = {"computed_at", "created_at", "updated_at"}


@pytest.fixture(scope="module")
def forecast_home(tmp_path_factory) -> Path:  # noqa: ANN001
    """A state folder with the staged tables and the forecast of 30 SKUs at 6 DCs, not yet planned."""
    tmp = tmp_path_factory.mktemp("regions")
    frames = generate_landscape(skus=30, locations=6, weeks=110, seed=5, as_of=AS_OF)
    assert frames["location"].groupby("region")["location_id"].count().to_dict() == {"Central": 1, "East": 1, "North": 2, "South": 1, "West": 1}
    write_landscape(frames, tmp / "drop", "parquet")
    warehouse = Warehouse(home=str(tmp / "base"))
    instance = dg.DagsterInstance.ephemeral()
    assert run_ingestion(tmp / "drop", warehouse, instance=instance).success
    defs = _defs(warehouse, tmp / "drop")
    assert defs.resolve_job_def(FORECAST_JOB_NAME).execute_in_process(instance=instance, run_config=FORECAST_CONFIG).success
    return tmp / "base"


def _defs(warehouse: Warehouse, drop: Path | None = None) -> dg.Definitions:
    return build_definitions({"warehouse": warehouse, "signal_source": FileDropSource(folder=str(drop or "")), "quality_settings": QualitySettings()})


def _copy(forecast_home: Path, tmp_path: Path, name: str) -> Warehouse:
    shutil.copytree(forecast_home, tmp_path / name)
    return Warehouse(home=str(tmp_path / name))


def _run_regions(defs: dg.Definitions, instance: dg.DagsterInstance, assets: tuple[str, ...], regions=REGIONS) -> dict[str, bool]:  # noqa: ANN001
    job = defs.resolve_job_def(PLAN_REGION_JOB_NAME)
    selection = [dg.AssetKey(a) for a in assets]
    return {
        region: job.execute_in_process(instance=instance, partition_key=region, asset_selection=selection, run_config=_config(assets), raise_on_error=False).success
        for region in regions
    }


def _config(assets: tuple[str, ...]) -> dict:
    return {"ops": {op: cfg for op, cfg in RUN_CONFIG["ops"].items() if op in assets}, **FORECAST_CONFIG}


def partitioned_plan(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    """What a backfill of the decision assets over every region runs: each region's policy and projection,
    the global step once, each region's exceptions, allocations and actions."""
    assert all(_run_regions(defs, instance, PROJECTION).values())
    assert defs.resolve_job_def(DECISION_JOB_NAME).execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey("transfer_sources")], run_config=FORECAST_CONFIG
    ).success
    assert all(_run_regions(defs, instance, DECISIONS).values())


def _table(warehouse: Warehouse, name: str, key: list[str]) -> pd.DataFrame:
    frame = warehouse.read(name)
    if "exception_type" in frame:
        frame = frame[~frame["exception_type"].isin(FEED_TYPES)]
    return frame.drop(columns=[c for c in RUN_COLUMNS if c in frame]).sort_values(key).reset_index(drop=True)


COMPARED = {
    "planning_exceptions": ["exception_key"],
    "exception_lifecycle": ["exception_key"],
    "recommended_actions": ["action_id"],
    "allocation_scenarios": ["sku", "location_id", "scenario"],
    "allocation_lines": ["scenario", "sku", "location_id", "order_id", "line_no"],
    "projected_inventory": ["sku", "location_id", "period_start"],
    "inventory_policy": ["sku", "location_id"],
}


@pytest.fixture(scope="module")
def whole_panel(forecast_home, tmp_path_factory) -> Warehouse:  # noqa: ANN001
    warehouse = _copy(forecast_home, tmp_path_factory.mktemp("whole"), "state")
    assert _defs(warehouse).resolve_job_def(DECISION_JOB_NAME).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), run_config=RUN_CONFIG
    ).success
    return warehouse


def test_the_partitioned_plan_equals_the_whole_panel_plan(whole_panel, forecast_home, tmp_path) -> None:  # noqa: ANN001
    warehouse = _copy(forecast_home, tmp_path, "regions")
    instance = dg.DagsterInstance.ephemeral()
    partitioned_plan(_defs(warehouse), instance)

    for name, key in COMPARED.items():
        expected, got = _table(whole_panel, name, key), _table(warehouse, name, key)
        assert len(expected) > 0, name
        pd.testing.assert_frame_equal(got, expected, check_dtype=False, obj=name)
    decided = lambda wh: sorted(wh.read("action_decisions")["action_id"])  # noqa: E731
    assert decided(warehouse) == decided(whole_panel)
    # The plan relies on transfers across regions, and the global step is what found them.
    actions = warehouse.read("recommended_actions")
    region = warehouse.read("location").set_index("location_id")["region"]
    transfers = actions[actions["action_type"] == "transfer"]
    assert (transfers["from_location_id"].map(region) != transfers["location_id"].map(region)).any()
    # Some sender's spare is shared by several short DCs, and the allotments the regions' actions move are
    # the global step's: no sender gives more than its spare.
    sources = warehouse.read("transfer_sources")
    assert (sources.groupby(["sku", "from_location_id"])["location_id"].transform("size") > 1).any()
    moved = transfers.groupby(["sku", "from_location_id"])["quantity"].sum()
    spare = sources.drop_duplicates(["sku", "from_location_id"]).set_index(["sku", "from_location_id"])["surplus"]
    assert (moved <= spare.reindex(moved.index) + 1e-9).all()
    # Each region's run carries its tag; every region's partition of every plan asset is materialized.
    for key in PLAN_OPS:
        assert instance.get_materialized_partitions(dg.AssetKey(key)) == set(REGIONS), key
    runs = instance.get_runs(filters=dg.RunsFilter(tags={REGION_TAG: "West"}))
    assert len(runs) == 2 and all(r.tags.get("dagster/partition") == "West" for r in runs)


def test_a_region_alone_cannot_see_a_transfer_from_another_region(forecast_home, tmp_path) -> None:  # noqa: ANN001
    """Without the global step a region's plan proposes transfers only between its own DCs; the global step
    finds the DC of another region that can cover the same shortfall."""
    warehouse = _copy(forecast_home, tmp_path, "alone")
    defs, instance = _defs(warehouse), dg.DagsterInstance.ephemeral()
    assert all(_run_regions(defs, instance, PLAN_OPS).values())
    region = warehouse.read("location").set_index("location_id")["region"]

    def transfers() -> pd.DataFrame:
        actions = warehouse.read("recommended_actions")
        return actions[actions["action_type"] == "transfer"]

    alone = transfers()
    assert (alone["from_location_id"].map(region) == alone["location_id"].map(region)).all()
    assert defs.resolve_job_def(DECISION_JOB_NAME).execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey("transfer_sources")], run_config=FORECAST_CONFIG
    ).success
    sources = warehouse.read("transfer_sources")
    assert (sources["region"] != sources["from_region"]).any()
    assert all(_run_regions(defs, instance, DECISIONS).values())
    joined = transfers()
    across = joined[joined["from_location_id"].map(region) != joined["location_id"].map(region)]
    assert len(across) > 0
    # Each is the global step's pick for that SKU-location.
    picked = across.merge(sources, on=["sku", "location_id"], suffixes=("", "_source"))
    assert len(picked) == len(across) and (picked["from_location_id"] == picked["from_location_id_source"]).all()


def test_a_failing_region_leaves_the_others_materialized_and_reruns_alone(forecast_home, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    warehouse = _copy(forecast_home, tmp_path, "failing")
    defs, instance = _defs(warehouse), dg.DagsterInstance.ephemeral()
    original = inventory_assets.refresh_projection

    def broken_in_south(warehouse, settings, now, scope=None, run_id=None):  # noqa: ANN001, ANN202
        if scope is not None and scope.regions == ("South",):
            raise RuntimeError("South's inventory feed is corrupt")
        return original(warehouse, settings, now, scope, run_id=run_id)

    monkeypatch.setattr(inventory_assets, "refresh_projection", broken_in_south)
    outcome = _run_regions(defs, instance, PLAN_OPS)
    assert outcome == {"North": True, "South": False, "East": True, "West": True, "Central": True}
    assert instance.get_materialized_partitions(dg.AssetKey("recommended_actions")) == set(REGIONS) - {"South"}
    region = warehouse.read("location").set_index("location_id")["region"]
    projected = warehouse.read("projected_inventory")
    assert set(projected["location_id"].map(region)) == set(REGIONS) - {"South"}

    def outside_south(name: str, key: list[str]) -> pd.DataFrame:
        frame = _table(warehouse, name, key)
        return frame[frame["location_id"].map(region) != "South"].reset_index(drop=True)

    others = {name: outside_south(name, key) for name, key in COMPARED.items()}

    monkeypatch.setattr(inventory_assets, "refresh_projection", original)
    assert _run_regions(defs, instance, PLAN_OPS, regions=("South",)) == {"South": True}
    assert instance.get_materialized_partitions(dg.AssetKey("recommended_actions")) == set(REGIONS)
    for name, key in COMPARED.items():
        # The other regions' rows are exactly as they were; South's are there now.
        pd.testing.assert_frame_equal(outside_south(name, key), others[name], check_dtype=False, obj=name)
    assert set(warehouse.read("projected_inventory")["location_id"].map(region)) == set(REGIONS)

    # A region re-run touches only its rows. Its first plan queued its auto-approved orders, which the next
    # plan counts as planned supply (as a whole-panel re-plan does); from then on a re-run on unchanged data
    # is idempotent: the same rows, no audit entry added.
    assert _run_regions(defs, instance, PLAN_OPS, regions=("South",)) == {"South": True}
    for name, key in COMPARED.items():
        pd.testing.assert_frame_equal(outside_south(name, key), others[name], check_dtype=False, obj=name)
    # (`last_change` says what the latest run did to a case: "opened" once, "unchanged" after.)
    settled = {name: _table(warehouse, name, key).drop(columns=["last_change"], errors="ignore") for name, key in COMPARED.items()}
    audit_rows, outbox_rows = len(warehouse.read("audit_log")), len(warehouse.read("erp_outbox"))
    assert _run_regions(defs, instance, PLAN_OPS, regions=("South",)) == {"South": True}
    for name, key in COMPARED.items():
        again = _table(warehouse, name, key).drop(columns=["last_change"], errors="ignore")
        pd.testing.assert_frame_equal(again, settled[name], check_dtype=False, obj=name)
    assert (len(warehouse.read("audit_log")), len(warehouse.read("erp_outbox"))) == (audit_rows, outbox_rows)


def _load_postgres(sqlite_home: Path, url: str) -> Warehouse:
    """A PostgreSQL warehouse holding what the SQLite one at `sqlite_home` holds."""
    from demand_control.schema import tables

    source, target = Warehouse(home=str(sqlite_home)), Warehouse(database_url=url)
    target.migrate()
    for table in tables.metadata.sorted_tables:
        rows = source.read(table.name)
        if len(rows):
            target.append_rows(table.name, rows)
    return target


def test_two_regions_written_at_once_on_postgres_lose_no_rows(forecast_home, tmp_path, postgres_database) -> None:  # noqa: ANN001
    """North (two DCs) and South plan at the same time on PostgreSQL, twice over: each replaces exactly its
    DCs' rows (COPY after a delete of its region), neither waits on nor overwrites the other."""
    import threading

    from demand_control.infra import clock
    from demand_control.planning.policy import load_policy
    from demand_control.services.regions import RegionScope, write_balance
    from demand_control.services.replan import PlanSettings, planning_inputs, refresh_actions, refresh_allocations, refresh_exceptions, refresh_projection

    warehouse = _load_postgres(forecast_home, str(postgres_database["url"]))
    policy, settings, now = load_policy(None), PlanSettings(horizon_start=AS_OF), clock.now()
    region = warehouse.read("location").set_index("location_id")["region"]

    def plan(name: str, barrier: threading.Barrier | None = None) -> None:
        scope = RegionScope.of(warehouse, [name])
        if barrier is not None:
            barrier.wait(timeout=60)
        projection = refresh_projection(warehouse, settings, now, scope, run_id=f"test-{name}")
        write_balance(warehouse, projection, now, scope)
        inputs = planning_inputs(warehouse, now, scope)
        refresh_exceptions(warehouse, policy, settings, now, scope, inputs=inputs)
        refresh_allocations(warehouse, settings, now, scope, inputs=inputs)
        refresh_actions(warehouse, policy, settings, now, scope, actor=f"test-{name}", inputs=inputs)

    for name in REGIONS:
        plan(name)
    buckets = warehouse.read("projected_inventory")["period_start"].nunique()
    keys = warehouse.read("demand_forecast")[["sku", "location_id"]].drop_duplicates()

    def counts() -> dict[str, pd.Series]:
        return {
            name: warehouse.read(name)["location_id"].map(region).value_counts().sort_index()
            for name in ("projected_inventory", "sku_location_balance", "exception_lifecycle", "planning_exceptions", "recommended_actions")
        }

    before = counts()
    errors: list[BaseException] = []
    for _ in range(2):
        barrier = threading.Barrier(2)

        def run(name: str) -> None:
            try:
                plan(name, barrier)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(name,)) for name in ("North", "South")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert not errors, errors
    after = counts()
    expected = keys["location_id"].map(region).value_counts().sort_index()
    pd.testing.assert_series_equal(after["projected_inventory"], expected * buckets, check_names=False)
    pd.testing.assert_series_equal(after["sku_location_balance"], expected, check_names=False)
    for name in ("exception_lifecycle", "planning_exceptions", "recommended_actions"):
        assert after[name].drop(["North", "South"]).equals(before[name].drop(["North", "South"])), name
        assert after[name]["North"] > 0 and after[name]["South"] > 0, name
    lifecycle = warehouse.read("exception_lifecycle")
    assert lifecycle["exception_key"].is_unique
    plans = warehouse.read("plan_runs")
    assert set(plans.loc[plans["scope"] == "region", "run_id"]) == {f"test-{name}" for name in REGIONS}


def plan_region_job_from_env() -> dg.JobDefinition:
    """The plan_region job bound to the environment's resources, rebuilt in each step's process."""
    return build_definitions().resolve_job_def(PLAN_REGION_JOB_NAME)


def test_the_multiprocess_executor_runs_two_regions(forecast_home, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """plan_region on Dagster's multiprocess executor (each step in a process of its own), for two regions:
    both succeed with their region's tags, and each region's rows come from its own run."""
    from demand_control.infra import settings

    warehouse = _copy(forecast_home, tmp_path, "multiprocess")
    monkeypatch.setenv(settings.HOME_ENV, str(tmp_path / "multiprocess"))
    job = dg.reconstructable(plan_region_job_from_env)
    assert plan_region_job_from_env().executor_def.name == "multiprocess"
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        for region in ("West", "East"):
            # The tags a backfill or the launchpad gives the region's run (its partition and its region).
            selection = [dg.AssetKey("inventory_policy")]
            tags = plan_region_job_from_env().get_tags_for_partition_key(region, selected_asset_keys=selection)
            result = dg.execute_job(job, instance=instance, tags=tags, asset_selection=selection)
            assert result.success, region
            run = instance.get_run_by_id(result.run_id)
            assert run.tags[REGION_TAG] == region
            # Each step ran in a child process of its own.
            starts = [e for e in instance.all_logs(result.run_id) if e.dagster_event and e.dagster_event.event_type_value == "STEP_WORKER_STARTED"]
            assert len(starts) >= 2
        assert instance.get_materialized_partitions(dg.AssetKey("inventory_policy")) == {"West", "East"}
    region = warehouse.read("location").set_index("location_id")["region"]
    assert set(warehouse.read("inventory_policy")["location_id"].map(region)) == {"West", "East"}
