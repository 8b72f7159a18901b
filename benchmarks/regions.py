"""Benchmark (scaled down): planning regions run by one worker, then by two side by side, on PostgreSQL.

The sample landscape (default 5,000 SKUs × 10 DCs, two per region, 52 weeks of history) is staged into a
fresh PostgreSQL database with a plain forecast (each series' last 13 weeks' mean, normal quantiles: the
forecast engine has its own benchmark) and the inventory policy of the whole panel. Then the region chain
the partitioned assets run — projection, the region's summary, exceptions, allocations, actions — runs for
every region: first in one worker process (the regions one after another), then in two worker processes at
once (the regions split between them), with the global step in between each time. Printed: the wall time
of each, the speed-up, each region's time and the peak RSS of each worker. Not the 1M target of issue 19.

    .venv/bin/python benchmarks/regions.py [--skus 5000] [--locations 10]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time
import uuid
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import psycopg2
from sqlalchemy.engine import make_url

from demand_control.infra import clock
from demand_control.planning.inventory_policy import inventory_policy, sku_location_service_levels
from demand_control.planning.metrics import QUANTILE_COLUMNS, QUANTILE_LEVELS
from demand_control.planning.policy import load_policy
from demand_control.resources.warehouse import Warehouse
from demand_control.sample import generate_landscape
from demand_control.sample.catalogue import REGIONS
from demand_control.schema import contracts
from demand_control.services.regions import RegionScope, refresh_cross_region, write_balance
from demand_control.services.replan import PlanSettings, planning_inputs, refresh_actions, refresh_allocations, refresh_exceptions, refresh_projection

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
AS_OF = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
HORIZON = 26


def _admin():
    url = make_url(ADMIN_URL)
    conn = psycopg2.connect(host=url.host, port=url.port or 5432, user=url.username, dbname=url.database)
    conn.autocommit = True
    return conn


def plain_forecast(history: pd.DataFrame) -> pd.DataFrame:
    """Each series' last 13 weeks' mean and spread over the horizon, with normal quantiles (≥ 0)."""
    recent = history.sort_values("period_start").groupby(["sku", "location_id"]).tail(13)
    stats = recent.groupby(["sku", "location_id"], as_index=False)["qty"].agg(mean="mean", sd="std").fillna(0.0)
    weeks = pd.date_range(pd.Timestamp(AS_OF), periods=HORIZON, freq="W-MON")
    out = stats.merge(pd.DataFrame({"period_start": weeks}), how="cross")
    z = {0.05: -1.645, 0.10: -1.2816, 0.25: -0.6745, 0.50: 0.0, 0.75: 0.6745, 0.90: 1.2816, 0.95: 1.645}
    for level, column in zip(QUANTILE_LEVELS, QUANTILE_COLUMNS):
        out[column] = np.maximum(out["mean"] + z[level] * out["sd"], 0.0)
    return out.drop(columns=["sd"]).assign(base_mean=out["mean"], pipeline_qty=0.0, model="bench_mean", demand_class="smooth", created_at=NOW)


def stage(url: str, skus: int, locations: int) -> None:
    frames = generate_landscape(skus=skus, locations=locations, weeks=52, seed=3, as_of=AS_OF)
    warehouse = Warehouse(database_url=url)
    warehouse.migrate()
    for name in contracts.CONTRACTS:
        if name in frames:
            warehouse.replace_rows(name, frames[name].assign(source_system="bench", loaded_at=NOW))
    # Read back as the warehouse types them (the generator's frames hold categoricals).
    staged = {name: warehouse.read(name) for name in ("demand_history", "customer_order_line", "customer", "product", "sourcing", "purchase_order_line")}
    forecast = plain_forecast(staged["demand_history"])
    warehouse.replace_rows("demand_forecast", forecast)
    keys = forecast[["sku", "location_id"]].drop_duplicates()
    levels = sku_location_service_levels(keys, staged["customer_order_line"], staged["customer"], staged["product"])
    policy = inventory_policy(
        forecast, staged["sourcing"], levels[["sku", "location_id", "service_level"]], review_period_days=7.0, purchase_lines=staged["purchase_order_line"],
        unit_costs=staged["product"],
    ).merge(levels[["sku", "location_id", "tier", "category"]], on=["sku", "location_id"], how="left")
    warehouse.replace_rows("inventory_policy", policy.assign(computed_at=NOW))


def plan_regions(url: str, regions: list[str], phase: str, timings) -> None:  # noqa: ANN001 - a Manager dict
    """One worker: the given regions one after another, phase `projection` or `decisions`."""
    with clock.use(NOW):
        warehouse = Warehouse(database_url=url)
        policy, settings = load_policy(None), PlanSettings(horizon_start=AS_OF)
        for region in regions:
            start = time.perf_counter()
            scope = RegionScope.of(warehouse, [region])
            if phase == "projection":
                write_balance(warehouse, refresh_projection(warehouse, settings, NOW, scope, run_id="bench"), NOW, scope)
            else:
                inputs = planning_inputs(warehouse, NOW, scope)
                refresh_exceptions(warehouse, policy, settings, NOW, scope, inputs=inputs)
                refresh_allocations(warehouse, settings, NOW, scope, inputs=inputs)
                refresh_actions(warehouse, policy, settings, NOW, scope, actor="bench", inputs=inputs)
            timings[f"{phase}:{region}"] = time.perf_counter() - start
        timings[f"rss:{phase}:{regions[0]}"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def run_plan(url: str, workers: int) -> tuple[float, dict]:
    """The whole partitioned plan with `workers` processes; the global step in between. Wall seconds, timings."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        timings = manager.dict()
        start = time.perf_counter()
        for phase in ("projection", "decisions"):
            shares = [list(REGIONS[i::workers]) for i in range(workers)]
            procs = [ctx.Process(target=plan_regions, args=(url, share, phase, timings)) for share in shares]
            for p in procs:
                p.start()
            for p in procs:
                p.join()
                if p.exitcode != 0:
                    raise SystemExit(f"a worker failed with exit code {p.exitcode}")
            if phase == "projection":
                with clock.use(NOW):
                    refresh_cross_region(Warehouse(database_url=url), NOW)
        return time.perf_counter() - start, dict(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skus", type=int, default=5000)
    parser.add_argument("--locations", type=int, default=10)
    args = parser.parse_args()
    name = f"dc_bench_regions_{uuid.uuid4().hex[:8]}"
    admin = _admin()
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = make_url(ADMIN_URL).set(database=name, drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    try:
        stage(url, args.skus, args.locations)
        print(f"{args.skus} SKUs × {args.locations} DCs = {args.skus * args.locations} SKU-locations × {HORIZON} weeks, {len(REGIONS)} regions")
        one, t1 = run_plan(url, 1)
        two, t2 = run_plan(url, 2)
        print(f"1 worker : {one:6.1f} s wall")
        print(f"2 workers: {two:6.1f} s wall   speed-up {one / two:.2f}×")
        for region in REGIONS:
            print(f"  {region:8s} projection {t1[f'projection:{region}']:5.1f} s, decisions {t1[f'decisions:{region}']:5.1f} s (1 worker)")
        print(f"peak RSS of a worker: {max(v for k, v in {**t1, **t2}.items() if k.startswith('rss:')):.2f} GB")
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
