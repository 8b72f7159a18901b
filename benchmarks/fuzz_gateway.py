"""Benchmark: a long fuzz of the gateway — every request an attacker or a careless sender might make, against the
real ASGI app over a real warehouse — reporting requests tried and 5xx seen (the promise: 0).

The strategies are those of the bounded property test (tests/gateway/fuzzing.py: headers, bodies, every event
schema, Slack clicks; signed and unsigned); here they run many more examples, without shrinking, and every
answer is counted instead of stopping at the first failure. On SQLite always; on PostgreSQL too when a server
answers at DEMAND_CONTROL_TEST_PG (default postgresql://postgres@127.0.0.1:5432/postgres; a fresh database is
created and dropped), or at --database-url.

    python benchmarks/fuzz_gateway.py [--examples 3000] [--seed 0] [--database-url postgresql+psycopg2://...]

Exits 1 when any request got a 5xx (or a value through that the warehouse refused).
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the strategies live with the tests

import psycopg2  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from demand_control.infra import clock  # noqa: E402
from demand_control.resources import Warehouse  # noqa: E402
from tests.gateway import fuzzing  # noqa: E402

PG_ADMIN_URL = os.environ.get("DEMAND_CONTROL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def run(warehouse: Warehouse, examples: int, random_seed: int) -> dict[str, Any]:
    warehouse.migrate()
    driver = fuzzing.Driver(fuzzing.fuzz_app(warehouse))
    statuses: collections.Counter[int] = collections.Counter()
    failures: list[str] = []

    @seed(random_seed)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(request=fuzzing.requests)
    def fuzz(request: fuzzing.Request) -> None:
        answer = driver(request)
        statuses[answer.status] += 1
        problem = fuzzing.verdict(answer)
        if problem is not None:
            failures.append(f"{request.description} {request.path!r} headers={request.headers!r} "
                            f"body={request.body[:300]!r}: {problem}")

    started = time.perf_counter()
    try:
        fuzz()
    finally:
        driver.close()
    return {"statuses": statuses, "failures": failures, "seconds": time.perf_counter() - started}


@contextmanager
def postgres_database(database_url: str | None) -> Iterator[str | None]:
    """The given URL, else a fresh database on the test server (dropped afterwards), else None."""
    if database_url:
        yield database_url
        return
    admin_url = make_url(PG_ADMIN_URL)
    try:
        admin = psycopg2.connect(host=admin_url.host, port=admin_url.port or 5432, user=admin_url.username,
                                 password=admin_url.password, dbname=admin_url.database, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        print(f"PostgreSQL: skipped ({str(exc).strip().splitlines()[0]})")
        yield None
        return
    admin.autocommit = True
    name = f"dc_fuzz_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.set(database=name, drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    finally:
        from demand_control.resources.warehouse import engine_for

        engine_for.cache_clear()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def report(backend: str, result: dict[str, Any]) -> int:
    statuses, failures = result["statuses"], result["failures"]
    tried = sum(statuses.values())
    five_xx = sum(n for status, n in statuses.items() if status >= 500)
    spread = ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items()))
    print(f"{backend:<10} requests tried {tried:>6,}   5xx seen {five_xx}   other broken promises "
          f"{len(failures) - five_xx}   ({result['seconds']:.0f} s; {spread})")
    for failure in failures[:5]:
        print(f"    {failure}")
    return len(failures)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=3000, help="requests per backend")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--database-url", default=None, help="PostgreSQL to fuzz against (default: a fresh database)")
    args = parser.parse_args()

    broken = 0
    # The planning clock at the instant the fuzz's events are dated around (the gateway checks occurred_at
    # against it); signatures are checked against the same instant (`fuzz_app`'s `now`).
    with clock.use(fuzzing.SIGNED_AT), tempfile.TemporaryDirectory() as home:
        broken += report("SQLite", run(Warehouse(home=home), args.examples, args.seed))
        with postgres_database(args.database_url) as url:
            if url is not None:
                broken += report("PostgreSQL", run(Warehouse(database_url=url), args.examples, args.seed))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
