"""Seasonality a short history cannot carry alone: a pooled, calendar-aligned seasonal index per category
(or demand class, or the whole panel), and each series' own shape shrunk towards it.

Two or three years of weekly history hold too few seasons for a series' own autocorrelation test, but a
category's series together show its annual shape clearly. `pooled_seasonality` fits, per group, a harmonic
regression of the group's mean level-normalised demand on the calendar phase of each bucket (`season_phase`:
the fraction of the year, exact for Monday weeks and month starts, so series ending on different dates align),
with a linear trend when the data spans at least one and a half seasons. The number of harmonics is chosen by
AICc; the group is seasonal when the harmonics are significant (F-test), the index swings by at least
`min_amplitude`, and either the data spans 1.5 seasons (so the shape has been seen to recur) or, with a single
season, the shape explains most of the group's series individually (median R² ≥ `one_season_strength`):
one year cannot show that a shape recurs, so only a strong, widely shared one is trusted.

Each series takes the index of its category when the category has enough series to test, else of its
demand class, else of the panel. `shrink_towards_pooled` blends a series' own one-season indices with the
pooled ones by an empirical-Bayes weight whose noise part is estimated across the group (sampling noise of
a ratio falls with the series' level). No Dagster import; vectorised over series.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

SEASON_SOURCES = ("category", "class", "panel")
_DAYS_PER_YEAR = 365.2425


@dataclass(frozen=True)
class SeasonSettings:
    season_length: int
    # A group needs this many series with history to estimate and test its shape.
    min_series: int = 8
    max_harmonics: int = 6
    # Harmonics must be significant at this level (F-test against trend only).
    alpha: float = 0.01
    # Peak-to-trough of the index below this: not worth applying.
    min_amplitude: float = 0.10
    # With less than 1.5 seasons of data the shape must explain this much of its series (median R²).
    one_season_strength: float = 0.5
    # Below this many seasons the regression has no trend term (one season cannot separate trend and season).
    trend_from_seasons: float = 1.5


def phase_of_period(period: np.ndarray, sf_freq: str, season_length: int) -> np.ndarray:
    """The season phase (fraction in [0, 1)) of consecutive bucket numbers as `forecasting.period_number`
    counts them: months since year 0 (MS), weeks since the epoch (W-MON) or days since the epoch (D)."""
    period = np.asarray(period, dtype=np.int64)
    s = max(int(season_length), 1)
    if sf_freq == "MS" and s == 12:
        return (period % 12) / 12.0
    if sf_freq == "W-MON" and s in (52, 53):
        # Week p starts on Monday 7p + 4 days after the epoch; its mid-week Thursday is day 7p + 7.
        return ((7 * period + 7) / _DAYS_PER_YEAR) % 1.0
    if sf_freq == "D" and s in (365, 366):
        return (period / _DAYS_PER_YEAR) % 1.0
    return (period % s) / s


def season_phase(ds: pd.Series | np.ndarray, sf_freq: str, season_length: int) -> np.ndarray:
    """Each date's position in its seasonal cycle, a fraction in [0, 1).

    Calendar-exact for a year of Monday weeks (season 52 or 53: the fraction of the year at mid-week), of
    month starts (season 12) and of days (365); otherwise the bucket number modulo the season.
    """
    dates = pd.to_datetime(pd.Series(np.asarray(ds)))
    days = dates.to_numpy(dtype="datetime64[D]").astype(np.int64)
    if sf_freq == "MS":
        period = dates.dt.year.to_numpy(dtype=np.int64) * 12 + dates.dt.month.to_numpy(dtype=np.int64) - 1
    elif sf_freq == "W-MON":
        period = days // 7
    else:
        period = days
    return phase_of_period(period, sf_freq, season_length)


def harmonics(phase: np.ndarray, k: int) -> np.ndarray:
    """Fourier terms cos(2πjφ), sin(2πjφ) for j = 1..k, shape (len(phase), 2k)."""
    phase = np.asarray(phase, dtype=float)
    if k <= 0:
        return np.empty((len(phase), 0))
    j = np.arange(1, k + 1)[None, :]
    angle = 2.0 * np.pi * phase[:, None] * j
    return np.concatenate([np.cos(angle), np.sin(angle)], axis=1)


GROUP_COLUMNS = (
    "level", "group", "series", "periods", "span_seasons", "harmonics", "amplitude", "p_value", "strength", "shape",
    "seasonal",
)


@dataclass
class PooledSeasonality:
    """Per group (level, name): its index per phase bin and its test; per series: which group it uses.

    `coefs` holds a shape for every group that has one: the detected groups (`detected`), and groups with a
    history long enough for the classical per-bucket shape even when the test did not pass (candidates in
    a backtest may still use those; the backtest, not the test, then decides).
    """

    settings: SeasonSettings
    groups: pd.DataFrame  # GROUP_COLUMNS, one row per group tested
    coefs: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # index per phase bin (season_length,)
    series_group: pd.DataFrame = field(default_factory=pd.DataFrame)  # unique_id, level, group, seasonal
    detected: set[tuple[str, str]] = field(default_factory=set)
    # The harmonic shape of each detected group (`coefs` prefers the classical one where it exists).
    harmonic: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    def index(self, key: tuple[str, str], phase: np.ndarray, kind: str | None = None) -> np.ndarray:
        """The multiplicative index (mean 1 over a cycle) of group `key` at `phase` (its `harmonic` shape
        when asked for and fitted); 1 where it has none."""
        table = self.harmonic.get(key) if kind == "harmonic" else self.coefs.get(key)
        if table is None:
            return np.ones(len(phase))
        return table[phase_bin(np.asarray(phase, dtype=float), len(table))]

    def series_index(
        self, ids: np.ndarray, phase: np.ndarray, detected_only: bool = True,
        allowed: dict[tuple[str, str], str] | None = None,
    ) -> np.ndarray:
        """Index of each (series, phase) pair (`ids`, `phase` of the same length, long format): the shape
        of the series' group where it was detected seasonal (all shapes unless `detected_only`), restricted
        to the `allowed` groups when given (group → the kind of shape to use); 1 elsewhere."""
        out = np.ones(len(ids))
        if self.series_group.empty:
            return out
        keys = set(self.detected if detected_only else self.coefs)
        if allowed is not None:
            keys &= set(allowed)
        lookup = self.series_group.set_index("unique_id")
        pair = pd.Series(list(zip(lookup["level"], lookup["group"])), index=lookup.index)
        pair = pair[pair.isin(keys)]
        if pair.empty:
            return out
        mapped = pd.Series(ids).map(pair)
        for key in pd.unique(mapped.dropna()):
            rows = np.flatnonzero((mapped == key).to_numpy())
            out[rows] = self.index(key, phase[rows], allowed.get(key) if allowed is not None else None)
        return out

    def source_of(self, ids: np.ndarray) -> np.ndarray:
        """`category`, `class` or `panel` where a detected pooled seasonality applies to the series, else ''."""
        if self.series_group.empty:
            return np.full(len(ids), "", dtype=object)
        sg = self.series_group.set_index("unique_id")
        level = sg["level"].where(sg["seasonal"], "")
        return pd.Series(ids).map(level).fillna("").to_numpy(dtype=object)


def phase_bin(phase: np.ndarray, season_length: int) -> np.ndarray:
    """The bucket of the season (0 .. s−1) a phase falls in."""
    return np.minimum((np.asarray(phase) * season_length).astype(np.int64), season_length - 1)


def _index_from(coef: np.ndarray, phase: np.ndarray) -> np.ndarray:
    k = len(coef) // 2
    raw = 1.0 + harmonics(phase, k) @ coef
    return np.maximum(raw, 0.05)


def _normalise(coef: np.ndarray, season_length: int) -> tuple[np.ndarray, float]:
    """Coefficients whose index has mean 1 over a cycle after the floor at 0.05, and its amplitude."""
    grid = np.arange(max(season_length, 12)) / max(season_length, 12)
    values = _index_from(coef, grid)
    mean = float(values.mean())
    return coef, float((values.max() - values.min()) / mean) if mean > 0 else 0.0


def _classical_table(values: np.ndarray, phase: np.ndarray, season_length: int, min_series: int) -> np.ndarray | None:
    """The classical pooled index per phase bin: each series' ratios to a centred moving average of one
    season (2×s for an even s), averaged per bin and normalised to mean 1, averaged over the series with
    every bin covered and a positive trend throughout. None when fewer than `min_series` qualify (too
    little history: a bin needs a full season of neighbours on each side)."""
    s = season_length
    width = values.shape[1]
    kernel = np.ones(s) / s
    if s % 2 == 0:
        kernel = np.convolve(kernel, [0.5, 0.5])
    half = len(kernel) // 2
    if width < len(kernel) + s:
        return None
    from scipy.ndimage import convolve1d  # imported on use: keeps the code location quick to load

    observed = ~np.isnan(values)
    trend = convolve1d(np.where(observed, values, 0.0), kernel, axis=1, mode="constant")
    covered = convolve1d(observed.astype(float), kernel, axis=1, mode="constant")
    valid = np.isclose(covered, 1.0) & observed
    valid[:, :half] = False
    valid[:, width - half :] = False
    usable = valid.any(axis=1) & ~(valid & (trend <= 0)).any(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(valid & usable[:, None], values / trend, np.nan)
    bins = phase_bin(phase, s)
    sums = np.zeros((len(values), s))
    counts = np.zeros((len(values), s))
    for b in range(s):
        cols = bins == b
        sums[:, b] = np.nansum(ratio[:, cols], axis=1)
        counts[:, b] = (~np.isnan(ratio[:, cols])).sum(axis=1)
    full = (counts > 0).all(axis=1)
    if full.sum() < min_series:
        return None
    idx = sums[full] / counts[full]
    idx = idx / idx.mean(axis=1, keepdims=True)
    pooled = idx.mean(axis=0)
    pooled = pooled / pooled.mean()
    return pooled if np.all(pooled > 0) else None


def _aicc(rss: float, n: int, p: int) -> float:
    if n - p - 1 <= 0 or rss <= 0:
        return np.inf
    return n * np.log(rss / n) + 2 * p + 2 * p * (p + 1) / (n - p - 1)


def _fit_group(
    values: np.ndarray, phase: np.ndarray, settings: SeasonSettings
) -> tuple[dict[str, np.ndarray] | None, bool, dict[str, Any]]:
    """Harmonic regression of a group's mean normalised demand on the calendar phase (see module docstring).

    `values` is (series, periods) calendar-aligned with NaN where a series has no history; `phase` (periods,).
    Returns the shapes (index per phase bin, mean 1) by kind — `harmonic` when detected, `classical` when
    the history is long enough — whether the group is detected seasonal, and the test figures.
    """
    s = settings.season_length
    observed = ~np.isnan(values)
    count = observed.sum(axis=1)
    level = np.where(count > 0, np.nansum(values, axis=1) / np.maximum(count, 1), 0.0)
    usable = (level > 0) & (count >= max(4, s // 4))
    stats: dict[str, Any] = {"series": float(usable.sum()), "periods": 0.0, "span_seasons": 0.0, "harmonics": 0.0,
                             "amplitude": 0.0, "p_value": 1.0, "strength": np.nan, "shape": ""}
    if usable.sum() < settings.min_series:
        return None, False, stats
    v, obs = values[usable], observed[usable]
    ratio = v / level[usable, None]
    n_t = obs.sum(axis=0)
    cols = np.flatnonzero(n_t >= max(2, int(0.25 * usable.sum())))
    if len(cols) < 4:
        return None, False, stats
    a = np.nansum(np.where(obs[:, cols], ratio[:, cols], 0.0), axis=0) / n_t[cols]
    w = np.sqrt(n_t[cols].astype(float))
    span = (cols[-1] - cols[0] + 1) / s
    stats["periods"], stats["span_seasons"] = float(len(cols)), float(span)
    if span < 1.0:
        return None, False, stats  # a shape needs every phase of the cycle seen at least once
    t = (cols - cols.mean()) / s
    base = [np.ones(len(cols))] + ([t] if span >= settings.trend_from_seasons else [])
    n = len(cols)
    k_max = int(min(settings.max_harmonics, (s - 1) // 2, (n - len(base) - 3) // 2))
    if k_max < 1:
        return None, False, stats
    fits = []
    for k in range(0, k_max + 1):
        X = np.column_stack(base + ([harmonics(phase[cols], k)] if k else []))
        beta, *_ = np.linalg.lstsq(X * w[:, None], a * w, rcond=None)
        rss = float((((X @ beta) - a) * w) @ (((X @ beta) - a) * w))
        fits.append((k, beta, rss, X.shape[1]))
    aicc = [_aicc(rss, n, p) for _, _, rss, p in fits]
    k, beta, rss, p = fits[int(np.argmin(aicc))]
    if k == 0:
        classical = _classical_table(v, phase, s, settings.min_series)
        stats["shape"] = "classical" if classical is not None else ""
        return ({"classical": classical} if classical is not None else {}), False, stats
    from scipy.stats import f as f_dist  # imported on use: keeps the code location quick to load

    rss0 = fits[0][2]
    dof = n - p
    f_stat = ((rss0 - rss) / (2 * k)) / (rss / dof) if rss > 0 and dof > 0 else np.inf
    p_value = float(f_dist.sf(f_stat, 2 * k, dof)) if np.isfinite(f_stat) else 0.0
    intercept = beta[0] + (beta[1] * 0.0 if len(base) > 1 else 0.0)
    if intercept <= 0:
        return None, False, stats
    coef = beta[len(base):] / intercept
    coef, amplitude = _normalise(coef, s)
    # Per-series R² of the shape against a flat level, over the group's own periods.
    idx_t = _index_from(coef, phase)
    fitted = level[usable, None] * idx_t[None, :]
    flat_sse = np.nansum(np.where(obs, (v - level[usable, None]) ** 2, 0.0), axis=1)
    shape_sse = np.nansum(np.where(obs, (v - fitted) ** 2, 0.0), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(flat_sse > 0, 1.0 - shape_sse / flat_sse, np.nan)
    strength = float(np.nanmedian(r2)) if np.isfinite(r2).any() else np.nan
    stats.update(harmonics=float(k), amplitude=amplitude, p_value=p_value, strength=strength)
    recurs = span >= settings.trend_from_seasons or (np.isfinite(strength) and strength >= settings.one_season_strength)
    detected = p_value < settings.alpha and amplitude >= settings.min_amplitude and recurs
    # The harmonic fit detects; the shape comes from the classical per-bucket ratios where the history is
    # long enough for them (sharp weeks such as a holiday need more harmonics than the test can afford).
    shapes: dict[str, np.ndarray] = {}
    classical = _classical_table(v, phase, s, settings.min_series)
    if classical is not None:
        shapes["classical"] = classical
    if detected:
        # Sample the harmonic fit where the group's buckets sit inside their phase bins (month start, mid-week).
        offset = float(np.mean(phase[cols] * s - np.floor(phase[cols] * s)))
        table = _index_from(coef, (np.arange(s) + offset) / s)
        shapes["harmonic"] = table / table.mean()
    stats["shape"] = "classical" if classical is not None else ("harmonic" if detected else "")
    if len(shapes) == 2:
        # Both shapes: keep the one the group's mean series supports best (BIC; the classical shape spends a
        # parameter per bucket, so it wins only where sharp weeks or months are real and well measured).
        def bic(table: np.ndarray, n_shape: int) -> float:
            shape = table[phase_bin(phase[cols], s)]
            X = np.column_stack([b * shape for b in base])
            beta_, *_ = np.linalg.lstsq(X * w[:, None], a * w, rcond=None)
            rss_ = float(((X @ beta_ - a) * w) @ ((X @ beta_ - a) * w))
            return n * np.log(max(rss_, 1e-12) / n) + (n_shape + len(base)) * np.log(n)

        if bic(shapes["harmonic"], 2 * k) < bic(shapes["classical"], s - 1):
            stats["shape"] = "harmonic"
    return shapes, detected, stats


def calendar_matrix(panel: pd.DataFrame, period: np.ndarray, phase: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, values (series, periods) aligned on the calendar with NaN outside each history, phase per column)."""
    codes, ids = pd.factorize(panel["unique_id"], sort=False)
    first = int(period.min())
    width = int(period.max()) - first + 1
    values = np.full((len(ids), width), np.nan)
    values[codes, period - first] = panel["y"].to_numpy(dtype=float)
    col_phase = np.zeros(width)
    col_phase[period - first] = phase
    return np.asarray(ids), values, col_phase


