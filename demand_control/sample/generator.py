"""The sample distributor: a deterministic, realistic landscape of every file-drop object.

One call builds products, DCs, customers, suppliers, sourcing lanes, stock, open orders, open POs, CRM
opportunities and a dense weekly demand panel whose Syntetos-Boylan class mix, seasonality, trends and
promotions are set by design. Everything is drawn from one `numpy.random.default_rng(seed)` in a fixed
order and vectorised over whole arrays, so 100k SKU-locations x 3 years generate in seconds.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from demand_control.schema.contracts import CONTRACTS, FILE_DROP_OBJECTS

UNITS = ("each", "case", "kg", "l", "m")
REGIONS = ("North", "South", "East", "West", "Central")
DEMAND_CLASSES = ("smooth", "erratic", "intermittent", "lumpy")
# Share of SKU-locations per demand class, in DEMAND_CLASSES order.
CLASS_MIX = (0.40, 0.20, 0.25, 0.15)


@dataclass(frozen=True)
class Category:
    name: str
    weight: float  # relative share of the assortment
    markup: float  # list price over cost
    cost_median: float
    unit_probs: tuple[float, float, float, float, float]  # over UNITS
    season_peak: float | None  # fraction of the calendar year of the peak, None: not seasonal
    nouns: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    Category("Beverages", 1.4, 0.30, 1.2, (0.6, 0.3, 0.0, 0.1, 0.0), 0.54,
             ("Sparkling Water", "Cola", "Orange Juice", "Iced Tea", "Energy Drink", "Lemonade", "Apple Juice")),
    Category("Snacks & Confectionery", 1.2, 0.35, 0.9, (0.7, 0.3, 0.0, 0.0, 0.0), 0.95,
             ("Chocolate Bar", "Potato Chips", "Pretzels", "Gummy Bears", "Salted Nuts", "Butter Cookies")),
    Category("Dairy & Chilled", 1.0, 0.25, 1.5, (0.6, 0.1, 0.2, 0.1, 0.0), None,
             ("Butter", "Greek Yogurt", "Cheddar", "Whipping Cream", "Whole Milk", "Mozzarella")),
    Category("Frozen Foods", 0.9, 0.30, 2.5, (0.6, 0.2, 0.2, 0.0, 0.0), 0.55,
             ("Ice Cream Tub", "Frozen Peas", "Fish Fingers", "Stone-Baked Pizza", "Oven Fries", "Ice Lollies")),
    Category("Household Cleaning", 1.0, 0.40, 2.0, (0.6, 0.2, 0.0, 0.2, 0.0), None,
             ("Dish Soap", "Bleach", "Surface Cleaner", "Laundry Detergent", "Scrub Sponges", "Glass Cleaner")),
    Category("Paper & Packaging", 0.9, 0.28, 3.0, (0.5, 0.3, 0.0, 0.0, 0.2), None,
             ("Paper Towels", "Toilet Tissue", "Cling Film", "Aluminium Foil", "Shipping Carton", "Packing Tape")),
    Category("Personal Care", 0.9, 0.45, 2.2, (0.8, 0.2, 0.0, 0.0, 0.0), None,
             ("Shampoo", "Shower Gel", "Toothpaste", "Hand Soap", "Deodorant", "Body Lotion")),
    Category("Garden & Outdoor", 0.7, 0.50, 8.0, (0.6, 0.0, 0.3, 0.0, 0.1), 0.37,
             ("Potting Soil", "Garden Hose", "Lawn Seed", "Plant Food", "Barbecue Charcoal", "Sunscreen")),
    Category("Hardware & Tools", 0.8, 0.55, 12.0, (0.6, 0.2, 0.0, 0.0, 0.2), None,
             ("Wood Screws", "Wall Plugs", "Claw Hammer", "Cable Ties", "Duct Tape", "Drill Bit Set")),
    Category("Office Supplies", 0.8, 0.60, 3.5, (0.7, 0.3, 0.0, 0.0, 0.0), 0.66,
             ("Copy Paper", "Ballpoint Pens", "Spiral Notebook", "Stapler", "Lever Arch File", "Sticky Notes")),
)

BRANDS = ("Northfield", "Bluecrest", "Harvest Lane", "Everfresh", "Kingsway", "Pure Valley", "Solano", "Ironbridge",
          "Meadowbrook", "Atlas", "Clearwater", "Redstone", "Summit", "Greenleaf")
VARIANTS = ("Classic", "Premium", "Value", "Eco", "Original", "Family Pack", "Mini", "XL", "Professional", "Twin Pack")
CUSTOMER_WORDS = ("Northwind", "Blue Harbor", "Oakridge", "Riverside", "Metro", "Pioneer", "Lakeside", "Evergreen",
                  "Red Rock", "Silverline", "Cornerstone", "Highland", "Bayview", "Maple", "Granite", "Sunrise")
CUSTOMER_TRADES = ("Foods", "Hospitality", "Retail", "Trading", "Stores", "Catering", "Markets", "Pharmacies")
LEGAL_FORMS = ("Ltd", "Inc", "LLC", "& Co", "Group")
SUPPLIER_TRADES = ("Manufacturing", "Industries", "Brands", "Wholesale", "Products", "Packaging")

# Pack sizes a buyer would see per unit of measure (0: no more options).
PACK_OPTIONS = {
    "each": (1, 6, 12, 24),
    "case": (1, 0, 0, 0),
    "kg": (1, 5, 25, 0),
    "l": (1, 6, 12, 0),
    "m": (1, 10, 50, 0),
}
MAX_LINES_PER_PO = 25
# Series are generated in blocks of this many so the noise temporaries stay small; a fixed constant, so the
# random stream (and therefore the output) does not depend on the size of the run.
SERIES_BLOCK = 8192
# Customer order lines: customers are drawn by tier weight (strategic, key, standard); an order goes to a DC
# of the customer's region with this share, else to any DC; it is promised this many days ahead (low
# inclusive, high exclusive), with a priority in the tier's range; a line is this share of a week's demand
# of its SKU-location, times the tier's factor.
ORDER_TIER_WEIGHT = (4.0, 2.0, 1.0)
HOME_DC_SHARE = 0.85
PROMISE_DAYS = (7, 43)
PRIORITY_RANGE = ((1, 2, 3), (2, 3, 5))
LINE_SHARE = (0.05, 0.6)
LINE_TIER_FACTOR = (2.0, 1.3, 1.0)
# Periodic review: every SKU-location is reviewed weekly, on its supplier's order day.
REVIEW_DAYS = 7


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
    as_of = _as_date(as_of)
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


def _as_date(value: dt.date) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _codes(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """Vectorised `f"{prefix}{n:0{width}d}"` as an object array of str."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if numbers.size == 0:
        return np.empty(0, dtype=object)
    digits = np.char.zfill(numbers.astype(str), width)
    return np.char.add(prefix, digits).astype(object)


