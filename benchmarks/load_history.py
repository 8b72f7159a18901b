"""Benchmark: load the demand history of a 100k SKU-location landscape into PostgreSQL.

Ours: `Warehouse.replace_rows` (COPY ... FROM STDIN). Baseline in the same run: a plain
`DataFrame.to_sql` (pandas' default INSERT path). Both load into the same migrated `demand_history` table of
a throwaway database. `to_sql` is timed on a slice (default 1M rows; `--baseline-rows 0` for all of it)
because the full 15M rows take a quarter of an hour that way; the comparison is rows per second.
Target: COPY >= 10x faster.

    python benchmarks/load_history.py [--skus 25000 --locations 4 --weeks 156]
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import UTC, datetime

import psycopg2
from sqlalchemy.engine import make_url

from demand_control.sample import generate_landscape
from demand_control.resources.warehouse import Warehouse, engine_for

ADMIN_URL = os.environ.get("DEMAND_CONTROL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skus", type=int, default=25_000)
    parser.add_argument("--locations", type=int, default=4)
    parser.add_argument("--weeks", type=int, default=156)
    parser.add_argument("--baseline-rows", type=int, default=1_000_000, help="rows for to_sql; 0 = all")
    args = parser.parse_args()

    history = generate_landscape(args.skus, args.locations, args.weeks, seed=1, as_of=datetime.now(UTC).date())[
        "demand_history"
    ]
    history = history.assign(source_system="file_drop", loaded_at=datetime.now(UTC))
    baseline_rows = len(history) if args.baseline_rows <= 0 else min(args.baseline_rows, len(history))

    admin_url = make_url(ADMIN_URL)
    admin = psycopg2.connect(
        host=admin_url.host, port=admin_url.port or 5432, user=admin_url.username,
        password=admin_url.password, dbname=admin_url.database,
    )
    admin.autocommit = True
    name = f"dc_bench_{uuid.uuid4().hex[:8]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        url = admin_url.set(database=name, drivername="postgresql+psycopg2").render_as_string(hide_password=False)
        warehouse = Warehouse(database_url=url)
        warehouse.migrate()

        started = time.perf_counter()
        loaded = warehouse.replace_rows("demand_history", history)
        copy_seconds = time.perf_counter() - started
        assert warehouse.count("demand_history") == loaded == len(history)

        warehouse.replace_rows("demand_history", history.iloc[:0])
        sample = history.iloc[:baseline_rows]
        started = time.perf_counter()
        with warehouse.engine.begin() as conn:
            sample.to_sql("demand_history", conn, if_exists="append", index=False)
        to_sql_seconds = time.perf_counter() - started
        assert warehouse.count("demand_history") == baseline_rows
    finally:
        engine_for.cache_clear()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    copy_rate = len(history) / copy_seconds
    to_sql_rate = baseline_rows / to_sql_seconds
    ratio = copy_rate / to_sql_rate
    print(f"demand_history load into PostgreSQL ({args.skus * args.locations:,} SKU-locations, {len(history):,} rows)")
    print(f"{'method':<28}{'rows':>12}{'seconds':>10}{'rows/s':>12}")
    print(f"{'ours: COPY (replace_rows)':<28}{len(history):>12,}{copy_seconds:>10.1f}{copy_rate:>12,.0f}")
    print(f"{'baseline: DataFrame.to_sql':<28}{baseline_rows:>12,}{to_sql_seconds:>10.1f}{to_sql_rate:>12,.0f}")
    verdict = "PASS" if ratio >= 10 else "FAIL"
    print(f"speed-up {ratio:.1f}x (target >= 10x): {verdict}")
    return 0 if ratio >= 10 else 1


if __name__ == "__main__":
    raise SystemExit(main())
