"""A failed replan batch is re-processed (RELIABILITY.md §15): the inbox sensor requested the batch once and
moved its cursor on; when the batch's run fails, its events stay unprocessed, and the sensor asks for them
again under a new run key (never the failed one), once per retry, while no run covering them is in flight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from demand_control.definitions import build_definitions
from demand_control.infra import clock
from demand_control.ops.replan import REPLAN_JOB_NAME
from demand_control.resources import FileDropSource, Warehouse
from demand_control.resources.planning_policy import PlanningPolicy
from demand_control.sensors.inbox import inbox_sensor
from tests.services.test_replan import _event, _store

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_idle_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMAND_CONTROL_INBOX_WAIT_SECONDS", "0")


def tick(instance: dg.DagsterInstance, warehouse: Warehouse, cursor: str | None) -> dg.SensorResult | dg.SkipReason:
    return inbox_sensor(dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse}, cursor=cursor))


def run(instance: dg.DagsterInstance, warehouse: Warehouse, request: dg.RunRequest, policy_file: Path | None) -> bool:
    """The requested replan run, in process on the instance the sensor reads, with its run key and tags."""
    resources = {"warehouse": warehouse, "signal_source": FileDropSource(folder=".")}
    if policy_file is not None:
        resources["planning_policy"] = PlanningPolicy(path=str(policy_file))
    job = build_definitions(resources).resolve_job_def(REPLAN_JOB_NAME)
    return job.execute_in_process(instance=instance, run_config=request.run_config, raise_on_error=False,
                                  tags={**request.tags, "dagster/run_key": request.run_key}).success


def test_a_batch_whose_replan_run_failed_is_requested_again_under_a_new_key(tmp_path: Path) -> None:
    warehouse = Warehouse(home=str(tmp_path / "state"))
    warehouse.migrate()
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nroles: {planner: {max_value: lots}}\n")
    with clock.use(T0):
        _store(warehouse, [_event(i, "order.cancel", {"order_id": f"SO-{i}", "line_no": 1}, order_id=f"SO-{i}", order_line_no=1) for i in (1, 2, 3)])
    with dg.instance_for_test() as instance:
        with clock.use(T0 + timedelta(seconds=1)):
            first = tick(instance, warehouse, None)
            [batch] = first.run_requests
            assert batch.run_key == "inbox:1-3" and first.cursor == "3"
            assert not run(instance, warehouse, batch, broken), "an invalid policy file fails the replan run"
            assert warehouse.read("inbox_events")["processed_at"].isna().all()
            # Too soon after the events arrived to call them stranded: nothing new is asked yet.
            assert isinstance(tick(instance, warehouse, first.cursor), dg.SkipReason)

        with clock.use(T0 + timedelta(minutes=5)):
            retry = tick(instance, warehouse, first.cursor)
            assert isinstance(retry, dg.SensorResult) and retry.cursor == "3"
            [again] = retry.run_requests
            assert again.run_key == "inbox-retry:1-3:1" != batch.run_key
            assert again.run_config["ops"]["replan_from_inbox"]["config"] == {"inbox_from": 1, "inbox_to": 3}
            # The policy is fixed: the retry processes the batch, and nothing is asked again.
            assert run(instance, warehouse, again, None)
            processed = warehouse.read("inbox_events")
            assert processed["processed_at"].notna().all()
            assert set(processed["process_run_id"]) == {instance.get_run_records(dg.RunsFilter(tags={"dagster/run_key": again.run_key}))[0].dagster_run.run_id}
            assert isinstance(tick(instance, warehouse, first.cursor), dg.SkipReason)


def test_a_retry_that_fails_too_is_followed_by_the_next_key_until_the_retries_run_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from demand_control.sensors.inbox import MAX_RETRIES, RETRY_ENV

    monkeypatch.setenv(RETRY_ENV, "0")  # no pause between retries
    warehouse = Warehouse(home=str(tmp_path / "state"))
    warehouse.migrate()
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nroles: {planner: {max_value: lots}}\n")
    with clock.use(T0):
        _store(warehouse, [_event(7, "order.cancel", {"order_id": "SO-7", "line_no": 1}, order_id="SO-7", order_line_no=1)])
    keys = []
    with dg.instance_for_test() as instance, clock.use(T0 + timedelta(minutes=5)):
        while isinstance(result := tick(instance, warehouse, "7"), dg.SensorResult):
            [request] = result.run_requests
            keys.append(request.run_key)
            assert not run(instance, warehouse, request, broken)
            assert len(keys) <= MAX_RETRIES, keys
    assert keys == [f"inbox-retry:7-7:{n}" for n in range(1, MAX_RETRIES + 1)]
    assert warehouse.read("inbox_events")["processed_at"].isna().all(), "left for a person to re-execute"