def pooled_seasonality(
    panel: pd.DataFrame,
    period: np.ndarray,
    phase: np.ndarray,
    settings: SeasonSettings,
    categories: pd.Series | None = None,
    classes: pd.Series | None = None,
    exclude_last: int = 0,
) -> PooledSeasonality:
    """The pooled seasonal index per category / class / panel and the group each series uses.

    `panel` is long (`unique_id, ds, y`), `period` its consecutive bucket numbers and `phase` its
    `season_phase`; `categories` and `classes` map unique_id to a label. `exclude_last` leaves each series'
    last buckets out (the backtest windows), so a backtest never sees its own future in the index.
    """
    if exclude_last > 0:
        keep = panel.groupby("unique_id", sort=False).cumcount(ascending=False).to_numpy() >= exclude_last
        panel, period, phase = panel[keep], period[keep], phase[keep]
        # A backtest's index needs no proof that its shape recurs: the backtest windows, later than every
        # bucket it was estimated on, are that proof (or refutation).
        settings = replace(settings, one_season_strength=-np.inf)
    empty = PooledSeasonality(settings, pd.DataFrame(columns=list(GROUP_COLUMNS)))
    if settings.season_length < 2 or panel.empty:
        return empty
    ids, values, col_phase = calendar_matrix(panel, period, phase)
    label_sets: list[tuple[str, np.ndarray]] = []
    if categories is not None:
        label_sets.append(("category", pd.Series(ids).map(categories).fillna("").astype(str).to_numpy()))
    if classes is not None:
        label_sets.append(("class", pd.Series(ids).map(classes).fillna("").astype(str).to_numpy()))
    label_sets.append(("panel", np.full(len(ids), "all", dtype=object)))

    rows: list[dict] = []
    coefs: dict[tuple[str, str], np.ndarray] = {}
    assigned_level = np.full(len(ids), "", dtype=object)
    assigned_group = np.full(len(ids), "", dtype=object)
    testable: dict[tuple[str, str], bool] = {}
    detected: set[tuple[str, str]] = set()
    harmonic: dict[tuple[str, str], np.ndarray] = {}
    for level, labels in label_sets:
        for name in pd.unique(labels):
            if name == "":
                continue
            members = labels == name
            found, is_seasonal, stats = _fit_group(values[members], col_phase, settings)
            shapes = found or {}
            key = (level, str(name))
            testable[key] = stats["series"] >= settings.min_series
            if shapes:
                coefs[key] = shapes.get(stats["shape"]) if stats["shape"] in shapes else next(iter(shapes.values()))
            if "harmonic" in shapes:
                harmonic[key] = shapes["harmonic"]
            if is_seasonal:
                detected.add(key)
            rows.append({"level": level, "group": str(name), **stats, "seasonal": is_seasonal})
        # A series takes the first level whose group had enough series to be tested (seasonal or not).
        open_rows = assigned_level == ""
        ok = np.array([testable.get((level, str(lab)), False) for lab in labels]) & open_rows
        assigned_level[ok] = level
        assigned_group[ok] = labels[ok].astype(str)
    groups = pd.DataFrame(rows, columns=list(GROUP_COLUMNS))
    series_group = pd.DataFrame({"unique_id": ids, "level": assigned_level, "group": assigned_group})
    series_group["seasonal"] = [(lv, g) in detected for lv, g in zip(assigned_level, assigned_group)]
    return PooledSeasonality(settings, groups, coefs, series_group, detected, harmonic)


