"""Selection and calibration from a rolling-origin backtest, shared by the long- and short-history engines.

Backtest arrays: `F` (series, windows, steps, models) holds each candidate's forecast, `Y` (series,
windows, steps) the actuals, `scale` (series,) the RMSSE denominator. From them: the weights of the
selected forecast (one equal-weight combination per group of series, or per series), the cross-fitted
backtest forecast (each window's weights selected on the other windows, so its errors are out of selection
sample), the bias check and its correction, and empirical quantiles of the scaled errors.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from demand_control.planning.metrics import QUANTILE_LEVELS

Selection = Literal["auto", "series", "class"]
STRATEGIES = ("class", "series", "series_top2")
# Pool backtest errors per (group, horizon step) only when each pool has this many; else per group, else all.
MIN_POOL = 60
_COMBINE_TOP = 4
_SERIES_CHUNK = 20_000
# The bias correction moves a group's forecast by at most this share.
MAX_LEVEL_CORRECTION = 0.2
# A backtest bias below this share of demand, in any window, is noise, not a pattern worth correcting.
MIN_SYSTEMATIC_BIAS = 0.01


def combos(ranked: list[int]) -> list[tuple[int, ...]]:
    """Every single model, and the pairs and triples of the best `_COMBINE_TOP` (ranked best first)."""
    top = ranked[:_COMBINE_TOP]
    out: list[tuple[int, ...]] = [(m,) for m in ranked]
    for k in (2, 3):
        out += list(itertools.combinations(sorted(top), k))
    return out


def combo_scores(F: np.ndarray, Y: np.ndarray, scale: np.ndarray, combos_: list[tuple[int, ...]], windows: slice) -> np.ndarray:
    """Per series RMSSE (S, K) of each equal-weight combination over the chosen backtest windows."""
    out = np.empty((F.shape[0], len(combos_)))
    for lo in range(0, F.shape[0], _SERIES_CHUNK):
        f = F[lo : lo + _SERIES_CHUNK, windows]
        y = Y[lo : lo + _SERIES_CHUNK, windows]
        for k, combo in enumerate(combos_):
            pred = f[..., list(combo)].mean(axis=-1)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[lo : lo + _SERIES_CHUNK, k] = np.sqrt(((pred - y) ** 2).mean(axis=(1, 2)) / scale[lo : lo + _SERIES_CHUNK])
    return out


def weights_class(F: np.ndarray, Y: np.ndarray, scale: np.ndarray, windows: slice) -> tuple[np.ndarray, tuple[int, ...]]:
    """One combination for the whole group: the single or equal-weight mix with the lowest mean RMSSE."""
    singles = combo_scores(F, Y, scale, [(m,) for m in range(F.shape[-1])], windows)
    ranked = list(np.argsort(np.nanmean(np.where(np.isfinite(singles), singles, np.nan), axis=0)))
    candidates = combos([int(m) for m in ranked])
    scores = combo_scores(F, Y, scale, candidates, windows)
    mean_scores = np.nanmean(np.where(np.isfinite(scores), scores, np.nan), axis=0)
    best = candidates[int(np.nanargmin(mean_scores))] if np.isfinite(mean_scores).any() else candidates[0]
    w = np.zeros((F.shape[0], F.shape[-1]))
    w[:, list(best)] = 1.0 / len(best)
    return w, best


def weights_series(F: np.ndarray, Y: np.ndarray, scale: np.ndarray, windows: slice, top: int = 1) -> np.ndarray:
    """Per series the best single model (top=1) or the equal mix of its `top` best, by backtest RMSSE."""
    mse = ((F[:, windows] - Y[:, windows, :, None]) ** 2).mean(axis=(1, 2))
    order = np.argsort(mse, axis=1, kind="stable")[:, :top]
    w = np.zeros(mse.shape)
    np.put_along_axis(w, order, 1.0 / top, axis=1)
    return w


def select(F: np.ndarray, Y: np.ndarray, scale: np.ndarray, selection: Selection) -> tuple[np.ndarray, str, dict[str, float]]:
    """Weights (S, M) of the selected forecast per series, the strategy used and its validation scores.

    With `auto` and two or more windows each strategy selects on all windows but the last and is scored
    on the last (an honest out-of-sample comparison); the winner then re-selects on every window.
    """
    n_windows = F.shape[1]
    every = slice(0, n_windows)

    def weights(strategy: str, windows: slice) -> np.ndarray:
        if strategy == "class":
            return weights_class(F, Y, scale, windows)[0]
        return weights_series(F, Y, scale, windows, top=2 if strategy == "series_top2" else 1)

    scores: dict[str, float] = {}
    if selection == "auto" and n_windows >= 2:
        earlier, last = slice(0, n_windows - 1), slice(n_windows - 1, n_windows)
        for strategy in STRATEGIES:
            w = weights(strategy, earlier)
            pred = np.einsum("swhm,sm->swh", F[:, last], w)
            rmsse = np.sqrt(((pred - Y[:, last]) ** 2).mean(axis=(1, 2)) / scale)
            scores[strategy] = float(np.nanmean(rmsse))
        chosen = min(scores, key=lambda k: scores[k])
    else:
        chosen = "class" if selection in ("auto", "class") else "series"
    return weights(chosen, every), chosen, scores


@dataclass(frozen=True)
class BiasCheck:
    """A group's backtest bias and what was done about it."""

    bias_pct: float  # 100 · Σ(forecast − actual) / Σ|actual| over every backtest window, before correction
    window_bias_pct: tuple[float, ...]  # the same, per window (oldest first)
    systematic: bool  # the same sign and at least MIN_SYSTEMATIC_BIAS in every window
    factor: float  # the multiplicative correction applied (1.0: none)


