"""Benchmark: signed webhook events per second the gateway stores durably in PostgreSQL.

Starts `demand-control gateway` (one uvicorn process) against a PostgreSQL warehouse whose staged tables
hold a sample landscape, then posts N signed events with httpx.AsyncClient at the given concurrency: about
5% redeliveries of an earlier webhook-id and 2% signed with a wrong secret. Prints events/s accepted (202,
committed to the inbox with their audit row), the share of duplicates and rejects, latency, and checks zero
loss: every id answered 2xx is in the inbox, the inbox holds exactly one row per accepted id, each has its
audit row, and no rejected id was stored. Target: >= 500 events/s stored.

    python benchmarks/gateway.py [--events 5000 --concurrency 16 --database-url postgresql+psycopg2://...]

Without --database-url a fresh database is created on DEMAND_CONTROL_TEST_PG (default
postgresql://postgres@127.0.0.1:5432/postgres) and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg2
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from demand_control.audit import verify_chain
from demand_control.gateway.signing import generate_secret, sign_headers
from demand_control.landscape import generate_landscape
from demand_control.resources.warehouse import Warehouse, engine_for
from demand_control.tables import audit_log, inbox_events

ADMIN_URL = os.environ.get("DEMAND_CONTROL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SOURCE = "bench-portal"
STAGED_FOR_LOOKUPS = ("product", "location", "supplier", "customer", "purchase_order_line", "customer_order_line")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux), to tell server cost from client cost."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def _admin():
    url = make_url(ADMIN_URL)
    conn = psycopg2.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                            dbname=url.database)
    conn.autocommit = True
    return conn


def _seed(warehouse: Warehouse, skus: int) -> dict:
    """Stage a landscape so the per-event lookups hit real, indexed tables."""
    frames = generate_landscape(skus=skus, locations=3, weeks=60, seed=7, as_of=datetime.now(UTC).date())
    loaded_at = datetime.now(UTC)
    for name in STAGED_FOR_LOOKUPS:
        warehouse.replace_rows(name, frames[name].assign(source_system="bench", loaded_at=loaded_at))
    return frames


def _events(frames: dict, n: int, duplicate_share: float, invalid_share: float, rng: random.Random) -> list[dict]:
    """The requests to send, in order: each a webhook id, a body and whether it is signed correctly."""
    po = frames["purchase_order_line"][["supplier_id", "po_id", "line_no"]].to_dict("records")
    so = frames["customer_order_line"][["order_id", "line_no"]].to_dict("records")
    occurred = datetime.now(UTC).replace(microsecond=0).isoformat()
    requests: list[dict] = []
    for i in range(n):
        roll = rng.random()
        if requests and roll < duplicate_share:
            original = rng.choice([r for r in requests[-200:] if r["valid"]])
            requests.append({**original, "kind": "duplicate"})
            continue
        if rng.random() < 0.5:
            line = rng.choice(po)
            event = {"type": "supplier.delay", "occurred_at": occurred,
                     "data": {**line, "line_no": int(line["line_no"]), "new_date": "2027-01-15"}}
        else:
            line = rng.choice(so)
            event = {"type": "order.change", "occurred_at": occurred,
                     "data": {"order_id": line["order_id"], "line_no": int(line["line_no"]),
                              "changes": {"qty_open": rng.randint(1, 50)}}}
        invalid = roll >= 1 - invalid_share
        requests.append({"id": f"bench-{i:06d}-{uuid.uuid4().hex[:6]}", "body": json.dumps(event).encode(),
                         "valid": not invalid, "kind": "invalid" if invalid else "new"})
    return requests


async def _send(url: str, requests: list[dict], secret: str, wrong_secret: str, concurrency: int) -> tuple[list, float]:
    results: list[tuple[dict, int, float]] = []
    pending = iter(requests)

    async def worker(client: httpx.AsyncClient) -> None:
        for request in pending:
            headers = sign_headers(secret if request["valid"] else wrong_secret, request["body"], webhook_id=request["id"])
            started = time.perf_counter()
            try:
                response = await client.post(f"/webhooks/{SOURCE}", content=request["body"], headers=headers)
                status = response.status_code
            except httpx.TransportError:
                status = 0
            results.append((request, status, time.perf_counter() - started))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*[worker(client) for _ in range(concurrency)])
        return results, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=16, help="in-flight requests (httpx gets costlier per request above ~16)")
    parser.add_argument("--duplicates", type=float, default=0.05, help="share of redeliveries")
    parser.add_argument("--invalid", type=float, default=0.02, help="share signed with a wrong secret")
    parser.add_argument("--skus", type=int, default=2_000, help="landscape staged for the reference lookups")
    parser.add_argument("--database-url", default="", help="existing PostgreSQL database (default: a throwaway one)")
    parser.add_argument("--profile", default="", help="write a cProfile of the gateway's event loop to this file")
    parser.add_argument("--warmup", type=int, default=200, help="events sent (and counted apart) before timing")
    args = parser.parse_args()

    admin, name = None, ""
    url = args.database_url
    if not url:
        admin = _admin()
        name = f"dc_bench_{uuid.uuid4().hex[:8]}"
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        url = make_url(ADMIN_URL).set(database=name, drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    proc = None
    try:
        warehouse = Warehouse(database_url=url)
        warehouse.migrate()
        frames = _seed(warehouse, args.skus)
        baseline_inbox, baseline_audit = warehouse.count("inbox_events"), warehouse.count("audit_log")

        rng = random.Random(1)
        secret, wrong_secret = generate_secret(), generate_secret()
        port = _free_port()
        env = {**os.environ, "DEMAND_CONTROL_DATABASE_URL": url,
               "DEMAND_CONTROL_WEBHOOK_SECRETS_" + SOURCE.upper().replace("-", "_"): secret}
        log = Path(tempfile.mkdtemp()) / "gateway.log"
        with log.open("wb") as out:
            profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
            proc = subprocess.Popen(
                [sys.executable, *profile, "-m", "demand_control.cli", "gateway", "--port", str(port), "--no-access-log",
                 "--log-level", "warning"], env=env, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gateway did not start:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)

        warm = _events(frames, args.warmup, 0, 0, rng) if args.warmup else []
        for request in warm:
            request["id"] = "warmup-" + request["id"]
        if warm:
            asyncio.run(_send(base, warm, secret, wrong_secret, args.concurrency))
        requests = _events(frames, args.events, args.duplicates, args.invalid, rng)
        server_cpu, client_cpu = _cpu_seconds(proc.pid), time.process_time()
        results, elapsed = asyncio.run(_send(base, requests, secret, wrong_secret, args.concurrency))
        server_cpu, client_cpu = _cpu_seconds(proc.pid) - server_cpu, time.process_time() - client_cpu

        by_status: dict[int, int] = {}
        for _, status, _ in results:
            by_status[status] = by_status.get(status, 0) + 1
        acked = {r["id"] for r, s, _ in results if 200 <= s < 300}
        accepted = {r["id"] for r, s, _ in results if s == 202}
        rejected = {r["id"] for r, s, _ in results if s == 401}
        latencies = sorted(t for _, _, t in results)
        with warehouse.engine.connect() as conn:
            stored = set(conn.execute(select(inbox_events.c.webhook_id).where(~inbox_events.c.webhook_id.like("warmup-%"))).scalars())
            inbox_rows = conn.execute(select(func.count()).select_from(inbox_events)).scalar_one()
            audit_rows = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
        chain = verify_chain(warehouse.engine)

        n = len(results)
        print(f"events sent            {n:>8,}  in {elapsed:.2f} s at concurrency {args.concurrency} (one uvicorn process)")
        print(f"answers                {', '.join(f'{s}: {c:,}' for s, c in sorted(by_status.items()))}")
        print(f"accepted (202) stored  {len(accepted):>8,}  = {len(accepted) / elapsed:,.0f} events/s stored durably")
        print(f"all answered 2xx       {len(acked):>8,} ids, {sum(1 for _, s, _ in results if 200 <= s < 300) / elapsed:,.0f} requests/s")
        print(f"duplicates (200)       {by_status.get(200, 0):>8,}  ({by_status.get(200, 0) / n:.1%})")
        print(f"rejected (401)         {by_status.get(401, 0):>8,}  ({by_status.get(401, 0) / n:.1%})")
        print(f"latency ms             p50 {1000 * statistics.median(latencies):.1f}  p95 "
              f"{1000 * latencies[int(0.95 * (n - 1))]:.1f}  p99 {1000 * latencies[int(0.99 * (n - 1))]:.1f}")
        print(f"CPU per request        gateway {1000 * server_cpu / n:.2f} ms, client {1000 * client_cpu / n:.2f} ms "
              f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})")
        checks = {
            "every 2xx id is in the inbox": acked <= stored,
            "inbox rows = unique accepted ids": len(stored) == len(accepted) == len(acked),
            "no rejected id was stored": not (rejected & stored),
            "one audit row per inbox row": audit_rows - baseline_audit == inbox_rows - baseline_inbox,
            "audit chain intact": chain.ok,
            "no 5xx and no lost connection": all(0 < s < 500 for _, s, _ in results),
        }
        for label, ok in checks.items():
            print(f"{'ok  ' if ok else 'FAIL'}  {label}")
        return 0 if all(checks.values()) else 1
    finally:
        if proc is not None and proc.poll() is None:
            # SIGINT: uvicorn shuts down cleanly, so a --profile is written.
            proc.send_signal(signal.SIGINT)
            proc.wait(10)
        if admin is not None:
            engine_for.cache_clear()
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()


if __name__ == "__main__":
    raise SystemExit(main())
