"""Forecasts for series with less than two seasons of history (the `short` route).

A series this short cannot carry its own seasonality, and its seasonal naive forecast repeats one noisy
year. It competes among methods that need no seasonal history (SES, Croston classic and SBA, TSB, ADIDA,
IMAPA, the historic and recent mean) in a backtest that fits the data available: `n_windows` back-to-back
windows of `w` periods, `w` = the shortest history of the length band divided by `n_windows + 1` (at most
the horizon), so even a 12-point series is backtested on two windows of 4. Series are banded by length
(under one season, one to two seasons), and each (band, demand class) selects one combination.

Seasonality is borrowed, never estimated from one series alone: where the series' category (or class) has
a detected pooled seasonal index (`planning.seasonality`), `PSA_` candidates forecast the series adjusted by
that index, each series' own one-season shape shrunk towards it by empirical Bayes when it has a full
season. When the pooled index can be estimated without the backtest windows, the `PSA_` candidates compete
in the backtest like any other; when it cannot (one season of data in all), the selection runs on the
unadjusted candidates and the selected combination is applied to the adjusted series only if the index
passed the one-season test. The group's systematic backtest bias is corrected, and quantiles come from the
cross-fitted backtest errors of series of the same band and class, extended to the full horizon; with one
season in all (the backtest borrowed the pooled index alone, the final fit blends in each series' own
shape), from the latest window's errors of the series forecast the same way, with a shape or without
(`calibration_quantiles`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from statsforecast.models import (
    ADIDA,
    IMAPA,
    TSB,
    CrostonClassic,
    CrostonSBA,
    HistoricAverage,
    SimpleExponentialSmoothingOptimized,
    _TS,
)

from demand_control.planning.metrics import QUANTILE_LEVELS, SPL_LEVELS, pinball
from demand_control.planning.seasonality import shrink_towards_pooled
from demand_control.planning.selection import (
    BiasCheck,
    bias_check,
    cross_fitted_mean,
    extend_steps,
    quantiles_by_step,
    select,
)

# Index of each (series id, phase) pair, long format: the pooled seasonal index a series borrows.
IndexFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
SEASONAL_PREFIX = "PSA_"
# The base models a seasonally adjusted candidate is built on (the rest stay unadjusted only).
_ADJUSTED_BASES = ("SES", "IMAPA", "HistoricAverage", "RecentMean")


class RecentMean(_TS):
    """The mean of the last `window` periods (of all of them when the series is shorter)."""

    def __init__(self, window: int, alias: str = "RecentMean") -> None:
        self.window = max(int(window), 1)
        self.alias = alias
        self.prediction_intervals = None

    def forecast(self, y: np.ndarray, h: int, X: Any = None, X_future: Any = None, level: Any = None,
                 fitted: bool = False) -> dict[str, np.ndarray]:
        y = np.asarray(y, dtype=float)
        return {"mean": np.full(h, float(y[-self.window :].mean()) if len(y) else 0.0)}


def short_candidates(window: int) -> list[Any]:
    """The unadjusted candidates of the short route (methods that need no seasonal history)."""
    return [
        SimpleExponentialSmoothingOptimized(alias="SES"),
        CrostonClassic(),
        CrostonSBA(),
        TSB(alpha_d=0.1, alpha_p=0.1),
        ADIDA(),
        IMAPA(),
        HistoricAverage(alias="HistoricAverage"),
        RecentMean(window),
    ]


@dataclass(frozen=True)
class ShortSettings:
    horizon: int
    season_length: int
    n_windows: int = 2
    selection: str = "class"
    n_jobs: int = 1


@dataclass
class ShortResult:
    """Forecasts and backtest of the short route, rows in the caller's order."""

    mean: np.ndarray  # (S, H)
    quantiles: np.ndarray  # (S, H, L)
    model: np.ndarray  # (S,) label of the selected combination
    band: np.ndarray  # (S,) length band
    backtest: pd.DataFrame  # per series accuracy of the cross-fitted backtest (BACKTEST_COLUMNS subset)
    segments: list[dict[str, Any]] = field(default_factory=list)  # per (band, class): selection and bias


