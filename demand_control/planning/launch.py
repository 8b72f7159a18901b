"""Launch profiles: how a new SKU sells in the periods after its first ones, learnt from analogous launches.

A new series (few non-zero periods since its first sale) cannot be backtested on its own history, and its
own mean says nothing about the ramp-up (or the fall after launch stocking) still to come. Its analogues are
the series of the same category (else demand class, else the panel) that launched inside the data (leading
zeros, or a history that starts later than the panel's) and have sold for longer. For a new series of age k
(periods since its first sale) the launch profile is

    g_k(t) = Σ_analogues y(k + t) / Σ_analogues mean(y(0 .. k−1)),    t = 0 .. horizon − 1,

a ratio of sums over the analogues old enough to show step t (at least `min_analogues` of them; later steps
keep the last profile value), clipped to [1/5, 5].

The analogues are also the backtest: each is forecast as if it were new at age k, by three candidates —
the launch profile times its own post-launch mean (the profile left out of its own estimate), its record
mean over the last season (pre-launch zeros included: the damped level a launch spike does not inflate), the
average of the two, and TSB on its record (a slow start from the pre-launch zeros) — and scored by RMSSE
against what it sold next (scale: its record up to age k).
The new series takes the candidate that scored best on its group's analogues; their errors calibrate its
quantiles. Without analogues it takes TSB on its record. Pure numpy over a right-aligned matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from demand_control.planning.metrics import QUANTILE_LEVELS
from demand_control.planning.selection import MIN_POOL, quantiles_by_step

_G_CLIP = (0.2, 5.0)
LAUNCH_METHODS = ("LaunchProfile", "RecordMean", "LaunchProfile+RecordMean", "RecordTSB")
# TSB's smoothing of demand size and of demand probability (statsforecast's TSB(0.1, 0.1)).
_TSB_ALPHA = 0.1


@dataclass
class LaunchResult:
    mean: np.ndarray  # (N, H) forecast of the new series, in the order given
    method: np.ndarray  # (N,) one of LAUNCH_METHODS
    profile_source: np.ndarray  # (N,) `category`, `class`, `panel` or '' (no analogues)
    analogues: np.ndarray  # (N,) analogues behind the first step's profile
    profile: np.ndarray  # (N, H) the launch profile g_k of the series' group (1 without analogues)
    error_quantiles: np.ndarray | None  # (H, L) scaled error quantiles from the analogues, None: too few


def since_launch(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each right-aligned row shifted to start at its first sale: (matrix, age in periods, first column)."""
    S, width = values.shape
    sold = np.nan_to_num(values) > 0
    any_sale = sold.any(axis=1)
    first = np.where(any_sale, np.argmax(sold, axis=1), width)
    age = width - first
    cols = first[:, None] + np.arange(width)[None, :]
    inside = cols < width
    out = np.full((S, width), np.nan)
    out[inside] = values[np.nonzero(inside)[0], cols[inside]]
    return out, age, first


def launched_inside(values: np.ndarray, first_sale: np.ndarray) -> np.ndarray:
    """Series whose first sale is a launch seen in the data: zeros before it, or a history that starts
    after the panel's earliest one (a series on record from the start and selling at once may be old)."""
    observed = ~np.isnan(values)
    start = np.argmax(observed, axis=1)
    return (first_sale > start) | (start > 0)