def _join(*parts: np.ndarray | str) -> np.ndarray:
    out = np.asarray(parts[0]).astype(str)
    for part in parts[1:]:
        out = np.char.add(out, np.asarray(part).astype(str))
    return out.astype(object)


def _pick(rng: np.random.Generator, probs: np.ndarray, n: int) -> np.ndarray:
    """n draws from a categorical distribution (vectorised inverse CDF)."""
    cdf = np.cumsum(np.asarray(probs, dtype=np.float64))
    return np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(n), side="right"), len(cdf) - 1)


def _pick_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of a (n, k) probability matrix."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))[:, None] * cdf[:, -1:]
    return np.minimum((u >= cdf).sum(axis=1), probs.shape[1] - 1)


def _days(base: dt.date, offsets: np.ndarray) -> np.ndarray:
    """base + offsets (days) as datetime64[ns]."""
    return (np.datetime64(base, "D") + np.asarray(offsets, dtype=np.int64)).astype("datetime64[ns]")


def promotions(rng: np.random.Generator, S: int, W: int) -> np.ndarray:
    """Log-uplift per SKU and week: national promotions of 2-4 weeks, x1.5 to x2.6, at every DC."""
    slots = max(2, round(W / 52 * 1.5))
    length = rng.integers(2, 5, (S, slots))
    start = (rng.random((S, slots)) * np.maximum(W - length + 1, 1)).astype(np.int64)
    uplift = np.log(rng.uniform(1.5, 2.6, (S, slots)))
    on = rng.random((S, slots)) < 0.35
    diff = np.zeros((S, W + 1), dtype=np.float64)
    rows = np.repeat(np.arange(S), slots).reshape(S, slots)
    np.add.at(diff, (rows[on], np.minimum(start[on], W)), uplift[on])
    np.add.at(diff, (rows[on], np.minimum(start[on] + length[on], W)), -uplift[on])
    out = np.cumsum(diff, axis=1)[:, :W]
    out[np.abs(out) < 1e-9] = 0.0
    return out.astype(np.float32)


