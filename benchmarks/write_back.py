"""Benchmark: 1,000 ERP write-backs through a faulty network, exactly once each.

Restores the seeded Tryton template into a private database (building it on first use, about 40 s), serves
it, and puts a fault-injecting HTTP proxy in front: random 500s (never forwarded), answers dropped after
Tryton committed the request, slow answers, and an outage window during which every connection is cut (the
ERP is down). N replenishments go into `erp_outbox` (distinct action ids, cycling over the sourcing lanes),
then `drain_outbox` runs the way the sensor and job do — a drain, then another as soon as rows are due —
until every row is done or dead-lettered. Reports: rows written, Tryton purchases per action marker
(duplicates must be 0, missing must be 0), dead letters, attempts, faults injected, circuit openings, wall
seconds and writes/s.

    python benchmarks/write_back.py [--rows 1000 --error-rate 0.03 --drop-rate 0.02 --slow-rate 0.03
                                     --outage-at 20 --outage-seconds 8 --workers 1 --seed 7]

The warehouse is a SQLite file in a temporary folder unless --database-url names PostgreSQL.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import socket
import socketserver
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from demand_control.infra import settings as dc_settings
from demand_control.schema import tables
from demand_control.sample import generate_landscape
from demand_control.sample.tryton import TrytonSite, restore_or_init, serve, stop
from demand_control.services.outbox import WriteBackSettings, drain_outbox
from demand_control.infra.circuit import CircuitBreaker
from demand_control.resources.erp.base import ACTION_MARKER, ReplenishOrder
from demand_control.resources.erp.client import TrytonClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.lossy_proxy import read_request  # noqa: E402  (the fault proxy's request reader, shared with the tests)
from demand_control.resources.erp.write import TrytonErp
from demand_control.resources.warehouse import Warehouse

# The landscape the tests seed Tryton with: its template is usually cached already.
AS_OF = date(2026, 11, 23)
LANDSCAPE = {"skus": 12, "locations": 2, "weeks": 60, "seed": 5}
WRITE_METHODS = (b".create", b".write", b".confirm")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FaultProxy:
    """Forwards HTTP to trytond, injecting faults at random: a 500 instead of forwarding, a dropped answer
    after the upstream committed (writes only: the case idempotency exists for), a slow answer, and an outage
    window during which every connection is closed at once."""

    def __init__(self, upstream_port: int, rng: random.Random, error_rate: float, drop_rate: float, slow_rate: float,
                 slow_seconds: tuple[float, float]) -> None:
        self.rng, self.lock = rng, threading.Lock()
        self.error_rate, self.drop_rate, self.slow_rate, self.slow_seconds = error_rate, drop_rate, slow_rate, slow_seconds
        self.down_until = 0.0
        self.faults: Counter[str] = Counter()
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                if time.monotonic() < proxy.down_until:
                    proxy.count("outage_cut")
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                request = read_request(self.rfile)
                if request is None:
                    return
                method, path, headers, body = request
                fault = proxy.pick(body)
                if fault == "http_500":
                    self._answer(500, "Internal Server Error", [], b"injected fault")
                    return
                if fault == "slow":
                    time.sleep(proxy.rng.uniform(*proxy.slow_seconds))
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=120)
                forward = {k: v for k, v in headers.items() if k.lower() not in ("connection", "keep-alive")}
                upstream.request(method, path, body=body, headers=forward)
                response = upstream.getresponse()
                payload = response.read()
                upstream.close()
                if fault == "dropped_after_commit":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self._answer(response.status, response.reason, response.getheaders(), payload)

            def _answer(self, status: int, reason: str, headers: list, payload: bytes) -> None:
                self.wfile.write(f"HTTP/1.1 {status} {reason}\r\n".encode())
                for name, value in headers:
                    if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.wfile.write(f"{name}: {value}\r\n".encode())
                self.wfile.write(f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode())
                self.wfile.write(payload)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def count(self, fault: str) -> None:
        with self.lock:
            self.faults[fault] += 1

    def pick(self, body: bytes) -> str | None:
        with self.lock:
            error, drop, slow = self.rng.random(), self.rng.random(), self.rng.random()
        method = body.split(b'"params"')[0]
        if error < self.error_rate:
            fault = "http_500"
        elif drop < self.drop_rate and any(m in method for m in WRITE_METHODS):
            fault = "dropped_after_commit"
        elif slow < self.slow_rate:
            fault = "slow"
        else:
            return None
        self.count(fault)
        return fault

    def outage(self, seconds: float) -> None:
        self.down_until = time.monotonic() + seconds
        print(f"  ERP down for {seconds:g} s")

    def outage_later(self, start: float, seconds: float) -> threading.Timer:
        timer = threading.Timer(start, self.outage, args=(seconds,))
        timer.daemon = True
        timer.start()
        return timer

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def enqueue(warehouse: Warehouse, frames: dict, rows: int, prefix: str) -> list[str]:
    lanes = frames["sourcing"][["sku", "location_id", "supplier_id"]].drop_duplicates().reset_index(drop=True)
    now = datetime.now(UTC)
    records, ids = [], []
    for i in range(rows):
        lane = lanes.iloc[i % len(lanes)]
        action = ReplenishOrder(action_id=f"{prefix}-{i:05d}", sku=lane["sku"], location_id=lane["location_id"],
                                supplier_id=lane["supplier_id"], quantity=1 + i % 50, needed_by=AS_OF + timedelta(days=14 + i % 28))
        ids.append(action.action_id)
        records.append({"action_id": action.action_id, "kind": action.kind, "payload": action.model_dump_json(),
                        "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now, "updated_at": now})
    with warehouse.engine.begin() as conn:
        conn.execute(insert(tables.erp_outbox), records)
    return ids


def outbox_state(warehouse: Warehouse) -> tuple[dict[str, int], datetime | None]:
    o = tables.erp_outbox
    with warehouse.engine.connect() as conn:
        counts = dict(conn.execute(select(o.c.status, func.count()).group_by(o.c.status)).all())
        waiting = conn.execute(select(func.min(o.c.next_attempt_at)).where(o.c.status.in_(("pending", "failed")))).scalar()
    return counts, (waiting.replace(tzinfo=UTC) if waiting is not None and waiting.tzinfo is None else waiting)


def tryton_purchases(site: TrytonSite, prefix: str) -> Counter[str]:
    """Purchases per action marker, read from Tryton directly (not through the proxy)."""
    client = TrytonClient(site.url, site.database, site.login, site.password)
    try:
        found = client.search_read_all("purchase.purchase", [("description", "like", f"{ACTION_MARKER}{prefix}-%")], ["description"])
    finally:
        client.close()
    return Counter(p["description"].split(" ", 1)[0].removeprefix(ACTION_MARKER) for p in found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--error-rate", type=float, default=0.01, help="share of requests answered 500 (not forwarded)")
    parser.add_argument("--drop-rate", type=float, default=0.05, help="share of write requests (create/write/confirm) whose answer is dropped after Tryton committed")
    parser.add_argument("--slow-rate", type=float, default=0.01, help="share of requests delayed")
    parser.add_argument("--slow-min", type=float, default=0.1)
    parser.add_argument("--slow-max", type=float, default=1.0)
    parser.add_argument("--outage-at", type=float, default=20.0, help="seconds into the drain when the ERP goes down")
    parser.add_argument("--outage-seconds", type=float, default=8.0, help="how long it stays down (0: no outage)")
    parser.add_argument("--workers", type=int, default=1, help="concurrent drains (each claims its own rows)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default="", help="warehouse URL (default: SQLite in a temporary folder)")
    parser.add_argument("--template-folder", default="", help="seeded Tryton templates (default: <state>/bench/tryton-templates)")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    prefix = f"bench-wb-{uuid.uuid4().hex[:6]}"
    frames = generate_landscape(as_of=AS_OF, **LANDSCAPE)
    with tempfile.TemporaryDirectory(prefix="bench_write_back_") as tmp:
        templates = Path(args.template_folder or dc_settings.state_home() / "bench" / "tryton-templates")
        site = TrytonSite(home=Path(tmp) / "tryton", database="bench_write_back", login="admin", password="admin",
                          port=_free_port(), database_uri=None, template_folder=templates)
        key = "-".join(f"{k}{v}" for k, v in LANDSCAPE.items()) + f"-{AS_OF.isoformat()}"
        started = time.perf_counter()
        report = restore_or_init(site, frames, cache_key=key)
        print(f"Tryton database {'restored' if report.restored else 'built'} in {time.perf_counter() - started:.1f} s")
        proc = serve(site)
        try:
            warehouse = Warehouse(database_url=args.database_url, home=str(Path(tmp) / "state"))
            warehouse.migrate()
            ids = enqueue(warehouse, frames, args.rows, prefix)
            print(f"{len(ids)} replenishments queued in erp_outbox ({warehouse.dialect}); draining through the fault proxy")
            settings = WriteBackSettings(backoff_seconds=0.5, backoff_max_seconds=5.0, backoff_jitter_seconds=0.5,
                                         breaker_failures=3, breaker_cooldown_seconds=2.0, claim_batch=20)
            breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_seconds)
            with FaultProxy(site.port, rng, args.error_rate, args.drop_rate, args.slow_rate, (args.slow_min, args.slow_max)) as proxy:
                # One client per worker, as one per run process; the in-call retries are the client's defaults.
                erps = [TrytonErp(url=proxy.url, database=site.database, login=site.login, password=site.password,
                                  timeout_seconds=10) for _ in range(args.workers)]
                drains, totals = 0, Counter()
                t0 = time.perf_counter()
                if args.outage_seconds > 0:
                    proxy.outage_later(args.outage_at, args.outage_seconds)
                while True:
                    counts, waiting = outbox_state(warehouse)
                    if not counts.get("pending") and not counts.get("failed") and not counts.get("in_progress"):
                        break
                    now = datetime.now(UTC)
                    if waiting is not None and waiting > now:
                        # Nothing due: the sensor would skip until the earliest retry (or the next outage check).
                        time.sleep(min(0.5, (waiting - now).total_seconds()))
                        continue
                    # A run's worth of rows per drain, as the job's default limit.
                    limit = 500
                    with ThreadPoolExecutor(args.workers) as pool:
                        summaries = list(pool.map(
                            lambda erp: drain_outbox(warehouse, erp, limit=limit, settings=settings, breaker=breaker,
                                                     actor="bench:write_back"), erps))
                    drains += len(summaries)
                    for s in summaries:
                        totals.update({k: v for k, v in s.as_metadata().items() if isinstance(v, int)})
                    done = outbox_state(warehouse)[0].get("done", 0)
                    print(f"  {time.perf_counter() - t0:6.1f} s  drain {drains}: done {done}/{len(ids)}, "
                          f"circuit {summaries[-1].circuit}, last: {summaries[-1].as_metadata()}")
                wall = time.perf_counter() - t0
                faults = dict(proxy.faults)
            counts, _ = outbox_state(warehouse)
            o = tables.erp_outbox
            with warehouse.engine.connect() as conn:
                attempts = conn.execute(select(func.sum(o.c.attempts), func.max(o.c.attempts)).select_from(o)).one()
                unreconciled = conn.execute(select(func.count()).select_from(o).where(o.c.status == "done", o.c.reconciled.is_(False))).scalar_one()
                writes_audited = conn.execute(select(func.count()).select_from(tables.audit_log).where(tables.audit_log.c.event_type == "erp_write")).scalar_one()
            purchases = tryton_purchases(site, prefix)
        finally:
            stop(proc)

    duplicates = sum(n - 1 for n in purchases.values() if n > 1)
    missing = sum(1 for i in ids if purchases.get(i, 0) == 0)
    figures = {
        "rows": len(ids),
        "written": counts.get("done", 0),
        "created_by_drain": totals["created"],
        "found_on_retry": totals["written"] - totals["created"],
        "tryton_records": sum(purchases.values()),
        "duplicates_in_tryton": duplicates,
        "missing_in_tryton": missing,
        "dead_letters": counts.get("dead_letter", 0),
        "unreconciled": unreconciled,
        "attempts_total": int(attempts[0] or 0),
        "attempts_max_per_row": int(attempts[1] or 0),
        "retries_scheduled": totals["retry_scheduled"],
        "deferred_by_circuit": totals["deferred"],
        "circuit_openings": breaker.snapshot().times_opened,
        "drains": drains,
        "erp_write_audit_rows": writes_audited,
        "faults_injected": faults,
        "wall_seconds": round(wall, 1),
        "writes_per_second": round(counts.get("done", 0) / wall, 2) if wall else None,
        "warehouse": warehouse.dialect,
        "workers": args.workers,
        "seed": args.seed,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    ok = duplicates == 0 and missing == 0 and figures["tryton_records"] == len(ids) and figures["written"] == len(ids)
    print("exactly once: " + ("yes — one Tryton purchase per action" if ok else "NO"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