def _record_stats(values: np.ndarray, end: np.ndarray, season_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, over its record up to column `end` (exclusive): the mean of the last season (the damped
    level) and the mean squared one-step difference (the RMSSE scale)."""
    width = values.shape[1]
    cols = np.arange(width)[None, :]
    upto = cols < end[:, None]
    record = np.where(upto, values, np.nan)
    recent = upto & (cols >= (end - max(season_length, 1))[:, None])
    with np.errstate(invalid="ignore"):
        damped = np.nan_to_num(np.nanmean(np.where(recent, values, np.nan), axis=1))
        scale = np.nanmean(np.diff(record, axis=1) ** 2, axis=1)
    return damped, scale


def record_tsb(values: np.ndarray, end: np.ndarray, alpha: float = _TSB_ALPHA) -> np.ndarray:
    """TSB's forecast (probability × size, each smoothed exponentially from its first value) of each row's
    record up to column `end` (exclusive): a launch forecast that starts from the zeros before it."""
    S, width = values.shape
    prob = np.full(S, np.nan)
    size = np.full(S, np.nan)
    for col in range(width):
        x = values[:, col]
        live = (col < end) & ~np.isnan(x)
        if not live.any():
            continue
        sold = live & (x > 0)
        hit = np.where(sold, 1.0, 0.0)
        prob = np.where(live, np.where(np.isnan(prob), hit, prob + alpha * (hit - prob)), prob)
        size = np.where(sold, np.where(np.isnan(size), x, size + alpha * (x - size)), size)
    return np.nan_to_num(prob) * np.nan_to_num(size)


def _profile(post: np.ndarray, base: np.ndarray, k: int, horizon: int, min_analogues: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The profile g_k(t) (H,), each analogue's leave-one-out profile (A, H) and its next sales (A, H)."""
    steps = post[:, k : k + horizon]
    if steps.shape[1] < horizon:
        steps = np.concatenate([steps, np.full((len(post), horizon - steps.shape[1]), np.nan)], axis=1)
    seen = ~np.isnan(steps)
    num_j = np.where(seen, steps, 0.0)
    den_j = seen * base[:, None]
    num, den, count = num_j.sum(axis=0), den_j.sum(axis=0), seen.sum(axis=0)

    def finish(g: np.ndarray) -> np.ndarray:
        g = np.where(np.isfinite(g), g, np.nan)
        if np.isnan(g[..., 0]).all():
            return np.ones_like(g)
        idx = np.where(~np.isnan(g), np.arange(horizon), 0)
        idx = np.maximum.accumulate(idx, axis=-1)
        out = np.take_along_axis(g, idx, axis=-1) if g.ndim == 2 else g[idx]
        return np.clip(np.nan_to_num(out, nan=1.0), *_G_CLIP)

    with np.errstate(divide="ignore", invalid="ignore"):
        g = finish(np.where((count >= min_analogues) & (den > 0), num / den, np.nan))
        loo_den = den[None, :] - den_j
        loo = finish(np.where((count[None, :] - seen >= min_analogues - 1) & (loo_den > 0), (num[None, :] - num_j) / loo_den, np.nan))
    return g, loo, steps


def launch_forecast(
    values: np.ndarray,
    new: np.ndarray,
    labels: list[tuple[str, np.ndarray]],
    horizon: int,
    qscale: np.ndarray,
    season_length: int,
    min_analogues: int = 5,
) -> LaunchResult:
    """Launch forecasts of the rows `new` of right-aligned `values` (see the module docstring).

    `labels` lists the grouping levels to look for analogues in, most specific first, e.g.
    [("category", category per row), ("class", class per row), ("panel", one label)]; `qscale` (rows,) is
    the unit errors are pooled in.
    """
    S, width = values.shape
    post, age, first = since_launch(values)
    inside = launched_inside(values, first)
    new_rows = np.flatnonzero(new)
    n_new = len(new_rows)
    k_new = np.maximum(age[new_rows], 1).astype(int)
    own = np.where(np.arange(width)[None, :] < k_new[:, None], post[new_rows], np.nan)
    with np.errstate(invalid="ignore"):
        level = np.nan_to_num(np.nanmean(own, axis=1)) if n_new else np.zeros(0)
    damped_new, _ = _record_stats(values[new_rows], np.full(n_new, width), season_length)
    tsb_new = record_tsb(values[new_rows], np.full(n_new, width))
    mean = np.repeat(tsb_new[:, None], horizon, axis=1)
    method = np.full(n_new, "RecordTSB", dtype=object)
    source = np.full(n_new, "", dtype=object)
    analogues = np.zeros(n_new, dtype=int)
    profile = np.ones((n_new, horizon))
    errors: list[np.ndarray] = []
    candidates = inside & ~new
    for name, lab in labels:
        open_pos = np.flatnonzero(source == "")
        if len(open_pos) == 0:
            break
        keys = {(int(k_new[p]), lab[new_rows[p]]) for p in open_pos}
        for k, label in keys:
            pool = np.flatnonzero(candidates & (lab == label) & (age > k))
            if len(pool) < min_analogues:
                continue
            base = np.nanmean(post[pool, :k], axis=1)
            pool, base = pool[base > 0], base[base > 0]
            if len(pool) < min_analogues:
                continue
            g, loo, steps = _profile(post[pool], base, k, horizon, min_analogues)
            # Each analogue as if new at age k: its record ends k periods after its first sale.
            damped, scale = _record_stats(values[pool], first[pool] + k, season_length)
            forecasts = {
                "LaunchProfile": base[:, None] * loo,
                "RecordMean": np.repeat(damped[:, None], horizon, axis=1),
            }
            forecasts["LaunchProfile+RecordMean"] = 0.5 * (forecasts["LaunchProfile"] + forecasts["RecordMean"])
            forecasts["RecordTSB"] = np.repeat(record_tsb(values[pool], first[pool] + k)[:, None], horizon, axis=1)
            ok = np.isfinite(scale) & (scale > 0) & np.isfinite(steps[:, 0])
            if ok.sum() < min_analogues:
                continue
            with np.errstate(invalid="ignore"):
                scores = {m: float(np.nanmean(np.sqrt(np.nanmean((f[ok] - steps[ok]) ** 2, axis=1) / scale[ok])))
                          for m, f in forecasts.items()}
            best = min(scores, key=lambda m: scores[m])
            targets = open_pos[(k_new[open_pos] == k) & (lab[new_rows[open_pos]] == label)]
            by_method = {
                "LaunchProfile": level[targets, None] * g[None, :],
                "RecordMean": np.repeat(damped_new[targets, None], horizon, axis=1),
            }
            by_method["LaunchProfile+RecordMean"] = 0.5 * (by_method["LaunchProfile"] + by_method["RecordMean"])
            by_method["RecordTSB"] = np.repeat(tsb_new[targets, None], horizon, axis=1)
            mean[targets] = by_method[best]
            method[targets], source[targets], analogues[targets] = best, name, len(pool)
            profile[targets] = g[None, :]
            errors.append((steps - forecasts[best]) / np.maximum(qscale[pool], 1e-9)[:, None])
    error_q = None
    if errors:
        e = np.concatenate(errors, axis=0)
        if np.isfinite(e).sum() >= MIN_POOL:
            error_q = quantiles_by_step(e, np.asarray(QUANTILE_LEVELS))
    return LaunchResult(mean=np.maximum(mean, 0.0), method=method, profile_source=source, analogues=analogues,
                        profile=profile, error_quantiles=error_q)
