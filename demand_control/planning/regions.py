"""Planning regions: what one region's plan tells the others, and the small global step that decides what
crosses regions.

A region plans its own DCs (a run per region). What it cannot see is another region's stock: a DC short of
a SKU may be saved by a DC of another region with units to spare; nor the rest of the panel's forecast
value, which grades a degraded forecast as class A or not. Each region therefore publishes one summary row
per SKU-location — the units it could give away (surplus), the units it lacks (shortfall), its forecast value
— and the global step, between the regions' projections and their exceptions, allocates each SKU's spare
units across the DCs short of it, whatever their region, and ranks the values, without ever reading a
region's panel (a row per SKU-location and bucket). A plan of the whole panel allocates by the same rule
(`transfer_sources` over its own projection's `headroom`), so the partitioned plan and the whole one agree.
No Dagster import.

The spare is each DC's headroom over the whole horizon, its open purchase lines included: when a supplier
shared by several DCs ships short, the DCs it leaves short share what the network can spare in proportion
to what each lacks (DRP's fair share), instead of the first one asked taking it all and the donor being
promised away twice.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from demand_control.planning.signal_exceptions import value_shares

SKU_LOCATION = ["sku", "location_id"]
BALANCE_COLUMNS = ["sku", "location_id", "region", "surplus", "shortfall", "forecast_value"]
SOURCE_COLUMNS = ["sku", "location_id", "region", "from_location_id", "from_region", "surplus", "allotted"]


def headroom(projection: pd.DataFrame) -> pd.DataFrame:
    """Per SKU-location the worst headroom above safety stock over the horizon, min over buckets of
    (closing − safety stock): positive, `surplus` (what it could give away and never fall below safety stock);
    negative, `shortfall` (what it lacks at its worst bucket). Columns sku, location_id, surplus, shortfall,
    horizon_units (the horizon's forecast)."""
    out = (
        projection.assign(_headroom=projection["closing"].astype(float) - projection["safety_stock"].astype(float))
        .groupby(SKU_LOCATION, as_index=False, sort=True)
        .agg(_headroom=("_headroom", "min"), horizon_units=("forecast", "sum"))
    )
    out["surplus"] = out["_headroom"].clip(lower=0.0)
    out["shortfall"] = (-out["_headroom"]).clip(lower=0.0)
    return out[[*SKU_LOCATION, "surplus", "shortfall", "horizon_units"]]


def sku_location_balance(projection: pd.DataFrame, region_of: pd.Series, product: pd.DataFrame) -> pd.DataFrame:
    """A region's summary (BALANCE_COLUMNS), one row per SKU-location: the headroom above safety stock over
    the whole horizon, min over buckets of (closing − safety stock) — positive: `surplus`, the units it could
    give away and never fall below safety stock (the rule transfers are proposed by); negative: `shortfall`,
    the units it lacks at its worst bucket — and `forecast_value`, the horizon's forecast units × unit price
    (else cost). `region_of` maps location_id → region; `product` has sku, unit_price, unit_cost."""
    if projection.empty:
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("sku", "location_id", "region") else float) for c in BALANCE_COLUMNS})
    out = headroom(projection)
    out["region"] = out["location_id"].map(region_of).astype(object)
    prices = product.drop_duplicates("sku").set_index("sku")
    price = out["sku"].map(prices["unit_price"].astype(float).fillna(prices["unit_cost"].astype(float))).astype(float).fillna(0.0)
    out["forecast_value"] = out["horizon_units"].astype(float) * price
    return out[BALANCE_COLUMNS].reset_index(drop=True)


def panel_value_shares(balance: pd.DataFrame) -> pd.DataFrame:
    """The global step's ranking of every SKU-location's forecast value across all regions: sku,
    location_id, value, share_before (see `signal_exceptions.value_shares`; class A: share_before < 0.8)."""
    return value_shares(balance[[*SKU_LOCATION, "forecast_value"]].rename(columns={"forecast_value": "value"}))


def transfer_sources(balance: pd.DataFrame) -> pd.DataFrame:
    """The global step: for every short SKU-location, the DC of any region that sends it stock and how many
    units (SOURCE_COLUMNS; `surplus` is the sender's whole spare, `allotted` what this DC may take of it).

    Per SKU, the spare of every DC with surplus is shared among the DCs short of it in proportion to their
    shortfall — each gets shortfall × min(1, Σ spare / Σ shortfall), DRP's fair share — and each short DC
    takes its share from the sender with the most spare left (ties: the lowest location id), the largest
    shortfall choosing first (ties: the lowest location id). No sender is promised more than its spare, so it
    never falls below its own safety stock however many of the transfers are approved. One sender per short
    DC: what a sender cannot give of a share stays short (an expedite or an order covers it).

    `balance` is the regions' summaries (`sku_location_balance`) or a plan's own `headroom`, whole or
    restricted to the SKUs short somewhere; without a `region` column the regions are left empty."""
    columns = {c: pd.Series(dtype=float if c in ("surplus", "allotted") else object) for c in SOURCE_COLUMNS}
    if balance.empty:
        return pd.DataFrame(columns)
    if "region" not in balance:
        balance = balance.assign(region=None)
    short = balance.loc[balance["shortfall"] > 0, ["sku", "location_id", "region", "shortfall"]]
    donors = balance.loc[balance["surplus"] > 0, ["sku", "location_id", "region", "surplus"]]
    short = short[short["sku"].isin(donors["sku"])]
    if short.empty:
        return pd.DataFrame(columns)
    donors = donors[donors["sku"].isin(short["sku"])]
    spare = donors.groupby("sku")["surplus"].sum()
    need = short.groupby("sku")["shortfall"].sum()
    fill = (spare / need).clip(upper=1.0)
    short = short.assign(share=short["shortfall"].astype(float) * short["sku"].map(fill).astype(float))
    short = short.sort_values(["sku", "share", "location_id"], ascending=[True, False, True], kind="mergesort").reset_index(drop=True)
    donors = donors.sort_values(["sku", "location_id"], kind="mergesort").reset_index(drop=True)

    # Each short DC in turn takes from the sender with the most left; one sweep per SKU over small arrays.
    d_sku, d_left = donors["sku"].to_numpy(), donors["surplus"].to_numpy(dtype=float).copy()
    d_bounds = np.flatnonzero(np.r_[True, d_sku[1:] != d_sku[:-1], True])
    d_range = {d_sku[a]: (a, b) for a, b in zip(d_bounds[:-1], d_bounds[1:])}
    sender = np.full(len(short), -1, dtype=np.int64)
    allotted = np.zeros(len(short))
    for i, (sku, share) in enumerate(zip(short["sku"].to_numpy(), short["share"].to_numpy(dtype=float))):
        a, b = d_range[sku]
        k = a + int(np.argmax(d_left[a:b]))  # the first maximum: the lowest location id among equals
        take = min(share, d_left[k])
        if take > 0:
            sender[i], allotted[i] = k, take
            d_left[k] -= take
    picked = sender >= 0
    out = short.loc[picked, ["sku", "location_id", "region"]].reset_index(drop=True)
    chosen = donors.iloc[sender[picked]].reset_index(drop=True)
    out["from_location_id"] = chosen["location_id"].to_numpy()
    out["from_region"] = chosen["region"].to_numpy()
    out["surplus"] = chosen["surplus"].to_numpy(dtype=float)
    out["allotted"] = allotted[picked]
    return out[SOURCE_COLUMNS].sort_values(SKU_LOCATION, kind="mergesort").reset_index(drop=True)
