"""Planning regions against the warehouse: the scope of one region's run, its summary for the other
regions, and the global step that decides which DC of any region supplies a short SKU-location and ranks
the panel's forecast value.

A region's run reads and replaces only the rows of its DCs (`location_id IN (...)`, on an index), so two
regions planned at the same time never touch the same rows. No Dagster import: the assets wrap it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd
from sqlalchemy import Table, select

from demand_control.planning.regions import SOURCE_COLUMNS, panel_value_shares, sku_location_balance, transfer_sources
from demand_control.infra.memory import release_freed_memory
from demand_control.resources.warehouse import Warehouse
from demand_control.schema import tables


@dataclass(frozen=True)
class RegionScope:
    """One or more planning regions: their names and their DCs (from `location.region`). A region no DC
    belongs to (yet) has nothing to plan: its scope is empty, not an error."""

    regions: tuple[str, ...]
    location_ids: tuple[str, ...]

    @classmethod
    def of(cls, warehouse: Warehouse, regions: Sequence[str]) -> RegionScope:
        loc = tables.metadata.tables["location"]
        found = warehouse.read("location", columns=["location_id"], where=loc.c.region.in_(list(regions)))
        return cls(tuple(regions), tuple(sorted(found["location_id"].astype(str).unique())))

    @property
    def name(self) -> str:
        return ", ".join(self.regions)

    def clause(self, table: Table):  # noqa: ANN201 - a SQLAlchemy boolean clause
        """WHERE the row belongs to one of the region's DCs."""
        return table.c.location_id.in_(self.location_ids)

    def contains(self, location_ids: pd.Series) -> pd.Series:
        return location_ids.astype(str).isin(self.location_ids)


COMPACT_CHUNK_ROWS = 250_000


def read_compact(warehouse: Warehouse, name: str, columns: Sequence[str] | None = None, where=None, chunk_rows: int = COMPACT_CHUNK_ROWS) -> pd.DataFrame:  # noqa: ANN001 - a SQLAlchemy clause
    """`warehouse.read(name, columns, where)`, the same frame, read `chunk_rows` rows at a time (a server-side
    cursor on PostgreSQL) with equal text and date values sharing one Python object. A plain read of a
    region's 10M-row history holds every row's tuple and a fresh str and date object per cell at once - GBs
    for a few thousand distinct SKUs, DCs and weeks; this holds one chunk's and one object per distinct value."""
    warehouse.ensure_schema()
    release_freed_memory()  # a big read follows a step whose frames were freed: give their pages back first
    table = warehouse.table(name)
    statement = select(*([table.c[c] for c in columns] if columns else table.c))
    if where is not None:
        statement = statement.where(where)
    shared: dict[str, dict] = {}
    frames, dtypes = [], {}
    with warehouse.engine.connect().execution_options(stream_results=True, max_row_buffer=chunk_rows) as conn:
        for chunk in pd.read_sql(statement, conn, chunksize=chunk_rows):
            for column in chunk.columns:
                dtypes.setdefault(column, set()).add(str(chunk[column].dtype))
                if chunk[column].dtype == object:
                    chunk[column] = shared_values(chunk[column], shared.setdefault(column, {}))
            frames.append(chunk)
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    # A chunk whose column was all missing typed it object where the others read floats or timestamps: type
    # the whole column as one read would.
    mixed = [column for column, seen in dtypes.items() if len(seen) > 1]
    if mixed:
        out[mixed] = out[mixed].infer_objects()
    return out


def shared_values(values: pd.Series, shared: dict) -> pd.Series:
    """`values` (an object column of text or dates) with each distinct value replaced by the one equal object
    of the same type `shared` holds (added when new); missing values stay as they are. A column holding any
    other value (numbers, flags, unhashable ones) is returned unchanged."""
    try:
        codes, uniques = pd.factorize(values)
    except TypeError:
        return values
    if not all(isinstance(value, (str, date)) for value in uniques):
        return values  # factorize takes 1 and True (equal, same hash) for one value: share only text and dates
    canonical = np.empty(len(uniques), dtype=object)
    canonical[:] = [shared.setdefault((type(value), value), value) for value in uniques]
    out = values.to_numpy(dtype=object, copy=True)
    present = codes >= 0
    out[present] = canonical[codes[present]]
    return pd.Series(out, index=values.index, name=values.name, dtype=object)


def region_of_locations(warehouse: Warehouse) -> pd.Series:
    """location_id → region, for every location."""
    locations = warehouse.read("location", columns=["location_id", "region"])
    return pd.Series(locations["region"].astype(str).to_numpy(), index=locations["location_id"].astype(str).to_numpy())


def write_balance(warehouse: Warehouse, projection: pd.DataFrame, now: datetime, scope: RegionScope | None) -> int:
    """Replace the scope's rows (a region's, or all) of `sku_location_balance` with its projection's summary."""
    product = warehouse.read("product", columns=["sku", "unit_price", "unit_cost"])
    balance = sku_location_balance(projection, region_of_locations(warehouse), product).assign(computed_at=now)
    where = scope.clause(tables.sku_location_balance) if scope is not None else None
    return warehouse.replace_rows("sku_location_balance", balance, where=where)


@dataclass(frozen=True)
class CrossRegionDecision:
    """What the global step decided: the sender and allotment of each short SKU-location, the panel's value
    ranking."""

    transfer_sources: pd.DataFrame
    value_ranks: pd.DataFrame


def refresh_cross_region(warehouse: Warehouse, now: datetime) -> CrossRegionDecision:
    """The global step, between the regions' projections and their exceptions: from the regions' summaries
    (one row per SKU-location, never a region's panel) share each SKU's spare among the DCs short of it (the
    sender and the units allotted to each short SKU-location) and rank the panel's forecast value; replace
    `transfer_sources` and `forecast_value_ranks`."""
    balance = warehouse.read("sku_location_balance", columns=["sku", "location_id", "region", "surplus", "shortfall", "forecast_value"])
    sources = transfer_sources(balance).assign(decided_at=now)
    ranks = panel_value_shares(balance).rename(columns={"value": "forecast_value"}).assign(decided_at=now)
    warehouse.replace_rows("transfer_sources", sources)
    warehouse.replace_rows("forecast_value_ranks", ranks)
    return CrossRegionDecision(sources, ranks)


def region_transfer_sources(warehouse: Warehouse, scope: RegionScope) -> pd.DataFrame | None:
    """The global step's senders and allotments for the region's short SKU-locations; None before the global
    step ever decided anything (the region then shares its own DCs' spare among its own short DCs)."""
    if warehouse.count("transfer_sources") == 0:
        return None
    return warehouse.read("transfer_sources", columns=SOURCE_COLUMNS, where=scope.clause(tables.transfer_sources))


def region_value_shares(warehouse: Warehouse, scope: RegionScope) -> pd.DataFrame | None:
    """The panel's value ranking of the region's SKU-locations (sku, location_id, share_before); None before
    the global step ever ran (the region then ranks its own SKU-locations)."""
    ranks = warehouse.read("forecast_value_ranks", columns=["sku", "location_id", "share_before"], where=scope.clause(tables.forecast_value_ranks))
    return ranks if len(ranks) else None
