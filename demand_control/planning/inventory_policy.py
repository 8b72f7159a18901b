"""Inventory policy per SKU-location: service level, safety stock, reorder point, order-up-to level and the
order quantity rounded to MOQ and pack size, by the formulas of DOMAIN.md, vectorised over the panel.

Demand figures come from the `demand_forecast` table (mean and quantiles q05..q95 per bucket), lead time
from the primary `sourcing` lane. Smooth and erratic items (and anything not classed intermittent or lumpy)
use the normal formula; intermittent and lumpy items use the quantile of lead-time demand taken from the
forecast distribution, because the normal formula is known to fail for slow movers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from statistics import NormalDist

from demand_control.planning.inventory_common import SKU_LOCATION, require_columns, with_bucket_index
from demand_control.planning.metrics import QUANTILE_COLUMNS, QUANTILE_LEVELS
from demand_control.planning.vocabulary import TIER_RANK

Method = Literal["normal", "lead_time_quantile"]

# Φ⁻¹(0.90): (q90 − q10) spans 2·1.2816 standard deviations of a normal distribution.
Z90 = NormalDist().inv_cdf(0.90)
QUANTILE_METHOD_CLASSES: frozenset[str] = frozenset({"intermittent", "lumpy"})

POLICY_COLUMNS: tuple[str, ...] = (
    "sku",
    "location_id",
    "demand_class",
    "service_level",
    "z",
    "mean_daily_demand",
    "demand_std_per_bucket",
    "lead_time_days",
    "lead_time_std_days",
    "safety_stock",
    "reorder_point",
    "order_up_to",
    "method",
    "supplier_id",
    "moq",
    "pack_size",
    "lead_time_observations",
    "eoq",
    "order_quantity",
)


@dataclass(frozen=True)
class ServiceLevelTable:
    """Cycle service level (probability of no stockout in a replenishment cycle) by customer tier, with
    optional per-category overrides (category → tier → level). Tiers absent from an override fall back to
    `by_tier`; unknown tiers fall back to `default_tier`."""

    by_tier: Mapping[str, float] = field(
        default_factory=lambda: {"strategic": 0.98, "key": 0.95, "standard": 0.90}
    )
    category_overrides: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    default_tier: str = "standard"

    def __post_init__(self) -> None:
        if self.default_tier not in self.by_tier:
            raise ValueError(f"default_tier {self.default_tier!r} has no level in by_tier {sorted(self.by_tier)}")
        levels = [("by_tier", t, v) for t, v in self.by_tier.items()]
        levels += [(f"category_overrides[{c}]", t, v) for c, m in self.category_overrides.items() for t, v in m.items()]
        for where, tier, level in levels:
            if not 0.0 < float(level) < 1.0:
                raise ValueError(f"service level {where}[{tier}] = {level!r} must lie strictly between 0 and 1")


DEFAULT_SERVICE_LEVELS = ServiceLevelTable()


def service_level_for(tier: str | None, category: str | None = None, table: ServiceLevelTable = DEFAULT_SERVICE_LEVELS) -> float:
    """The cycle service level for a customer tier in a category: the category override if one is
    configured for that tier, else the tier's level, else the default tier's level."""
    tier_key = tier if tier in table.by_tier else table.default_tier
    override = table.category_overrides.get(category or "", {})
    if tier_key in override:
        return float(override[tier_key])
    return float(table.by_tier[tier_key])


def service_levels_for(tiers: pd.Series, categories: pd.Series, table: ServiceLevelTable = DEFAULT_SERVICE_LEVELS) -> pd.Series:
    """`service_level_for` over aligned columns of tiers and categories (loops over configured categories,
    never over rows)."""
    tier_key = tiers.where(tiers.isin(list(table.by_tier)), table.default_tier)
    levels = tier_key.map(dict(table.by_tier)).astype(float)
    for category, per_tier in table.category_overrides.items():
        mask = (categories == category).to_numpy()
        if mask.any():
            overridden = tier_key[mask].map(dict(per_tier))
            levels[mask] = overridden.fillna(levels[mask]).to_numpy(dtype=float)
    return levels.rename("service_level")




def sku_location_service_levels(
    sku_locations: pd.DataFrame,
    order_lines: pd.DataFrame,
    customers: pd.DataFrame,
    products: pd.DataFrame,
    table: ServiceLevelTable = DEFAULT_SERVICE_LEVELS,
) -> pd.DataFrame:
    """Service level per SKU-location: the strictest level among the customers with open order lines for it
    (a SKU-location serving a strategic customer is planned at the strategic level), and the default tier's
    level in the SKU's category where no customer is waiting.

    Returns sku, location_id, tier, category, service_level for every row of `sku_locations`."""
    require_columns(order_lines, [*SKU_LOCATION, "customer_id"], "order_lines")
    require_columns(customers, ["customer_id", "tier"], "customers")
    require_columns(products, ["sku", "category"], "products")
    keys = sku_locations[SKU_LOCATION].drop_duplicates().reset_index(drop=True)
    keys = keys.merge(products[["sku", "category"]].drop_duplicates("sku"), on="sku", how="left")
    lines = order_lines[[*SKU_LOCATION, "customer_id"]].merge(customers[["customer_id", "tier"]], on="customer_id", how="left")
    lines = lines.merge(keys, on=SKU_LOCATION, how="inner")
    lines["service_level"] = service_levels_for(lines["tier"], lines["category"], table).to_numpy()
    lines["rank"] = lines["tier"].map(TIER_RANK).fillna(len(TIER_RANK))
    best = (
        lines.sort_values([*SKU_LOCATION, "service_level", "rank"], ascending=[True, True, False, True], kind="mergesort")
        .drop_duplicates(SKU_LOCATION)[[*SKU_LOCATION, "tier", "service_level"]]
    )
    out = keys.merge(best, on=SKU_LOCATION, how="left")
    no_orders = out["service_level"].isna()
    out.loc[no_orders, "tier"] = table.default_tier
    out.loc[no_orders, "service_level"] = service_levels_for(
        out.loc[no_orders, "tier"], out.loc[no_orders, "category"], table
    ).to_numpy()
    return out[[*SKU_LOCATION, "tier", "category", "service_level"]]


def round_order_quantity(qty: np.ndarray | pd.Series | float, moq: np.ndarray | pd.Series | float, pack: np.ndarray | pd.Series | float) -> np.ndarray:
    """The smallest quantity that is ≥ qty, ≥ moq and a whole multiple of pack; 0 where qty ≤ 0 (nothing to
    order). A missing or non-positive MOQ or pack size imposes no constraint. When the MOQ is not itself a
    multiple of the pack, the result is the first pack multiple at or above the MOQ.

    Exact up to a relative tolerance of 1e-9, so that 0.3 / 0.1 counts as 3 packs, not 4."""
    q = np.asarray(qty, dtype=float)
    m = np.nan_to_num(np.asarray(moq, dtype=float), nan=0.0)
    p = np.nan_to_num(np.asarray(pack, dtype=float), nan=0.0)
    q, m, p = np.broadcast_arrays(q, m, p)
    target = np.maximum(q, np.maximum(m, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        packs = np.where(p > 0, np.ceil(target / np.where(p > 0, p, 1.0) * (1 - 1e-9)), 0.0)
    rounded = np.where(p > 0, packs * p, target)
    return np.where(q > 0, rounded, 0.0)


def order_quantity(
    inventory_position: np.ndarray | pd.Series | float,
    reorder_point: np.ndarray | pd.Series | float,
    order_up_to: np.ndarray | pd.Series | float,
    moq: np.ndarray | pd.Series | float,
    pack: np.ndarray | pd.Series | float,
) -> np.ndarray:
    """The (R, s, S) order: when the inventory position (on hand − allocated + on order) is at or below the
    reorder point, order up to the order-up-to level, rounded up to MOQ and pack size; else 0."""
    position = np.asarray(inventory_position, dtype=float)
    raw = np.where(position <= np.asarray(reorder_point, dtype=float), np.asarray(order_up_to, dtype=float) - position, 0.0)
    return round_order_quantity(raw, moq, pack)


def primary_lanes(sourcing: pd.DataFrame) -> pd.DataFrame:
    """One sourcing lane per SKU-location: the primary one; where none or several are flagged primary, the
    shortest lead time, then the lowest supplier id (deterministic)."""
    require_columns(sourcing, [*SKU_LOCATION, "supplier_id", "lead_time_days", "lead_time_std_days", "moq", "pack_size"], "sourcing")
    lanes = sourcing.copy()
    lanes["_primary"] = lanes["primary"].fillna(False).astype(bool) if "primary" in lanes else False
    lanes = lanes.sort_values(
        [*SKU_LOCATION, "_primary", "lead_time_days", "supplier_id"], ascending=[True, True, False, True, True], kind="mergesort"
    )
    cols = [*SKU_LOCATION, "supplier_id", "lead_time_days", "lead_time_std_days", "moq", "pack_size"]
    return lanes.drop_duplicates(SKU_LOCATION)[cols].reset_index(drop=True)


# Weight of the quoted lead time against observed ones: the quote counts as this many observations, so two
# or three confirmations move the planning figure only part of the way and a long record dominates it.
LEAD_TIME_PRIOR_WEIGHT = 3.0


def observed_lead_times(purchase_lines: pd.DataFrame) -> pd.DataFrame:
    """Lead times the suppliers actually gave, per lane (sku, location_id, supplier_id): count, mean and
    sample standard deviation of confirmed_date − order_date over the PO lines that have a confirmation.
    (The canonical contracts carry no receipt history; a supplier's confirmed date is the closest observed
    figure, and a delay event moves it.)"""
    cols = [*SKU_LOCATION, "supplier_id", "observations", "observed_mean_days", "observed_std_days"]
    if purchase_lines.empty or "confirmed_date" not in purchase_lines:
        return pd.DataFrame(columns=cols)
    po = purchase_lines.dropna(subset=["confirmed_date", "order_date"])
    days = (pd.to_datetime(po["confirmed_date"]) - pd.to_datetime(po["order_date"])) / pd.Timedelta(days=1)
    po = po.assign(_days=days)[days >= 0]
    stats = po.groupby([*SKU_LOCATION, "supplier_id"], as_index=False)["_days"].agg(observations="count", observed_mean_days="mean", observed_std_days="std")
    return stats[cols]


def blend_lead_times(lanes: pd.DataFrame, observed: pd.DataFrame, prior_weight: float = LEAD_TIME_PRIOR_WEIGHT) -> pd.DataFrame:
    """The lanes' lead time mean and spread updated with observed lead times: the quote counts as
    `prior_weight` observations (mean_blend = (k·L_quote + n·L_obs)/(k + n)); the variance pools the quoted
    variance (weight k) with the observed sample variance (weight n − 1) plus the spread between the quoted
    and observed means, so a supplier who confirms later than quoted also widens the safety stock."""
    out = lanes.merge(observed, on=[*SKU_LOCATION, "supplier_id"], how="left")
    n = out["observations"].astype(float).fillna(0.0).to_numpy()
    k = float(prior_weight)
    quote, quote_sd = out["lead_time_days"].to_numpy(dtype=float), np.nan_to_num(out["lead_time_std_days"].to_numpy(dtype=float), nan=0.0)
    obs = np.nan_to_num(out["observed_mean_days"].to_numpy(dtype=float), nan=0.0)
    obs_sd = np.nan_to_num(out["observed_std_days"].to_numpy(dtype=float), nan=0.0)
    mean = (k * quote + n * obs) / (k + n)
    between = k * n / (k + n) * (obs - quote) ** 2
    var = (k * quote_sd**2 + np.maximum(n - 1, 0) * obs_sd**2 + between) / np.maximum(k + np.maximum(n - 1, 0), 1.0)
    out["lead_time_days"] = np.where(n > 0, mean, quote)
    out["lead_time_std_days"] = np.where(n > 0, np.sqrt(var), out["lead_time_std_days"].to_numpy(dtype=float))
    out["lead_time_observations"] = n.astype(int)
    return out.drop(columns=["observations", "observed_mean_days", "observed_std_days"])


def economic_order_quantity(annual_demand: np.ndarray | pd.Series, ordering_cost: float, holding_cost_per_unit_year: np.ndarray | pd.Series) -> np.ndarray:
    """EOQ = √(2·D·S/H); NaN where the ordering cost is not configured (≤ 0) or holding cost is zero."""
    d = np.asarray(annual_demand, dtype=float)
    h = np.asarray(holding_cost_per_unit_year, dtype=float)
    if ordering_cost <= 0:
        return np.full_like(d, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(h > 0, np.sqrt(2.0 * np.maximum(d, 0.0) * ordering_cost / h), np.nan)


def normal_ppf(p: np.ndarray) -> np.ndarray:
    """Φ⁻¹, vectorised. scipy.special is imported on use: scipy.stats would add seconds to every run's start."""
    from scipy.special import ndtri

    return ndtri(p)


