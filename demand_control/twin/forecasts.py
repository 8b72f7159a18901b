"""The demand forecast the control arms plan with: the product's engine (`planning.forecasting.forecast_panel`
with the `forecast_settings` resource's defaults, as the `demand_forecast` asset runs it), refitted every
`every_weeks` weeks on the demand history known that Monday.

Customer demand (what was ordered, by promise week) is the same in every arm, so each refit is computed
once and shared by both control arms; between refits a plan uses the latest one, whose 26-week horizon
still covers the lead time and review period ahead (the projection starts at the plan's week).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from demand_control.demand_assets.forecasts import KEY_SEPARATOR, accuracy_rows
from demand_control.resources.forecast import ForecastSettingsResource
from demand_control.twin.demand import World, weekly_history


def refit_days(world: World, every_weeks: int) -> list[int]:
    """Plan days (Mondays from day 0's week) on which the forecast is refitted."""
    offset = world.as_of.weekday()
    first = 0 if offset == 0 else 7 - offset
    mondays = list(range(first, world.days, 7))
    if first != 0:
        mondays = [0, *mondays]
    return mondays[:: max(1, every_weeks)]


def forecast_on(world: World, day: int) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """(demand_forecast rows, forecast_accuracy rows, seconds) from the history known before `day`'s week."""
    from demand_control.planning.forecasting import complete_buckets, forecast_panel

    settings = ForecastSettingsResource().engine_settings()
    history = weekly_history(world, day)
    keys = world.series.reset_index().rename(columns={"index": "series"})[["series", "sku", "location_id"]]
    history = history.merge(keys, on="series")
    history["unique_id"] = history["sku"].astype(str) + KEY_SEPARATOR + history["location_id"].astype(str)
    panel = pd.DataFrame({"unique_id": history["unique_id"], "ds": pd.to_datetime(history["period_start"]), "y": history["qty"].astype(float)})
    panel = complete_buckets(panel, settings.freq)
    started = time.perf_counter()
    result = forecast_panel(panel, settings)
    seconds = time.perf_counter() - started
    key_map = history[["unique_id", "sku", "location_id"]].drop_duplicates("unique_id")
    forecast = result.forecast.merge(key_map, on="unique_id", how="left").drop(columns=["unique_id"]).rename(columns={"ds": "period_start"})
    accuracy = accuracy_rows(result, key_map)
    return forecast, accuracy, seconds


_WORLD: World | None = None  # a refit worker's copy of the world, sent once when the worker starts


def _init_worker(world: World) -> None:
    global _WORLD
    _WORLD = world


def _refit_in_worker(job: tuple[int, Path]) -> tuple[int, int, float]:
    day, stem = job
    return _write_refit(_WORLD, day, stem)


def _write_refit(world: World, day: int, stem: Path) -> tuple[int, int, float]:
    forecast, accuracy, seconds = forecast_on(world, day)
    accuracy.to_parquet(stem.with_suffix(".accuracy.parquet"), index=False)
    # The forecast file is renamed into place last: its existence says the refit is whole (`load` waits for it).
    partial = stem.with_suffix(".forecast.parquet.partial")
    forecast.to_parquet(partial, index=False)
    os.replace(partial, stem.with_suffix(".forecast.parquet"))
    return day, forecast[["sku", "location_id"]].drop_duplicates().shape[0], seconds


def plan_refits(world: World, every_weeks: int, folder: Path) -> dict[int, Path]:
    """Refit day -> file stem of every refit of the run (computed by `precompute` or `refit_in_order`)."""
    folder.mkdir(parents=True, exist_ok=True)
    return {day: folder / f"day_{day:04d}" for day in refit_days(world, every_weeks)}


def refit_in_order(world: World, refits: dict[int, Path]) -> tuple[float, list[tuple[int, int, float]]]:
    """Compute the refits one after the other, earliest first, in this process: run beside the arms, each file
    appears before a plan needs it (a refit takes a few seconds, a simulated week of the event arm longer), so
    the arms start at once instead of after every refit. A failure leaves a marker that makes `load` raise."""
    started = time.perf_counter()
    done = []
    try:
        for day, stem in sorted(refits.items()):
            if not stem.with_suffix(".forecast.parquet").exists():
                done.append(_write_refit(world, day, stem))
    except BaseException as exc:
        for stem in refits.values():
            stem.with_suffix(".failed").write_text(repr(exc))
        raise
    return time.perf_counter() - started, done


def precompute(world: World, every_weeks: int, folder: Path, log=print, jobs: int = 1) -> dict[int, Path]:  # noqa: ANN001
    """Every refit of the run, written to `folder` as Parquet; returns refit day -> file stem.

    Refits are independent of each other (each sees the history known on its own Monday), so with `jobs` > 1
    they run in that many processes: a panel below statsforecast's parallel threshold fits on one core."""
    out = plan_refits(world, every_weeks, folder)
    todo = [(day, stem) for day, stem in out.items() if not stem.with_suffix(".forecast.parquet").exists()]
    if jobs > 1 and len(todo) > 1:
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx, initializer=_init_worker, initargs=(world,)) as pool:
            done = list(pool.map(_refit_in_worker, todo))
    else:
        done = [_write_refit(world, day, stem) for day, stem in todo]
    for day, n, seconds in done:
        log(f"forecast refit for day {day}: {n} SKU-locations in {seconds:.1f} s")
    return out


def load(stem: Path, timeout_s: float = 3600.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The refit at `stem`, waiting for it when another process is still computing it (`refit_in_order`)."""
    path, failed = stem.with_suffix(".forecast.parquet"), stem.with_suffix(".failed")
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if failed.exists():
            raise RuntimeError(f"forecast refit {stem.name} failed: {failed.read_text()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"forecast refit {stem.name} not written within {timeout_s:.0f} s")
        time.sleep(0.05)
    return pd.read_parquet(path), pd.read_parquet(stem.with_suffix(".accuracy.parquet"))
