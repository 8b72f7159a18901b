"""The warm-pool run launcher terminates a running run (RELIABILITY.md §17): run monitoring's max runtime
interrupts a stuck run in its worker, which stays warm and runs the next run; a run that ignores the
interrupt has its worker killed and replaced. Real worker processes, Dagster's own monitoring code."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import dagster as dg
import pytest
from dagster._core.definitions.reconstruct import reconstructable
from dagster._core.launcher import LaunchRunContext
from dagster._daemon.monitoring.run_monitoring import check_run_timeout

from demand_control.infra.run_launcher import WORKER_PID_TAG, WarmPoolRunLauncher
from demand_control.infra.supervise import _proc_stats, process_tree
from tests.infra.stuck_jobs import deaf_job, quick_job, stuck_job

WAIT_SECONDS = 90  # worker start-up (spawn, import Dagster) on a busy 2-core machine
pytestmark = pytest.mark.timed_waits


@pytest.fixture
def instance(request: pytest.FixtureRequest) -> Iterator[dg.DagsterInstance]:
    """One warm worker; `terminate_timeout_seconds` from the test's parameter (indirect), else 30."""
    timeout = getattr(request, "param", 30.0)
    overrides = {"run_launcher": {"module": "demand_control.infra.run_launcher", "class": "WarmPoolRunLauncher",
                                  "config": {"workers": 1, "preload": ["tests.infra.stuck_jobs"], "terminate_timeout_seconds": timeout}}}
    with dg.instance_for_test(overrides=overrides) as instance:
        assert isinstance(instance.run_launcher, WarmPoolRunLauncher)
        yield instance


def launch(instance: dg.DagsterInstance, job: dg.JobDefinition, **tags: str) -> str:
    run = instance.create_run_for_job(job_def=job, job_code_origin=reconstructable(job).get_python_origin(), tags=tags)
    instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    return run.run_id


def wait_for(instance: dg.DagsterInstance, run_id: str, done: callable, what: str) -> dg.DagsterRun:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        run = instance.get_run_by_id(run_id)
        if done(run):
            return run
        assert time.monotonic() < deadline, f"run {run_id[:8]} never {what}: {run.status}"
        time.sleep(0.1)


def step_started(instance: dg.DagsterInstance, run_id: str) -> bool:
    return any(e.dagster_event and e.dagster_event.event_type_value == "STEP_START" for e in instance.all_logs(run_id))


def exceed_max_runtime(instance: dg.DagsterInstance, run_id: str) -> list[int]:
    """Run monitoring's check, as the daemon makes it, once the run is past its one-second max runtime;
    returns the processes that executed the run (its worker and the worker's children)."""
    wait_for(instance, run_id, lambda r: r.status == dg.DagsterRunStatus.STARTED and step_started(instance, run_id), "started")
    record = instance.get_run_record_by_id(run_id)
    executing = process_tree(int(instance.get_run_by_id(run_id).tags[WORKER_PID_TAG]))
    while time.time() - record.start_time <= 1.0:
        time.sleep(0.1)
    check_run_timeout(instance, record, logging.getLogger("run_monitoring"), 3600.0)
    return executing


def running(pids: list[int]) -> list[int]:
    stats = _proc_stats()
    return [pid for pid in pids if pid in stats and stats[pid][0] != "Z"]


def test_run_monitoring_interrupts_a_stuck_run_and_its_warm_worker_takes_the_next(instance) -> None:
    stuck = launch(instance, stuck_job, **{"dagster/max_runtime": "1"})
    exceed_max_runtime(instance, stuck)
    assert instance.get_run_by_id(stuck).status == dg.DagsterRunStatus.FAILURE
    # The one worker was executing the stuck run: the next run completes only if that run really stopped.
    quick = launch(instance, quick_job)
    assert wait_for(instance, quick, lambda r: r.is_finished, "finished").status == dg.DagsterRunStatus.SUCCESS
    worker = instance.get_run_by_id(stuck).tags[WORKER_PID_TAG]
    assert instance.get_run_by_id(quick).tags[WORKER_PID_TAG] == worker, "interrupted, not killed: the worker stays warm"
    messages = [e.message for e in instance.all_logs(stuck)]
    assert any("Interrupted the run in warm worker" in m for m in messages), messages


@pytest.mark.parametrize("instance", [2.0], indirect=True)
def test_a_run_that_ignores_its_interrupt_has_its_worker_killed_and_replaced(instance) -> None:
    deaf = launch(instance, deaf_job, **{"dagster/max_runtime": "1"})
    executing = exceed_max_runtime(instance, deaf)
    assert len(executing) > 1, "the multiprocess executor runs the step in a child of the worker"
    quick = launch(instance, quick_job)
    # The pool that held the killed worker is broken; the quick run queued there fails, the next one gets a new pool.
    wait_for(instance, quick, lambda r: r.is_finished, "finished")
    again = launch(instance, quick_job)
    assert wait_for(instance, again, lambda r: r.is_finished, "finished").status == dg.DagsterRunStatus.SUCCESS
    killed = int(instance.get_run_by_id(deaf).tags[WORKER_PID_TAG])
    assert int(instance.get_run_by_id(again).tags[WORKER_PID_TAG]) != killed
    assert any("Killed warm worker" in e.message for e in instance.all_logs(deaf))
    # The step process the multiprocess executor started under the killed worker went with it.
    assert running(executing) == [], f"left running: {running(executing)}"
