"""Benchmark: planning regions from forecast to actions on PostgreSQL, each region's run in a fresh worker
process; one worker, then two side by side (issue 19's 1M SKU-location target).

Staging: the sample landscape, `--skus` SKUs × `--locations` DCs in `--regions` regions (DC i in region
i mod regions), generated and COPYed `--chunk-skus` SKUs at a time (each chunk its own seed and disjoint
SKU, order, PO and opportunity ids; customers, suppliers and DCs from the first chunk), with the tables'
keys built once at the end, so staging memory is bounded by a chunk, not the panel. History is `--weeks`
long, default 104: two seasons, the shortest history the engine's long route (seasonal models, backtest
of 2 × 26 weeks) takes a series on (`ForecastSettings.min_long_history`); shorter history sends every
series to the short-history route and would not measure the engine a real plan runs.

A region's run is two stages, each in a fresh process (spawned, so its peak RSS is that region's alone):
  1. forecast (the engine, as a `demand_forecast` partition run: `forecasts.forecast_scope`, one process,
     n_jobs=1) → inventory policy (`inventory.refresh_policy`) → projection → the region's balance summary;
  2. after the global step over every region's summary: exceptions → allocations → actions.
Speed-up: in the same run, two equal regions by one worker (one after another), then by two workers side by
side; both walls and their ratio. Then every region with two workers: the total wall (staging excluded),
each region's seconds and peak RSS, and the extrapolation to N workers:

    wall(N) ≈ ceil(R / N) × max stage-1 seconds + global step + ceil(R / N) × max stage-2 seconds

(each stage runs in waves of N regions, a wave as slow as its slowest region; R regions; a region's seconds
are its worker process's whole life: start, imports and the stage).

    .venv/bin/python benchmarks/regions.py [--skus 5000] [--locations 10] [--regions 10] [--weeks 104] [--skip-speedup]
    1M SKU-locations: .venv/bin/python benchmarks/regions.py --skus 100000 --locations 10 --regions 10
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import multiprocessing.connection
import resource
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import psycopg2
from sqlalchemy.engine import make_url

from demand_control.infra import clock
from demand_control.planning.policy import load_policy
from demand_control.resources.warehouse import Warehouse, bulk_insert, keys_rebuilt_after
from demand_control.sample import generate_landscape
from demand_control.schema import contracts
from demand_control.services.regions import RegionScope, read_compact, refresh_cross_region, write_balance
from demand_control.services.replan import PlanSettings, refresh_decisions, refresh_projection

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
AS_OF = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
MASTER_TABLES = ("location", "customer", "supplier")  # from the first chunk only: the chunks share them
ID_COLUMNS = {"customer_order_line": "order_id", "purchase_order_line": "po_id", "pipeline_opportunity": "opportunity_id"}


def _admin():
    url = make_url(ADMIN_URL)
    conn = psycopg2.connect(host=url.host, port=url.port or 5432, user=url.username, dbname=url.database)
    conn.autocommit = True
    return conn


def region_names(regions: int) -> list[str]:
    return [f"Region-{i + 1:02d}" for i in range(regions)]


def chunk_frames(chunk: int, chunk_skus: int, locations: int, regions: int, weeks: int) -> dict[str, pd.DataFrame]:
    """One chunk of the landscape: SKUs `chunk × chunk_skus + 1 …` with their own seed, ids made disjoint from
    every other chunk's (SKU codes renumbered, order/PO/opportunity ids prefixed by the chunk), DCs regrouped
    into `regions` regions."""
    frames = generate_landscape(skus=chunk_skus, locations=locations, weeks=weeks, seed=3 + chunk, as_of=AS_OF)
    old = frames["product"]["sku"].astype(str).to_numpy()
    new = np.array([f"SKU-{chunk * chunk_skus + i + 1:07d}" for i in range(len(old))], dtype=object)
    rename = dict(zip(old, new))
    for name, frame in frames.items():
        if "sku" not in frame:
            continue
        if isinstance(frame["sku"].dtype, pd.CategoricalDtype):
            frame["sku"] = frame["sku"].cat.rename_categories(rename)
        else:
            frame["sku"] = frame["sku"].map(rename)
    subs = frames["product"]["substitute_skus"]
    frames["product"]["substitute_skus"] = subs.where(subs.isna(), subs.str.split(";").map(lambda codes: ";".join(rename[c] for c in codes) if isinstance(codes, list) else codes))
    for name, column in ID_COLUMNS.items():
        frames[name][column] = f"C{chunk:03d}-" + frames[name][column].astype(str)
    names = np.array(region_names(regions), dtype=object)
    location = frames["location"]
    location["region"] = names[np.arange(len(location)) % regions]
    return frames


def stage(url: str, skus: int, chunk_skus: int, locations: int, regions: int, weeks: int) -> float:
    """Generate and COPY the landscape chunk by chunk in one transaction, keys built once at the end."""
    start = time.perf_counter()
    warehouse = Warehouse(database_url=url)
    warehouse.migrate()
    names = [name for name in contracts.CONTRACTS if name in contracts.FILE_DROP_OBJECTS]
    with warehouse.engine.begin() as conn:
        with ExitStack() as keys:
            for name in names:
                keys.enter_context(keys_rebuilt_after(conn, warehouse.table(name)))
            for chunk in range(math.ceil(skus / chunk_skus)):
                frames = chunk_frames(chunk, min(chunk_skus, skus - chunk * chunk_skus), locations, regions, weeks)
                for name in names:
                    if chunk and name in MASTER_TABLES:
                        continue
                    bulk_insert(conn, warehouse.table(name), frames[name].assign(source_system="bench", loaded_at=NOW))
                del frames
    return time.perf_counter() - start


def region_stage(url: str, region: str, stage_no: int) -> dict[str, float]:
    """One region's stage in this (fresh) process: seconds per step and the process's peak RSS in GB."""
    from demand_control.demand_assets.forecasts import forecast_scope
    from demand_control.demand_assets.inventory import InventoryPolicyConfig, refresh_policy
    from demand_control.resources.forecast import ForecastSettingsResource
    from demand_control.services.replan import scope_clause

    seconds: dict[str, float] = {}
    with clock.use(NOW):
        warehouse = Warehouse(database_url=url)
        scope = RegionScope.of(warehouse, [region])
        settings = PlanSettings(horizon_start=AS_OF)
        start = time.perf_counter()
        if stage_no == 1:
            # One engine process per region: two regions side by side use the machine's two cores.
            forecast_settings = ForecastSettingsResource(n_jobs=1)
            forecast_scope(warehouse, forecast_settings.engine_settings(), forecast_settings, scope, pd.Timestamp(NOW))
            seconds["forecast"] = time.perf_counter() - start
            forecast = read_compact(warehouse, "demand_forecast", where=scope_clause("demand_forecast", scope))
            refresh_policy(warehouse, forecast, InventoryPolicyConfig(), NOW, scope)
            del forecast
            seconds["policy"] = time.perf_counter() - start - seconds["forecast"]
            write_balance(warehouse, refresh_projection(warehouse, settings, NOW, scope, run_id="bench"), NOW, scope)
        else:
            policy = load_policy(None)
            refresh_decisions(warehouse, policy, settings, NOW, scope, actor="bench")
        seconds["total"] = time.perf_counter() - start
    return {**seconds, "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}


def _region_worker(conn, url: str, region: str, stage_no: int) -> None:  # noqa: ANN001 - a Connection
    conn.send(region_stage(url, region, stage_no))
    conn.close()


def run_stage(url: str, regions: list[str], stage_no: int, workers: int) -> tuple[float, dict[str, dict[str, float]]]:
    """Every region's stage, at most `workers` at a time, each in a fresh spawned process. Wall seconds and,
    per region, its steps' seconds, its peak RSS and `wall`: the process's whole life (start, imports, the
    stage), what a run worker of an orchestrator pays per region."""
    ctx = multiprocessing.get_context("spawn")
    pending, running, results = list(regions), {}, {}
    start = time.perf_counter()
    while pending or running:
        while pending and len(running) < workers:
            region = pending.pop(0)
            receiver, sender = ctx.Pipe(duplex=False)
            process = ctx.Process(target=_region_worker, args=(sender, url, region, stage_no))
            process.start()
            sender.close()
            running[receiver] = (region, process, time.perf_counter())
        for receiver in multiprocessing.connection.wait(list(running)):
            region, process, started = running.pop(receiver)
            try:
                result = receiver.recv()
            except EOFError:
                process.join()
                raise SystemExit(f"{region}'s stage {stage_no} failed (exit code {process.exitcode})") from None
            process.join()
            results[region] = {**result, "wall": time.perf_counter() - started}
    return time.perf_counter() - start, results


def global_step(url: str) -> float:
    start = time.perf_counter()
    with clock.use(NOW):
        refresh_cross_region(Warehouse(database_url=url), NOW)
    return time.perf_counter() - start


def run_plan(url: str, regions: list[str], workers: int) -> tuple[float, float, dict, dict]:
    """Stage 1 of every region, the global step, stage 2 of every region: wall, global seconds, per region."""
    start = time.perf_counter()
    _, first = run_stage(url, regions, 1, workers)
    global_s = global_step(url)
    _, second = run_stage(url, regions, 2, workers)
    return time.perf_counter() - start, global_s, first, second


def extrapolated_wall(first: dict, second: dict, global_s: float, workers: int) -> float:
    """ceil(R / N) waves of the slowest region in each stage, plus the global step."""
    waves = math.ceil(len(first) / workers)
    return waves * max(r["wall"] for r in first.values()) + global_s + waves * max(r["wall"] for r in second.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skus", type=int, default=5000)
    parser.add_argument("--locations", type=int, default=10)
    parser.add_argument("--regions", type=int, default=10)
    parser.add_argument("--weeks", type=int, default=104)
    parser.add_argument("--chunk-skus", type=int, default=5000)
    parser.add_argument(
        "--skip-speedup", action="store_true",
        help="skip the two-region speed-up runs: only every region on 2 workers (one region at full size: its time and peak memory)",
    )
    args = parser.parse_args()
    if args.regions > args.locations:
        raise SystemExit("every region needs a DC: --regions must not exceed --locations")
    name = f"dc_bench_regions_{uuid.uuid4().hex[:8]}"
    admin = _admin()
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = make_url(ADMIN_URL).set(database=name, drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    regions = region_names(args.regions)
    try:
        staged = stage(url, args.skus, args.chunk_skus, args.locations, args.regions, args.weeks)
        print(
            f"{args.skus} SKUs × {args.locations} DCs = {args.skus * args.locations} SKU-locations × {args.weeks} weeks of history, "
            f"{args.regions} regions; staged in {staged:.1f} s ({args.chunk_skus} SKUs a chunk)",
            flush=True,
        )
        if not args.skip_speedup:
            pair = regions[:2]
            one, _, _, _ = run_plan(url, pair, 1)
            two, _, _, _ = run_plan(url, pair, 2)
            print(f"two regions ({', '.join(pair)}), 1 worker : {one:7.1f} s wall")
            print(f"two regions ({', '.join(pair)}), 2 workers: {two:7.1f} s wall   speed-up {one / two:.2f}×", flush=True)
        wall, global_s, first, second = run_plan(url, regions, 2)
        print(f"all {len(regions)} regions, 2 workers: {wall:7.1f} s wall (global step {global_s:.1f} s)")
        for region in regions:
            a, b = first[region], second[region]
            print(
                f"  {region}: stage 1 {a['wall']:6.1f} s (forecast {a['forecast']:6.1f}, policy {a['policy']:5.1f}, all steps {a['total']:6.1f}) "
                f"peak {a['rss_gb']:.2f} GB; stage 2 {b['wall']:6.1f} s (steps {b['total']:6.1f}) peak {b['rss_gb']:.2f} GB"
            )
        peak = max(r["rss_gb"] for r in [*first.values(), *second.values()])
        print(f"peak RSS of a region's run: {peak:.2f} GB")
        print("N workers → extrapolated wall = ceil(R/N) × slowest stage 1 + global step + ceil(R/N) × slowest stage 2 (process walls)")
        for workers in (1, 2, 5, 10):
            print(f"  {workers:2d} → {extrapolated_wall(first, second, global_s, workers):7.1f} s")
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
