"""Property: whatever a sender puts in the headers and the body, signed or not, of every event schema and of
Slack's interactions, the gateway answers 2xx, 4xx or 429 — never a 5xx (RELIABILITY.md promise 4), and never
lets a value through that the warehouse then refuses (the 422 `unstorable_value` safety net stays unused).

The real ASGI app over a real warehouse: SQLite here, PostgreSQL on CI (CI=true; skipped elsewhere with the
reason). Bounded for `make test` (a few hundred requests each, well under a minute together); the longer run
is benchmarks/fuzz_gateway.py in `make bench`. Requests and strategies: tests/gateway/fuzzing.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from demand_control.resources import Warehouse
from tests.gateway import fuzzing

FUZZ_SETTINGS = settings(
    max_examples=250, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much, HealthCheck.large_base_example],
)


def _driver(warehouse: Warehouse) -> Iterator[fuzzing.Driver]:
    warehouse.migrate()
    driver = fuzzing.Driver(fuzzing.fuzz_app(warehouse))
    try:
        yield driver
    finally:
        driver.close()


@pytest.fixture
def sqlite_driver(tmp_path: Path) -> Iterator[fuzzing.Driver]:
    yield from _driver(Warehouse(home=str(tmp_path)))


@pytest.fixture
def postgres_driver(postgres_database) -> Iterator[fuzzing.Driver]:
    yield from _driver(Warehouse(database_url=str(postgres_database["url"])))


def _keeps_the_promise(driver: fuzzing.Driver, request: fuzzing.Request) -> None:
    answer = driver(request)
    problem = fuzzing.verdict(answer)
    assert problem is None, f"{request.description} to {request.path!r}: {problem}"


@FUZZ_SETTINGS
@given(request=fuzzing.requests)
def test_no_request_gets_a_5xx_sqlite(sqlite_driver: fuzzing.Driver, request: fuzzing.Request) -> None:
    _keeps_the_promise(sqlite_driver, request)


@pytest.mark.postgres
@FUZZ_SETTINGS
@given(request=fuzzing.requests)
def test_no_request_gets_a_5xx_postgres(postgres_driver: fuzzing.Driver, request: fuzzing.Request) -> None:
    _keeps_the_promise(postgres_driver, request)
