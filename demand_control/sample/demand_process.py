"""The sample distributor's demand process: per series traits (level, class, seasonality, trend), promotions
and the weekly demand they draw. The generator draws the history with it; the digital twin continues the
very same process past the as-of date."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from demand_control.sample.catalogue import SERIES_BLOCK


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
