"""RELIABILITY.md promise 5 (bounded: the gateway stays responsive under a burst) and promise 18 (PostgreSQL
connection use bounded by the pool, no exhaustion under the planned concurrency), each with a test that fails
when the promise is broken.

5: one source floods the gateway far past its rate. The flood is shed with 429 + Retry-After without touching
   the warehouse (exactly the source's burst allowance is stored), every request is answered, and meanwhile
   another source's events are accepted and /healthz answers 200 — its bucket and the warehouse are not the
   flooder's. (Broken by: no rate limit, one bucket for all sources, or shedding that waits on storage.)
18: a real `demand-control gateway` process on PostgreSQL takes a burst at 4x the pool's size in concurrent
   connections; the database's own count of its backends (pg_stat_activity), sampled throughout, never exceeds
   the pool size, and every event is stored (no pool timeouts answered 503). (Broken by: stores admitted
   beyond the pool size — which spill into overflow connections —, a pool per request, a second connection
   per event.)
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path

import httpx
import psycopg2
import pytest
from sqlalchemy.engine import make_url

from demand_control.gateway import create_app
from demand_control.gateway.signing import sign_headers
from demand_control.resources import Warehouse
from tests.asgi_server import serving

SECRET = "whsec_c2VjcmV0LWZvci10aGUtZ2F0ZXdheS10ZXN0cw=="
FLOOD = 600
ALLOWANCE = 40  # the flooding source's burst; its rate refills a token every 1,000 s: nothing more gets in


def _event(line_no: int) -> bytes:
    return json.dumps({"type": "supplier.delay", "occurred_at": "2026-11-23T08:30:00Z",
                       "data": {"supplier_id": "SUP-001", "po_id": "PO-1", "line_no": line_no, "new_date": "2026-12-21"}}).encode()


async def _post(client: httpx.AsyncClient, source: str, line_no: int) -> httpx.Response:
    body = _event(line_no)
    return await client.post(f"/webhooks/{source}", content=body,
                             headers={**sign_headers(SECRET, body), "content-type": "application/json"})


def test_promise_5_a_flood_from_one_source_is_shed_and_others_are_served(tmp_path: Path) -> None:
    warehouse = Warehouse(home=str(tmp_path))
    warehouse.migrate()
    app = create_app(warehouse, secrets={"flooder": [SECRET], "neighbour": [SECRET]}, rate_per_second=0.001,
                     burst=ALLOWANCE)

    async def scenario(url: str) -> tuple[list[httpx.Response], list[httpx.Response], list[httpx.Response]]:
        limits = httpx.Limits(max_connections=48, max_keepalive_connections=48)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as flood_client, \
                httpx.AsyncClient(base_url=url, timeout=60) as other_client:
            flood = [asyncio.create_task(_post(flood_client, "flooder", i + 1)) for i in range(FLOOD)]
            await asyncio.sleep(0)  # the flood is on its way before the neighbour and the health check start
            neighbour = [await _post(other_client, "neighbour", i + 1) for i in range(ALLOWANCE // 2)]
            health = [await other_client.get("/healthz") for _ in range(3)]
            return list(await asyncio.gather(*flood)), neighbour, health

    with serving(app) as url:
        flood, neighbour, health = asyncio.run(scenario(url))

    statuses = sorted(r.status_code for r in flood)
    assert statuses == [202] * ALLOWANCE + [429] * (FLOOD - ALLOWANCE), "every flood request answered: its allowance, then 429"
    shed = [r for r in flood if r.status_code == 429]
    assert all(r.json()["error"] == "rate_limited" and int(r.headers["retry-after"]) >= 1 for r in shed)
    assert [r.status_code for r in neighbour] == [202] * (ALLOWANCE // 2), "another source is not starved"
    assert [r.status_code for r in health] == [200] * 3
    # Shed requests never reached the warehouse: exactly what was accepted is stored, with its audit rows.
    assert warehouse.count("inbox_events") == ALLOWANCE + ALLOWANCE // 2
    assert warehouse.count("audit_log") == ALLOWANCE + ALLOWANCE // 2


POOL_SIZE = 5  # demand_control.resources.warehouse: create_engine(pool_size=5, max_overflow=5)
PG_BURST = 300
PG_CONCURRENCY = 4 * POOL_SIZE


@pytest.mark.postgres
@pytest.mark.timed_waits
def test_promise_18_postgres_connections_stay_within_the_pool_under_a_burst(tmp_path: Path, postgres_database,
                                                                             request: pytest.FixtureRequest) -> None:
    from tests.gateway.test_gateway import gateway_process

    url = str(postgres_database["url"])
    name = str(postgres_database["name"])
    migrated = Warehouse(database_url=url)
    migrated.migrate()
    migrated.engine.dispose()  # this process keeps no connection to the database: every backend is the gateway's
    env = {**os.environ, "DEMAND_CONTROL_DATABASE_URL": url, "DEMAND_CONTROL_HOME": str(tmp_path),
           "DEMAND_CONTROL_WEBHOOK_SECRETS_SUPPLIER_PORTAL": SECRET, "PYTHONDONTWRITEBYTECODE": "",
           "PYTHONPYCACHEPREFIX": str(request.config.cache.mkdir("gateway-pycache"))}

    admin_url = make_url(url).set(database="postgres")
    admin = psycopg2.connect(host=admin_url.host, port=admin_url.port or 5432, user=admin_url.username,
                             password=admin_url.password, dbname="postgres")
    admin.autocommit = True
    observed: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        with admin.cursor() as cur:
            while not stop.is_set():
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'",
                            (name,))
                observed.append(cur.fetchone()[0])
                stop.wait(0.005)

    async def burst(base: str) -> list[int]:
        limits = httpx.Limits(max_connections=PG_CONCURRENCY, max_keepalive_connections=PG_CONCURRENCY)
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
            answers = await asyncio.gather(*[_post(client, "supplier-portal", i + 1) for i in range(PG_BURST)])
        return [a.status_code for a in answers]

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        with gateway_process(env, tmp_path / "gateway.log") as (_, base):
            sampler.start()
            statuses = asyncio.run(burst(base))
            stop.set()
            sampler.join(10)
    finally:
        stop.set()
        admin.close()

    assert statuses == [202] * PG_BURST, f"not all stored: {sorted(set(statuses))}"
    assert len(observed) > 10, "the sampler did not run during the burst"
    assert max(observed) <= POOL_SIZE, f"the gateway held {max(observed)} connections at once (pool size {POOL_SIZE})"
    assert max(observed) >= 1
    warehouse = Warehouse(database_url=url)
    assert warehouse.count("inbox_events") == PG_BURST