def series_traits(
    rng: np.random.Generator, cls: np.ndarray, velocity: np.ndarray, loc_size: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per SKU-location of demand class `cls` (index into DEMAND_CLASSES), its SKU's velocity and its DC's
    size: the weekly level, the lot-size noise σ and the probability of a week with
    demand, drawn in that order."""
    N = len(cls)
    base_level = np.array([40.0, 25.0, 5.0, 7.0])[cls]
    level_sigma = np.array([0.6, 0.7, 0.6, 0.7])[cls]
    min_level = np.array([8.0, 4.0, 1.5, 1.5])[cls]
    level = base_level * velocity * loc_size * np.exp(rng.normal(0.0, 1.0, N) * level_sigma * 0.5)
    level = np.maximum(level, min_level)
    noise_lo = np.array([0.08, 0.85, 0.10, 1.00])[cls]
    noise_hi = np.array([0.28, 1.25, 0.40, 1.40])[cls]
    sigma = rng.uniform(noise_lo, noise_hi)
    p_lo = np.array([0.94, 0.86, 0.10, 0.08])[cls]
    p_hi = np.array([1.00, 1.00, 0.55, 0.50])[cls]
    p_occ = rng.uniform(p_lo, p_hi)
    return level, sigma, p_occ


@dataclass
class DemandProcess:
    """The parameters that draw the landscape's weekly demand, per SKU (`amplitude`, `peak`, `stop_week`,
    `category`) and per SKU-location (the rest, in `series_sku`-major order), with what an order line needs
    (customers' tiers and regions, the DCs' regions). Week index 0 is the first history week; the history
    has `weeks` of them, ending the Monday `last_monday`."""

    weeks: int
    last_monday: np.datetime64
    series_sku: np.ndarray
    series_loc: np.ndarray
    amplitude: np.ndarray
    peak: np.ndarray
    stop_week: np.ndarray
    cls: np.ndarray
    level: np.ndarray
    sigma: np.ndarray
    p_occ: np.ndarray
    growth: np.ndarray
    scale: np.ndarray
    category: np.ndarray
    loc_size: np.ndarray
    loc_region: np.ndarray
    cust_tier: np.ndarray
    cust_region: np.ndarray
    series_mean: np.ndarray

    def mondays(self, week_index: np.ndarray) -> np.ndarray:
        """The Monday (datetime64[D]) of each week index."""
        return self.last_monday - 7 * (self.weeks - 1 - np.asarray(week_index, dtype=np.int64))


def weekly_demand(process: DemandProcess, week_index: np.ndarray, promo_log: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Demand per SKU-location (rows) and week (columns) for the given week indices: seasonality by calendar
    week, the SKU's promotions (`promo_log`, log-uplift per SKU and one column per week), the series' trend
    continued, class-specific lot sizes and occurrence; zero from a discontinued SKU's stop week on. The
    landscape's history is this with week indices 0..weeks-1 and its own promotions; a simulation passes
    later weeks, its own promotions and its own generator."""
    week_idx = np.asarray(week_index, dtype=np.int64)
    W = len(week_idx)
    N = len(process.series_sku)
    year_frac = ((process.mondays(week_idx).astype(np.int64) + 3) / 365.2425) % 1.0
    qty = np.empty((N, W), dtype=np.float64)
    weeks_to_end = ((week_idx - (process.weeks - 1)) / 52.0).astype(np.float32)
    two_pi = np.float32(2.0 * math.pi)
    yf = year_frac.astype(np.float32)
    amplitude, peak, stop_week, cls = process.amplitude, process.peak, process.stop_week, process.cls
    level, sigma, p_occ, g, scale = process.level, process.sigma, process.p_occ, process.growth, process.scale
    for lo in range(0, N, SERIES_BLOCK):
        hi = min(lo + SERIES_BLOCK, N)
        sk = process.series_sku[lo:hi]
        n = hi - lo
        z = rng.standard_normal((n, W), dtype=np.float32)
        u = rng.random((n, W), dtype=np.float32)
        season = 1.0 + amplitude[sk, None].astype(np.float32) * np.cos(
            two_pi * (yf[None, :] - peak[sk, None].astype(np.float32))
        )
        timing = season * np.exp(promo_log[sk])  # seasonal and promotional lift
        fast = (cls[lo:hi] <= 1)[:, None]
        trend = np.exp(g[lo:hi, None].astype(np.float32) * weeks_to_end[None, :])
        mean = level[lo:hi, None].astype(np.float32) * trend * np.where(fast, timing, np.float32(1.0))
        # Slow movers sell more often in season or on promotion, not in bigger lots.
        p = np.minimum(p_occ[lo:hi, None].astype(np.float32) * np.where(fast, np.float32(1.0), timing), 0.98)
        s = sigma[lo:hi, None].astype(np.float32)
        size = mean * np.exp(s * z - 0.5 * s * s)
        sc = scale[lo:hi, None].astype(np.float32)
        lots = np.maximum(np.rint(size * sc), 1.0)
        lots[(u >= p) | (week_idx[None, :] >= stop_week[sk, None])] = 0.0
        qty[lo:hi] = lots.astype(np.float64) / scale[lo:hi, None]
    return qty


