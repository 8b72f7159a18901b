"""Benchmark: the root-cause classifier against the causes the sample generator planted (issue 18).

A sample landscape gets disruptions planted with their causes (`sample.planted_causes`); the plan runs on it
as the assets do (forecast and backtest, inventory policy, projection, exceptions with their root causes);
each planted case is matched to the exception it raised and the classifier's cause is scored per cause
beside a baseline that always answers the exception type's most common planted cause.

    .venv/bin/python benchmarks/root_cause.py [--skus 300] [--locations 3] [--weeks 110] [--per-cause 10] [--seeds 42 7 11]
        [--time-sku-locations 100000]   # also time the classifier alone on one case per SKU-location of a big landscape
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import numpy as np
import pandas as pd

from demand_control.planning.exceptions import ExceptionThresholds, PlanningInputs, detect_exceptions
from demand_control.planning.inventory_common import SCHEDULED_PO_STATUSES
from demand_control.planning.inventory_policy import inventory_policy, sku_location_service_levels
from demand_control.planning.policy import load_policy
from demand_control.planning.projection import projected_inventory
from demand_control.planning.root_cause import classify_root_causes
from demand_control.planning.root_cause_score import match_planted, score_root_causes
from demand_control.sample import generate_landscape
from demand_control.sample.planted_causes import plant_causes

AS_OF = dt.date(2025, 6, 4)
HORIZON = 26


def plain_strings(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Copies with the generator's categoricals as plain strings, as the warehouse returns the staged tables."""
    return {name: frame.astype({c: str for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)}) for name, frame in frames.items()}


def plan_exceptions(frames: dict[str, pd.DataFrame], as_of: dt.date) -> pd.DataFrame:
    """The exceptions (with root causes) the plan raises on a landscape: forecast and backtest, inventory
    policy, projection and detection, called as the forecasts, inventory and exceptions assets call them."""
    from demand_control.demand_assets.forecasts import accuracy_rows
    from demand_control.planning.forecasting import ForecastSettings, forecast_panel

    frames = plain_strings(frames)
    history = frames["demand_history"]
    uid = history["sku"] + "|" + history["location_id"]
    panel = pd.DataFrame({"unique_id": uid, "ds": pd.to_datetime(history["period_start"]), "y": history["qty"].astype(float)})
    keys = pd.DataFrame({"unique_id": uid, "sku": history["sku"], "location_id": history["location_id"]}).drop_duplicates("unique_id")
    result = forecast_panel(panel, ForecastSettings(freq="W", horizon=HORIZON, season_length=52, n_jobs=1))
    forecast = result.forecast.merge(keys, on="unique_id").drop(columns="unique_id").rename(columns={"ds": "period_start"})
    accuracy = accuracy_rows(result, keys)
    policy = load_policy()
    start = pd.Timestamp(forecast["period_start"].min())
    levels = sku_location_service_levels(keys[["sku", "location_id"]], frames["customer_order_line"], frames["customer"], frames["product"])
    inv_policy = inventory_policy(
        forecast, frames["sourcing"], levels[["sku", "location_id", "service_level"]], review_period_days=7.0,
        purchase_lines=frames["purchase_order_line"], unit_costs=frames["product"],
    ).merge(levels[["sku", "location_id", "tier"]], on=["sku", "location_id"], how="left")
    purchases = frames["purchase_order_line"]
    projection = projected_inventory(
        frames["inventory_position"], forecast, frames["customer_order_line"], purchases[purchases["status"].isin(SCHEDULED_PO_STATUSES)],
        inv_policy[["sku", "location_id", "safety_stock"]].fillna({"safety_stock": 0.0}), start,
    )
    inputs = PlanningInputs(
        projection=projection, policy=inv_policy, product=frames["product"], location=frames["location"], customer=frames["customer"],
        order_lines=frames["customer_order_line"], purchase_lines=purchases, forecast=forecast, demand_history=history,
        pipeline=frames["pipeline_opportunity"], supplier=frames["supplier"], accuracy=accuracy,
    )
    thresholds = ExceptionThresholds(**policy.thresholds.detector_kwargs())
    return detect_exceptions(inputs, thresholds, start, as_of=pd.Timestamp(as_of), tolerances=policy.tolerances)


