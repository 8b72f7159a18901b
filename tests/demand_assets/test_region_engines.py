"""The engines that run a region's plan: the plan_region job's executor comes from the environment
(DEMAND_CONTROL_REGION_EXECUTOR, DEMAND_CONTROL_REGION_DASK_SCHEDULER), and on the dagster-dask executor
against a real Dask cluster (a LocalCluster at its scheduler address, as a remote scheduler would be) two
regions plan from their policy to their actions, each step on a Dask worker, each run tagged with its region
and writing only its region's rows.

The multiprocess executor's run is tested in test_regions.py, on the same forecast warehouse."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from demand_control.definitions import build_definitions
from demand_control.demand_assets.regions import PLAN_REGION_JOB_NAME, PLANNING_REGIONS, REGION_TAG, region_executor
from demand_control.infra import settings
from tests.demand_assets.test_regions import PLAN_OPS, RUN_CONFIG, _copy, forecast_home  # noqa: F401 - forecast_home is a fixture


def _executor_config(executor: dg.ExecutorDefinition) -> dict:
    """The config a configured executor runs with (what Dagster resolves when a run starts)."""
    resolved = executor.config_schema.resolve_config({})
    assert resolved.success, resolved.errors
    return resolved.value["config"]


def test_the_multiprocess_executor_is_the_default(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv(settings.REGION_EXECUTOR_ENV, raising=False)
    assert region_executor() is dg.multiprocess_executor
    monkeypatch.setenv(settings.REGION_EXECUTOR_ENV, "multiprocess")
    assert region_executor() is dg.multiprocess_executor


def test_dask_goes_to_the_scheduler_named_else_a_local_cluster(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv(settings.REGION_EXECUTOR_ENV, "dask")
    monkeypatch.setenv(settings.REGION_DASK_SCHEDULER_ENV, "tcp://dask-scheduler:8786")
    executor = region_executor()
    assert executor.name == "dask"
    assert _executor_config(executor) == {"cluster": {"existing": {"address": "tcp://dask-scheduler:8786"}}}

    monkeypatch.delenv(settings.REGION_DASK_SCHEDULER_ENV)
    assert _executor_config(region_executor()) == {"cluster": {"local": {}}}


def test_an_unknown_executor_is_one_clear_error(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv(settings.REGION_EXECUTOR_ENV, "celery")
    with pytest.raises(ValueError, match="DEMAND_CONTROL_REGION_EXECUTOR='celery' is not an executor; use one of multiprocess, dask"):
        region_executor()


def plan_region_job_from_env() -> dg.JobDefinition:
    """The plan_region job on the executor the environment names, bound to the environment's resources:
    rebuilt by the orchestrating process and by each Dask worker that runs one of its steps."""
    return build_definitions().resolve_job_def(PLAN_REGION_JOB_NAME).with_executor_def(region_executor())


# The dagster-dask executor waits on its futures with a timed condition wait, which never returns under
# libfaketime: skipped there (the marker), run everywhere else.
@pytest.mark.timed_waits
def test_the_dask_executor_plans_two_regions_on_a_dask_cluster(forecast_home, tmp_path, monkeypatch) -> None:  # noqa: ANN001, F811
    from distributed import Client, LocalCluster

    warehouse = _copy(forecast_home, tmp_path, "dask")
    # The workers are processes spawned from this one: they inherit the state folder (the warehouse).
    monkeypatch.setenv(settings.HOME_ENV, str(tmp_path / "dask"))
    region_of = warehouse.read("location").set_index("location_id")["region"]
    keys = warehouse.read("demand_forecast")[["sku", "location_id"]].drop_duplicates()
    sku_locations = keys["location_id"].map(region_of).value_counts()
    selection = [dg.AssetKey(op) for op in PLAN_OPS]
    (tmp_path / "dagster").mkdir()
    # One worker process with one thread (as dagster-dask gives a local cluster's workers): small and steady
    # on two cores; the steps of a run still leave this process for the worker.
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
        dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance,
    ):
        monkeypatch.setenv(settings.REGION_EXECUTOR_ENV, "dask")
        monkeypatch.setenv(settings.REGION_DASK_SCHEDULER_ENV, cluster.scheduler_address)
        assert plan_region_job_from_env().executor_def.name == "dask"
        worker_pids = set(client.run(os.getpid).values())
        assert os.getpid() not in worker_pids
        job = dg.reconstructable(plan_region_job_from_env)
        runs = {}
        for region in ("West", "East"):
            # The tags a backfill or the launchpad gives the region's run (its partition and its region).
            tags = plan_region_job_from_env().get_tags_for_partition_key(region, selected_asset_keys=selection)
            result = dg.execute_job(job, instance=instance, tags=tags, asset_selection=selection, run_config=RUN_CONFIG)
            assert result.success, region
            run = instance.get_run_by_id(result.run_id)
            assert run.tags[REGION_TAG] == region and run.tags["dagster/partition"] == region
            # Every step ran on the Dask worker, none in this (the orchestrating) process.
            started = [e.dagster_event for e in instance.all_logs(result.run_id) if e.dagster_event and e.dagster_event.event_type_value == "STEP_START"]
            # (The assets' checks are steps of their own too.)
            assert {event.step_key for event in started} >= set(PLAN_OPS)
            assert {event.pid for event in started} <= worker_pids, region
            runs[region] = result.run_id
        for op in PLAN_OPS:
            assert instance.get_materialized_partitions(dg.AssetKey(op)) == {"West", "East"}, op

    # Each region's run planned its own SKU-locations and wrote only its own DCs' rows.
    plans = warehouse.read("plan_runs").set_index("run_id")
    for region, run_id in runs.items():
        assert plans.loc[run_id, "scope"] == "region"
        assert plans.loc[run_id, "sku_locations"] == sku_locations[region]
    for table in ("inventory_policy", "projected_inventory", "sku_location_balance"):
        assert set(warehouse.read(table)["location_id"].map(region_of)) == {"West", "East"}, table
    assert len(warehouse.read("sku_location_balance")) == sku_locations[["West", "East"]].sum()
    actions = warehouse.read("recommended_actions")
    assert set(actions["location_id"].map(region_of)) <= {"West", "East"}


DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _package_sources() -> str:
    import demand_control

    return "\n".join(path.read_text() for path in Path(demand_control.__file__).parent.rglob("*.py"))


def test_the_deployment_files_name_what_the_code_location_reads() -> None:
    """deploy/ is configuration nobody runs here: it must at least name the module, tag, extra and
    environment variables this code has, so a rename here fails a test rather than a production install."""
    import tomllib

    import yaml

    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    project = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())
    module = project["tool"]["dg"]["project"]["code_location_target_module"]

    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["codeServerArgs"] == ["--module-name", module]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator"
    limits = coordinator["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    assert {"key": REGION_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits

    # Every variable the deployment sets is one the package reads, with a value it accepts.
    sources = _package_sources()
    env = deployment["env"]
    unknown = [name for name in env if f'"{name}"' not in sources]
    assert not unknown, unknown
    assert env[settings.REGION_EXECUTOR_ENV] in settings.REGION_EXECUTORS
    assert set(env[settings.PLANNING_REGIONS_ENV].split(",")) == set(PLANNING_REGIONS.get_partition_keys())

    # The image installs the k8s extra from the lock and serves the same module; the Dask workers run it too.
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "k8s" in project["project"]["optional-dependencies"]
    assert dockerfile.count("uv sync --frozen --no-dev --extra k8s") == 2
    assert f'"--module-name", "{module}"]' in dockerfile
    cluster = list(yaml.safe_load_all((DEPLOY / "dask" / "cluster.yaml").read_text()))
    (worker,) = [doc for doc in cluster if doc["metadata"]["name"] == "dask-worker"]
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    assert container["image"].split(":")[0] == deployment["image"]["repository"]
    assert container["command"][:2] == ["dask", "worker"] and "--nthreads" in container["command"]
    assert container["command"][container["command"].index("--nthreads") + 1] == "1"
    worker_env = {item["name"] for item in container["env"]}
    assert {settings.HOME_ENV, settings.PLANNING_REGIONS_ENV, "DAGSTER_PG_PASSWORD"} <= worker_env