class _Generator:
    def __init__(self, rng: np.random.Generator, skus: int, locations: int, weeks: int, as_of: dt.date):
        self.rng = rng
        self.S, self.L, self.W = skus, locations, weeks
        self.N = skus * locations
        self.as_of = as_of
        self.sku_codes = _codes("SKU-", np.arange(1, skus + 1), 6)
        self.loc_codes = _codes("DC-", np.arange(1, locations + 1), 2)

    # Master data -----------------------------------------------------------------------------------------

    def products(self) -> pd.DataFrame:
        rng, S = self.rng, self.S
        n_cat = len(CATEGORIES)
        weights = np.array([c.weight for c in CATEGORIES])
        cat = _pick(rng, weights, S)
        self.cat = cat
        unit_probs = np.array([c.unit_probs for c in CATEGORIES])
        unit = _pick_rows(rng, unit_probs[cat])
        self.unit = unit

        noun_counts = np.array([len(c.nouns) for c in CATEGORIES])
        noun_offsets = np.concatenate([[0], np.cumsum(noun_counts)[:-1]])
        nouns = np.array([n for c in CATEGORIES for n in c.nouns], dtype=object)
        noun = nouns[noun_offsets[cat] + (rng.random(S) * noun_counts[cat]).astype(np.int64)]
        brand = np.array(BRANDS, dtype=object)[rng.integers(0, len(BRANDS), S)]
        variant = np.array(VARIANTS, dtype=object)[rng.integers(0, len(VARIANTS), S)]
        description = _join(brand, " ", noun, " ", variant)

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
        substitutes[two_mask] = _join(self.sku_codes[sub1[two_mask]], ";", self.sku_codes[sub2[two_mask]])

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
        name = _join(region, " Distribution Centre", np.where(rank > 0, _join(" ", rank + 1), ""))
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
        ids = _codes("CUST-", numbers, width)
        u = rng.random(C)
        tier = np.where(u < 0.10, 0, np.where(u < 0.40, 1, 2))
        region = rng.integers(0, len(REGIONS), C)
        name = _join(
            np.array(CUSTOMER_WORDS, dtype=object)[rng.integers(0, len(CUSTOMER_WORDS), C)], " ",
            np.array(CUSTOMER_TRADES, dtype=object)[rng.integers(0, len(CUSTOMER_TRADES), C)], " ",
            np.array(LEGAL_FORMS, dtype=object)[rng.integers(0, len(LEGAL_FORMS), C)],
        )
        email = _join("orders@customer-", np.char.zfill(numbers.astype(str), width), ".example")
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
        ids = _codes("SUP-", numbers, width)
        # Suppliers specialise: supplier j serves category j % n_cat.
        cat_names = np.array([c.name.split(" ")[0] for c in CATEGORIES], dtype=object)
        name = _join(
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
                "contact": _join("sales@supplier-", np.char.zfill(numbers.astype(str), width), ".example"),
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
        moq = pack[series_sku] * np.array([1.0, 2.0, 5.0, 10.0])[_pick(rng, [0.4, 0.3, 0.2, 0.1], N)]
        cost = np.round(self.cost[series_sku] * rng.uniform(0.96, 1.02, N), 2)
        self.lane_lead, self.lane_lead_std, self.lane_moq = lead, lead_std, moq

        # About a fifth of the lanes have an alternate supplier: dearer, with its own lead time.
        alt = rng.random(N) < 0.2
        alt_sup = (sup + 1 + (rng.random(N) * (P - 1)).astype(np.int64)) % P
        alt_lead = np.clip(np.round(self.sup_lt_mean[alt_sup] * rng.uniform(0.9, 1.2, N), 1), 1.0, 365.0)
        alt_std = np.clip(np.round(self.sup_lt_std[alt_sup] * rng.uniform(0.8, 1.3, N), 1), 0.0, 365.0)
        alt_cost = np.round(self.cost[series_sku] * rng.uniform(1.01, 1.10, N), 2)
        alt_moq = pack[series_sku] * np.array([1.0, 5.0, 10.0])[_pick(rng, [0.3, 0.4, 0.3], N)]

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
        sku_class = _pick(rng, CLASS_MIX, S)
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
        cls = np.where(redraw, _pick(rng, CLASS_MIX, N), cls)
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

    # Transactions ----------------------------------------------------------------------------------------

    def inventory_position(self) -> pd.DataFrame:
        """Stock of a periodic-review (R, s, S) process that mostly works, with its open POs (drawn here too,
        so that stock and pipeline agree; `purchase_order_lines` only lays them out).

        Per SKU-location: weekly demand rate d, lane lead time LT, review period R = 1 week, safety stock
        SS = z·sqrt(σ²·(LT + R) + d²·σ_LT²) and an order quantity Q of one to four weeks of demand (at least
        the lane MOQ, in whole packs), so an order goes out every Q/d weeks. Orders were placed on the
        supplier's weekday, the latest a random part of a cycle ago; those not yet due are the open POs, each
        expected one lead time after its order date. Stock available now is what keeps the projected
        balance at SS or above until every open PO has landed and through LT + R (the inventory position then
        lies between the reorder point and the order-up-to level), plus the demand noise since the last
        receipt. Planted trouble on top: stocked-out SKU-locations, excess stock without POs, overdue and
        slipped POs (see `_purchase_orders`), drafts and partial receipts.
        """
        rng, S, L, N = self.rng, self.S, self.L, self.N
        series_sku = np.repeat(np.arange(S), L)
        series_loc = np.tile(np.arange(L), S)
        d = np.maximum(np.maximum(self.series_recent, 0.5 * self.series_mean), 0.2)  # units per week
        daily = d / 7.0
        sigma = self.qty[:, -26:].std(axis=1) if self.W else np.zeros(N)
        lead_days = np.maximum(np.rint(self.lane_lead).astype(np.int64), 1)
        z = rng.uniform(1.3, 2.0, N)
        safety = z * np.sqrt(sigma**2 * (lead_days + REVIEW_DAYS) / 7.0 + (d * self.lane_lead_std / 7.0) ** 2)
        safety = np.minimum(safety, d * (lead_days + REVIEW_DAYS) / 7.0)  # slow movers: at most a second LT + R
        pack = self.sku_pack[series_sku]
        cycle_want = np.array([1.0, 2.0, 3.0, 4.0])[_pick(rng, [0.3, 0.3, 0.2, 0.2], N)]
        q = np.ceil(np.maximum(self.lane_moq, d * cycle_want) / pack) * pack
        cycle = np.maximum(q / d, cycle_want)  # weeks between orders (>= 1, so order weeks never coincide)

        # Planted trouble: a few stocked out or nearly so, a few overstocked (which get no PO), the rest normal.
        u = rng.random(N)
        active = self.active[series_sku]
        stocked_out = active & (u < 0.03)
        low = active & (u >= 0.03) & (u < 0.045)
        excess = active & (u >= 0.045) & (u < 0.11)
        ordering = active & ~excess

        lines = self._purchase_orders(series_sku, series_loc, ordering, lead_days, cycle, q, pack)
        line_series, arrival, line_qty, received = lines
        # Balance needed now so that the projection stays at SS or above: before each open PO lands (lines in
        # arrival order, overdue ones landing today) and at the end of LT + R with all of them received.
        need = np.zeros(N)
        if len(line_series):
            before = np.cumsum(line_qty) - line_qty
            first = np.flatnonzero(np.r_[True, line_series[1:] != line_series[:-1]])
            before -= np.repeat(before[first], np.diff(np.r_[first, len(line_series)]))
            np.maximum.at(need, line_series, daily[line_series] * np.maximum(arrival, 0) - before)
        pipeline = np.bincount(line_series, weights=line_qty, minlength=N)
        need = np.maximum(need, daily * (lead_days + REVIEW_DAYS) - pipeline)
        noise = rng.normal(0.0, 1.0, N) * 0.35 * sigma * np.sqrt(np.minimum(cycle, 6.0))
        available = np.maximum(np.round(safety + need + noise), 0.0)
        available = np.where(excess, np.round(d * rng.uniform(15.0, 40.0, N)), available)
        available = np.where(low, np.round(d * rng.uniform(0.1, 0.6, N)), available)
        available = np.where(~active, np.round(d * rng.uniform(0.0, 8.0, N)), available)
        available = np.where(stocked_out, 0.0, available)
        # Part of a partially received PO line is on the shelf already.
        available += np.bincount(line_series, weights=received, minlength=N)
        # A quarter have a delivery on the way (a transfer or a shipped part of an order): no longer on hand.
        moving = active & (rng.random(N) < 0.25)
        in_transit = np.where(moving, np.minimum(np.round(d * rng.uniform(0.5, 2.0, N)), available), 0.0)
        on_hand = available - in_transit
        allocated = np.where(rng.random(N) < 0.6, np.floor(on_hand * rng.uniform(0.0, 0.35, N)), 0.0)
        on_hand = on_hand + allocated  # reserved units are on the shelf too, just not available
        self.on_hand = on_hand
        return pd.DataFrame(
            {
                "sku": self.sku_codes[series_sku],
                "location_id": self.loc_codes[series_loc],
                "as_of": _days(self.as_of, np.zeros(N, dtype=np.int64)),
                "on_hand": on_hand.astype(np.float64),
                "allocated": allocated.astype(np.float64),
                "in_transit": in_transit.astype(np.float64),
            }
        )

    def customer_order_lines(self) -> pd.DataFrame:
        rng, S, L = self.rng, self.S, self.L
        lines_per_order = np.minimum(rng.geometric(0.35, max(10, int(0.6 * self.N / 2.8))), 12)
        n_orders = len(lines_per_order)
        tier_weight = np.array(ORDER_TIER_WEIGHT)[self.cust_tier]
        cust = _pick(rng, tier_weight, n_orders)
        # Customers are served from a DC of their region when there is one.
        home = rng.integers(0, L, n_orders)
        cust_region = self.cust_region[cust]
        for r in range(len(REGIONS)):
            dcs = np.flatnonzero(self.loc_region == r)
            mine = cust_region == r
            if len(dcs) and mine.any():
                home[mine] = dcs[rng.integers(0, len(dcs), int(mine.sum()))]
        loc = np.where(rng.random(n_orders) < HOME_DC_SHARE, home, rng.integers(0, L, n_orders))
        overdue = rng.random(n_orders) < 0.06
        promise_offset = np.where(overdue, -rng.integers(1, 15, n_orders), rng.integers(*PROMISE_DAYS, n_orders))
        tier = self.cust_tier[cust]
        prio_lo = np.array(PRIORITY_RANGE[0])[tier]
        prio_hi = np.array(PRIORITY_RANGE[1])[tier]
        priority = rng.integers(prio_lo, prio_hi + 1)
        on_hold = rng.random(n_orders) < 0.05

        order = np.repeat(np.arange(n_orders), lines_per_order)
        starts = np.concatenate([[0], np.cumsum(lines_per_order)[:-1]])
        line_no = np.arange(len(order)) - starts[order] + 1
        n_lines = len(order)
        sku_weight = self.series_mean.reshape(S, L).sum(axis=1) * self.active + 1e-9
        sku = _pick(rng, sku_weight, n_lines)
        series = sku * L + loc[order]
        d = np.maximum(self.series_mean[series], 0.5)
        qty = np.ceil(d * rng.uniform(*LINE_SHARE, n_lines) * np.array(LINE_TIER_FACTOR)[tier[order]])
        status = _pick(rng, [0.76, 0.12, 0.09, 0.03], n_lines)
        stocked_out = self.on_hand[series] <= 0
        status = np.where(stocked_out & (rng.random(n_lines) < 0.7), 2, status)
        status = np.where(on_hold[order], 3, status)
        return pd.DataFrame(
            {
                "order_id": _codes("SO-", 4_000_001 + np.arange(n_orders), 7)[order],
                "line_no": line_no.astype(np.int64),
                "customer_id": self.cust_codes[cust[order]],
                "sku": self.sku_codes[sku],
                "location_id": self.loc_codes[loc[order]],
                "qty_open": qty.astype(np.float64),
                "promise_date": _days(self.as_of, promise_offset[order]),
                "priority": priority[order].astype(np.int64),
                "status": np.array(("open", "partial", "backordered", "on_hold"), dtype=object)[status],
            }
        )

    def _purchase_orders(
        self,
        series_sku: np.ndarray,
        series_loc: np.ndarray,
        ordering: np.ndarray,
        lead_days: np.ndarray,
        cycle: np.ndarray,
        q: np.ndarray,
        pack: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The open PO lines of the replenishment cycle, laid out into `self._po` for `purchase_order_lines`.

        Returns per line (sorted by SKU-location, then expected date): its SKU-location, the day it is
        expected (from as_of, <= 0: overdue), its open quantity and the part already received.
        """
        rng, N = self.rng, self.N
        sup_of = self.sku_supplier[series_sku]
        # Each supplier is ordered from on a fixed weekday; orders go out every `cycle` weeks, the latest
        # `phase` weeks ago. Those not yet due are open; for one in ten SKU-locations the one before is too,
        # overdue by up to three weeks (the ones a buyer chases).
        last_order_day = -((self.as_of.weekday() - self.sup_order_weekday[sup_of]) % 7)
        phase = rng.random(N) * cycle
        horizon = lead_days + last_order_day  # an order placed w weeks back is open while 7·w < horizon
        n_open = np.where(ordering, np.ceil(np.maximum(horizon / 7.0 - phase, 0.0) / cycle), 0).astype(np.int64)
        overdue = ordering & (rng.random(N) < 0.10)
        count = n_open + overdue
        series = np.repeat(np.arange(N), count)
        n = len(series)
        k = np.arange(n) - np.repeat(np.cumsum(count) - count, count)
        weeks_back = np.floor(phase[series] + k * cycle[series]).astype(np.int64)
        order_offset = last_order_day[series] - 7 * weeks_back
        expected_offset = order_offset + lead_days[series]
        # Overdue extras are the latest order already due (k == n_open) if it was due in the last three weeks;
        # the candidate bound is conservative, so keep only open lines and those extras.
        keep = (expected_offset > 0) | ((k == n_open[series]) & (expected_offset > -22))
        series, order_offset, expected_offset = series[keep], order_offset[keep], expected_offset[keep]
        n = len(series)
        sku, loc, sup = series_sku[series], series_loc[series], sup_of[series]
        qty = q[series]
        line_pack = pack[series]

        # Lines of one supplier, DC and order day form a PO (split past MAX_LINES_PER_PO lines).
        order = np.lexsort((sku, order_offset, loc, sup))
        series, sku, loc, sup, order_offset, expected_offset, qty, line_pack = (
            a[order] for a in (series, sku, loc, sup, order_offset, expected_offset, qty, line_pack)
        )
        new_group = np.ones(n, dtype=bool)
        if n:
            new_group[1:] = (sup[1:] != sup[:-1]) | (loc[1:] != loc[:-1]) | (order_offset[1:] != order_offset[:-1])
        group = np.cumsum(new_group) - 1
        group_start = np.flatnonzero(new_group)
        rank = np.arange(n) - group_start[group] if n else np.zeros(0, dtype=np.int64)
        new_po = new_group | (rank % MAX_LINES_PER_PO == 0)
        po = np.cumsum(new_po) - 1
        line_no = rank % MAX_LINES_PER_PO + 1
        n_po = int(po[-1]) + 1 if n else 0

        confirmed = rng.random(n_po) < 0.7
        kind = _pick(rng, [0.55, 0.35, 0.10], n_po)
        slip = np.where(kind == 1, rng.integers(1, 22, n_po), np.where(kind == 2, -rng.integers(1, 4, n_po), 0))
        partial = confirmed & (rng.random(n_po) < 0.15)
        # A draft is mostly this week's order not sent yet; now and then an older one that was forgotten.
        this_week = np.zeros(n_po, dtype=bool)
        this_week[po] = order_offset > -7
        draft = ~confirmed & (rng.random(n_po) < np.where(this_week, 0.3, 0.05))
        status = np.where(partial, 3, np.where(confirmed, 2, np.where(draft, 0, 1)))
        # Part of a partially received line is in already.
        received = np.minimum(line_pack * np.floor(rng.random(n) * qty / line_pack), qty - line_pack)
        received = np.where(partial[po], np.maximum(received, 0.0), 0.0)
        confirmed_dates = _days(self.as_of, expected_offset + slip[po])
        confirmed_dates[~confirmed[po]] = np.datetime64("NaT")
        self._po = pd.DataFrame(
            {
                "po_id": _codes("PO-", 7_000_001 + np.arange(n_po), 7)[po],
                "line_no": line_no.astype(np.int64),
                "supplier_id": self.sup_codes[sup],
                "sku": self.sku_codes[sku],
                "location_id": self.loc_codes[loc],
                "qty_open": (qty - received).astype(np.float64),
                "order_date": _days(self.as_of, order_offset),
                "expected_date": _days(self.as_of, expected_offset),
                "confirmed_date": confirmed_dates,
                "status": np.array(("draft", "sent", "confirmed", "partial"), dtype=object)[status[po]],
            }
        )
        by_series = np.lexsort((expected_offset, series))
        return series[by_series], expected_offset[by_series], qty[by_series], received[by_series]

    def purchase_order_lines(self) -> pd.DataFrame:
        """The open PO lines drawn with the stock in `inventory_position` (which must run first)."""
        return self._po

    def pipeline_opportunities(self) -> pd.DataFrame:
        rng, S, L = self.rng, self.S, self.L
        n_opp = max(10, S // 8)
        k = np.minimum(rng.geometric(0.55, n_opp), min(5, S))
        opp = np.repeat(np.arange(n_opp), k)
        starts = np.concatenate([[0], np.cumsum(k)[:-1]])
        j = np.arange(len(opp)) - starts[opp]
        # An opportunity quotes neighbouring SKUs of one category (k <= S keeps them distinct).
        base = rng.integers(0, S, n_opp)
        sku = self.cat_order[(base[opp] + j) % S]
        cust = _pick(rng, np.array([3.0, 2.0, 1.0])[self.cust_tier], n_opp)
        stage = _pick(rng, [0.25, 0.20, 0.20, 0.15, 0.10, 0.10], n_opp)
        p_lo = np.array([0.05, 0.15, 0.35, 0.60, 1.0, 0.0])[stage]
        p_hi = np.array([0.15, 0.35, 0.60, 0.85, 1.0, 0.0])[stage]
        probability = np.round(rng.uniform(p_lo, p_hi), 2)
        expected = rng.integers(7, 85, n_opp)
        weekly = np.maximum(self.series_mean.reshape(S, L).sum(axis=1), 1.0)
        qty = np.ceil(weekly[sku] * rng.uniform(2.0, 12.0, len(opp)))
        return pd.DataFrame(
            {
                "opportunity_id": _codes("OPP-", 1 + np.arange(n_opp), 6)[opp],
                "sku": self.sku_codes[sku],
                "customer_id": self.cust_codes[cust[opp]],
                "qty": qty.astype(np.float64),
                "probability": probability[opp].astype(np.float64),
                "expected_date": _days(self.as_of, expected[opp]),
                "stage": np.array(
                    ("prospecting", "qualification", "proposal", "negotiation", "won", "lost"), dtype=object
                )[stage[opp]],
            }
        )
