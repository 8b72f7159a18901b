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

Terminating a run (the UI's Terminate, run monitoring's max runtime): a run not yet picked up is cancelled;
a running one is interrupted in its worker (SIGINT, which a worker honours only while it executes a run, so
the run records its cancellation and the worker stays warm), and when it has not ended `terminate_timeout_seconds`
later its worker is killed and the pool replaced (a run stuck in C code). The worker that executes a run is
named by the run tag `demand_control/warm_worker_pid`, so any process of the deployment can terminate it.

Stopping: `dispose` (the daemon shutting down) interrupts running runs, stops the workers and kills any still
there after `stop_timeout_seconds`; a worker whose launching process died without disposing exits by itself.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from dagster import Array, Field, IntSource, Noneable, StringSource
from dagster._core.launcher import LaunchRunContext, RunLauncher
from dagster._serdes import ConfigurableClass, ConfigurableClassData

from demand_control.infra.supervise import process_tree

log = logging.getLogger(__name__)


WORKER_PID_TAG = "demand_control/warm_worker_pid"
# In a worker: the run it is executing now (None while idle).
_current_run: str | None = None


def _interrupt_if_running(signum: int, frame: Any) -> None:
    """A worker's SIGINT: interrupt the run it executes (Dagster records the cancellation); an idle worker
    ignores it, so an interrupt that arrives after its run ended (or a Ctrl-C) cannot break the pool."""
    if _current_run is not None:
        raise KeyboardInterrupt(f"run {_current_run} interrupted")


def _exit_with_parent(parent: int) -> None:
    # A worker must not outlive the process that launched it (killed, or stopped without disposing).
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _warm_up(paths: Sequence[str], modules: Sequence[str]) -> None:
    """Worker initializer: the code location's import path and modules, loaded once per worker."""
    signal.signal(signal.SIGINT, _interrupt_if_running)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True, name="exit-with-parent").start()
    for path in paths:
        if path and path not in sys.path:
            sys.path.insert(0, path)
    for name in modules:
        importlib.import_module(name)


def _kill_tree(pid: int) -> None:
    """Kill a worker and its children: Dagster's multiprocess executor runs each step in a child of the worker,
    which would otherwise be left running on its own."""
    for member in process_tree(pid):
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _ping() -> int:
    return os.getpid()


def _execute(serialized_origin: str, run_id: str, serialized_instance_ref: str) -> str:
    """In a worker: load the run and its job from their origins and execute it; the run's own events
    record success or failure, as they do under the default launcher."""
    from dagster._core.execution.api import execute_run
    from dagster._core.instance import DagsterInstance
    from dagster._serdes import deserialize_value
    from dagster._utils.hosted_user_process import recon_job_from_origin

    global _current_run
    instance_ref = deserialize_value(serialized_instance_ref)
    origin = deserialize_value(serialized_origin)
    with DagsterInstance.from_ref(instance_ref) as instance:
        run = instance.get_run_by_id(run_id)
        if run is None:
            return f"run {run_id} not found"
        _current_run = run_id
        try:
            # Where the run executes, for `terminate` in any process (the daemon's monitoring, the webserver).
            instance.add_run_tags(run_id, {WORKER_PID_TAG: str(os.getpid())})
            instance.report_engine_event(f"Started run in warm worker (pid: {os.getpid()}).", run)
            execute_run(recon_job_from_origin(origin), instance.get_run_by_id(run_id) or run, instance)
        finally:
            _current_run = None
    return "done"


