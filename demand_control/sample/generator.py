"""The sample distributor: a deterministic, realistic landscape of every file-drop object.

One call builds products, DCs, customers, suppliers, sourcing lanes, stock, open orders, open POs, CRM
opportunities and a dense weekly demand panel whose Syntetos-Boylan class mix, seasonality, trends and
promotions are set by design. Everything is drawn from one `numpy.random.default_rng(seed)` in a fixed
order and vectorised over whole arrays, so 100k SKU-locations x 3 years generate in seconds.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from demand_control.sample.catalogue import (
    BRANDS,
    CATEGORIES,
    CLASS_MIX,
    CUSTOMER_TRADES,
    CUSTOMER_WORDS,
    LEGAL_FORMS,
    PACK_OPTIONS,
    REGIONS,
    SUPPLIER_TRADES,
    UNITS,
    VARIANTS,
)
from demand_control.sample.demand_process import (
    DemandProcess,
    promotions,
    series_traits,
    weekly_demand,
)
from demand_control.sample.draws import as_date, codes, draw_category, draw_per_row, join_labels
from demand_control.sample.transactions import OpenTransactions
from demand_control.schema.contracts import CONTRACTS, FILE_DROP_OBJECTS


def generate_landscape(
    skus: int, locations: int, weeks: int, seed: int, as_of: dt.date
) -> dict[str, pd.DataFrame]:
    """Build the sample distributor: one DataFrame per file-drop object with exactly its contract columns.

    Strings are `str` (the two key columns of `demand_history` are categoricals of `str`, to keep 15M rows
    lean), dates are `datetime64[ns]` at midnight, integers int64, floats float64, flags bool.
    `demand_history` is dense: every SKU-location has all `weeks` Mondays, ending with the last full week
    (Monday to Sunday) before `as_of`, zero weeks included.
    """
    return _build(skus, locations, weeks, seed, as_of)[0]


def landscape_with_demand_process(
    skus: int, locations: int, weeks: int, seed: int, as_of: dt.date
) -> tuple[dict[str, pd.DataFrame], DemandProcess]:
    """`generate_landscape` (the very same frames) and the demand process that drew its history, so that a
    simulation can continue the same demand past the as-of date (`weekly_demand`)."""
    frames, g = _build(skus, locations, weeks, seed, as_of)
    return frames, g.process


def _build(skus: int, locations: int, weeks: int, seed: int, as_of: dt.date) -> tuple[dict[str, pd.DataFrame], "_Generator"]:
    if skus < 1 or locations < 1 or weeks < 1:
        raise ValueError("skus, locations and weeks must be at least 1")
    as_of = as_date(as_of)
    rng = np.random.default_rng(seed)
    g = _Generator(rng, skus, locations, weeks, as_of)
    frames = {
        "product": g.products(),
        "location": g.locations(),
        "customer": g.customers(),
        "supplier": g.suppliers(),
        "sourcing": g.sourcing(),
        "demand_history": g.demand_history(),
        "inventory_position": g.inventory_position(),
        "customer_order_line": g.customer_order_lines(),
        "purchase_order_line": g.purchase_order_lines(),
        "pipeline_opportunity": g.pipeline_opportunities(),
    }
    out = {}
    for name in FILE_DROP_OBJECTS:
        frame = frames[name]
        expected = CONTRACTS[name].column_names
        if list(frame.columns) != expected:  # a programming error, never data
            raise AssertionError(f"{name}: columns {list(frame.columns)} != contract {expected}")
        out[name] = frame
    return out, g


class _Generator(OpenTransactions):
    """Draws the master data and the demand history; `OpenTransactions` draws the rest from them."""

    def __init__(self, rng: np.random.Generator, skus: int, locations: int, weeks: int, as_of: dt.date):
        self.rng = rng
        self.S, self.L, self.W = skus, locations, weeks
        self.N = skus * locations
        self.as_of = as_of
        self.sku_codes = codes("SKU-", np.arange(1, skus + 1), 6)
        self.loc_codes = codes("DC-", np.arange(1, locations + 1), 2)

    # Master data -----------------------------------------------------------------------------------------

    def products(self) -> pd.DataFrame:
        rng, S = self.rng, self.S
        n_cat = len(CATEGORIES)
        weights = np.array([c.weight for c in CATEGORIES])
        cat = draw_category(rng, weights, S)
        self.cat = cat
        unit_probs = np.array([c.unit_probs for c in CATEGORIES])
        unit = draw_per_row(rng, unit_probs[cat])
        self.unit = unit

        noun_counts = np.array([len(c.nouns) for c in CATEGORIES])
        noun_offsets = np.concatenate([[0], np.cumsum(noun_counts)[:-1]])
        nouns = np.array([n for c in CATEGORIES for n in c.nouns], dtype=object)
        noun = nouns[noun_offsets[cat] + (rng.random(S) * noun_counts[cat]).astype(np.int64)]
        brand = np.array(BRANDS, dtype=object)[rng.integers(0, len(BRANDS), S)]
        variant = np.array(VARIANTS, dtype=object)[rng.integers(0, len(VARIANTS), S)]
        description = join_labels(brand, " ", noun, " ", variant)

        cost_median = np.array([c.cost_median for c in CATEGORIES])[cat]
        case = unit == UNITS.index("case")
        cost = cost_median * np.exp(rng.normal(0.0, 0.6, S)) * np.where(case, 10.0, 1.0)
        cost = np.maximum(np.round(cost, 2), 0.05)
        markup = np.array([c.markup for c in CATEGORIES])[cat] * rng.uniform(0.7, 1.3, S)
        price = np.maximum(np.round(cost * (1.0 + markup), 2), cost + 0.01)
        self.cost, self.price = cost, price

        # Substitutes: the next one or two SKUs of the same category (in code order, wrapping within it).
        order = np.argsort(cat, kind="stable")
        sizes = np.bincount(cat, minlength=n_cat)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        pos = np.empty(S, dtype=np.int64)
        pos[order] = np.arange(S) - starts[cat[order]]
        self.cat_order = order
        wants = rng.random(S) < 0.15
        two = rng.random(S) < 0.4
        n_sub = np.where(wants, np.where(two, 2, 1), 0)
        n_sub = np.minimum(n_sub, sizes[cat] - 1)
        size = np.maximum(sizes[cat], 1)
        sub1 = order[starts[cat] + (pos + 1) % size]
        sub2 = order[starts[cat] + (pos + 2) % size]
        substitutes = np.full(S, None, dtype=object)
        one_mask, two_mask = n_sub == 1, n_sub == 2
        substitutes[one_mask] = self.sku_codes[sub1[one_mask]]
        substitutes[two_mask] = join_labels(self.sku_codes[sub1[two_mask]], ";", self.sku_codes[sub2[two_mask]])

        active = rng.random(S) >= 0.03
        self.active = active
        return pd.DataFrame(
            {
                "sku": self.sku_codes,
                "description": description,
                "category": np.array([c.name for c in CATEGORIES], dtype=object)[cat],
                "unit": np.array(UNITS, dtype=object)[unit],
                "unit_cost": cost.astype(np.float64),
                "unit_price": price.astype(np.float64),
                "substitute_skus": substitutes,
                "active": active.astype(bool),
            }
        )

    def locations(self) -> pd.DataFrame:
        L = self.L
        idx = np.arange(L)
        region = np.array(REGIONS, dtype=object)[idx % len(REGIONS)]
        rank = idx // len(REGIONS)
        name = join_labels(region, " Distribution Centre", np.where(rank > 0, join_labels(" ", rank + 1), ""))
        self.loc_region = idx % len(REGIONS)
        # The first DCs are the big ones.
        self.loc_size = np.round(self.rng.uniform(0.5, 1.5, L) * np.linspace(1.2, 0.8, L), 3)
        return pd.DataFrame(
            {"location_id": self.loc_codes, "name": name, "region": region, "type": np.full(L, "dc", dtype=object)}
        )

    def customers(self) -> pd.DataFrame:
        rng = self.rng
        C = int(min(max(20, self.S // 5), 5000))
        width = max(4, len(str(C)))
        numbers = np.arange(1, C + 1)
        ids = codes("CUST-", numbers, width)
        u = rng.random(C)
        tier = np.where(u < 0.10, 0, np.where(u < 0.40, 1, 2))
        region = rng.integers(0, len(REGIONS), C)
        name = join_labels(
            np.array(CUSTOMER_WORDS, dtype=object)[rng.integers(0, len(CUSTOMER_WORDS), C)], " ",
            np.array(CUSTOMER_TRADES, dtype=object)[rng.integers(0, len(CUSTOMER_TRADES), C)], " ",
            np.array(LEGAL_FORMS, dtype=object)[rng.integers(0, len(LEGAL_FORMS), C)],
        )
        email = join_labels("orders@customer-", np.char.zfill(numbers.astype(str), width), ".example")
        self.C, self.cust_tier, self.cust_region, self.cust_codes = C, tier, region, ids
        return pd.DataFrame(
            {
                "customer_id": ids,
                "name": name,
                "tier": np.array(("strategic", "key", "standard"), dtype=object)[tier],
                "region": np.array(REGIONS, dtype=object)[region],
                "notify_email": email,
            }
        )

    def suppliers(self) -> pd.DataFrame:
        rng = self.rng
        P = int(max(15, self.S // 40))
        width = max(3, len(str(P)))
        numbers = np.arange(1, P + 1)
        ids = codes("SUP-", numbers, width)
        # Suppliers specialise: supplier j serves category j % n_cat.
        cat_names = np.array([c.name.split(" ")[0] for c in CATEGORIES], dtype=object)
        name = join_labels(
            np.array(BRANDS, dtype=object)[rng.integers(0, len(BRANDS), P)], " ",
            cat_names[(numbers - 1) % len(CATEGORIES)], " ",
            np.array(SUPPLIER_TRADES, dtype=object)[rng.integers(0, len(SUPPLIER_TRADES), P)],
        )
        lt_mean = np.round(7.0 + 53.0 * rng.beta(1.5, 2.5, P), 1)
        reliability = np.round(0.60 + 0.39 * rng.beta(4.0, 1.6, P), 3)
        unreliable = (0.99 - reliability) / 0.39
        lt_std = np.round(lt_mean * (0.08 + 0.30 * unreliable + rng.uniform(0.0, 0.08, P)), 1)
        self.P, self.sup_lt_mean, self.sup_lt_std, self.sup_codes = P, lt_mean, lt_std, ids
        self.sup_order_weekday = rng.integers(0, 5, P)
        return pd.DataFrame(
            {
                "supplier_id": ids,
                "name": name,
                "contact": join_labels("sales@supplier-", np.char.zfill(numbers.astype(str), width), ".example"),
                "reliability": reliability.astype(np.float64),
                "lead_time_mean_days": lt_mean.astype(np.float64),
                "lead_time_std_days": lt_std.astype(np.float64),
            }
        )

    def sourcing(self) -> pd.DataFrame:
        rng, S, L, N, P = self.rng, self.S, self.L, self.N, self.P
        n_cat = len(CATEGORIES)
        # Primary supplier per SKU (the same at every DC), from the suppliers of its category.
        pool = np.array([len(range(c, P, n_cat)) for c in range(n_cat)])
        k = (rng.random(S) * pool[self.cat]).astype(np.int64)
        primary_sup = self.cat + n_cat * k
        self.sku_supplier = primary_sup

        options = np.array([PACK_OPTIONS[u] for u in UNITS])
        n_opt = (options > 0).sum(axis=1)
        pack = options[self.unit, (rng.random(S) * n_opt[self.unit]).astype(np.int64)].astype(np.float64)
        self.sku_pack = pack

        series_sku = np.repeat(np.arange(S), L)
        series_loc = np.tile(np.arange(L), S)
        sup = primary_sup[series_sku]
        lead = np.clip(np.round(self.sup_lt_mean[sup] * rng.uniform(0.9, 1.15, N), 1), 1.0, 365.0)
        lead_std = np.clip(np.round(self.sup_lt_std[sup] * rng.uniform(0.8, 1.2, N), 1), 0.0, 365.0)
        moq = pack[series_sku] * np.array([1.0, 2.0, 5.0, 10.0])[draw_category(rng, [0.4, 0.3, 0.2, 0.1], N)]
        cost = np.round(self.cost[series_sku] * rng.uniform(0.96, 1.02, N), 2)
        self.lane_lead, self.lane_lead_std, self.lane_moq = lead, lead_std, moq

        # About a fifth of the lanes have an alternate supplier: dearer, with its own lead time.
        alt = rng.random(N) < 0.2
        alt_sup = (sup + 1 + (rng.random(N) * (P - 1)).astype(np.int64)) % P
        alt_lead = np.clip(np.round(self.sup_lt_mean[alt_sup] * rng.uniform(0.9, 1.2, N), 1), 1.0, 365.0)
        alt_std = np.clip(np.round(self.sup_lt_std[alt_sup] * rng.uniform(0.8, 1.3, N), 1), 0.0, 365.0)
        alt_cost = np.round(self.cost[series_sku] * rng.uniform(1.01, 1.10, N), 2)
        alt_moq = pack[series_sku] * np.array([1.0, 5.0, 10.0])[draw_category(rng, [0.3, 0.4, 0.3], N)]

        # Row order: SKU-location, primary lane first.
        rows = np.concatenate([np.arange(N), np.flatnonzero(alt)])
        is_alt = np.concatenate([np.zeros(N, bool), np.ones(int(alt.sum()), bool)])
        order = np.lexsort((is_alt, rows))
        rows, is_alt = rows[order], is_alt[order]

        def pick(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return np.where(is_alt, b[rows], a[rows])

        return pd.DataFrame(
            {
                "sku": self.sku_codes[series_sku[rows]],
                "location_id": self.loc_codes[series_loc[rows]],
                "supplier_id": self.sup_codes[pick(sup, alt_sup)],
                "lead_time_days": pick(lead, alt_lead).astype(np.float64),
                "lead_time_std_days": pick(lead_std, alt_std).astype(np.float64),
                "moq": pick(moq, alt_moq).astype(np.float64),
                "pack_size": pack[series_sku[rows]].astype(np.float64),
                "unit_cost": pick(cost, alt_cost).astype(np.float64),
                "primary": ~is_alt,
            }
        )

    # Demand ----------------------------------------------------------------------------------------------

    def demand_history(self) -> pd.DataFrame:
        rng, S, L, N, W = self.rng, self.S, self.L, self.N, self.W
        last_monday = self.as_of - dt.timedelta(days=self.as_of.weekday() + 7)
        mondays = np.datetime64(last_monday, "D") - 7 * np.arange(W - 1, -1, -1)
        self.mondays = mondays

        # SKU-level traits shared by its DCs.
        sku_class = draw_category(rng, CLASS_MIX, S)
        peaks = np.array([np.nan if c.season_peak is None else c.season_peak for c in CATEGORIES])[self.cat]
        seasonal = ~np.isnan(peaks) & (rng.random(S) < 0.8)
        amplitude = np.where(seasonal, rng.uniform(0.25, 0.6, S), 0.0)
        peak = np.where(seasonal, np.nan_to_num(peaks) + rng.normal(0.0, 0.015, S), 0.0)
        velocity = np.exp(rng.normal(0.0, 0.7, S))
        growth = np.clip(rng.normal(0.03, 0.10, S), -0.25, 0.30)
        stop_week = np.where(self.active, W, W - rng.integers(4, 27, S))
        promo_log = self._promotions(S, W)

        # Series-level: a fifth of the SKU-locations behave unlike the SKU's usual class (small DCs, niches).
        series_sku = np.repeat(np.arange(S), L)
        series_loc = np.tile(np.arange(L), S)
        cls = sku_class[series_sku]
        redraw = rng.random(N) < 0.2
        cls = np.where(redraw, draw_category(rng, CLASS_MIX, N), cls)
        self.series_class = cls

        level, sigma, p_occ = series_traits(rng, cls, velocity[series_sku], self.loc_size[series_loc])
        g = growth[series_sku] + rng.normal(0.0, 0.03, N)
        # Weighed goods sell in fractions of a kg; everything else in whole units.
        scale = np.where(self.unit[series_sku] == UNITS.index("kg"), 10.0, 1.0)

        process = DemandProcess(
            weeks=W, last_monday=np.datetime64(last_monday, "D"), series_sku=series_sku, series_loc=series_loc,
            amplitude=amplitude, peak=peak, stop_week=stop_week, cls=cls, level=level, sigma=sigma, p_occ=p_occ,
            growth=g, scale=scale, category=self.cat, loc_size=self.loc_size, loc_region=self.loc_region,
            cust_tier=self.cust_tier, cust_region=self.cust_region, series_mean=np.zeros(N),
        )
        qty = weekly_demand(process, np.arange(W), promo_log, rng)

        self.qty = qty
        self.series_recent = qty[:, -13:].mean(axis=1) if W else np.zeros(N)
        self.series_mean = qty.mean(axis=1)
        process.series_mean = self.series_mean
        self.process = process

        sku_cat = pd.Categorical.from_codes(np.repeat(series_sku.astype(np.int32), W), categories=self.sku_codes.astype(str))
        loc_cat = pd.Categorical.from_codes(np.repeat(series_loc.astype(np.int8 if L < 128 else np.int32), W),
                                            categories=self.loc_codes.astype(str))
        period = np.tile(mondays.astype("datetime64[ns]"), N)
        return pd.DataFrame({"sku": sku_cat, "location_id": loc_cat, "period_start": period, "qty": qty.reshape(-1)})

    def _promotions(self, S: int, W: int) -> np.ndarray:
        return promotions(self.rng, S, W)
