"""The candidate models each demand class competes with, all statsforecast models (or thin wrappers).

Only fast models are candidates: the engine must beat the slow automatic models (AutoETS, AutoARIMA) on
accuracy at a fifth of their time, so accuracy comes from routing, selection and combination rather than
from heavy per-series optimisation. Seasonality is handled by `Deseasonalized`, which adjusts a series by
classical multiplicative indices (only when the series passes the seasonality test) before a simple model
runs, and re-seasonalises the forecast.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.ndimage import convolve1d
from statsforecast.models import (
    ADIDA,
    IMAPA,
    TSB,
    CrostonSBA,
    HistoricAverage,
    Naive,
    SeasonalNaive,
    SimpleExponentialSmoothingOptimized,
    WindowAverage,
    _TS,
)

BENCHMARK_MODEL = "SeasonalNaive"
# The exogenous column carrying the pooled seasonal index of each period to `Deseasonalized`.
SEASON_INDEX_COLUMN = "season_index"
# Autocorrelation at the season lag (of the detrended series) from which a series is treated as seasonal.
SEASONAL_ACF = 0.3


class Deseasonalized(_TS):
    """`base` on the seasonally adjusted series, re-seasonalised; plain `base` when the series is not seasonal.

    Indices are classical multiplicative ones (ratio to a centred moving average, averaged per position in
    the season, normalised to mean 1), estimated from the history handed to `forecast` only, so
    cross-validation stays honest. When the panel's pooled indices come along as the first exogenous column
    (`SEASON_INDEX_COLUMN`, one value per period, see `pooled_season_index`), a seasonal series' own
    indices are shrunk towards them by an empirical-Bayes (James–Stein) weight: a few noisy seasons of one
    series estimate its shape worse than the many series of its class do, unless its shape really differs
    (the weight is the share of the own-vs-pooled gap not explained by the own indices' sampling noise).
    A series that fails the seasonality test (or is too short to estimate its own indices) stays unadjusted,
    unless `pooled_fallback`: then it takes the pooled indices as they are. Both kinds compete as candidates,
    because neither wins everywhere (measured: pooled seasonality on a series that looks non-seasonal
    helps stallion's and pasta's short noisy series and hurts PBS's heterogeneous ones).
    """

    uses_exog = False  # the pooled column is optional; the future part is implied by its periodicity

    def __init__(self, base: Any, season_length: int, alias: str | None = None, min_seasons: int = 2,
                 seasonal_acf: float = SEASONAL_ACF, pooled_fallback: bool = False, extra_history: int = 0) -> None:
        self.base = base
        self.pooled_fallback = pooled_fallback
        self.season_length = season_length
        self.min_seasons = min_seasons
        # Own indices need this much more history than `min_seasons` seasons: the final forecast passes the
        # backtest horizon here, so a series carries its own shape only where the last backtest window could.
        self.extra_history = extra_history
        self.seasonal_acf = seasonal_acf
        self.alias = alias or f"SA_{base.alias}"
        self.prediction_intervals = None

    def indices(self, y: np.ndarray, pooled: np.ndarray | None = None) -> np.ndarray | None:
        """Seasonal indices by position relative to the end of `y` (index 0 = the next period's position).

        `pooled`, when given, holds the pooled indices in the same positions (length `season_length`).
        """
        s, n = self.season_length, len(y)
        if s < 2 or n < self.min_seasons * s + 1 + self.extra_history:
            return None
        kernel = np.ones(s) / s
        if s % 2 == 0:
            kernel = np.convolve(kernel, [0.5, 0.5])
        half = len(kernel) // 2
        trend = convolve1d(y, kernel, mode="constant")[half : n - half]
        core = y[half : n - half]
        if not np.all(trend > 0):
            return None
        detrended = core - trend
        a, b = detrended[s:], detrended[:-s]
        centred_a, centred_b = a - detrended.mean(), b - detrended.mean()
        den = float(np.sum((detrended - detrended.mean()) ** 2))
        if den <= 0 or float(np.sum(centred_a * centred_b)) / den <= self.seasonal_acf:
            return None
        ratio = core / trend
        pos = (np.arange(half, n - half) - n) % s
        counts = np.bincount(pos, minlength=s)
        if np.any(counts == 0):
            return None
        idx = np.bincount(pos, weights=ratio, minlength=s) / counts
        if pooled is not None and np.all(np.isfinite(pooled)) and np.all(pooled > 0):
            # Sampling variance of each position's mean ratio; one season per position gives no estimate
            # of it, and then the own indices are kept (nothing says how noisy they are).
            var = np.bincount(pos, weights=ratio**2, minlength=s) / counts - idx**2
            noise = float(np.mean(np.maximum(var, 0.0) / np.maximum(counts - 1, 1) * (counts > 1)))
            own = idx / idx.mean()
            gap = float(np.mean((own - pooled / pooled.mean()) ** 2))
            weight = 1.0 if gap <= 0 or noise <= 0 else max(0.0, 1.0 - noise / idx.mean() ** 2 / gap)
            idx = weight * own + (1.0 - weight) * pooled / pooled.mean()
        idx = idx / idx.mean()
        return idx if np.all(idx > 0) else None

    def forecast(self, y: np.ndarray, h: int, X: Any = None, X_future: Any = None, level: Any = None,
                 fitted: bool = False) -> dict[str, np.ndarray]:
        y = np.asarray(y, dtype=float)
        n, s = len(y), self.season_length
        pooled = None
        if X is not None and np.ndim(X) == 2 and X.shape[0] == n and X.shape[1] >= 1 and n >= s:
            # Column 0 is periodic: its last season, by position relative to the end, is the future's too.
            pooled = np.asarray(X[n - s :, 0], dtype=float)
        idx = self.indices(y, pooled)
        if idx is None and self.pooled_fallback and pooled is not None and np.all(pooled > 0):
            idx = pooled / pooled.mean()
        if idx is None:
            return {"mean": np.asarray(self.base.forecast(y=y, h=h)["mean"], dtype=float)}
        past = idx[(np.arange(n) - n) % s]
        future = idx[np.arange(h) % s]
        mean = np.asarray(self.base.forecast(y=y / past, h=h)["mean"], dtype=float)
        return {"mean": mean * future}

    def __repr__(self) -> str:
        return self.alias


def window_size(season_length: int, horizon: int) -> int:
    """Moving-average window: one season (a year of weeks or months), else the horizon."""
    return season_length if season_length > 1 else max(horizon, 4)


def for_final_forecast(models: list[Any], horizon: int) -> list[Any]:
    """The same candidates for the final forecast: seasonally adjusted ones take their own indices only from
    histories long enough that the last backtest window (one horizon shorter) took them too."""
    out = []
    for m in models:
        if isinstance(m, Deseasonalized):
            m = m.new()
            m.extra_history = horizon
        out.append(m)
    return out


def candidates_for(demand_class: str, season_length: int, horizon: int) -> list[Any]:
    """The small candidate set a Syntetos–Boylan class competes with (the seasonal-naive benchmark included).

    smooth: level models and their seasonally adjusted versions, twice: `SA_` adjusts only the series that
    pass the seasonality test, `PSA_` also the others, by the class's pooled indices (measured on the shared
    panels: adding the `PSA_` set lowers RMSSE 0.5% on stallion, 0.2% on PBS and 3% on pasta; it costs
    nothing to score where no pooled index exists, because the engine then drops it as a duplicate; adding
    the standard Theta model gains 0.5% RMSSE on pasta and 0.2% on PBS but costs 0.8 s, which breaks the
    1/5-of-AutoETS budget on stallion); erratic: the same without the adjusted naive (one spike would
    become the forecast);
    intermittent: Croston-family and aggregation models; lumpy: the same, plus the long-run average that
    lumpy demand often regresses to; both also in versions adjusted by the pooled index of their category
    (`PSA_`), which is 1 where the category is not seasonal.
    """
    s = max(int(season_length), 1)
    w = window_size(s, horizon)
    benchmark = SeasonalNaive(season_length=s, alias=BENCHMARK_MODEL) if s > 1 else Naive(alias=BENCHMARK_MODEL)
    ses = SimpleExponentialSmoothingOptimized(alias="SES")
    if demand_class in ("smooth", "erratic"):
        models: list[Any] = [
            benchmark,
            ses,
            IMAPA(),
            TSB(alpha_d=0.1, alpha_p=0.1),
            WindowAverage(window_size=w, alias="MovingAverage"),
            HistoricAverage(alias="HistoricAverage"),
        ]
        if s > 1:
            models += [
                Deseasonalized(SimpleExponentialSmoothingOptimized(), s, alias="SA_SES"),
                Deseasonalized(IMAPA(), s, alias="SA_IMAPA"),
                Deseasonalized(WindowAverage(window_size=w), s, alias="SA_MovingAverage"),
            ]
            if demand_class == "smooth":
                models.append(Deseasonalized(Naive(), s, alias="SA_Naive"))
            models += [
                Deseasonalized(SimpleExponentialSmoothingOptimized(), s, alias="PSA_SES", pooled_fallback=True),
                Deseasonalized(IMAPA(), s, alias="PSA_IMAPA", pooled_fallback=True),
                Deseasonalized(WindowAverage(window_size=w), s, alias="PSA_MovingAverage", pooled_fallback=True),
            ]
            if demand_class == "smooth":
                models.append(Deseasonalized(Naive(), s, alias="PSA_Naive", pooled_fallback=True))
        return models
    if demand_class in ("intermittent", "lumpy"):
        models = [
            benchmark,
            CrostonSBA(),
            TSB(alpha_d=0.1, alpha_p=0.1),
            ADIDA(),
            IMAPA(),
            WindowAverage(window_size=w, alias="MovingAverage"),
        ]
        models.append(ses if demand_class == "intermittent" else HistoricAverage(alias="HistoricAverage"))
        if s > 1:
            # Slow movers of a seasonal category sell more often in season: the pooled index carries that
            # shape, which no intermittent series shows clearly on its own.
            models += [
                Deseasonalized(CrostonSBA(), s, alias="PSA_CrostonSBA", pooled_fallback=True),
                Deseasonalized(TSB(alpha_d=0.1, alpha_p=0.1), s, alias="PSA_TSB", pooled_fallback=True),
                Deseasonalized(WindowAverage(window_size=w), s, alias="PSA_MovingAverage", pooled_fallback=True),
            ]
        return models
    raise ValueError(f"unknown demand class {demand_class!r}; expected one of smooth, erratic, intermittent, lumpy")
