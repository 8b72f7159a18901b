"""The plan runs itself: on an ephemeral instance, one tick of the daily plan's automation conditions requests
every asset of signals → staged → forecasts → inventory → exceptions → actions → kpis, running what it
requested materializes the whole graph with its checks, nothing is requested again until the next day's tick,
and the staged ERP feeds carry their contracts' freshness windows. No test here reads today's date: every
evaluation time is derived from the frozen as-of."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import dagster as dg

from demand_control.definitions import build_definitions, defs
from demand_control.demand_assets.automation import DAILY_PLAN_SENSOR_NAME, MISSED_DAILY_PLAN, feed_freshness_policy
from demand_control.resources import FileDropSource, QualitySettings, Warehouse
from demand_control.resources.forecast import ForecastSettingsResource
from demand_control.schema.contracts import CONTRACTS, FILE_DROP_OBJECTS
from tests.conftest import AS_OF

TICK = datetime.combine(AS_OF, time(5, 0), tzinfo=UTC)  # the daily plan's cron tick on the as-of day
# What the daily plan must not touch: the twin's year-long replay (job simulate) and the event path's record.
NOT_AUTOMATED = {"decision_scorecard", "replan_log"}


def the_chain() -> set[dg.AssetKey]:
    return {k for k in defs.resolve_asset_graph().get_all_asset_keys() if k.to_user_string() not in NOT_AUTOMATED}


def requested(result: dg.EvaluateAutomationConditionsResult) -> set[dg.AssetKey]:
    return {r.key for r in result.results if isinstance(r.key, dg.AssetKey) and r.true_subset.size}


def test_every_asset_of_the_chain_and_only_those_carry_the_daily_condition() -> None:
    graph = defs.resolve_asset_graph()
    automated = {k for k in graph.get_all_asset_keys() if graph.get(k).automation_condition is not None}
    assert automated == the_chain()
    groups = {graph.get(k).group_name for k in automated}
    assert groups == {"signals", "staged", "forecasts", "inventory", "exceptions", "actions", "kpis"}


def test_the_daily_plan_sensor_is_on_by_default_and_targets_the_chain() -> None:
    sensor = defs.resolve_sensor_def(DAILY_PLAN_SENSOR_NAME)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.asset_selection.resolve(defs.resolve_asset_graph()) == the_chain()


def test_sensors_off_by_default_say_so_and_how_to_turn_them_on() -> None:
    stopped = [s for s in defs.sensors or [] if s.default_status == dg.DefaultSensorStatus.STOPPED]
    assert stopped, "the file-drop and ERP change sensors are off by default"
    for sensor in stopped:
        words = sensor.description.lower()
        assert "off by default" in words and "turn it on in the ui" in words, sensor.name


def test_each_staged_erp_feed_is_overdue_past_its_contracts_freshness_window() -> None:
    graph = defs.resolve_asset_graph()
    for name in FILE_DROP_OBJECTS:
        policy = graph.get(dg.AssetKey(name)).freshness_policy
        window = timedelta(hours=CONTRACTS[name].freshness_hours)
        assert policy == feed_freshness_policy(name) and policy.fail_window.to_timedelta() == window, name
        warn = policy.warn_window.to_timedelta() if policy.warn_window else None
        assert warn == (MISSED_DAILY_PLAN if window > MISSED_DAILY_PLAN else None), name
    assert all(graph.get(k).freshness_policy is None for k in graph.get_all_asset_keys() if k.to_user_string() not in FILE_DROP_OBJECTS)


def test_one_tick_requests_and_materializes_the_whole_graph_without_a_click(tmp_path, file_drop) -> None:  # noqa: ANN001
    warehouse = Warehouse(home=str(tmp_path / "state"))
    plan_defs = build_definitions({
        "warehouse": warehouse, "signal_source": FileDropSource(folder=str(file_drop)), "quality_settings": QualitySettings(),
        "forecast_settings": ForecastSettingsResource(horizon=13, n_jobs=1),
    })
    instance = dg.DagsterInstance.ephemeral()

    # The first evaluation after the daemon starts never fires: starting `make dev` launches nothing.
    before = dg.evaluate_automation_conditions(defs=plan_defs, instance=instance, evaluation_time=TICK - timedelta(hours=1))
    assert before.total_requested == 0

    # The daemon evaluates every minute. The region-partitioned decision assets cannot share a run with the
    # whole-panel ones above and below them, so the tick's plan runs in waves: each evaluation requests what
    # has become due since the last, one run per region for the partitioned assets (what the automation
    # sensor launches: the requested assets and their checks, so the blocking gates still stop what rests on
    # bad data).
    job = plan_defs.resolve_implicit_global_asset_job_def()
    cursor, at, waves = before.cursor, TICK + timedelta(minutes=1), []
    materialized: dict[dg.AssetKey, set[str | None]] = {}
    checked: set[dg.AssetKey] = set()
    while True:
        wave = dg.evaluate_automation_conditions(defs=plan_defs, instance=instance, evaluation_time=at, cursor=cursor)
        cursor, at = wave.cursor, at + timedelta(minutes=1)
        if not wave.total_requested:
            break
        waves.append(requested(wave))
        assert len(waves) <= 8, f"the plan did not settle: {waves}"
        runs: dict[str | None, list[dg.AssetKey]] = {}
        for key in requested(wave):
            for partition in wave.get_requested_partitions(key):
                runs.setdefault(partition, []).append(key)
        for partition, keys in sorted(runs.items(), key=lambda kv: (kv[0] is not None, str(kv[0]))):
            run = job.execute_in_process(instance=instance, asset_selection=sorted(keys), partition_key=partition)
            assert run.success
            for event in run.get_asset_materialization_events():
                materialized.setdefault(event.asset_key, set()).add(event.partition)
            checked |= {e.asset_key for e in run.get_asset_check_evaluations()}
    assert set().union(*waves) == the_chain() and set(materialized) == the_chain()
    graph = plan_defs.resolve_asset_graph()
    for key, partitions in materialized.items():
        partitions_def = graph.get(key).partitions_def
        expected = set(partitions_def.get_partition_keys()) if partitions_def else {None}
        assert partitions == expected, f"{key.to_user_string()}: {sorted(map(str, partitions))}"
    assert {dg.AssetKey("planning_exceptions"), dg.AssetKey("recommended_actions"), dg.AssetKey("demand_forecast")} <= checked
    assert warehouse.count("planning_exceptions") > 0 and warehouse.count("coordination_kpis") > 0

    later = dg.evaluate_automation_conditions(defs=plan_defs, instance=instance, evaluation_time=TICK + timedelta(hours=3), cursor=cursor)
    assert later.total_requested == 0, "one plan per day"
    next_day = dg.evaluate_automation_conditions(defs=plan_defs, instance=instance, evaluation_time=TICK + timedelta(days=1, minutes=1), cursor=later.cursor)
    assert requested(next_day) == waves[0], "the next day's tick starts the same plan again"