def length_band(lengths: np.ndarray, season_length: int) -> np.ndarray:
    """`under_1_season`, `1_to_2_seasons` or `2_seasons_or_more` (too short for the long backtest only);
    with no season: `short`."""
    if season_length < 2:
        return np.full(len(lengths), "short", dtype=object)
    return np.select(
        [lengths < season_length, lengths < 2 * season_length], ["under_1_season", "1_to_2_seasons"], "2_seasons_or_more"
    ).astype(object)


def _run(models: list[Any], values: np.ndarray, h: int, n_jobs: int) -> np.ndarray:
    """Every model's forecast (S, h, M) for right-aligned rows of `values` (NaN before each history)."""
    from statsforecast import StatsForecast

    S, width = values.shape
    observed = ~np.isnan(values)
    rows, cols = np.nonzero(observed)
    panel = pd.DataFrame({"unique_id": rows.astype(np.int64), "ds": cols.astype(np.int64), "y": values[rows, cols]})
    sf = StatsForecast(models=models, freq=1, n_jobs=n_jobs if S >= 2_000 else 1)
    fc = sf.forecast(df=panel, h=h).sort_values(["unique_id", "ds"])
    names = [repr(m) for m in models]
    out = fc[names].to_numpy(dtype=float).reshape(S, h, len(models))
    return np.nan_to_num(out, nan=0.0)