def bias_check(cv_mean: np.ndarray, Y: np.ndarray, max_correction: float = MAX_LEVEL_CORRECTION) -> BiasCheck:
    """Whether a group's selected forecast is systematically biased in the backtest, and the correction.

    Systematic means the bias has the same sign and at least `MIN_SYSTEMATIC_BIAS` of demand in every
    window: it persisted from one origin to the next. With one window nothing shows it persists, so it is
    never systematic. The correction is the multiplicative factor Σ actual / Σ forecast over all windows,
    clipped to 1 ± `max_correction`: it removes the bias the planner would see on the same data, and, being
    a positive factor, can never make a forecast negative.
    (Measured on the shared panels: also asking that the correction learnt on the earlier windows lower the
    last window's RMSSE rejects pasta's persistent over-forecast, +6.2 % bias instead of +1.0 %.)
    """
    W = cv_mean.shape[1]
    pred = np.nansum(cv_mean, axis=(0, 2))
    actual = np.nansum(np.abs(Y), axis=(0, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        per_window = np.where(actual > 0, (pred - np.nansum(Y, axis=(0, 2))) / actual, 0.0)
    total_actual = float(actual.sum())
    overall = float((pred.sum() - np.nansum(Y)) / total_actual) if total_actual > 0 else 0.0
    same_sign = bool(np.all(per_window > 0) or np.all(per_window < 0))
    systematic = W >= 2 and same_sign and bool(np.all(np.abs(per_window) >= MIN_SYSTEMATIC_BIAS))
    factor = _factor(cv_mean, Y, max_correction) if systematic else 1.0
    return BiasCheck(100.0 * overall, tuple(float(100.0 * b) for b in per_window), systematic, factor)


def _factor(pred: np.ndarray, actual: np.ndarray, max_correction: float) -> float:
    total = float(np.nansum(pred))
    if total <= 0:
        return 1.0
    return float(np.clip(np.nansum(actual) / total, 1.0 - max_correction, 1.0 + max_correction))


def level_correction(cv_mean: np.ndarray, Y: np.ndarray, scale: np.ndarray | None = None) -> float:
    """The factor of `bias_check` alone (1.0 when the bias is not systematic); `scale` is not used."""
    return bias_check(cv_mean, Y).factor


def cross_fitted_mean(F: np.ndarray, Y: np.ndarray, scale: np.ndarray, selection: Selection, factor: float) -> np.ndarray:
    """The backtest forecast (S, W, H) with each window's weights selected on the other windows only, so the
    errors quantiles are calibrated on are out of selection sample (with one window: the in-sample ones)."""
    W = F.shape[1]
    out = np.empty(Y.shape)
    for w in range(W):
        others = [k for k in range(W) if k != w] or [w]
        wts = select(F[:, others], Y[:, others], scale, selection)[0]
        out[:, w] = np.maximum(np.einsum("shm,sm->sh", F[:, w], wts), 0.0) * factor
    return out


def pooled_quantiles(errors: np.ndarray, groups: np.ndarray) -> dict[Any, np.ndarray]:
    """Empirical quantiles (H, L) of scaled backtest errors per group; errors is (S, W, H)."""
    out: dict[Any, np.ndarray] = {}
    levels = np.asarray(QUANTILE_LEVELS)
    overall = errors.reshape(-1, errors.shape[-1])
    overall_q = quantiles_by_step(overall, levels)
    for g in np.unique(groups):
        e = errors[groups == g].reshape(-1, errors.shape[-1])
        out[g] = quantiles_by_step(e, levels, fallback=overall_q)
    out[None] = overall_q
    return out


def quantiles_by_step(e: np.ndarray, levels: np.ndarray, fallback: np.ndarray | None = None) -> np.ndarray:
    """(H, L) quantiles of errors `e` (points, H): per step with enough points, else pooled over steps."""
    finite = np.isfinite(e)
    if finite.sum(axis=0).min(initial=0) >= MIN_POOL:
        return np.stack([np.nanquantile(np.where(finite[:, h], e[:, h], np.nan), levels) for h in range(e.shape[1])])
    if finite.sum() >= MIN_POOL or fallback is None:
        flat = e[finite]
        q = np.quantile(flat, levels) if flat.size else np.zeros(len(levels))
        return np.tile(q, (e.shape[1], 1))
    return fallback


def extend_steps(q: np.ndarray, horizon: int) -> np.ndarray:
    """Step quantiles (H', L) learnt on a backtest shorter than the horizon, extended to `horizon` steps.

    Beyond the last step seen, the spread keeps growing as it grew over the steps seen: the 80 % width is
    fitted as c · step^b (b clipped to [0, 0.5], 0.5 being a random walk's growth) and the last step's
    quantiles are widened about their median by (step / last step)^b.
    """
    seen = q.shape[0]
    if seen >= horizon:
        return q[:horizon]
    levels = list(QUANTILE_LEVELS)
    width = q[:, levels.index(0.90)] - q[:, levels.index(0.10)]
    steps_seen = np.arange(1, seen + 1)
    b = 0.0
    if seen >= 3 and np.all(width > 0):
        b = float(np.clip(np.polyfit(np.log(steps_seen), np.log(width), 1)[0], 0.0, 0.5))
    last = q[-1]
    centre = last[levels.index(0.50)]
    growth = (np.arange(seen + 1, horizon + 1) / seen)[:, None] ** b
    extra = centre + (last[None, :] - centre) * growth
    return np.concatenate([q, extra], axis=0)


def quantiles_from_errors(mean: np.ndarray, qscale: np.ndarray, scaled_error_quantiles: np.ndarray) -> np.ndarray:
    """Quantile forecasts (S, H, L) = mean + scale · error quantile, clipped at zero and made monotone in q."""
    q = mean[:, :, None] + qscale[:, None, None] * scaled_error_quantiles[None, :, :]
    q = np.maximum(q, 0.0)
    return np.maximum.accumulate(q, axis=2)