# One season is one draw of a series' shape: never trusted whole, so a forecast cannot repeat last year.
MAX_OWN_WEIGHT = 0.9


def shrink_towards_pooled(
    own: np.ndarray, pooled: np.ndarray, level: np.ndarray, groups: np.ndarray, max_own_weight: float = MAX_OWN_WEIGHT
) -> np.ndarray:
    """Empirical-Bayes blend of each series' own one-season indices with its group's pooled ones.

    `own` and `pooled` are (series, season) with mean 1 per row; `level` the series' mean demand. Across the
    series of a group, the mean squared gap own − pooled is regressed on 1 / level: the intercept is the
    spread of real shape differences (τ²), the slope the sampling noise of a ratio (φ / level, Poisson-like).
    Each series keeps the weight τ² / (τ² + φ / level), at most `max_own_weight`, on its own shape; the
    rest comes from the pool.
    Returns the blended indices, mean 1 per row.
    """
    out = pooled.copy()
    gap = np.nanmean((own - pooled) ** 2, axis=1)
    valid = np.isfinite(gap) & (level > 0) & np.isfinite(own).all(axis=1)
    for g in pd.unique(groups):
        m = (groups == g) & valid
        if m.sum() < 3:
            continue
        X = np.column_stack([np.ones(m.sum()), 1.0 / level[m]])
        (tau2, phi), *_ = np.linalg.lstsq(X, gap[m], rcond=None)
        tau2, phi = max(float(tau2), 1e-6), max(float(phi), 0.0)
        weight = np.minimum(tau2 / (tau2 + phi / level[m]), max_own_weight)
        out[m] = weight[:, None] * own[m] + (1.0 - weight[:, None]) * pooled[m]
    out = np.maximum(out, 0.0)
    mean = out.mean(axis=1, keepdims=True)
    return np.where(mean > 0, out / np.where(mean > 0, mean, 1.0), 1.0)