def quantile_at(quantiles: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Per row, the quantile at `levels[row]` of a distribution known by its quantiles at QUANTILE_LEVELS
    (columns of `quantiles`), interpolated linearly in z = Φ⁻¹(level) and extrapolated beyond q05/q95 with
    the end segments' slope. Exact for a normal distribution; service levels above 0.95 need the tail."""
    q = np.maximum.accumulate(np.asarray(quantiles, dtype=float), axis=1)
    z_known = normal_ppf(np.asarray(QUANTILE_LEVELS))
    z = normal_ppf(np.asarray(levels, dtype=float))
    hi = np.clip(np.searchsorted(z_known, z), 1, len(z_known) - 1)
    lo = hi - 1
    rows = np.arange(q.shape[0])
    q_lo, q_hi = q[rows, lo], q[rows, hi]
    return q_lo + (q_hi - q_lo) * (z - z_known[lo]) / (z_known[hi] - z_known[lo])


def _service_level_frame(
    keys: pd.DataFrame, service_levels: pd.DataFrame | Mapping[tuple[str, str], float] | float, default: float
) -> pd.Series:
    """Service level aligned to `keys` (sku, location_id) from a frame, a {(sku, location_id): level} mapping
    or one level for all; SKU-locations not given get `default`."""
    if isinstance(service_levels, pd.DataFrame):
        require_columns(service_levels, [*SKU_LOCATION, "service_level"], "service_levels")
        levels = keys.merge(
            service_levels[[*SKU_LOCATION, "service_level"]].drop_duplicates(SKU_LOCATION), on=SKU_LOCATION, how="left"
        )["service_level"]
    elif isinstance(service_levels, Mapping):
        pairs = zip(keys["sku"].to_numpy(), keys["location_id"].to_numpy())
        levels = pd.Series([service_levels.get(k, np.nan) for k in pairs], dtype=float)
    else:
        levels = pd.Series(float(service_levels), index=keys.index)
    levels = levels.astype(float).fillna(default).reset_index(drop=True)
    bad = ~((levels > 0) & (levels < 1))
    if bad.any():
        raise ValueError(f"service levels must lie strictly between 0 and 1; got {levels[bad].unique()[:5].tolist()}")
    return levels


def inventory_policy(
    forecast: pd.DataFrame,
    sourcing: pd.DataFrame,
    service_levels: pd.DataFrame | Mapping[tuple[str, str], float] | float,
    review_period_days: float,
    bucket_days: int = 7,
    default_service_level: float = DEFAULT_SERVICE_LEVELS.by_tier[DEFAULT_SERVICE_LEVELS.default_tier],
    purchase_lines: pd.DataFrame | None = None,
    ordering_cost: float = 0.0,
    holding_rate: float = 0.25,
    unit_costs: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Safety stock, reorder point and order-up-to level per SKU-location (columns POLICY_COLUMNS).

    Demand is read from the forecast over the protection interval P = L + review period (at least one
    bucket), starting at each SKU-location's first forecast bucket; a bucket partly inside P counts by the
    share inside (w_k = clip(P/b − k, 0, 1)), and a horizon shorter than P is averaged over what it covers:

    - mean_daily_demand d̄ = Σ w_k·mean_k / (b·Σ w_k);
    - demand_std_per_bucket σ_b = √(Σ w_k·σ_k² / Σ w_k) with σ_k = (q90_k − q10_k)/(2·1.2816), the normal σ
      implied by the forecast's 80% interval (the forecast's quantiles are calibrated on backtest errors,
      so this is the forecast-error σ, not the spread of history).

    `normal` (smooth, erratic, and any class not intermittent/lumpy): with L and σ_L in days and days within
    a bucket independent, L·σ_d² = (L/b)·σ_b², so SS = z·√((L/b)·σ_b² + d̄²·σ_L²).

    `lead_time_quantile` (intermittent, lumpy): SS = Q_α(lead-time demand) − E(lead-time demand),
    approximated as √((L/b)·ē² + (z·d̄·σ_L)²), where e_k = max(Q_α,k − mean_k, 0) is the excess of each
    bucket's α-quantile over its mean (Q_α,k interpolated in z between the forecast's quantiles, see
    `quantile_at`) and ē² its w-weighted mean square. The buckets' excesses add as independent (root sum of
    squares) but each keeps the skew of its own forecast distribution; lead-time variability adds in
    quadrature exactly as in the normal formula. The approximation is exact when L is one bucket and σ_L = 0,
    and equals the normal formula when every bucket is normal.

    ROP = d̄·L + SS; order-up-to = ROP + d̄·review_period. SKU-locations without a sourcing lane get NaN lead
    time and policy (no invented lead time); the caller reports them as data quality. SS is never negative.

    Lead time: the primary lane's quoted mean and spread, updated with the lead times suppliers confirmed on
    `purchase_lines` when given (`blend_lead_times`). Order quantity: with an `ordering_cost` per order
    configured, EOQ = √(2·D·S/H) with D = d̄·365 and H = `holding_rate` × unit cost (from `unit_costs`:
    sku, unit_cost) per unit-year, and the order-up-to level becomes ROP + max(d̄·review_period, EOQ);
    order_quantity = that lot (order-up-to − ROP) rounded up to MOQ and pack size.
    """
    require_columns(forecast, [*SKU_LOCATION, "period_start", "mean", *QUANTILE_COLUMNS, "demand_class"], "forecast")
    if bucket_days <= 0:
        raise ValueError(f"bucket_days must be positive, got {bucket_days}")
    if review_period_days < 0:
        raise ValueError(f"review_period_days must be ≥ 0, got {review_period_days}")
    b = float(bucket_days)
    fc = with_bucket_index(forecast)

    keys = fc.drop_duplicates(SKU_LOCATION)[[*SKU_LOCATION, "demand_class"]].reset_index(drop=True)
    lanes = primary_lanes(sourcing)
    lanes = blend_lead_times(lanes, observed_lead_times(purchase_lines)) if purchase_lines is not None else lanes.assign(lead_time_observations=0)
    keys = keys.merge(lanes, on=SKU_LOCATION, how="left")
    keys["service_level"] = _service_level_frame(keys, service_levels, default_service_level).to_numpy()
    keys["z"] = normal_ppf(keys["service_level"].to_numpy())

    per_row = fc[[*SKU_LOCATION, "bucket"]].merge(
        keys[[*SKU_LOCATION, "lead_time_days", "service_level"]], on=SKU_LOCATION, how="left"
    )
    lead = per_row["lead_time_days"].to_numpy(dtype=float)
    window_days = np.maximum(np.nan_to_num(lead, nan=0.0) + float(review_period_days), b)
    w = np.clip(window_days / b - fc["bucket"].to_numpy(dtype=float), 0.0, 1.0)
    mean = fc["mean"].to_numpy(dtype=float)
    q = fc[list(QUANTILE_COLUMNS)].to_numpy(dtype=float)
    sigma = np.maximum(fc["q90"].to_numpy(dtype=float) - fc["q10"].to_numpy(dtype=float), 0.0) / (2 * Z90)
    excess = np.maximum(quantile_at(q, per_row["service_level"].to_numpy()) - mean, 0.0)

    sums = pd.DataFrame(
        {"w": w, "wm": w * mean, "wv": w * sigma**2, "we2": w * excess**2, "sku": fc["sku"], "location_id": fc["location_id"]}
    ).groupby(SKU_LOCATION, sort=False)[["w", "wm", "wv", "we2"]].sum()
    sums = keys[SKU_LOCATION].merge(sums.reset_index(), on=SKU_LOCATION, how="left")
    W = sums["w"].to_numpy()
    d_bar = sums["wm"].to_numpy() / (b * W)
    sigma_b = np.sqrt(sums["wv"].to_numpy() / W)
    e2 = sums["we2"].to_numpy() / W

    L = keys["lead_time_days"].to_numpy(dtype=float)
    sL = np.nan_to_num(keys["lead_time_std_days"].to_numpy(dtype=float), nan=0.0)
    z = keys["z"].to_numpy()
    ss_normal = z * np.sqrt((L / b) * sigma_b**2 + d_bar**2 * sL**2)
    ss_quantile = np.sqrt((L / b) * e2 + (z * d_bar * sL) ** 2)
    use_quantile = keys["demand_class"].isin(QUANTILE_METHOD_CLASSES).to_numpy()
    ss = np.maximum(np.where(use_quantile, ss_quantile, ss_normal), 0.0)
    rop = d_bar * L + ss

    cost = keys[["sku"]].merge(unit_costs[["sku", "unit_cost"]].drop_duplicates("sku"), on="sku", how="left")["unit_cost"] if unit_costs is not None else pd.Series(np.nan, index=keys.index)
    eoq = economic_order_quantity(d_bar * 365.0, ordering_cost, holding_rate * cost.to_numpy(dtype=float))
    lot = np.fmax(d_bar * float(review_period_days), eoq)
    out = keys.assign(
        mean_daily_demand=d_bar,
        demand_std_per_bucket=sigma_b,
        lead_time_std_days=keys["lead_time_std_days"].astype(float),
        safety_stock=ss,
        reorder_point=rop,
        order_up_to=rop + lot,
        method=np.where(use_quantile, "lead_time_quantile", "normal"),
        lead_time_observations=keys["lead_time_observations"].fillna(0).astype(int),
        eoq=eoq,
        order_quantity=np.where(np.isfinite(lot), round_order_quantity(np.nan_to_num(lot), keys["moq"].to_numpy(), keys["pack_size"].to_numpy()), np.nan),
    )
    return out[list(POLICY_COLUMNS)]
