"""Benchmark: the chain from staged tables to actions for 100k SKU-locations × 26 weekly buckets.

Target (issue 5): inventory policy → projection → exceptions (severity, routing, lifecycle) → allocation
scenarios → recommended actions → policy decisions in ≤ 3 minutes with peak memory ≤ 8 GB on this 2-core
machine, vectorised. Beside it, in the same run, the same chain called once per SKU-location (the naive
per-SKU loop an ERP report or a script does) on a subset, extrapolated to the whole panel, as a ratio.

The staged tables come from the sample landscape (25,000 SKUs × 4 DCs, 104 weeks of history); the forecast
they need comes from our forecast engine in the same child process and is timed separately (issue 4 has its
own target for it). Everything runs in a child process so its peak RSS is measured alone.

    .venv/bin/python benchmarks/decisions.py [--sku-locations 100000] [--naive-subset 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import time

import pandas as pd

from demand_control.planning.actions import ActionSettings, recommend_actions
from demand_control.planning.allocation import allocation_scenarios
from demand_control.planning.exceptions import ExceptionThresholds, PlanningInputs, detect_exceptions, sku_location_context
from demand_control.planning.order_supply import open_orders, order_lines_at_risk, supply_for_open_orders
from demand_control.planning.inventory_common import SCHEDULED_PO_STATUSES
from demand_control.planning.inventory_policy import inventory_policy, sku_location_service_levels
from demand_control.planning.lifecycle import update_lifecycle
from demand_control.planning.policy import assign_owners, decide_autonomy, load_policy, severity_from
from demand_control.planning.projection import projected_inventory

AS_OF = dt.date(2025, 6, 4)
HORIZON = 26
LOCATIONS = 4
TARGET_SECONDS = 180.0
TARGET_GB = 8.0


def decision_chain(frames: dict[str, pd.DataFrame], forecast: pd.DataFrame, accuracy: pd.DataFrame, policy, start: pd.Timestamp) -> dict[str, int]:  # noqa: ANN001
    """The planning functions in the order the inventory, exceptions and actions assets call them."""
    keys = forecast[["sku", "location_id"]].drop_duplicates()
    levels = sku_location_service_levels(keys, frames["customer_order_line"], frames["customer"], frames["product"])
    inv_policy = inventory_policy(
        forecast, frames["sourcing"], levels[["sku", "location_id", "service_level"]], review_period_days=7.0,
        purchase_lines=frames["purchase_order_line"], unit_costs=frames["product"],
    ).merge(levels[["sku", "location_id", "tier"]], on=["sku", "location_id"], how="left")
    purchases = frames["purchase_order_line"]
    scheduled = purchases[purchases["status"].isin(SCHEDULED_PO_STATUSES)]
    projection = projected_inventory(
        frames["inventory_position"], forecast, frames["customer_order_line"], scheduled,
        inv_policy[["sku", "location_id", "safety_stock"]].fillna({"safety_stock": 0.0}), start,
    )
    inputs = PlanningInputs(
        projection=projection, policy=inv_policy, product=frames["product"], location=frames["location"], customer=frames["customer"],
        order_lines=frames["customer_order_line"], purchase_lines=purchases, forecast=forecast,
        demand_history=frames["demand_history"], pipeline=frames["pipeline_opportunity"], supplier=frames["supplier"], accuracy=accuracy,
    )
    thresholds = ExceptionThresholds(**{**policy.thresholds.detector_kwargs(), "forecast_degradation_ratio": 1.5})
    detected = detect_exceptions(inputs, thresholds, start, as_of=start)
    detected["severity"] = severity_from(detected["money_at_risk"], detected["customer_tier"], policy, detected["exception_type"]).to_numpy()
    detected = assign_owners(detected, policy)
    lifecycle = update_lifecycle(pd.DataFrame(), detected, pd.Timestamp.now(tz="UTC"))
    orders = open_orders(inputs.order_lines, inputs.customer)
    priced = orders.merge(frames["product"][["sku", "unit_price"]], on="sku", how="left")
    summary, lines = allocation_scenarios(priced, supply_for_open_orders(projection, priced))
    ctx = sku_location_context(inputs, thresholds)
    risky = order_lines_at_risk(projection, orders, 7)
    actions = recommend_actions(
        lifecycle, ctx, projection, purchases, risky, frames["product"], frames["supplier"], accuracy, summary, start, ActionSettings()
    )
    actions = actions.assign(data_fresh=True, forecast_degraded=False)
    actions = decide_autonomy(actions, policy)
    return {"projection_rows": len(projection), "exceptions": len(lifecycle), "allocation_rows": len(summary), "actions": len(actions)}


def _forecast(frames: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    from demand_control.demand_assets.forecasts import accuracy_rows
    from demand_control.planning.forecasting import ForecastSettings, forecast_panel

    history = frames["demand_history"]
    uid = history["sku"].astype(str) + "|" + history["location_id"].astype(str)
    panel = pd.DataFrame({"unique_id": uid, "ds": pd.to_datetime(history["period_start"]), "y": history["qty"].astype(float)})
    keys = pd.DataFrame({"unique_id": uid, "sku": history["sku"], "location_id": history["location_id"]}).drop_duplicates("unique_id")
    started = time.perf_counter()
    result = forecast_panel(panel, ForecastSettings(freq="W", horizon=HORIZON, season_length=52, n_jobs=2))
    seconds = time.perf_counter() - started
    forecast = result.forecast.merge(keys, on="unique_id").drop(columns="unique_id").rename(columns={"ds": "period_start"})
    return forecast, accuracy_rows(result, keys), seconds


def _peak_gb_since_reset() -> float:
    """This process's peak RSS (VmHWM) since the last reset, in GB; then reset it (Linux: writing 5 to
    clear_refs sets the high-water mark to the current RSS), so each part of the run reports its own peak."""
    with open("/proc/self/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    return kb / 1024**2


def _child(sku_locations: int, naive_subset: int) -> None:
    from demand_control.sample import generate_landscape

    frames = generate_landscape(skus=sku_locations // LOCATIONS, locations=LOCATIONS, weeks=104, seed=42, as_of=AS_OF)
    # Staged tables hold plain strings and timestamps, as the warehouse returns them; the generator's
    # categoricals would change the merges.
    for name, frame in frames.items():
        for col in frame.columns:
            if isinstance(frame[col].dtype, pd.CategoricalDtype):
                frame[col] = frame[col].astype(str)
    forecast, accuracy, forecast_seconds = _forecast(frames)
    forecast_gb = _peak_gb_since_reset()  # generating the landscape and forecasting it
    policy = load_policy()
    start = pd.Timestamp(forecast["period_start"].min())

    started = time.perf_counter()
    counts = decision_chain(frames, forecast, accuracy, policy, start)
    chain_seconds = time.perf_counter() - started
    chain_gb = _peak_gb_since_reset()

    # The naive loop: the same chain, one SKU-location at a time, on the first `naive_subset` of them.
    subset = forecast[["sku", "location_id"]].drop_duplicates().head(naive_subset)
    by_key = {
        name: {k: g for k, g in frame.groupby(["sku", "location_id"])} if {"sku", "location_id"} <= set(frame.columns) else None
        for name, frame in frames.items()
    }
    fc_by_key = dict(iter(forecast.groupby(["sku", "location_id"])))
    empty = {name: frame.iloc[0:0] for name, frame in frames.items()}
    started = time.perf_counter()
    for sku, loc in subset.itertuples(index=False):
        one = {}
        for name, frame in frames.items():
            groups = by_key[name]
            one[name] = frame if groups is None else groups.get((sku, loc), empty[name])
        one["product"] = frames["product"][frames["product"]["sku"] == sku]
        one["pipeline_opportunity"] = frames["pipeline_opportunity"][frames["pipeline_opportunity"]["sku"] == sku]
        decision_chain(one, fc_by_key[(sku, loc)], accuracy[(accuracy["sku"] == sku) & (accuracy["location_id"] == loc)], policy, start)
    naive_seconds = time.perf_counter() - started
    naive_gb = _peak_gb_since_reset()
    total_keys = forecast[["sku", "location_id"]].drop_duplicates().shape[0]
    print(json.dumps({
        "sku_locations": int(total_keys),
        "buckets": HORIZON,
        "forecast_seconds": forecast_seconds,
        "chain_seconds": chain_seconds,
        "naive_subset": int(len(subset)),
        "naive_seconds": naive_seconds,
        "naive_extrapolated_seconds": naive_seconds / max(len(subset), 1) * total_keys,
        "peak_gb": {"landscape_and_forecast": forecast_gb, "chain": chain_gb, "naive_loop": naive_gb},
        **counts,
    }))


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(int(sys.argv[2]), int(sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sku-locations", type=int, default=100_000)
    parser.add_argument("--naive-subset", type=int, default=200, help="SKU-locations the naive per-SKU loop runs on")
    args = parser.parse_args()
    proc = subprocess.run([sys.executable, __file__, "--child", str(args.sku_locations), str(args.naive_subset)], capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-4000:], file=sys.stderr)
        return proc.returncode
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # Resetting the high-water mark between parts also lowers what the kernel reports for the child at exit
    # (and its forecast pool's workers are children of it): the child's peak is the largest of all of them.
    peak_gb = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2, *out["peak_gb"].values())
    ratio = out["naive_extrapolated_seconds"] / out["chain_seconds"]
    met = out["chain_seconds"] <= TARGET_SECONDS and peak_gb <= TARGET_GB
    print(f"decision chain: {out['sku_locations']:,} SKU-locations x {out['buckets']} buckets "
          f"({out['projection_rows']:,} projection rows, {out['exceptions']:,} exceptions, {out['allocation_rows']:,} allocation rows, {out['actions']:,} actions)")
    print(f"  ours (vectorised):  {out['chain_seconds']:8.1f} s")
    print(f"  naive per-SKU loop: {out['naive_extrapolated_seconds']:8.1f} s extrapolated from {out['naive_subset']} SKU-locations in {out['naive_seconds']:.1f} s")
    print(f"  ratio naive / ours: {ratio:8.1f}x")
    print(f"  forecast input (our engine, timed apart): {out['forecast_seconds']:.1f} s; peak RSS of the whole child {peak_gb:.2f} GB")
    parts = out["peak_gb"]
    print(f"  peak RSS by part: landscape + forecast {parts['landscape_and_forecast']:.2f} GB, our chain {parts['chain']:.2f} GB, "
          f"the naive loop's grouping {parts['naive_loop']:.2f} GB")
    print(f"  target <= {TARGET_SECONDS:.0f} s and <= {TARGET_GB:.0f} GB -> {'MET' if met else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
