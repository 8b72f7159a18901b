"""The twin's demand draws: the sample distributor's own demand process continued past the as-of date and cut
into customer order lines (customers by tier, DCs by region, promise dates), plus the demand disruptions
(`demand_spike`, `new_sku`). Drawn once from the scenario seed, so every arm meets the same customers.

Days are integers from the as-of date (day 0). A week's demand is due over that week (promise dates spread
over its seven days); each line was ordered PROMISE_DAYS before its promise, and lines that would have
been ordered before day 0 are in the order book on day 0.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from demand_control.sample.catalogue import (
    CATEGORIES,
    CLASS_MIX,
    HOME_DC_SHARE,
    LINE_SHARE,
    ORDER_TIER_WEIGHT,
    PACK_OPTIONS,
    PRIORITY_RANGE,
    PROMISE_DAYS,
    UNITS,
)
from demand_control.sample.demand_process import (
    DemandProcess,
    promotions,
    series_traits,
    weekly_demand,
)
from demand_control.sample.generator import (
    landscape_with_demand_process,
)
from demand_control.twin.scenario import DemandSpike, NewSku, Scenario

TIERS = ("strategic", "key", "standard")
# Mean line size relative to a week's demand: the generator's line share times the tier factor, averaged
# over the order mix (strategic 25 %, key 37.5 %, standard 37.5 % of orders by tier weight and tier shares).
MEAN_LINE_SHARE = float(np.mean(LINE_SHARE)) * 1.36


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, *stream]))


@dataclass
class World:
    """The distributor at day 0 and the demand it will see: master data and ERP state from the landscape
    generator (SKU-locations of new SKUs appended, listed from their launch day), one row per SKU-location
    in `series` (index = the twin's series number), and every customer order line of the run."""

    as_of: dt.date
    days: int
    frames: dict[str, pd.DataFrame]
    series: pd.DataFrame  # sku, location_id, supplier_id, lead_time_days, lead_time_std_days, moq, pack_size, unit_cost, category, listed_day, scale
    lines: pd.DataFrame  # see `order_lines`
    history: pd.DataFrame  # weekly demand before day 0: series, week_start (datetime64), qty
    spike_known_day: dict[int, int] = field(default_factory=dict)  # disruption index -> day the first surge order arrives

    @property
    def n(self) -> int:
        return len(self.series)

    def day_date(self, day: int | np.ndarray) -> np.ndarray:
        return np.datetime64(self.as_of, "D") + np.asarray(day, dtype=np.int64)


def _customer_choice(process: DemandProcess, locations: int) -> np.ndarray:
    """P(customer | DC) by the generator's rules: tier weight x (home-region share at the customer's
    region's DCs, the rest spread over every DC); rows DCs, columns customers, cumulative."""
    cust_region = process.cust_region
    weight = np.array(ORDER_TIER_WEIGHT)[process.cust_tier]
    probs = np.zeros((locations, len(cust_region)))
    for loc in range(locations):
        dcs_of_region = np.array([np.flatnonzero(process.loc_region == r) for r in cust_region], dtype=object)
        home = np.array([(loc in d) / len(d) if len(d) else 1.0 / locations for d in dcs_of_region])
        probs[loc] = weight * (HOME_DC_SHARE * home + (1 - HOME_DC_SHARE) / locations)
    cdf = np.cumsum(probs, axis=1)
    return cdf / cdf[:, -1:]


def split_into_lines(
    rng: np.random.Generator, qty: np.ndarray, series: np.ndarray, week_day0: np.ndarray, scale: np.ndarray, mean_week: np.ndarray
) -> pd.DataFrame:
    """Cut weekly demand (`qty` per (series, week) row, due in the week starting on day `week_day0`) into
    order lines of about MEAN_LINE_SHARE of the series' usual week, each of at least one unit (a tenth for
    goods sold by weight), with a promise day inside the week and an order day PROMISE_DAYS before it."""
    units = np.rint(qty * scale).astype(np.int64)
    keep = units > 0
    units, series, week_day0, scale, mean_week = units[keep], series[keep], week_day0[keep], scale[keep], mean_week[keep]
    line_units = np.maximum(MEAN_LINE_SHARE * np.maximum(mean_week, 0.5) * scale, 1.0)
    n = np.clip(np.rint(units / line_units), 1, units).astype(np.int64)
    row = np.repeat(np.arange(len(units)), n)
    w = rng.exponential(1.0, len(row))
    total = np.bincount(row, weights=w, minlength=len(units))
    share = w / total[row]
    base = np.floor(share * units[row]).astype(np.int64)
    rest = units - np.bincount(row, weights=base, minlength=len(units)).astype(np.int64)
    first = np.cumsum(n) - n
    k = np.arange(len(row)) - first[row]
    base += (k < rest[row]).astype(np.int64)
    promise = week_day0[row] + rng.integers(0, 7, len(row))
    lead = rng.integers(*PROMISE_DAYS, len(row))
    out = pd.DataFrame({"series": series[row], "qty": base / scale[row], "promise_day": promise, "lead": lead})
    return out[out["qty"] > 0].reset_index(drop=True)


def _assign_customers(rng: np.random.Generator, lines: pd.DataFrame, series_loc: np.ndarray, cdf: np.ndarray, process: DemandProcess) -> None:
    loc = series_loc[lines["series"].to_numpy()]
    u = rng.random(len(lines))
    customer = np.zeros(len(lines), dtype=np.int64)
    for l in range(cdf.shape[0]):
        mine = loc == l
        customer[mine] = np.minimum(np.searchsorted(cdf[l], u[mine], side="right"), cdf.shape[1] - 1)
    tier = process.cust_tier[customer]
    lo, hi = np.array(PRIORITY_RANGE[0])[tier], np.array(PRIORITY_RANGE[1])[tier]
    lines["customer"] = customer
    lines["tier"] = tier
    lines["priority"] = rng.integers(lo, hi + 1)


def build_world(scenario: Scenario) -> World:
    """Generate the landscape, continue its demand over the run (and six weeks beyond, so the order book
    stays full to the end), apply the demand disruptions and lay every order line out."""
    as_of, seed, days = scenario.as_of, scenario.seed, 7 * scenario.weeks
    frames, process = landscape_with_demand_process(scenario.skus, scenario.locations, scenario.history_weeks, seed, as_of)
    # The history ends with every active SKU still selling: it goes on selling (only discontinued ones stop).
    process = replace(process, stop_week=np.where(process.stop_week >= process.weeks, 10**9, process.stop_week))
    for frame in frames.values():
        for col in frame.columns:
            if isinstance(frame[col].dtype, pd.CategoricalDtype):
                frame[col] = frame[col].astype(str)
    product, sourcing = frames["product"], frames["sourcing"]
    lanes = sourcing[sourcing["primary"]].drop_duplicates(["sku", "location_id"])
    S, L = scenario.skus, scenario.locations
    series = pd.DataFrame({"sku": product["sku"].to_numpy()[process.series_sku], "location_id": frames["location"]["location_id"].to_numpy()[process.series_loc]})
    series = series.merge(lanes[["sku", "location_id", "supplier_id", "lead_time_days", "lead_time_std_days", "moq", "pack_size", "unit_cost"]], on=["sku", "location_id"], how="left")
    series = series.merge(product[["sku", "category"]], on="sku", how="left")
    series["listed_day"] = 0
    series["scale"] = process.scale

    # Weeks whose days are due in [0, days + longest promise): week index W is the Monday of day 0's week.
    offset = as_of.weekday()  # day 0 is this many days after its week's Monday
    n_weeks = (offset + days + PROMISE_DAYS[1] + 6) // 7
    week_idx = process.weeks + np.arange(n_weeks)
    rng = _rng(seed, 1)
    qty = weekly_demand(process, week_idx, promotions(rng, S, n_weeks), rng)
    N = len(process.series_sku)
    rows_series = np.repeat(np.arange(N), n_weeks)
    week_day0 = np.tile(7 * np.arange(n_weeks) - offset, N)
    lines = split_into_lines(rng, qty.reshape(-1), rows_series, week_day0, process.scale[rows_series], process.series_mean[rows_series])
    cdf = _customer_choice(process, L)
    _assign_customers(rng, lines, process.series_loc, cdf, process)
    lines["spike"] = -1

    history = frames["demand_history"]
    world_lines = [lines]
    spike_known: dict[int, int] = {}
    for index, d in enumerate(scenario.disruptions):
        if isinstance(d, DemandSpike):
            hit = series["category"] == d.category if d.category is not None else series["sku"] == d.sku
            in_window = lines["promise_day"].between(7 * d.start_week, 7 * (d.start_week + d.weeks) - 1)
            sel = in_window & lines["series"].isin(np.flatnonzero(hit.to_numpy()))
            sc = series["scale"].to_numpy()[lines.loc[sel, "series"].to_numpy()]
            lines.loc[sel, "qty"] = np.ceil(lines.loc[sel, "qty"].to_numpy() * d.factor * sc - 1e-9) / sc
            lines.loc[sel, "spike"] = index
        elif isinstance(d, NewSku):
            new_series, new_lines = _new_skus(scenario, index, d, frames, series, process, cdf, n_weeks, offset)
            series = pd.concat([series, new_series], ignore_index=True)
            world_lines.append(new_lines)
    lines = pd.concat(world_lines, ignore_index=True)
    lines["order_day"] = np.maximum(lines["promise_day"] - lines.pop("lead"), 0)
    for index, d in enumerate(scenario.disruptions):
        if isinstance(d, NewSku):
            listed = series["listed_day"].to_numpy()[lines["series"].to_numpy()]
            lines["order_day"] = np.maximum(lines["order_day"], listed)
    lines = lines[lines["promise_day"] >= 0]
    for index, d in enumerate(scenario.disruptions):
        if isinstance(d, DemandSpike):
            surge = lines.loc[lines["spike"] == index, "order_day"]
            if len(surge):
                spike_known[index] = int(surge.min())
    lines = _with_book(lines, frames, series, as_of)
    lines = lines.sort_values(["order_day", "promise_day", "series"], kind="mergesort").reset_index(drop=True)
    lines["line"] = np.arange(len(lines))
    lines["order_id"] = np.where(lines["book_order_id"].notna(), lines["book_order_id"], "SO-T" + lines["line"].astype(str).str.zfill(8))
    lines["line_no"] = lines["book_line_no"].fillna(1).astype(np.int64)
    lines = lines.drop(columns=["book_order_id", "book_line_no"])

    hist_series = series.reset_index().rename(columns={"index": "series"})[["series", "sku", "location_id"]]
    history = history.merge(hist_series, on=["sku", "location_id"], how="inner")[["series", "period_start", "qty"]]
    return World(as_of=as_of, days=days, frames=frames, series=series, lines=lines, history=history, spike_known_day=spike_known)


def _with_book(lines: pd.DataFrame, frames: dict[str, pd.DataFrame], series: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """The landscape's open order book joins the drawn lines: it is what customers had ordered by day 0."""
    book = frames["customer_order_line"]
    key = series.reset_index().rename(columns={"index": "series"})[["series", "sku", "location_id"]]
    book = book.merge(key, on=["sku", "location_id"], how="inner")
    tiers = frames["customer"].set_index("customer_id")["tier"].map({t: i for i, t in enumerate(TIERS)})
    cust_index = {c: i for i, c in enumerate(frames["customer"]["customer_id"])}
    promise = (pd.to_datetime(book["promise_date"]) - pd.Timestamp(as_of)).dt.days.to_numpy()
    drawn = lines.assign(book_order_id=None, book_line_no=np.nan)
    booked = pd.DataFrame({
        "series": book["series"].to_numpy(), "qty": book["qty_open"].to_numpy(dtype=float), "promise_day": promise,
        "customer": book["customer_id"].map(cust_index).to_numpy(), "tier": book["customer_id"].map(tiers).to_numpy(),
        "priority": book["priority"].to_numpy(), "spike": -1, "order_day": 0,
        "book_order_id": book["order_id"].to_numpy(), "book_line_no": book["line_no"].to_numpy(dtype=float),
    })
    return pd.concat([drawn, booked], ignore_index=True)


def _new_skus(scenario: Scenario, index: int, d: NewSku, frames: dict[str, pd.DataFrame], series: pd.DataFrame,
              process: DemandProcess, cdf: np.ndarray, n_weeks: int, offset: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`d.count` SKUs of the category, listed at every DC on the Monday of the start week: product rows and
    primary lanes by the generator's rules, demand from the same process (class mix, levels, seasonality)."""
    rng = _rng(scenario.seed, 3, index)
    cat = [c.name for c in CATEGORIES].index(d.category)
    category = CATEGORIES[cat]
    L = scenario.locations
    count = d.count
    first_number = len(frames["product"]) + 1 + sum(len(v) for k, v in frames.items() if k.startswith("_new_product"))
    codes = [f"SKU-{first_number + i:06d}" for i in range(count)]
    unit = np.minimum(np.searchsorted(np.cumsum(category.unit_probs) / sum(category.unit_probs), rng.random(count), side="right"), len(UNITS) - 1)
    cost = np.maximum(np.round(category.cost_median * np.exp(rng.normal(0.0, 0.6, count)) * np.where(unit == 1, 10.0, 1.0), 2), 0.05)
    price = np.maximum(np.round(cost * (1 + category.markup * rng.uniform(0.7, 1.3, count)), 2), cost + 0.01)
    options = [[o for o in PACK_OPTIONS[UNITS[u]] if o > 0] for u in unit]
    pack = np.array([opts[int(rng.integers(0, len(opts)))] for opts in options], dtype=float)
    product = pd.DataFrame({
        "sku": codes, "description": [f"New {category.nouns[i % len(category.nouns)]} {i + 1}" for i in range(count)],
        "category": d.category, "unit": np.array(UNITS, dtype=object)[unit], "unit_cost": cost, "unit_price": price,
        "substitute_skus": None, "active": True,
    })
    frames[f"_new_product_{index}"] = product
    suppliers = frames["supplier"]
    pool = suppliers.iloc[[j for j in range(len(suppliers)) if j % len(CATEGORIES) == cat] or list(range(len(suppliers)))]
    sup = pool.iloc[rng.integers(0, len(pool), count)]
    locs = frames["location"]["location_id"].to_numpy()
    sku_of = np.repeat(np.arange(count), L)
    loc_of = np.tile(np.arange(L), count)
    lead = np.clip(np.round(sup["lead_time_mean_days"].to_numpy()[sku_of] * rng.uniform(0.9, 1.15, count * L), 1), 1.0, 365.0)
    lead_std = np.clip(np.round(sup["lead_time_std_days"].to_numpy()[sku_of] * rng.uniform(0.8, 1.2, count * L), 1), 0.0, 365.0)
    moq = pack[sku_of] * np.array([1.0, 2.0, 5.0, 10.0])[rng.integers(0, 4, count * L)]
    lanes = pd.DataFrame({
        "sku": np.array(codes, dtype=object)[sku_of], "location_id": locs[loc_of], "supplier_id": sup["supplier_id"].to_numpy()[sku_of],
        "lead_time_days": lead, "lead_time_std_days": lead_std, "moq": moq, "pack_size": pack[sku_of],
        "unit_cost": cost[sku_of], "primary": True,
    })
    frames[f"_new_sourcing_{index}"] = lanes
    scale = np.where(unit[sku_of] == UNITS.index("kg"), 10.0, 1.0)
    new_series = lanes.drop(columns=["primary"]).assign(category=d.category, listed_day=7 * d.start_week, scale=scale)

    cls = np.minimum(np.searchsorted(np.cumsum(CLASS_MIX), rng.random(count * L), side="right"), 3)
    velocity = np.exp(rng.normal(0.0, 0.7, count))[sku_of]
    level, sigma, p_occ = series_traits(rng, cls, velocity, process.loc_size[loc_of])
    peak = np.nan_to_num(np.nan if category.season_peak is None else category.season_peak)
    sub = DemandProcess(
        weeks=process.weeks, last_monday=process.last_monday, series_sku=sku_of, series_loc=loc_of,
        amplitude=np.full(count, 0.4 if category.season_peak is not None else 0.0), peak=np.full(count, peak),
        stop_week=np.full(count, 10**9), cls=cls, level=level, sigma=sigma, p_occ=p_occ, growth=np.zeros(count * L),
        scale=scale, category=np.full(count, cat), loc_size=process.loc_size, loc_region=process.loc_region,
        cust_tier=process.cust_tier, cust_region=process.cust_region, series_mean=level,
    )
    week_idx = process.weeks + np.arange(n_weeks)
    qty = weekly_demand(sub, week_idx, np.zeros((count, n_weeks), dtype=np.float32), rng)
    start_col = (offset + 7 * d.start_week) // 7
    qty[:, :start_col] = 0.0
    first = len(series)
    rows = np.repeat(np.arange(count * L), n_weeks)
    lines = split_into_lines(rng, qty.reshape(-1), first + rows, np.tile(7 * np.arange(n_weeks) - offset, count * L), scale[rows], level[rows])
    local = lines.assign(series=lines["series"] - first)
    _assign_customers(rng, local, loc_of, cdf, process)
    lines = local.assign(series=local["series"] + first, spike=-1)
    return new_series, lines


def weekly_history(world: World, before_day: int) -> pd.DataFrame:
    """Demand per SKU-location and Monday week by first promise (what customers asked for, whatever was
    shipped: the same in every arm), for the weeks wholly before `before_day`'s week, the landscape's
    history included: series, period_start, qty."""
    offset = world.as_of.weekday()
    lines = world.lines
    first = lines["promise_day"].to_numpy()
    week = (first + offset) // 7
    current = (before_day + offset) // 7
    known = (week >= 0) & (week < current)
    frame = pd.DataFrame({"series": lines["series"].to_numpy()[known], "week": week[known], "qty": lines["qty"].to_numpy()[known]})
    sim = frame.groupby(["series", "week"], as_index=False)["qty"].sum()
    monday0 = pd.Timestamp(world.as_of) - pd.Timedelta(days=offset)
    sim["period_start"] = monday0 + pd.to_timedelta(7 * sim["week"], unit="D")
    return pd.concat([world.history, sim[["series", "period_start", "qty"]]], ignore_index=True)
