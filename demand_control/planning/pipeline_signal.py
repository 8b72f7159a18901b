"""The CRM pipeline as a demand signal: open opportunities, weighted by their stage probability, added to
the forecast in the buckets they are expected in, capped, and kept apart from the statistical forecast.

An opportunity quotes a SKU to a customer, not a DC: its units go to the DC of the customer's region that
stocks the SKU, else to the SKU's DC with the largest forecast (the placement the demand_spike exception
uses). Only open stages count (prospecting to negotiation): a won deal is an order already, a lost one is
nothing. The added quantity of a bucket, `pipeline_qty`, is at most `max_uplift` times the bucket's
statistical forecast (`base_mean`), so one large quote cannot swamp the plan; the mean and every quantile
move up by it (the distribution shifts, its order and non-negativity hold).

No history of pipeline snapshots exists to backtest the signal against (the CRM holds today's
opportunities, not those open a year ago), so it is off unless switched on
(`ForecastSettingsResource.pipeline_signal`); with it off `pipeline_qty` is 0 and `mean` = `base_mean`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from demand_control.planning.metrics import QUANTILE_COLUMNS

OPEN_STAGES = ("prospecting", "qualification", "proposal", "negotiation")
KEY = ["sku", "location_id"]


@dataclass(frozen=True)
class PipelineSettings:
    enabled: bool = False
    # The pipeline may add at most this multiple of a bucket's statistical forecast.
    max_uplift: float = 1.0
    bucket_days: int = 7


def place_opportunities(
    pipeline: pd.DataFrame, forecast: pd.DataFrame, customers: pd.DataFrame, locations: pd.DataFrame
) -> pd.DataFrame:
    """Open opportunities with their probability-weighted units at a DC: `sku, location_id, expected_date,
    weighted` (`forecast` has `sku, location_id, mean`; `customers` `customer_id, region`; `locations`
    `location_id, region`)."""
    columns = [*KEY, "expected_date", "weighted"]
    if pipeline.empty or forecast.empty:
        return pd.DataFrame(columns=columns)
    pipe = pipeline[pipeline["stage"].isin(OPEN_STAGES)].copy()
    pipe["expected_date"] = pd.to_datetime(pipe["expected_date"])
    pipe["weighted"] = pipe["qty"].astype(float) * pipe["probability"].astype(float).clip(0.0, 1.0)
    pipe = pipe.merge(customers[["customer_id", "region"]].drop_duplicates("customer_id"), on="customer_id", how="left")
    volume = forecast.groupby(KEY, as_index=False)["mean"].sum()
    stocked = volume.merge(locations[["location_id", "region"]].drop_duplicates("location_id"), on="location_id", how="left")
    by_region = stocked.sort_values("mean", ascending=False, kind="mergesort").drop_duplicates(["sku", "region"])
    largest = stocked.sort_values("mean", ascending=False, kind="mergesort").drop_duplicates("sku")[["sku", "location_id"]]
    placed = pipe.merge(by_region[["sku", "region", "location_id"]], on=["sku", "region"], how="left")
    placed = placed.merge(largest.rename(columns={"location_id": "_fallback"}), on="sku", how="left")
    placed["location_id"] = placed["location_id"].fillna(placed["_fallback"])
    return placed.dropna(subset=["location_id"])[columns].reset_index(drop=True)


def apply_pipeline(
    forecast: pd.DataFrame,
    pipeline: pd.DataFrame,
    customers: pd.DataFrame,
    locations: pd.DataFrame,
    settings: PipelineSettings,
) -> pd.DataFrame:
    """`forecast` (`sku, location_id, period_start, mean, q05..q95`) with `base_mean` (the statistical
    forecast) and `pipeline_qty` (the capped probability-weighted pipeline of the bucket, 0 when the signal
    is off), and `mean` and the quantiles raised by `pipeline_qty`."""
    out = forecast.copy()
    out["base_mean"] = out["mean"].astype(float)
    out["pipeline_qty"] = 0.0
    if not settings.enabled or out.empty:
        return out
    placed = place_opportunities(pipeline, out, customers, locations)
    if placed.empty:
        return out
    starts = pd.to_datetime(out["period_start"])
    first, last = starts.min(), starts.max() + pd.Timedelta(days=settings.bucket_days)
    placed = placed[(placed["expected_date"] >= first) & (placed["expected_date"] < last)].copy()
    if placed.empty:
        return out
    # The bucket an opportunity lands in: the last bucket start on or before its expected date.
    grid = np.sort(starts.unique())
    placed["period_start"] = grid[np.searchsorted(grid, placed["expected_date"].to_numpy(), side="right") - 1]
    added = placed.groupby([*KEY, "period_start"], as_index=False)["weighted"].sum()
    keyed = out.assign(period_start=starts).merge(added, on=[*KEY, "period_start"], how="left")
    weighted = keyed["weighted"].fillna(0.0).to_numpy()
    cap = settings.max_uplift * out["base_mean"].to_numpy()
    out["pipeline_qty"] = np.minimum(weighted, np.maximum(cap, 0.0))
    for col in ("mean", *QUANTILE_COLUMNS):
        if col in out:
            out[col] = out[col].astype(float) + out["pipeline_qty"]
    return out
