"""Shared fixtures: the frozen planning clock, a SQLite state folder per test, and throwaway PostgreSQL
databases.

Every test runs with the planning clock frozen at `NOW` (a Monday morning, the as-of the sample landscapes
are generated for), and the processes a test starts (daemon, gateway) on that date: no test depends on the
day the suite runs.

PostgreSQL tests run against DEMAND_CONTROL_TEST_PG (default postgresql://postgres@127.0.0.1:5432/postgres).
On CI (CI=true) a missing server fails the tests; elsewhere they skip with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from demand_control.sample import generate_landscape, write_landscape

PG_ADMIN_URL = os.environ.get("DEMAND_CONTROL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
AS_OF = date(2026, 11, 23)  # a Monday
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True, scope="session")
def frozen_clock() -> Iterator[datetime]:
    """The planning clock at NOW for the whole session (module fixtures included); child processes plan as
    of AS_OF."""
    from demand_control.infra import clock

    with pytest.MonkeyPatch.context() as patch, clock.use(NOW):
        patch.setenv(clock.AS_OF_ENV, AS_OF.isoformat())
        yield NOW


def _admin_connection():
    url = make_url(PG_ADMIN_URL)
    conn = psycopg2.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, dbname=url.database,
        connect_timeout=5,
    )
    conn.autocommit = True
    return conn


@pytest.fixture(scope="session")
def postgres_server() -> str:
    try:
        _admin_connection().close()
    except psycopg2.OperationalError as exc:
        reason = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}".strip()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return PG_ADMIN_URL


@pytest.fixture
def make_postgres_database(postgres_server: str) -> Iterator:
    """Creates fresh, empty databases on demand; all are dropped afterwards."""
    created: list[str] = []
    admin = _admin_connection()

    def make() -> dict[str, object]:
        name = f"dc_test_{uuid.uuid4().hex[:12]}"
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        url = make_url(postgres_server).set(database=name, drivername="postgresql+psycopg2")
        return {"name": name, "url": url.render_as_string(hide_password=False), "sqlalchemy_url": url}

    try:
        yield make
    finally:
        from demand_control.resources.warehouse import engine_for

        engine_for.cache_clear()
        with admin.cursor() as cur:
            for name in created:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def postgres_database(make_postgres_database) -> dict[str, object]:
    return make_postgres_database()


@pytest.fixture(scope="session")
def small_landscape_frames():
    return generate_landscape(skus=40, locations=2, weeks=110, seed=11, as_of=AS_OF)


@pytest.fixture
def file_drop(tmp_path: Path, small_landscape_frames) -> Path:
    folder = tmp_path / "drop"
    write_landscape({k: v.copy() for k, v in small_landscape_frames.items()}, folder, "parquet")
    return folder


def timed_waits_hang() -> bool:
    """True under libfaketime 0.9.10 with Python 3.11, where `threading.Event().wait(timeout)` never returns
    (README, "Planning time"): the tests that need such waits cannot run there, whatever the date faked."""
    if "faketime" not in os.environ.get("LD_PRELOAD", ""):
        return False
    try:
        subprocess.run([sys.executable, "-c", "import threading; threading.Event().wait(0.01)"], timeout=10, check=True)
    except subprocess.TimeoutExpired:
        return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    marked = [item for item in items if item.get_closest_marker("timed_waits")]
    if marked and timed_waits_hang():
        skip = pytest.mark.skip(reason="libfaketime: a timed thread wait never returns under a faked clock (README, Planning time)")
        for item in marked:
            item.add_marker(skip)


from tests.tryton_fixtures import tryton_rpc, tryton_server# noqa: E402,F401  (a real trytond for ERP tests)