def series_indices(
    values: np.ndarray,
    ids: np.ndarray,
    phase: np.ndarray,
    index_fn: IndexFn,
    groups: np.ndarray,
    season_length: int,
    h: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's seasonal index over its history columns and the next `h` periods.

    `phase` (S, width + h) is the season phase of every history column and future step. The pooled index
    applies as it is to series shorter than a season; a series with a full season blends its own indices
    with it (`shrink_towards_pooled`), position by position counted from its end.
    """
    S, width = values.shape
    s = season_length
    pooled = index_fn(np.repeat(ids, width + h), phase.reshape(-1)).reshape(S, width + h)
    hist, fut = pooled[:, :width].copy(), pooled[:, width:].copy()
    lengths = (~np.isnan(values)).sum(axis=1)
    full = lengths >= s
    seasonal_rows = full & (np.abs(pooled - 1.0).max(axis=1) > 1e-9)
    if s >= 2 and seasonal_rows.any() and width >= s:
        r = np.flatnonzero(seasonal_rows)
        last = values[r, width - s :]
        level = last.mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            own = np.where(level[:, None] > 0, last / level[:, None], np.nan)
        p = pooled[r, width - s : width]
        p = p / p.mean(axis=1, keepdims=True)
        blended = shrink_towards_pooled(own, p, level, groups[r])
        pos_hist = (np.arange(width) - (width - s)) % s
        hist[r] = blended[:, pos_hist]
        fut[r] = blended[:, np.arange(h) % s]
    return hist, fut


def _adjusted_forecasts(
    models: list[Any], values: np.ndarray, hist: np.ndarray, fut: np.ndarray, h: int, n_jobs: int
) -> np.ndarray:
    safe = np.where(hist > 0, hist, 1.0)
    adjusted = _run(models, values / safe, h, n_jobs)
    return adjusted * fut[:, :h, None]


def _benchmark(train: np.ndarray, w: int, s: int) -> np.ndarray:
    """Seasonal naive where the training part holds a season, else naive: (S, w)."""
    S, width = train.shape
    lengths = (~np.isnan(train)).sum(axis=1)
    last = train[:, -1]
    out = np.repeat(last[:, None], w, axis=1)
    if s >= 2 and width >= s:
        seasonal = lengths >= s
        snaive = train[:, width - s + (np.arange(w) % s)]
        out[seasonal] = snaive[seasonal]
    return np.nan_to_num(out)


def _scores(
    train: np.ndarray, cv_mean: np.ndarray, cv_q: np.ndarray, Y: np.ndarray, bench: np.ndarray, s: int
) -> dict[str, np.ndarray]:
    """Per series backtest accuracy with the definitions of `metrics` (scales from the training part)."""
    S = train.shape[0]
    lengths = (~np.isnan(train)).sum(axis=1)
    d1 = np.diff(train, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rmsse_scale = np.nanmean(d1**2, axis=1)
        lag = np.where(lengths > s, s, 1)
        mase_scale = np.full(S, np.nan)
        for g in np.unique(lag):
            rows = lag == g
            mase_scale[rows] = np.nanmean(np.abs(train[rows, g:] - train[rows, :-g]), axis=1)
        rmsse_scale = np.where(rmsse_scale > 0, rmsse_scale, np.nan)
        mase_scale = np.where(mase_scale > 0, mase_scale, np.nan)
        err = cv_mean - Y
        levels = list(QUANTILE_LEVELS)
        spl_idx = [levels.index(q) for q in SPL_LEVELS]
        pin = np.mean([pinball(Y, cv_q[..., i], QUANTILE_LEVELS[i]) for i in spl_idx], axis=0)
        q10, q90 = cv_q[..., levels.index(0.10)], cv_q[..., levels.index(0.90)]
        median = cv_q[..., levels.index(0.50)]
        sq = err**2
        out = {
            "rmsse": np.sqrt(sq.mean(axis=(1, 2)) / rmsse_scale),
            "mase": np.abs(median - Y).mean(axis=(1, 2)) / mase_scale,
            "spl": pin.mean(axis=(1, 2)) / mase_scale,
            "bias": err.sum(axis=(1, 2)),
            "abs_actual": np.abs(Y).sum(axis=(1, 2)),
            "covered80": ((Y >= q10) & (Y <= q90)).sum(axis=(1, 2)).astype(float),
            "points": np.full(S, Y.shape[1] * Y.shape[2], dtype=float),
            "benchmark_rmsse": np.sqrt(((bench - Y) ** 2).mean(axis=(1, 2)) / rmsse_scale),
            "recent_rmsse": np.sqrt(sq[:, -1].mean(axis=1) / rmsse_scale),
            "earlier_rmsse": np.sqrt(sq[:, :-1].mean(axis=(1, 2)) / rmsse_scale) if Y.shape[1] > 1 else np.full(S, np.nan),
        }
    return out


def calibration_quantiles(errors: np.ndarray, shaped: np.ndarray | None) -> np.ndarray:
    """Per series step quantiles (S, w, L) of the scaled backtest errors `errors` (S, W, w) a group's
    intervals are calibrated on.

    Without `shaped` (the backtest forecast the series as the final fit does): every window of every series
    of the group, pooled. With `shaped` (one season in all, so the backtest could only borrow the pooled
    index while the final fit also blends in each series' own shape): the errors nearest to what is actually
    forecast, those of the latest window (its training history is the closest in length to the final fit's)
    of the series forecast the same way (with a seasonal shape, or without), each part falling back to the
    group's pool when it has too few points (`MIN_POOL`).
    """
    levels = np.asarray(QUANTILE_LEVELS)
    S, _, w = errors.shape
    pooled = quantiles_by_step(errors.reshape(-1, w), levels)
    out = np.repeat(pooled[None], S, axis=0)
    if shaped is None:
        return out
    for flag in (True, False):
        part = shaped == flag
        if part.any():
            out[part] = quantiles_by_step(errors[part][:, -1], levels, fallback=pooled)
    return out


def _quantiles(mean: np.ndarray, qscale: np.ndarray, row_q: np.ndarray) -> np.ndarray:
    """Quantile forecasts (S, H, L) = mean + scale · each series' error quantiles, non-negative and monotone."""
    q = np.maximum(mean[:, :, None] + qscale[:, None, None] * row_q, 0.0)
    return np.maximum.accumulate(q, axis=2)


def forecast_short(
    values: np.ndarray,
    ids: np.ndarray,
    classes: np.ndarray,
    phase: np.ndarray | None,
    final_index: IndexFn | None,
    honest_index: Callable[[int], IndexFn | None] | None,
    groups: np.ndarray,
    qscale: np.ndarray,
    settings: ShortSettings,
) -> ShortResult:
    """Forecast right-aligned short series (see the module docstring).

    `values` (S, width) holds each history right-aligned with NaN before it; `phase` (S, width + horizon)
    the season phase of each column and future step (None: no seasonality); `final_index` the pooled index
    of the whole panel, `honest_index(k)` the one estimated without each series' last k periods (None when
    it cannot be); `groups` the pooled group of each series (for the empirical-Bayes blend); `qscale` the
    unit the backtest errors are pooled in.
    """
    S, width = values.shape
    H, s, W0 = settings.horizon, settings.season_length, settings.n_windows
    lengths = (~np.isnan(values)).sum(axis=1)
    bands = length_band(lengths, s)
    n_levels = len(QUANTILE_LEVELS)
    mean = np.zeros((S, H))
    quant = np.zeros((S, H, n_levels))
    model = np.empty(S, dtype=object)
    frames: list[pd.DataFrame] = []
    segments: list[dict[str, Any]] = []
    selection = settings.selection if settings.selection in ("auto", "series", "class") else "class"

    for band in pd.unique(bands):
        rows = np.flatnonzero(bands == band)
        n_lo = int(lengths[rows].min())
        w = int(max(1, min(H, n_lo // (W0 + 1))))
        W = int(max(1, min(W0, n_lo // w - 1)))
        bw = int(max(lengths[rows].max(), 1))
        v = values[rows][:, width - bw :]
        ph = phase[rows][:, width - bw :] if phase is not None else None
        window = max(2, min(s if s > 1 else H, n_lo) // 2)
        base = short_candidates(window)
        names = [repr(m) for m in base]
        adjustable = [m for m in base if repr(m) in _ADJUSTED_BASES]
        honest = honest_index(W * w) if (honest_index is not None and ph is not None) else None
        seasonal_rows = np.zeros(len(rows), dtype=bool)
        final_hist = final_fut = None
        if final_index is not None and ph is not None:
            final_hist, final_fut = series_indices(v, ids[rows], ph, final_index, groups[rows], s, H)
            seasonal_rows = np.abs(final_fut - 1.0).max(axis=1) > 1e-9
        # competed: the index seen without the backtest windows, adjusted candidates compete with the rest;
        # applied: only one season in all, so the index passed the one-season test on all data and every
        # candidate runs adjusted (the selection then only picks the level method); none: no seasonality.
        mode = "competed" if honest is not None else ("applied" if seasonal_rows.any() else "none")

        F_list, Y_list = [], []
        for k in range(W, 0, -1):  # oldest window first
            cut = k * w
            train = v[:, : bw - cut]
            actual = v[:, bw - cut : bw - cut + w]
            if mode == "applied":
                # The pooled index of all data (one season cannot be held out); the series' own shape only
                # where the training part holds a full season, as in the final fit.
                hist, fut = series_indices(
                    train, ids[rows], ph[:, : bw - cut + w], final_index, groups[rows], s, w  # type: ignore[index, arg-type]
                )
                f = _adjusted_forecasts(base, train, hist, fut, w, settings.n_jobs)
            else:
                f = _run(base, train, w, settings.n_jobs)
            if mode == "competed":
                hist, fut = series_indices(
                    train, ids[rows], ph[:, : bw - cut + w], honest, groups[rows], s, w  # type: ignore[index, arg-type]
                )
                f = np.concatenate([f, _adjusted_forecasts(adjustable, train, hist, fut, w, settings.n_jobs)], axis=2)
            F_list.append(f)
            Y_list.append(actual)
        all_names = names + ([SEASONAL_PREFIX + repr(m) for m in adjustable] if mode == "competed" else [])
        F = np.stack(F_list, axis=1)  # (S_b, W, w, M)
        Y = np.stack(Y_list, axis=1)
        first_train = v[:, : bw - W * w]
        d1 = np.diff(first_train, axis=1)
        with np.errstate(invalid="ignore"):
            scale = np.nanmean(d1**2, axis=1)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, np.maximum(qscale[rows], 1e-9) ** 2)

        if mode == "none":
            Ffut = _run(base, v, H, settings.n_jobs)
        else:
            adjusted = _adjusted_forecasts(
                base if mode == "applied" else adjustable, v, final_hist, final_fut, H, settings.n_jobs  # type: ignore[arg-type]
            )
            Ffut = adjusted if mode == "applied" else np.concatenate([_run(base, v, H, settings.n_jobs), adjusted], axis=2)

        for cls in pd.unique(classes[rows]):
            m = np.flatnonzero(classes[rows] == cls)
            Fm, Ym, sc = F[m], Y[m], scale[m]
            weights, strategy, _ = select(Fm, Ym, sc, selection)  # type: ignore[arg-type]
            cv_mean = np.maximum(np.einsum("swhm,sm->swh", Fm, weights), 0.0)
            check: BiasCheck = bias_check(cv_mean, Ym)
            fut_mean = np.maximum(np.einsum("shm,sm->sh", Ffut[m], weights), 0.0) * check.factor
            calib = cross_fitted_mean(Fm, Ym, sc, selection, check.factor)  # type: ignore[arg-type]
            qs = np.maximum(qscale[rows][m], 1e-9)
            errors = (Ym - calib) / qs[:, None, None]
            row_q = calibration_quantiles(errors, seasonal_rows[m] if mode == "applied" else None)
            target = rows[m]
            mean[target] = fut_mean
            # At most three distinct calibrations per group: extend each once, not once per series.
            distinct, which = np.unique(row_q.reshape(len(m), -1), axis=0, return_inverse=True)
            extended = np.stack([extend_steps(q.reshape(row_q.shape[1:]), H) for q in distinct])
            quant[target] = _quantiles(fut_mean, qs, extended[which.reshape(-1)])
            labels = np.array(["+".join(all_names[j] for j in np.flatnonzero(r > 0)) for r in weights], dtype=object)
            label = pd.Series(labels).value_counts().index[0]
            if mode == "applied":
                labels = np.where(seasonal_rows[m], SEASONAL_PREFIX + "(" + labels + ")", labels)
            model[target] = labels
            cv_scaled = cv_mean * check.factor
            cv_q = np.stack([_quantiles(cv_scaled[:, k], qs, row_q) for k in range(W)], axis=1)
            bench = np.stack([_benchmark(v[m][:, : bw - k * w], w, s) for k in range(W, 0, -1)], axis=1)
            sc_out = _scores(v[m][:, : bw - W * w], cv_scaled, cv_q, Ym, bench, s)
            segment = f"short:{band}:{cls}"
            frames.append(pd.DataFrame({"unique_id": ids[target], "demand_class": cls, "segment": segment, "windows": W,
                                        **sc_out, "bias_factor": check.factor}))
            segments.append(
                {
                    "segment": segment, "route": "short", "band": band, "demand_class": cls, "series": len(m),
                    "window": w, "windows": W, "strategy": strategy, "model": label, "seasonality": mode,
                    "bias_pct_raw": check.bias_pct, "window_bias_pct": check.window_bias_pct,
                    "bias_factor": check.factor, "bias_systematic": check.systematic,
                }
            )
    backtest = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return ShortResult(mean=mean, quantiles=quant, model=model, band=bands, backtest=backtest, segments=segments)
