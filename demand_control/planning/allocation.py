"""Allocation of constrained supply across open customer order lines, by DOMAIN.md: where a SKU-location's
supply cannot cover its open lines, each scenario (fair share, tier priority, most lines filled, earliest
promise) splits the supply, and a summary per SKU-location and scenario shows fill rate by tier, revenue at
risk and the customers affected, and recommends one scenario for a manager to approve. Vectorised: sorts and
grouped cumulative sums over all SKU-locations at once, one pass per scenario, no per-SKU loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from demand_control.planning.inventory_common import SKU_LOCATION, as_datetime_column, require_columns
from demand_control.planning.vocabulary import TIER_RANK, TIER_WEIGHT

SCENARIOS: tuple[str, ...] = ("fair_share", "tier_priority", "most_lines_filled", "earliest_promise")

# Weights of revenue at risk when recommending a scenario; a tier not listed weighs like standard, because
# its revenue is real even though its lines are served last.

ORDER_LINE_COLUMNS: tuple[str, ...] = (
    "sku",
    "location_id",
    "order_id",
    "line_no",
    "customer_id",
    "tier",
    "qty_open",
    "promise_date",
    "unit_price",
)
SUPPLY_COLUMNS: tuple[str, ...] = ("sku", "location_id", "supply")

ALLOCATION_COLUMNS: tuple[str, ...] = ("scenario", *ORDER_LINE_COLUMNS[:7], "allocated", "short", "fill_rate", *ORDER_LINE_COLUMNS[7:])
SUMMARY_COLUMNS: tuple[str, ...] = (
    "scenario",
    "sku",
    "location_id",
    "supply",
    "demand",
    "allocated",
    "fill_rate",
    "fill_rate_strategic",
    "fill_rate_key",
    "fill_rate_standard",
    "lines_total",
    "lines_short",
    "lines_filled",
    "revenue_at_risk",
    "weighted_revenue_at_risk",
    "customers_affected",
    "customers_affected_strategic",
    "recommended",
    "scenario_rank",
)

# Whole-unit allocation multiplies qty_open by supply in int64; below 2**31 each, the product cannot overflow.
_MAX_WHOLE = float(2**31)
# Revenue figures are compared at this many decimals, so that float noise from different summation orders
# does not decide between two scenarios that put the same revenue at risk.
_RANK_DECIMALS = 6


@dataclass(frozen=True)
class _Constrained:
    """The open lines of the constrained SKU-locations in canonical order (sku, location_id, order_id,
    line_no), as positions `rows` into the caller's frame plus the arrays every scenario sorts and sums on.
    Per-line arrays share that order, so the position in it breaks the last ties; `group` numbers the
    SKU-locations 0, 1, … in the same order, and the per-group arrays are indexed by it."""

    rows: np.ndarray
    group: np.ndarray
    qty: np.ndarray
    tier_rank: np.ndarray
    tier_weight: np.ndarray
    promise: np.ndarray
    promise_date: np.ndarray
    unit_price: np.ndarray
    customer: np.ndarray
    keys: pd.DataFrame
    supply: np.ndarray
    demand: np.ndarray
    whole: np.ndarray

    @property
    def position(self) -> np.ndarray:
        return np.arange(len(self.rows))


def _example_row(frame: pd.DataFrame, mask: np.ndarray | pd.Series | None = None) -> str:
    rows = frame if mask is None else frame[np.asarray(mask)]
    if rows.empty:
        return "(no rows)"
    return str({k: (v.item() if isinstance(v, np.generic) else v) for k, v in rows.iloc[0].to_dict().items()})


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """`require_columns`, with the first row in the message so the caller sees what was passed instead."""
    try:
        require_columns(frame, list(columns), what)
    except ValueError as exc:
        raise ValueError(f"{exc}; first row: {_example_row(frame)}") from None


def _check_values(frame: pd.DataFrame, column: str, what: str) -> None:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any():
        raise ValueError(f"{what}.{column} must be numeric; e.g. row {_example_row(frame, bad)}")
    if values.isna().any():
        raise ValueError(f"{what}.{column} must not be missing; e.g. row {_example_row(frame, values.isna())}")
    if (values < 0).any():
        raise ValueError(f"{what}.{column} must not be negative; e.g. row {_example_row(frame, values < 0)}")


def _check_keys(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    for column in columns:
        missing = frame[column].isna()
        if missing.any():
            raise ValueError(f"{what}.{column} must not be missing; e.g. row {_example_row(frame, missing)}")


def _validate(order_lines: pd.DataFrame, supply: pd.DataFrame, scenarios: Sequence[str]) -> tuple[str, ...]:
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenarios {unknown}; expected some of {list(SCENARIOS)}")
    chosen = tuple(dict.fromkeys(scenarios))
    if not chosen:
        raise ValueError(f"no scenario to compare; expected some of {list(SCENARIOS)}")
    _require(order_lines, ORDER_LINE_COLUMNS, "order_lines")
    _require(supply, SUPPLY_COLUMNS, "supply")
    _check_keys(order_lines, ["sku", "location_id", "order_id", "line_no"], "order_lines")
    _check_keys(supply, SKU_LOCATION, "supply")
    _check_values(order_lines, "qty_open", "order_lines")
    _check_values(supply, "supply", "supply")
    twice = supply.duplicated(SKU_LOCATION, keep=False)
    if twice.any():
        raise ValueError(f"supply has more than one row for a SKU-location; e.g. row {_example_row(supply, twice)}")
    return chosen


def _is_whole(values: np.ndarray) -> np.ndarray:
    return (values == np.floor(values)) & (values < _MAX_WHOLE)


def _sorted_codes(values: pd.Series) -> np.ndarray:
    """Integer codes whose order is the values' order. Sorting a million distinct order ids as Python
    objects takes seconds; Arrow sorts the distinct strings in C, in the same (code point) order."""
    if not pd.api.types.is_object_dtype(values.dtype) and not pd.api.types.is_string_dtype(values.dtype):
        return pd.factorize(values, sort=True)[0]
    codes, uniques = pd.factorize(values)
    try:
        order = pc.sort_indices(pa.array(np.asarray(uniques, dtype=object), type=pa.string())).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.factorize(values, sort=True)[0]
    rank = np.empty(len(uniques), dtype="int64")
    rank[order] = np.arange(len(uniques))
    return rank[codes]


def _per_value(values: pd.Series, table: dict[str, float], default: float) -> np.ndarray:
    """`values.map(table)` with a default, looked up once per distinct value rather than once per line."""
    codes, uniques = pd.factorize(values)
    lookup = np.array([table.get(u, default) for u in uniques] + [default], dtype=float)
    return lookup[codes]


def _constrained_lines(order_lines: pd.DataFrame, supply: pd.DataFrame) -> _Constrained:
    """Puts the lines in canonical order, keeps the SKU-locations whose open quantity exceeds their supply (a
    SKU-location absent from `supply` has none), and derives the sort keys shared by the scenarios."""
    sku_code, loc_code = _sorted_codes(order_lines["sku"]), _sorted_codes(order_lines["location_id"])
    pair = sku_code * (int(loc_code.max(initial=0)) + 1) + loc_code
    _, first_row, group = np.unique(pair, return_index=True, return_inverse=True)
    keys = order_lines[SKU_LOCATION].take(first_row).reset_index(drop=True)
    qty = pd.to_numeric(order_lines["qty_open"]).to_numpy(dtype=float)
    available = supply[SKU_LOCATION].assign(supply=pd.to_numeric(supply["supply"]).astype(float))
    group_supply = keys.merge(available, on=SKU_LOCATION, how="left")["supply"].fillna(0.0).to_numpy()
    group_demand = np.bincount(group, weights=qty, minlength=len(keys))
    constrained = group_demand > group_supply

    # Only the constrained lines are put in canonical order: ranking order ids is the costly sort, and
    # most SKU-locations are usually covered.
    keep = np.flatnonzero(constrained[group])
    order_code = _sorted_codes(order_lines["order_id"].take(keep))
    line_code = _sorted_codes(order_lines["line_no"].take(keep))
    rows = keep[np.lexsort((line_code, order_code, group[keep]))]
    qty = qty[rows]
    group = (np.cumsum(constrained) - 1)[group[rows]]
    keys = keys[constrained].reset_index(drop=True)
    group_supply, group_demand = group_supply[constrained], group_demand[constrained]
    fractional = np.bincount(group, weights=~_is_whole(qty), minlength=len(keys)) > 0

    lines = order_lines[["tier", "customer_id"]].take(rows)
    promise_date = as_datetime_column(order_lines["promise_date"].take(rows)).to_numpy()
    promise = promise_date.view("int64").copy()
    # NaT is the smallest int64; a line with no promise date is served after every dated line.
    promise[promise == np.iinfo("int64").min] = np.iinfo("int64").max
    return _Constrained(
        rows=rows,
        group=group,
        qty=qty,
        tier_rank=_per_value(lines["tier"], TIER_RANK, len(TIER_RANK)).astype("int64"),
        tier_weight=_per_value(lines["tier"], TIER_WEIGHT, TIER_WEIGHT["standard"]),
        promise=promise,
        promise_date=promise_date,
        unit_price=pd.to_numeric(order_lines["unit_price"].take(rows), errors="coerce").to_numpy(dtype=float),
        customer=pd.factorize(lines["customer_id"], use_na_sentinel=False)[0],
        keys=keys,
        supply=group_supply,
        demand=group_demand,
        whole=_is_whole(group_supply) & ~fractional,
    )


def _fill_in_order(c: _Constrained, order: np.ndarray) -> np.ndarray:
    """Serve the lines of each SKU-location in `order` (sorted by group first): each line gets what is left
    after the lines before it, up to its open quantity, so at most one line per SKU-location is partial."""
    qty = c.qty[order]
    before = pd.Series(qty).groupby(c.group[order], sort=False).cumsum().to_numpy() - qty
    served = np.clip(c.supply[c.group[order]] - before, 0.0, qty)
    allocated = np.empty_like(served)
    allocated[order] = served
    return allocated


def _fair_share(c: _Constrained) -> np.ndarray:
    """Pro rata to qty_open. Where the SKU-location is in whole units, each line gets the whole part of its
    quota and the units left over go one each to the largest fractional parts (largest-remainder method),
    ties by tier, promise date, order and line, so the lines add up to the supply exactly."""
    supply = c.supply[c.group]
    demand = c.demand[c.group]
    continuous = c.qty * supply / demand

    whole = c.whole[c.group]
    # Integer arithmetic keeps the quotas exact: floor and remainder of qty × supply / demand.
    q = np.where(whole, c.qty, 0.0).astype("int64")
    s = np.where(whole, supply, 0.0).astype("int64")
    d = np.where(whole, demand, 1.0).astype("int64")
    numerator = q * s
    base = numerator // d
    remainder = numerator % d
    whole_supply = np.where(c.whole, c.supply, 0.0).astype("int64")
    left_over = whole_supply - np.bincount(c.group, weights=base, minlength=len(c.keys)).astype("int64")
    order = np.lexsort((c.position, c.promise, c.tier_rank, -remainder, c.group))
    first = np.searchsorted(c.group[order], np.arange(len(c.keys)))
    rank = np.empty(len(order), dtype="int64")
    rank[order] = np.arange(len(order)) - first[c.group[order]]
    rounded = base + (rank < left_over[c.group])
    return np.where(whole, rounded.astype(float), continuous)


def _allocate(c: _Constrained, scenario: str) -> np.ndarray:
    if scenario == "fair_share":
        return _fair_share(c)
    if scenario == "tier_priority":
        order = np.lexsort((c.position, c.promise, c.tier_rank, c.group))
    elif scenario == "earliest_promise":
        order = np.lexsort((c.position, c.tier_rank, c.promise, c.group))
    elif scenario == "most_lines_filled":
        # Smallest lines first fills the most whole lines a supply can fill; the next line gets the rest.
        order = np.lexsort((c.position, c.promise, c.tier_rank, c.qty, c.group))
    else:  # pragma: no cover - _validate rejects unknown names
        raise ValueError(f"unknown scenario {scenario!r}")
    return _fill_in_order(c, order)


def _allocation_table(order_lines: pd.DataFrame, c: _Constrained, scenarios: tuple[str, ...]) -> pd.DataFrame:
    n = len(c.rows)
    qty = np.tile(c.qty, len(scenarios))
    allocated = np.concatenate([_allocate(c, s) for s in scenarios])
    out = order_lines[["sku", "location_id", "order_id", "line_no", "customer_id", "tier"]]
    out = out.take(np.tile(c.rows, len(scenarios)))
    # A fresh index without reset_index, which would copy the 4 × n rows once more.
    out.index = pd.RangeIndex(len(out))
    short = qty - allocated
    with np.errstate(divide="ignore", invalid="ignore"):
        # A line with nothing open owes nothing: it counts as filled.
        fill_rate = np.where(qty > 0, allocated / qty, 1.0)
    # Inserted in place, in the order of ALLOCATION_COLUMNS, so that no final reordering copies the rows.
    for name, values in (
        ("scenario", np.repeat(np.array(scenarios, dtype=object), n)),
        ("qty_open", qty),
        ("allocated", allocated),
        ("short", short),
        ("fill_rate", fill_rate),
        ("promise_date", np.tile(c.promise_date, len(scenarios))),
        ("unit_price", np.tile(c.unit_price, len(scenarios))),
    ):
        out.insert(ALLOCATION_COLUMNS.index(name), name, values)
    return out


def allocate_lines(
    order_lines: pd.DataFrame, supply: pd.DataFrame, scenarios: Sequence[str] = SCENARIOS
) -> pd.DataFrame:
    """Per scenario, the allocation of each constrained SKU-location's supply to its open order lines
    (columns ALLOCATION_COLUMNS; one row per scenario × line, in scenario order, then sku, location_id,
    order_id, line_no).

    - `order_lines`: sku, location_id, order_id, line_no, customer_id, tier, qty_open, promise_date,
      unit_price. `supply`: sku, location_id, supply — the units available to promise to these lines over
      the window, computed by the caller, at most one row per SKU-location; a SKU-location without a row has
      none.
    - Constrained: Σ qty_open > supply. Other SKU-locations are not returned.
    - Scenarios (SCENARIOS): `fair_share` pro rata to qty_open; `tier_priority` strategic, then key, then
      standard, then unknown tiers, within a tier earliest promise date, then order_id, line_no;
      `most_lines_filled` smallest lines first (ties by tier, promise date, order_id, line_no), the rest to
      the next line; `earliest_promise` earliest promise date first (ties by tier, order_id, line_no).
      Lines without a promise date come after dated ones.
    - Whole units where the supply and every qty_open of the SKU-location are whole numbers (fair share then
      uses the largest-remainder method so the lines add up to the supply); otherwise continuous.
    - short = qty_open − allocated; fill_rate = allocated / qty_open (1 for a line with nothing open);
      qty_open and unit_price as float, promise_date as datetime64 at midnight.

    Raises ValueError for missing columns, missing keys, negative or missing qty_open or supply, duplicate
    supply rows, or unknown scenario names, naming the column and an example row.
    """
    chosen = _validate(order_lines, supply, scenarios)
    return _allocation_table(order_lines, _constrained_lines(order_lines, supply), chosen)


def _summary(c: _Constrained, scenarios: tuple[str, ...], table: pd.DataFrame) -> pd.DataFrame:
    """One row per constrained SKU-location and scenario, from the allocation table through bincounts over a
    cell number that orders the rows by SKU-location, then scenario."""
    n_groups, n_scenarios = len(c.keys), len(scenarios)
    n_cells = n_groups * n_scenarios
    cell = np.tile(c.group * n_scenarios, n_scenarios) + np.repeat(np.arange(n_scenarios), len(c.rows))
    qty = table["qty_open"].to_numpy()
    allocated = table["allocated"].to_numpy()
    short = table["short"].to_numpy()
    tier_rank = np.tile(c.tier_rank, n_scenarios)
    at_risk = short * np.tile(np.nan_to_num(c.unit_price, nan=0.0), n_scenarios)

    def total(values: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(cell, weights=values if where is None else np.where(where, values, 0.0), minlength=n_cells)

    out = pd.DataFrame(
        {
            "scenario": np.tile(np.array(scenarios, dtype=object), n_groups),
            "sku": np.repeat(c.keys["sku"].to_numpy(), n_scenarios),
            "location_id": np.repeat(c.keys["location_id"].to_numpy(), n_scenarios),
            "supply": np.repeat(c.supply, n_scenarios),
            "demand": total(qty),
            "allocated": total(allocated),
        }
    )
    out["fill_rate"] = out["allocated"] / out["demand"]
    with np.errstate(divide="ignore", invalid="ignore"):
        for tier, rank in TIER_RANK.items():
            tier_demand = total(qty, tier_rank == rank)
            out[f"fill_rate_{tier}"] = np.where(tier_demand > 0, total(allocated, tier_rank == rank) / tier_demand, np.nan)
    is_short = short > 0
    out["lines_total"] = np.bincount(cell, minlength=n_cells)
    out["lines_short"] = np.bincount(cell, weights=is_short, minlength=n_cells).astype("int64")
    out["lines_filled"] = out["lines_total"] - out["lines_short"]
    out["revenue_at_risk"] = total(at_risk)
    out["weighted_revenue_at_risk"] = total(at_risk * np.tile(c.tier_weight, n_scenarios))

    n_customers = int(c.customer.max()) + 1 if len(c.customer) else 1
    pair = cell.astype("int64") * n_customers + np.tile(c.customer, n_scenarios)
    for column, mask in (
        ("customers_affected", is_short),
        ("customers_affected_strategic", is_short & (tier_rank == TIER_RANK["strategic"])),
    ):
        affected = pd.unique(pair[mask]) // n_customers
        out[column] = np.bincount(affected, minlength=n_cells).astype("int64")

    scenario_index = np.tile(np.arange(n_scenarios), n_groups)
    risk = out["weighted_revenue_at_risk"].round(_RANK_DECIMALS).to_numpy()
    order = np.lexsort((scenario_index, out["customers_affected"].to_numpy(), risk, np.repeat(np.arange(n_groups), n_scenarios)))
    rank = np.empty(n_cells, dtype="int64")
    rank[order] = np.arange(n_cells) % n_scenarios + 1
    out["scenario_rank"] = rank
    out["recommended"] = rank == 1
    return out[list(SUMMARY_COLUMNS)]


def allocation_scenarios(
    order_lines: pd.DataFrame, supply: pd.DataFrame, scenarios: Sequence[str] = SCENARIOS
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The scenarios compared per constrained SKU-location: (summary, lines), where lines is
    `allocate_lines`' output and summary has one row per (sku, location_id, scenario), ordered by
    SKU-location then scenario (columns SUMMARY_COLUMNS):

    - supply, demand (Σ qty_open), allocated, fill_rate (allocated / demand);
    - fill_rate_strategic / _key / _standard: the tier's allocated / its qty_open, NaN where the tier has no
      demand at the SKU-location;
    - lines_total, lines_short (short > 0), lines_filled (nothing short);
    - revenue_at_risk = Σ short × unit_price (a missing price counts as 0); weighted_revenue_at_risk weighs
      it by tier (TIER_WEIGHT: strategic 3, key 2, standard and unknown 1);
    - customers_affected: distinct customers with any line short; customers_affected_strategic: those with
      a strategic line short;
    - scenario_rank 1, 2, … per SKU-location by weighted revenue at risk (compared at 6 decimals), then
      fewest customers affected, then the order of `scenarios`; `recommended` is rank 1, exactly one per
      SKU-location.
    """
    chosen = _validate(order_lines, supply, scenarios)
    constrained = _constrained_lines(order_lines, supply)
    table = _allocation_table(order_lines, constrained, chosen)
    return _summary(constrained, chosen, table), table
