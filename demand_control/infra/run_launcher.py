"""A run launcher that executes runs in a small pool of warm worker processes.

Dagster's default launcher starts every run in a freshly spawned Python process that imports Dagster,
pandas and the code location again before the first op runs: measured here, 6–18 s on a busy 2-core
machine, the whole latency budget of the event path. This launcher keeps `workers` processes alive with
the code location already imported; a run starts in one of them in well under a second. Each worker is
still a separate process (a crashing run cannot take the daemon down) and is replaced after
`max_runs_per_worker` runs, so memory one run leaves behind does not accumulate.

Configure it in the instance's dagster.yaml (deploy/dagster.local.yaml does):

    run_launcher:
      module: demand_control.infra.run_launcher
      class: WarmPoolRunLauncher
      config: {workers: 2, preload: [demand_control.definitions]}

Trade-off, stated plainly: a run already executing cannot be terminated from the UI (the worker is shared
by later runs); a queued one can. Runs that must be killable mid-way belong on the default launcher.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from dagster import Array, Field, IntSource, Noneable, StringSource
from dagster._core.launcher import LaunchRunContext, RunLauncher
from dagster._serdes import ConfigurableClass, ConfigurableClassData

log = logging.getLogger(__name__)


def _warm_up(paths: Sequence[str], modules: Sequence[str]) -> None:
    """Worker initializer: the code location's import path and modules, loaded once per worker."""
    for path in paths:
        if path and path not in sys.path:
            sys.path.insert(0, path)
    for name in modules:
        importlib.import_module(name)


def _ping() -> int:
    return os.getpid()


def _execute(serialized_origin: str, run_id: str, serialized_instance_ref: str) -> str:
    """In a worker: load the run and its job from their origins and execute it; the run's own events
    record success or failure, as they do under the default launcher."""
    from dagster._core.execution.api import execute_run
    from dagster._core.instance import DagsterInstance
    from dagster._serdes import deserialize_value
    from dagster._utils.hosted_user_process import recon_job_from_origin

    instance_ref = deserialize_value(serialized_instance_ref)
    origin = deserialize_value(serialized_origin)
    with DagsterInstance.from_ref(instance_ref) as instance:
        run = instance.get_run_by_id(run_id)
        if run is None:
            return f"run {run_id} not found"
        instance.report_engine_event(f"Started run in warm worker (pid: {os.getpid()}).", run)
        execute_run(recon_job_from_origin(origin), run, instance)
    return "done"


class WarmPoolRunLauncher(RunLauncher, ConfigurableClass):
    """Launches each run in one of `workers` long-lived processes that preloaded the code location."""

    def __init__(
        self,
        workers: int = 2,
        preload: Sequence[str] = ("demand_control.definitions",),
        max_runs_per_worker: int = 50,
        working_directory: str | None = None,
        inst_data: ConfigurableClassData | None = None,
    ) -> None:
        self._inst_data = inst_data
        self._workers = max(1, int(workers))
        self._preload = tuple(preload)
        self._max_runs = max(1, int(max_runs_per_worker))
        self._paths = (working_directory or os.getcwd(),)
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[str, Future] = {}
        self._lock = threading.Lock()
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {
            "workers": Field(IntSource, is_required=False, default_value=2, description="Warm worker processes."),
            "preload": Field(Array(StringSource), is_required=False, default_value=["demand_control.definitions"], description="Modules each worker imports before its first run."),
            "max_runs_per_worker": Field(IntSource, is_required=False, default_value=50, description="Runs a worker executes before it is replaced."),
            "working_directory": Field(Noneable(StringSource), is_required=False, default_value=None, description="Put on sys.path in the workers (default: the launching process's working directory)."),
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]) -> WarmPoolRunLauncher:
        return cls(inst_data=inst_data, **config_value)

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn, not fork: the launching process (daemon, webserver) runs threads and gRPC.
                self._pool = ProcessPoolExecutor(
                    max_workers=self._workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_warm_up,
                    initargs=(self._paths, self._preload),
                    max_tasks_per_child=self._max_runs,
                )
                for _ in range(self._workers):
                    self._pool.submit(_ping)  # start the workers now, not on the first event
            return self._pool

    def warm(self) -> None:
        """Start the worker processes ahead of the first run."""
        self._executor()

    def launch_run(self, context: LaunchRunContext) -> None:
        from dagster._serdes import serialize_value

        run = context.dagster_run
        origin = context.job_code_origin
        if origin is None:
            raise ValueError(f"run {run.run_id} has no job code origin; the warm pool cannot load its job")
        self._instance.report_engine_event("Launching run in a warm worker process.", run)
        future = self._executor().submit(_execute, serialize_value(origin), run.run_id, serialize_value(self._instance.get_ref()))
        with self._lock:
            self._futures[run.run_id] = future
        future.add_done_callback(lambda f, run_id=run.run_id: self._done(run_id, f))

    def _done(self, run_id: str, future: Future) -> None:
        with self._lock:
            self._futures.pop(run_id, None)
        error = None if future.cancelled() else future.exception()
        if error is not None:
            # The worker died or could not load the run: the run's events may never say so; mark it failed.
            log.error("warm worker failed run %s: %s", run_id, error)
            run = self._instance.get_run_by_id(run_id)
            if run is not None and not run.is_finished:
                self._instance.report_run_failed(run, f"Warm worker failed: {error}")

    def terminate(self, run_id: str) -> bool:
        with self._lock:
            future = self._futures.get(run_id)
        if future is None or not future.cancel():
            return False  # finished, or already executing in a shared worker
        run = self._instance.get_run_by_id(run_id)
        if run is not None:
            self._instance.report_run_canceled(run, "Canceled before its warm worker picked it up.")
        return True

    def dispose(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
