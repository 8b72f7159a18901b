"""Planning regions: what one region's plan tells the others, and the small global step that decides what
crosses regions.

A region plans its own DCs (a run per region). What it cannot see is another region's stock: a DC short of
a SKU may be saved by a DC of another region with units to spare; nor the rest of the panel's forecast
value, which grades a degraded forecast as class A or not. Each region therefore publishes one summary row
per SKU-location — the units it could give away (surplus), the units it lacks (shortfall), its forecast value
— and the global step, between the regions' projections and their exceptions, matches shortfalls to
surpluses across regions SKU by SKU and ranks the values, without ever reading a region's panel (a row per
SKU-location and bucket). No Dagster import.
"""

from __future__ import annotations

import pandas as pd

from demand_control.planning.signal_exceptions import value_shares

SKU_LOCATION = ["sku", "location_id"]
BALANCE_COLUMNS = ["sku", "location_id", "region", "surplus", "shortfall", "forecast_value"]
SOURCE_COLUMNS = ["sku", "location_id", "region", "from_location_id", "from_region", "surplus"]


def sku_location_balance(projection: pd.DataFrame, region_of: pd.Series, product: pd.DataFrame) -> pd.DataFrame:
    """A region's summary (BALANCE_COLUMNS), one row per SKU-location: the headroom above safety stock over
    the whole horizon, min over buckets of (closing − safety stock) — positive: `surplus`, the units it could
    give away and never fall below safety stock (the rule transfers are proposed by); negative: `shortfall`,
    the units it lacks at its worst bucket — and `forecast_value`, the horizon's forecast units × unit price
    (else cost). `region_of` maps location_id → region; `product` has sku, unit_price, unit_cost."""
    if projection.empty:
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("sku", "location_id", "region") else float) for c in BALANCE_COLUMNS})
    out = (
        projection.assign(_headroom=projection["closing"].astype(float) - projection["safety_stock"].astype(float))
        .groupby(SKU_LOCATION, as_index=False, sort=True)
        .agg(_headroom=("_headroom", "min"), _units=("forecast", "sum"))
    )
    out["region"] = out["location_id"].map(region_of).astype(object)
    out["surplus"] = out["_headroom"].clip(lower=0.0)
    out["shortfall"] = (-out["_headroom"]).clip(lower=0.0)
    prices = product.drop_duplicates("sku").set_index("sku")
    price = out["sku"].map(prices["unit_price"].astype(float).fillna(prices["unit_cost"].astype(float))).astype(float).fillna(0.0)
    out["forecast_value"] = out["_units"].astype(float) * price
    return out[BALANCE_COLUMNS].reset_index(drop=True)


def panel_value_shares(balance: pd.DataFrame) -> pd.DataFrame:
    """The global step's ranking of every SKU-location's forecast value across all regions: sku,
    location_id, value, share_before (see `signal_exceptions.value_shares`; class A: share_before < 0.8)."""
    return value_shares(balance[[*SKU_LOCATION, "forecast_value"]].rename(columns={"forecast_value": "value"}))


def transfer_sources(balance: pd.DataFrame) -> pd.DataFrame:
    """The global step: for every short SKU-location, the DC of any region that should send it stock
    (SOURCE_COLUMNS) — the one with the largest surplus of that SKU, ties to the lowest location id, the rule
    a plan of the whole panel applies. `balance` is the regions' summaries (`sku_location_balance`), whole or
    restricted to the SKUs short somewhere. A region's own plan already sees its own DCs; what this adds is
    the DCs of the other regions, which a region's run cannot read."""
    if balance.empty:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "surplus" else object) for c in SOURCE_COLUMNS})
    short = balance.loc[balance["shortfall"] > 0, ["sku", "location_id", "region"]]
    donors = balance.loc[balance["surplus"] > 0, ["sku", "location_id", "region", "surplus"]]
    donors = donors.rename(columns={"location_id": "from_location_id", "region": "from_region"})
    donors = donors.sort_values(["sku", "surplus", "from_location_id"], ascending=[True, False, True], kind="mergesort")
    pairs = short.merge(donors, on="sku", how="inner")
    pairs = pairs[pairs["from_location_id"] != pairs["location_id"]]
    best = pairs.drop_duplicates(SKU_LOCATION, keep="first")
    return best[SOURCE_COLUMNS].sort_values(SKU_LOCATION, kind="mergesort").reset_index(drop=True)
