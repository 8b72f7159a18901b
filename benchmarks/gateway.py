"""Benchmark: signed webhook events per second the gateway stores durably in PostgreSQL.

Starts `demand-control gateway --workers 2` (two uvicorn worker processes) against a PostgreSQL warehouse whose staged tables
hold a sample landscape, then posts N signed events over a few persistent HTTP/1.1 connections: about
5% redeliveries of an earlier webhook-id and 2% signed with a wrong secret. Prints events/s accepted (202,
committed to the inbox with their audit row), the share of duplicates and rejects, latency, and checks zero
loss: every id answered 2xx is in the inbox, the inbox holds exactly one row per accepted id, each has its
audit row, and no rejected id was stored. Target: >= 500 events/s stored.

    python benchmarks/gateway.py [--events 5000 --concurrency 16 --workers 2 --database-url postgresql+psycopg2://...]

Without --database-url a fresh database is created on DEMAND_CONTROL_TEST_PG (default
postgresql://postgres@127.0.0.1:5432/postgres) and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg2
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from demand_control.infra import clock
from demand_control.services.audit import verify_chain
from demand_control.gateway.signing import generate_secret, sign_headers
from demand_control.sample import generate_landscape
from demand_control.resources.warehouse import Warehouse, engine_for
from demand_control.schema.tables import audit_log, inbox_events

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


def _cpu(pids: list[int]) -> dict[int, float]:
    return {pid: _cpu_seconds(pid) for pid in pids}


def _cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two `_cpu` readings: processes alive at both count the difference, processes
    started in between count all they used (a process that ended in between is missed)."""
    return sum(used - before.get(pid, 0.0) for pid, used in after.items() if not math.isnan(used))


def _gateway_pids(pid: int) -> list[int]:
    """The gateway process and its uvicorn workers (its children), which do the work with --workers."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    children.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return [pid, *children]


def _backend_pids(database_url: str) -> list[int]:
    """PostgreSQL server processes serving the benchmark database (the gateway's pooled connections, which
    persist after the warm-up): their CPU is the database's share of the cost per event."""
    url = make_url(database_url)
    with psycopg2.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                          dbname=url.database) as conn, conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        pids = [pid for (pid,) in cur.fetchall()]
    conn.close()
    return pids


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
    now = clock.now().replace(microsecond=0)  # the gateway dates its window from the planning clock
    occurred = now.isoformat()
    # The gateway accepts a new delivery date within a window around the event, so the date follows the clock.
    new_date = (now + timedelta(days=45)).date().isoformat()
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
                     "data": {**line, "line_no": int(line["line_no"]), "new_date": new_date}}
        else:
            line = rng.choice(so)
            event = {"type": "order.change", "occurred_at": occurred,
                     "data": {"order_id": line["order_id"], "line_no": int(line["line_no"]),
                              "changes": {"qty_open": rng.randint(1, 50)}}}
        invalid = roll >= 1 - invalid_share
        requests.append({"id": f"bench-{i:06d}-{uuid.uuid4().hex[:6]}", "body": json.dumps(event).encode(),
                         "valid": not invalid, "kind": "invalid" if invalid else "new"})
    return requests


def _prepare(requests: list[dict], secret: str, wrong_secret: str, host: str) -> None:
    """Sign every request and render its HTTP/1.1 bytes before the timed phase (the timestamps stay well
    inside the gateway's five-minute window for any run of a few minutes)."""
    for request in requests:
        headers = sign_headers(secret if request["valid"] else wrong_secret, request["body"], webhook_id=request["id"])
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request["wire"] = (
            f"POST /webhooks/{SOURCE} HTTP/1.1\r\nHost: {host}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(request['body'])}\r\n{head}\r\n"
        ).encode("ascii") + request["body"]


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, wire: bytes) -> tuple[int, bytes]:
    """One request on a keep-alive connection: status code and body (Content-Length framed, as uvicorn sends)."""
    writer.write(wire)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    return status, await reader.readexactly(length) if length else b""