class WarmPoolRunLauncher(RunLauncher, ConfigurableClass):
    """Launches each run in one of `workers` long-lived processes that preloaded the code location."""

    def __init__(
        self,
        workers: int = 2,
        preload: Sequence[str] = ("demand_control.definitions",),
        max_runs_per_worker: int = 50,
        working_directory: str | None = None,
        terminate_timeout_seconds: float = 10.0,
        stop_timeout_seconds: float = 3.0,
        inst_data: ConfigurableClassData | None = None,
    ) -> None:
        self._inst_data = inst_data
        self._workers = max(1, int(workers))
        self._preload = tuple(preload)
        self._max_runs = max(1, int(max_runs_per_worker))
        self._paths = (working_directory or os.getcwd(),)
        self._terminate_timeout = max(0.0, float(terminate_timeout_seconds))
        self._stop_timeout = max(0.0, float(stop_timeout_seconds))
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[str, tuple[Future, ProcessPoolExecutor]] = {}
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
            "terminate_timeout_seconds": Field(float, is_required=False, default_value=10.0, description="After interrupting a run it terminates, how long before its worker is killed."),
            "stop_timeout_seconds": Field(float, is_required=False, default_value=3.0, description="On shutdown, how long workers have to stop before they are killed."),
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
        pool = self._executor()
        future = pool.submit(_execute, serialize_value(origin), run.run_id, serialize_value(self._instance.get_ref()))
        with self._lock:
            self._futures[run.run_id] = (future, pool)
        future.add_done_callback(lambda f, run_id=run.run_id, pool=pool: self._done(run_id, f, pool))

    def _done(self, run_id: str, future: Future, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            self._futures.pop(run_id, None)
            if isinstance(None if future.cancelled() else future.exception(), BrokenProcessPool) and self._pool is pool:
                # A worker died (killed by `terminate`, or crashed): the pool is unusable; the next run gets a new one.
                self._pool = None
        error = None if future.cancelled() else future.exception()
        if error is not None:
            # The worker died or could not load the run: the run's events may never say so; mark it failed.
            log.error("warm worker failed run %s: %s", run_id, error)
            run = self._instance.get_run_by_id(run_id)
            if run is not None and not run.is_finished:
                self._instance.report_run_failed(run, f"Warm worker failed: {error}")

    @staticmethod
    def _worker_of(run: Any) -> int | None:
        pid = run.tags.get(WORKER_PID_TAG)
        return int(pid) if pid and pid.isdigit() else None

    def terminate(self, run_id: str) -> bool:
        """Cancel a run not yet picked up; interrupt a running one in its worker (found by the run tag), and kill
        that worker when the run has not ended `terminate_timeout_seconds` later. False when there is nothing
        to terminate (finished, unknown, or not started in a worker this host can signal)."""
        from dagster import DagsterRunStatus

        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        with self._lock:
            future = self._futures.get(run_id, (None, None))[0]
        if future is not None and future.cancel():
            self._instance.report_run_canceled(run, "Canceled before its warm worker picked it up.")
            return True
        pid = self._worker_of(run)
        if pid is None:
            return False
        if run.status not in (DagsterRunStatus.CANCELING, DagsterRunStatus.CANCELED):
            self._instance.report_run_canceling(run)
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            return False  # the worker is gone; run monitoring marks the run failed
        self._instance.report_engine_event(f"Interrupted the run in warm worker (pid: {pid}).", run)
        killer = threading.Timer(self._terminate_timeout, self._kill_if_still_running, (run_id, pid))
        killer.daemon = True
        killer.start()
        return True

    def _kill_if_still_running(self, run_id: str, pid: int) -> None:
        """The run ignored its interrupt (stuck outside Python, or in code that swallows it): kill its worker."""
        run = self._instance.get_run_by_id(run_id)
        with self._lock:
            in_flight = run_id in self._futures
        if run is None or self._worker_of(run) != pid or (run.is_finished and not in_flight):
            return
        _kill_tree(pid)
        log.warning("killed warm worker %s: run %s did not stop %.0f s after its interrupt", pid, run_id, self._terminate_timeout)
        self._instance.report_engine_event(
            f"Killed warm worker (pid: {pid}): the run did not stop {self._terminate_timeout:.0f} s after its interrupt.", run)
        if not run.is_finished:
            self._instance.report_run_canceled(run, "Terminated: its warm worker was killed.")

    def dispose(self) -> None:
        """Stop the workers: queued runs are cancelled, running ones interrupted (they record it), and a worker
        still there after `stop_timeout_seconds` is killed, so the launching process can exit at once."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        # The executor keeps its processes private; stopping them is the point of dispose.
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            try:
                os.kill(process.pid, signal.SIGINT)  # idle workers ignore it and leave on the shutdown
            except (ProcessLookupError, TypeError):
                pass
        deadline = time.monotonic() + self._stop_timeout
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in processes:
            if process.is_alive() and process.pid is not None:
                _kill_tree(process.pid)
                process.join(1.0)