def planted_and_classified(skus: int, locations: int, weeks: int, seed: int, per_cause: int, as_of: dt.date = AS_OF) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The planted cases of one landscape, each beside the exception it raised and the classifier's cause;
    and the exceptions at SKU-locations no plant touched (the background, whose true cause nobody planted)."""
    frames = generate_landscape(skus=skus, locations=locations, weeks=weeks, seed=seed, as_of=as_of)
    frames, planted = plant_causes(frames, seed=seed, as_of=as_of, per_cause=per_cause)
    exceptions = plan_exceptions(frames, as_of)
    matched = match_planted(exceptions, planted)
    touched = set(zip(planted["sku"].astype(str), planted["location_id"].astype(str)))
    at_plant = pd.Series(list(zip(exceptions["sku"].astype(str), exceptions["location_id"].astype(str))), index=exceptions.index).isin(touched)
    return matched, exceptions[~at_plant]


def time_classifier(sku_locations: int, locations: int = 4, weeks: int = 104) -> str:
    """The classifier alone on one case per SKU-location (half spikes, half stockouts) of a big landscape,
    its history, orders and PO lines: the time it adds to a full plan."""
    frames = plain_strings(generate_landscape(skus=sku_locations // locations, locations=locations, weeks=weeks, seed=42, as_of=AS_OF))
    lanes = frames["sourcing"][frames["sourcing"]["primary"]][["sku", "location_id", "supplier_id"]].reset_index(drop=True)
    cases = lanes.assign(exception_type=np.where(np.arange(len(lanes)) % 2, "demand_spike", "projected_stockout"), po_id=None, po_line_no=None,
                         cause_key=None, units_at_risk=1.0)
    cases["exception_key"] = cases["exception_type"] + ":" + cases["sku"] + "@" + cases["location_id"]
    start = pd.Timestamp(frames["demand_history"]["period_start"].max()) + pd.Timedelta(days=7)
    level = frames["demand_history"].groupby(["sku", "location_id"], as_index=False)["qty"].mean().rename(columns={"qty": "mean"}).assign(period_start=start)
    empty = pd.DataFrame()
    inputs = PlanningInputs(projection=empty, policy=empty, product=frames["product"], location=frames["location"], customer=frames["customer"],
                            order_lines=frames["customer_order_line"], purchase_lines=frames["purchase_order_line"], forecast=level,
                            demand_history=frames["demand_history"])
    started = time.perf_counter()
    classify_root_causes(cases, inputs, start)
    return f"classifier alone: {len(cases):,} cases over {len(frames['demand_history']):,} history rows in {time.perf_counter() - started:.1f} s"


def _share(value: float) -> str:
    return "   -" if pd.isna(value) else f"{value:5.0%}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skus", type=int, default=300)
    parser.add_argument("--locations", type=int, default=3)
    parser.add_argument("--weeks", type=int, default=110)
    parser.add_argument("--per-cause", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 11])
    parser.add_argument("--time-sku-locations", type=int, default=0, help="also time the classifier alone on this many SKU-locations (0: skip)")
    args = parser.parse_args()
    started = time.perf_counter()
    runs = [planted_and_classified(args.skus, args.locations, args.weeks, seed, args.per_cause) for seed in args.seeds]
    matched = pd.concat([m.assign(seed=seed) for (m, _), seed in zip(runs, args.seeds)], ignore_index=True)
    background = pd.concat([b for _, b in runs], ignore_index=True)
    table, overall = score_root_causes(matched)
    seconds = time.perf_counter() - started
    print(f"root causes: {args.skus} SKUs x {args.locations} DCs x {args.weeks} weeks, seeds {' '.join(map(str, args.seeds))}, "
          f"{overall['planted']} planted cases, {overall['raised']} raised an exception ({overall['coverage']:.0%}); {seconds:.0f} s")
    print(f"  {'cause':<27}{'planted':>8}{'raised':>7}{'accuracy':>9}{'precision':>10}{'baseline acc':>13}{'baseline prec':>14}")
    for row in table.itertuples(index=False):
        print(f"  {row.cause:<27}{row.planted:>8}{row.raised:>7}{_share(row.accuracy):>9}{_share(row.precision):>10}"
              f"{_share(row.baseline_accuracy):>13}{_share(row.baseline_precision):>14}")
    print(f"  overall accuracy {overall['accuracy']:.0%} vs baseline (the exception type's most common cause) "
          f"{overall['baseline_accuracy']:.0%}: ratio {overall['ratio']:.2f}x; averaged over the causes {overall['macro_accuracy']:.0%} vs "
          f"{overall['baseline_macro_accuracy']:.0%}")
    wrong = matched[matched["exception_key"].notna() & (matched["root_cause"] != matched["cause"])]
    if len(wrong):
        confusion = wrong.groupby(["cause", "root_cause"]).size().rename("cases").reset_index()
        print("  misclassified (planted -> said): " + "; ".join(f"{r.cause} -> {r.root_cause} ({r.cases})" for r in confusion.itertuples(index=False)))
    said = background["root_cause"].value_counts(normalize=True)
    print(f"  background (the {len(background):,} cases at SKU-locations no plant touched): "
          + ", ".join(f"{cause} {share:.0%}" for cause, share in said.items()))
    if args.time_sku_locations:
        print("  " + time_classifier(args.time_sku_locations))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