async def _send(url: str, requests: list[dict], concurrency: int) -> tuple[list, float]:
    """Post the prepared requests over `concurrency` persistent HTTP/1.1 connections (one request in flight
    on each): a raw asyncio client, so the load generator costs a small fraction of the gateway's CPU.
    Results: (request, status, seconds, answer body as JSON or None); status 0 when the connection failed."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    results: list[tuple[dict, int, float, dict | None]] = []
    pending = iter(requests)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for request in pending:
                started = time.perf_counter()
                try:
                    status, body = await _exchange(reader, writer, request["wire"])
                    answer = json.loads(body) if body else None
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    status, answer = 0, None
                    writer.close()  # the connection's state is unknown: start a fresh one
                    reader, writer = await asyncio.open_connection(host, int(port))
                results.append((request, status, time.perf_counter() - started, answer))
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    return results, time.perf_counter() - started


def _run(coroutine):
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=16, help="keep-alive connections, one request in flight on each")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (demand-control gateway --workers)")
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
                [sys.executable, *profile, "-m", "demand_control.cli.main", "gateway", "--port", str(port), "--no-access-log",
                 "--log-level", "warning", *(["--workers", str(args.workers)] if args.workers != 1 else [])],
                env=env, stdout=out, stderr=subprocess.STDOUT)
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

        host = f"127.0.0.1:{port}"
        warm = _events(frames, args.warmup, 0, 0, rng) if args.warmup else []
        for request in warm:
            request["id"] = "warmup-" + request["id"]
        if warm:
            _prepare(warm, secret, wrong_secret, host)
            _run(_send(base, warm, args.concurrency))
        requests = _events(frames, args.events, args.duplicates, args.invalid, rng)
        _prepare(requests, secret, wrong_secret, host)  # signing is the sender's cost, not the gateway's: untimed
        servers, backends = _gateway_pids(proc.pid), _backend_pids(url)
        server_cpu, pg_cpu, client_cpu = _cpu(servers), _cpu(backends), time.process_time()
        results, elapsed = _run(_send(base, requests, args.concurrency))
        server_cpu = _cpu_used(server_cpu, _cpu(servers))
        backends_after = _backend_pids(url)
        pg_cpu = _cpu_used(pg_cpu, _cpu(sorted(set(backends) | set(backends_after))))
        client_cpu = time.process_time() - client_cpu

        by_status: dict[int, int] = {}
        for _, status, _, _ in results:
            by_status[status] = by_status.get(status, 0) + 1
        acked = {r["id"] for r, s, _, _ in results if 200 <= s < 300}
        accepted = {r["id"] for r, s, _, _ in results if s == 202}
        rejected = {r["id"] for r, s, _, _ in results if s == 401}
        latencies = sorted(t for _, _, t, _ in results)
        # What each 2xx answer said: 202 "accepted" / 200 "duplicate", and the inbox id it was stored under.
        answered_ids: dict[str, set] = {}
        answers_consistent = True
        for r, s, _, answer in results:
            if 200 <= s < 300:
                expected = "accepted" if s == 202 else "duplicate"
                answers_consistent &= isinstance(answer, dict) and answer.get("status") == expected
                answered_ids.setdefault(r["id"], set()).add((answer or {}).get("inbox_id"))
            elif s == 401:
                answers_consistent &= isinstance(answer, dict) and answer.get("status") == "rejected"
        with warehouse.engine.connect() as conn:
            inbox_ids = dict(conn.execute(select(inbox_events.c.webhook_id, inbox_events.c.inbox_id)
                                          .where(~inbox_events.c.webhook_id.like("warmup-%"))).all())
            stored = set(inbox_ids)
            inbox_rows = conn.execute(select(func.count()).select_from(inbox_events)).scalar_one()
            audit_rows = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
        chain = verify_chain(warehouse.engine)

        n = len(results)
        print(f"events sent            {n:>8,}  in {elapsed:.2f} s over {args.concurrency} keep-alive connections, "
              f"{args.workers} uvicorn worker(s)")
        print(f"answers                {', '.join(f'{s}: {c:,}' for s, c in sorted(by_status.items()))}")
        print(f"accepted (202) stored  {len(accepted):>8,}  = {len(accepted) / elapsed:,.0f} events/s stored durably")
        print(f"all answered 2xx       {len(acked):>8,} ids, {sum(1 for _, s, _, _ in results if 200 <= s < 300) / elapsed:,.0f} requests/s")
        print(f"duplicates (200)       {by_status.get(200, 0):>8,}  ({by_status.get(200, 0) / n:.1%})")
        print(f"rejected (401)         {by_status.get(401, 0):>8,}  ({by_status.get(401, 0) / n:.1%})")
        print(f"latency ms             p50 {1000 * statistics.median(latencies):.1f}  p95 "
              f"{1000 * latencies[int(0.95 * (n - 1))]:.1f}  p99 {1000 * latencies[int(0.99 * (n - 1))]:.1f}")
        print(f"CPU per request        gateway {1000 * server_cpu / n:.2f} ms, PostgreSQL backends "
              f"{1000 * pg_cpu / n:.2f} ms, client {1000 * client_cpu / n:.2f} ms "
              f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})")
        checks = {
            "every 2xx id is in the inbox": acked <= stored,
            "inbox rows = unique accepted ids": len(stored) == len(accepted) == len(acked),
            "no rejected id was stored": not (rejected & stored),
            "one audit row per inbox row": audit_rows - baseline_audit == inbox_rows - baseline_inbox,
            "audit chain intact": chain.ok,
            "every 2xx answer names the id's inbox row": all(ids == {inbox_ids.get(i)} for i, ids in answered_ids.items()),
            "answer bodies match their status codes": answers_consistent,
            "no 5xx and no lost connection": all(0 < s < 500 for _, s, _, _ in results),
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
