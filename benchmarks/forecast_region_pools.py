"""Benchmark (accuracy, not speed): what forecasting each planning region apart does to the backtest.

A run of one region pools seasonality, quantile calibration, model selection and launch analogues within
the region's series; the whole-panel run pools across every DC. On the sample landscape (SKUs × 6 DCs in 5
regions, 110 weeks) the engine runs once on the whole panel and once per region; the regions' series rows
are rolled up the way the region runs roll up `forecast_accuracy` (`services.forecast_regions`). Printed:
both overall rows (RMSSE, MASE, SPL, bias, 80% coverage, seasonal-naive RMSSE) and the engine seconds.

    .venv/bin/python benchmarks/forecast_region_pools.py [--skus 300]
"""

from __future__ import annotations

import argparse
import time
from datetime import date

import pandas as pd

from demand_control.demand_assets.forecasts import KEY_SEPARATOR, accuracy_rows
from demand_control.planning.forecasting import complete_buckets, forecast_panel
from demand_control.resources.forecast import ForecastSettingsResource
from demand_control.sample import generate_landscape
from demand_control.services.forecast_regions import rolled_up_accuracy

COLUMNS = ["series", "rmsse", "mase", "spl", "bias_pct", "cover80", "benchmark_rmsse"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skus", type=int, default=300)
    args = parser.parse_args()
    frames = generate_landscape(skus=args.skus, locations=6, weeks=110, seed=5, as_of=date(2026, 11, 23))
    settings = ForecastSettingsResource(horizon=13, n_jobs=1).engine_settings()
    history = frames["demand_history"].copy()
    history["unique_id"] = history["sku"].astype(str) + KEY_SEPARATOR + history["location_id"].astype(str)
    keys = history[["unique_id", "sku", "location_id"]].drop_duplicates("unique_id")
    products = keys.merge(frames["product"][["sku", "category"]].drop_duplicates("sku"), on="sku", how="left")
    categories = pd.Series(products["category"].fillna("").astype(str).to_numpy(), index=products["unique_id"].to_numpy())
    region_of = frames["location"].set_index("location_id")["region"]

    def backtest(ids: set[str]) -> tuple[pd.DataFrame, float]:
        rows = history[history["unique_id"].isin(ids)]
        panel = pd.DataFrame({"unique_id": rows["unique_id"], "ds": pd.to_datetime(rows["period_start"]), "y": rows["qty"].astype(float)})
        started = time.perf_counter()
        result = forecast_panel(complete_buckets(panel, settings.freq), settings, categories[categories.index.isin(ids)])
        return accuracy_rows(result, keys[keys["unique_id"].isin(ids)]), time.perf_counter() - started

    whole, whole_s = backtest(set(keys["unique_id"]))
    series, regions_s = [], 0.0
    for _region, group in keys.assign(region=keys["location_id"].map(region_of)).groupby("region"):
        accuracy, seconds = backtest(set(group["unique_id"]))
        series.append(accuracy[accuracy["scope"] == "series"])
        regions_s += seconds
    regional = rolled_up_accuracy(pd.concat(series, ignore_index=True))
    print(f"{args.skus} SKUs x 6 DCs in 5 regions; engine seconds: whole panel {whole_s:.1f}, regions one after another {regions_s:.1f}")
    print("pooled over the whole panel:\n" + whole[whole["scope"] == "overall"][COLUMNS].round(4).to_string(index=False))
    print("pooled within each region, rolled up:\n" + regional[regional["scope"] == "overall"][COLUMNS].round(4).to_string(index=False))


if __name__ == "__main__":
    main()
