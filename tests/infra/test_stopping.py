"""`make dev` and the daemon stop (issue 15 item 8): SIGTERM stops `dagster-daemon` running the project's
instance (deploy/dagster.local.yaml: the warm-pool launcher) while a run is stuck in a warm worker, and
SIGTERM or SIGINT stops `demand-control dev` (what `make dev` runs: the UI, daemon, code server and workers)
— every process each started is gone within 10 s. Real processes, real signals."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from demand_control.infra.supervise import _group_alive

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
START_SECONDS = 180  # Dagster's processes import Dagster and pandas on a busy 2-core machine
STOP_SECONDS = 10.0

pytestmark = [pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc (Linux)"), pytest.mark.timed_waits]


def live_in_session(session: int) -> list[str]:
    """The processes of a session still running (zombies not counted): the tree a test started."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(f"{entry} {cmd}")
    return found


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """DAGSTER_HOME in tmp_path with the project's local instance, and a workspace serving tests.infra.stuck_jobs."""
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.local.yaml", dagster_home / "dagster.yaml")
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(f"load_from:\n  - python_module:\n      module_name: tests.infra.stuck_jobs\n"
                         f"      working_directory: {REPO}\n      location_name: stuck\n")
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "DEMAND_CONTROL_HOME": str(tmp_path / "state"),
           "WORKSPACE": str(workspace)}
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    from dagster import DagsterInstance

    # Create the instance's SQLite storage once, here: the daemon and `dagster job launch` creating it at the
    # same moment race ("table snapshots already exists").
    with DagsterInstance.get() as instance:
        instance.get_runs(limit=1)
    yield env


def start(argv: list[str], env: dict[str, str], log: Path, ignore_sigint: bool = False) -> subprocess.Popen:
    def session() -> None:
        os.setsid()
        if ignore_sigint:  # as a shell's background job starts it
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    return subprocess.Popen(argv, env=env, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT, preexec_fn=session)


def launch_stuck_run(env: dict[str, str], process: subprocess.Popen, log: Path) -> None:
    """Submit stuck_job (QueuedRunCoordinator: the daemon launches it in a warm worker); return once it runs."""
    from dagster import DagsterInstance, DagsterRunStatus

    subprocess.run([str(BIN / "dagster"), "job", "launch", "-w", env["WORKSPACE"], "-j", "stuck_job"], env=env, cwd=REPO,
                   check=True, capture_output=True, timeout=START_SECONDS)
    deadline = time.monotonic() + START_SECONDS
    with DagsterInstance.get() as instance:
        while True:
            runs = instance.get_runs()
            if runs and runs[0].status == DagsterRunStatus.STARTED and any(
                    e.dagster_event and e.dagster_event.event_type_value == "STEP_START" for e in instance.all_logs(runs[0].run_id)):
                return
            assert process.poll() is None, f"{process.args[0]} ended ({process.returncode}):\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"the stuck run never started: {runs[0].status if runs else 'no run'}\n{log.read_text()[-3000:]}"
            time.sleep(0.5)


def stopped_within(process: subprocess.Popen, number: int, log: Path) -> float:
    session = process.pid
    assert live_in_session(session), "nothing running to stop"
    started = time.monotonic()
    process.send_signal(number)
    try:
        while live_in_session(session) and time.monotonic() - started < 30:
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        left = live_in_session(session)
        assert not left, f"still running {elapsed:.0f} s after {signal.Signals(number).name}: {left}\n{log.read_text()[-3000:]}"
        print(f"{Path(process.args[0]).name}: everything stopped {elapsed:.1f} s after {signal.Signals(number).name}")
        return elapsed
    finally:
        if _group_alive(session) or live_in_session(session):
            for line in live_in_session(session):
                os.kill(int(line.split()[0]), signal.SIGKILL)
        process.wait(10)


def test_sigterm_stops_the_daemon_and_its_warm_workers_with_a_run_stuck(home: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "daemon.log"
    daemon = start([str(BIN / "dagster-daemon"), "run", "-w", home["WORKSPACE"]], home, log)
    launch_stuck_run(home, daemon, log)
    elapsed = stopped_within(daemon, signal.SIGTERM, log)
    assert elapsed < STOP_SECONDS, f"dagster-daemon took {elapsed:.1f} s to stop"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_demand_control_dev_stops_everything_it_started(home: dict[str, str], tmp_path: Path, number: int) -> None:
    log, port = tmp_path / "dev.log", free_port()
    # Started as a background job is (SIGINT ignored): plain `dagster dev` then ignores SIGTERM too.
    dev = start([str(BIN / "demand-control"), "dev", "-w", home["WORKSPACE"], "--port", str(port)], home, log, ignore_sigint=True)
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert dev.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "the UI never answered"
        time.sleep(0.5)
    if number == signal.SIGTERM:
        launch_stuck_run(home, dev, log)
    elapsed = stopped_within(dev, number, log)
    assert elapsed < STOP_SECONDS, f"demand-control dev took {elapsed:.1f} s to stop"
    assert dev.returncode == 128 + number
