"""The forecasting engine: validated panel in, selected forecasts with calibrated quantiles out.

`forecast_panel` profiles every series and routes it:
- `dead` (no demand for a long stretch): zero;
- `new` (a launch with few non-zero periods): its post-launch mean shaped by the launch profile of analogous
  SKUs of its category (`planning.launch`);
- `short` (under two seasons, or too little history for the long backtest): methods that need no seasonal
  history, selected per length band and class by a backtest that fits the data available, seasonality only
  borrowed from the category or class (`planning.short_history`);
- else its Syntetos–Boylan class, whose small set of fast statsforecast candidates runs one rolling-origin
  cross-validation per class.
Seasonality is pooled by category (else class, else panel) and aligned on the calendar
(`planning.seasonality`): seasonally adjusted candidates see the index (for the backtest estimated without
its windows), shrink their own indices towards it or, as `PSA_` candidates, use it where a series shows no
seasonality of its own; series of seasonal categories select apart from the others. From the backtest each
segment selects single models or an equal-weight combination of the best few (`planning.selection`); a
segment's forecast is rescaled when its backtest bias is systematic (the same sign, at least 1 %, in every
window). Quantiles q05..q95 come from the cross-fitted backtest errors of the selected forecast, pooled per
class (short series: per length band and class) and horizon step; non-negative and monotone.
The same code runs on a Dask cluster through statsforecast's distributed backend when a scheduler address
is given. No Dagster import: the assets and the CLI both call this module.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from demand_control.infra.settings import FORECAST_CLUSTER_ENV
from demand_control.planning.candidates import (
    BENCHMARK_MODEL,
    SEASON_INDEX_COLUMN,
    Deseasonalized,
    candidates_for,
    for_final_forecast,
)
from demand_control.planning.launch import launch_forecast, launched_inside, since_launch
from demand_control.planning.metrics import QUANTILE_COLUMNS, QUANTILE_LEVELS, score_series, series_scales
from demand_control.planning.profile import DEMAND_CLASSES, PanelMatrix, ProfileSettings, profile_panel, to_matrix
from demand_control.planning.seasonality import (
    PooledSeasonality,
    SeasonSettings,
    phase_of_period,
    pooled_seasonality,
    season_phase,
)
from demand_control.planning.selection import (
    Selection,
    bias_check,
    cross_fitted_mean,
    level_correction,
    pooled_quantiles,
    quantiles_from_errors,
    select,
)
from demand_control.planning.short_history import IndexFn, ShortSettings, forecast_short

log = logging.getLogger(__name__)

FREQ_ALIASES: dict[str, str] = {"D": "D", "W": "W-MON", "W-MON": "W-MON", "MS": "MS", "M": "MS"}
PANEL_COLUMNS = ("unique_id", "ds", "y")
FORECAST_COLUMNS = ("unique_id", "ds", "mean", *QUANTILE_COLUMNS, "model", "demand_class")
CLUSTER_ENV = FORECAST_CLUSTER_ENV
# Below this many series a process pool costs more than it saves; statsforecast runs in-process.
_PARALLEL_FROM_SERIES = 2_000
# Kept for the callers and tests that knew them here.
_cross_fitted_mean = cross_fitted_mean
_level_correction = level_correction


class PanelError(ValueError):
    """A panel that cannot be forecast; the message names the column and shows an example row."""


@dataclass(frozen=True)
class ForecastSettings:
    """How to forecast: the bucket, the horizon, the season and how to backtest and select."""

    freq: str = "W"
    horizon: int = 26
    season_length: int = 52
    n_windows: int = 2  # rolling-origin windows of `horizon` periods each, back to back before the end
    selection: Selection = "class"  # measured best on all three shared panels (see benchmarks/forecast.py)
    n_jobs: int = 1
    cluster_address: str | None = None  # a Dask scheduler: run statsforecast on the cluster
    new_below_periods: int = 10
    # A launch seen in the data with fewer non-zero periods than this (within a season of it) is new.
    new_below_nonzero: int = 8
    dead_after_periods: int = 26
    # With a single season of data a pooled shape must explain this much of its series (median R²).
    one_season_strength: float = 0.5

    def __post_init__(self) -> None:
        if self.freq not in FREQ_ALIASES:
            raise ValueError(f"freq must be one of D, W, MS; got {self.freq!r}")
        if self.horizon < 1 or self.season_length < 1 or self.n_windows < 1:
            raise ValueError("horizon, season_length and n_windows must be at least 1")
        if self.selection not in ("auto", "series", "class"):
            raise ValueError(f"selection must be auto, series or class; got {self.selection!r}")

    @property
    def sf_freq(self) -> str:
        return FREQ_ALIASES[self.freq]

    @property
    def min_cv_history(self) -> int:
        """History a series needs for the backtest: the windows plus a training part of one horizon."""
        return (self.n_windows + 1) * self.horizon + 1

    @property
    def min_long_history(self) -> int:
        """History (since the first sale) a series needs for the long route: two seasons and the backtest."""
        return max(2 * self.season_length, self.min_cv_history)

    def season_settings(self) -> SeasonSettings:
        return SeasonSettings(season_length=self.season_length, one_season_strength=self.one_season_strength)

    def profile_settings(self) -> ProfileSettings:
        return ProfileSettings(
            season_length=self.season_length,
            new_below_periods=self.new_below_periods,
            dead_after_periods=self.dead_after_periods,
        )


@dataclass
class ForecastResult:
    """Everything one run produces: the forecast, the profile with each series' route, the backtest."""

    forecast: pd.DataFrame  # FORECAST_COLUMNS, one row per series and future period
    profile: pd.DataFrame  # profile columns + route, model, selection
    backtest: pd.DataFrame  # per series: rmsse, mase, spl, bias, abs_actual, covered80, points, benchmark, ...
    selection: pd.DataFrame  # per segment (route, band, class): strategy, model, bias check and correction
    timings: dict[str, float] = field(default_factory=dict)
    seasonality: pd.DataFrame = field(default_factory=pd.DataFrame)  # per pooled group: the seasonality test


# Input validation ------------------------------------------------------------------------------------------


def _example(frame: pd.DataFrame, mask: np.ndarray | pd.Series) -> str:
    row = frame[np.asarray(mask)].iloc[0]
    return ", ".join(f"{k}={row[k]}" for k in frame.columns if k in PANEL_COLUMNS) or repr(row.to_dict())


def period_number(ds: pd.Series, freq: str) -> np.ndarray:
    """Consecutive integers for consecutive buckets of `freq` (days, Monday weeks or month starts)."""
    freq = FREQ_ALIASES[freq]
    if freq == "MS":
        return (ds.dt.year * 12 + ds.dt.month - 1).to_numpy(dtype=np.int64)
    days = ds.to_numpy(dtype="datetime64[D]").astype(np.int64)
    return days // 7 if freq == "W-MON" else days


def validate_panel(frame: pd.DataFrame, freq: str) -> pd.DataFrame:
    """A long panel `unique_id, ds, y` checked and typed, sorted by series and date.

    Raises PanelError naming the column and an example row for: a missing column, an unparseable date, a
    non-numeric, missing, infinite or negative y, a duplicate (unique_id, ds), a date off the bucket grid
    (not a Monday for W, not the 1st for MS) or a gap between consecutive buckets of a series.
    """
    missing = [c for c in PANEL_COLUMNS if c not in frame.columns]
    if missing:
        first = frame.head(1).to_dict("records")
        raise PanelError(
            f"column {missing[0]!r} is missing: a panel needs columns unique_id, ds, y; found "
            f"{list(map(str, frame.columns))}; example row: {first[0] if first else 'no rows'}"
        )
    if frame.empty:
        raise PanelError("the panel has no rows (columns unique_id, ds, y)")
    out = pd.DataFrame({"unique_id": frame["unique_id"].astype(str)})
    if frame["unique_id"].isna().any():
        raise PanelError(f"column 'unique_id' has an empty value, e.g. row {_example(frame, frame['unique_id'].isna())}")
    ds = pd.to_datetime(frame["ds"], errors="coerce")
    if getattr(ds.dt, "tz", None) is not None:
        ds = ds.dt.tz_localize(None)
    bad = ds.isna()
    if bad.any():
        raise PanelError(f"column 'ds' has a value that is not a date, e.g. row {_example(frame, bad)}")
    out["ds"] = ds.astype("datetime64[ns]")
    y = pd.to_numeric(frame["y"], errors="coerce")
    bad = y.isna() & frame["y"].notna()
    if bad.any():
        raise PanelError(f"column 'y' has a non-numeric value, e.g. row {_example(frame, bad)}")
    if y.isna().any():
        raise PanelError(f"column 'y' has a missing value, e.g. row {_example(frame, y.isna())}")
    values = y.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise PanelError(f"column 'y' has an infinite value, e.g. row {_example(frame, ~np.isfinite(values))}")
    if (values < 0).any():
        raise PanelError(f"column 'y' has a negative demand, e.g. row {_example(frame, values < 0)}")
    out["y"] = values
    dup = out.duplicated(["unique_id", "ds"], keep=False)
    if dup.any():
        raise PanelError(f"columns 'unique_id', 'ds' are duplicated: more than one row for {_example(frame, dup)}")
    sf_freq = FREQ_ALIASES[freq]
    off_grid = (out["ds"].dt.weekday != 0) if sf_freq == "W-MON" else (out["ds"].dt.day != 1) if sf_freq == "MS" else None
    if off_grid is not None:
        off_grid = off_grid | (out["ds"] != out["ds"].dt.normalize())
        if off_grid.any():
            expected = "a Monday" if sf_freq == "W-MON" else "the first of a month"
            raise PanelError(f"column 'ds' has a date that is not {expected} (freq {freq}), e.g. row {_example(frame, off_grid)}")
    order = np.lexsort((out["ds"].to_numpy(), out["unique_id"].to_numpy()))
    out = out.iloc[order].reset_index(drop=True)
    original = frame.iloc[order].reset_index(drop=True)
    period = period_number(out["ds"], freq)
    same = out["unique_id"].to_numpy()[1:] == out["unique_id"].to_numpy()[:-1]
    gap = np.r_[False, same & (np.diff(period) != 1)]
    if gap.any():
        i = int(np.flatnonzero(gap)[0])
        raise PanelError(
            f"column 'ds' has irregular dates: series {out.at[i, 'unique_id']!r} jumps from "
            f"{out.at[i - 1, 'ds'].date()} to {out.at[i, 'ds'].date()} (freq {freq}; fill missing buckets with 0), "
            f"e.g. row {_example(original, gap)}"
        )
    return out


def complete_buckets(panel: pd.DataFrame, freq: str, end: pd.Timestamp | None = None) -> pd.DataFrame:
    """Fill every missing bucket of every series with zero demand, from its first bucket to `end` (default:
    the panel's last bucket): no demand row means no demand, and a series that stopped stays visible."""
    if panel.empty:
        return panel
    sf_freq = FREQ_ALIASES[freq]
    end = pd.Timestamp(end) if end is not None else panel["ds"].max()
    first = panel.groupby("unique_id", sort=True)["ds"].min()
    grid = pd.date_range(first.min(), end, freq=sf_freq)
    n = len(grid)
    start_pos = grid.searchsorted(first.to_numpy())
    lengths = n - start_pos
    ids = np.repeat(first.index.to_numpy(), lengths)
    pos = np.concatenate([np.arange(s, n) for s in start_pos]) if len(start_pos) else np.array([], dtype=int)
    full = pd.DataFrame({"unique_id": ids, "ds": grid.to_numpy()[pos]})
    full = full.merge(panel[["unique_id", "ds", "y"]], on=["unique_id", "ds"], how="left")
    full["y"] = full["y"].fillna(0.0)
    return full


# Running statsforecast ---------------------------------------------------------------------------------------


@contextmanager
def _dask_client(address: str) -> Iterator[Any]:
    from dask.distributed import Client

    client = Client(address, set_as_default=True)
    try:
        yield client
    finally:
        client.close()


def _statsforecast(
    models: list[Any], df: pd.DataFrame, settings: ForecastSettings, cv_df: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One backtest (`n_windows` back-to-back windows of `horizon`) and one forecast of every model.

    `cv_df` (default `df`) is the panel the backtest runs on: the same series and values, but exogenous
    columns may differ (the pooled seasonal index is estimated without the backtest windows there). The
    forecast runs the models of `for_final_forecast`.
    """
    final = for_final_forecast(models, settings.horizon)
    from statsforecast import StatsForecast

    cv_df = df if cv_df is None else cv_df
    n_series = df["unique_id"].nunique()
    if settings.cluster_address:
        import dask.dataframe as dd

        with _dask_client(settings.cluster_address) as client:
            workers = max(1, len(client.scheduler_info().get("workers", {})))
            npartitions = max(1, min(n_series, 2 * workers))
            sf = StatsForecast(models=models, freq=settings.sf_freq)
            cv = sf.cross_validation(
                df=dd.from_pandas(cv_df, npartitions=npartitions), h=settings.horizon, n_windows=settings.n_windows,
                step_size=settings.horizon,
            )
            fc = StatsForecast(models=final, freq=settings.sf_freq).forecast(
                df=dd.from_pandas(df, npartitions=npartitions), h=settings.horizon
            )
            cv, fc = _to_pandas(cv), _to_pandas(fc)
    else:
        n_jobs = settings.n_jobs if n_series >= _PARALLEL_FROM_SERIES else 1
        sf = StatsForecast(models=models, freq=settings.sf_freq, n_jobs=n_jobs)
        cv = sf.cross_validation(df=cv_df, h=settings.horizon, n_windows=settings.n_windows, step_size=settings.horizon)
        fc = StatsForecast(models=final, freq=settings.sf_freq, n_jobs=n_jobs).forecast(df=df, h=settings.horizon)
    cv = cv.sort_values(["unique_id", "cutoff", "ds"]).reset_index(drop=True)
    fc = fc.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    return cv, fc


def _to_pandas(frame: Any) -> pd.DataFrame:
    if hasattr(frame, "compute"):
        frame = frame.compute()
    frame = pd.DataFrame(frame)
    frame["unique_id"] = frame["unique_id"].astype(str)
    for col in ("ds", "cutoff"):
        if col in frame:
            frame[col] = pd.to_datetime(frame[col]).astype("datetime64[ns]")
    return frame


# The engine --------------------------------------------------------------------------------------------------


def _future_dates(last: pd.Series, horizon: int, freq: str) -> np.ndarray:
    offset = pd.tseries.frequencies.to_offset(FREQ_ALIASES[freq])
    steps = [pd.DatetimeIndex(last + offset * k) for k in range(1, horizon + 1)]
    return np.stack([s.to_numpy() for s in steps], axis=1)


def _quantile_scale(y: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per series mean |Δy| of the history (right-aligned matrix), the unit backtest errors are pooled in."""
    d = np.abs(np.diff(y, axis=1))
    with np.errstate(invalid="ignore"):
        scale = np.nanmean(d, axis=1)
        level = np.nanmean(y, axis=1)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, np.maximum(np.nan_to_num(level), 1e-9))
    return scale


def trim_leading_zeros(panel: pd.DataFrame) -> pd.DataFrame:
    """Each series from its first non-zero demand on: zeros before it mean "not sold yet", not "no demand",
    and would make a newly launched item look intermittent. All-zero series are kept whole (dead or new)."""
    positive = panel["y"].to_numpy() > 0
    started = pd.Series(positive).groupby(panel["unique_id"].to_numpy(), sort=False).cummax().to_numpy()
    never = ~pd.Series(positive).groupby(panel["unique_id"].to_numpy(), sort=False).transform("any").to_numpy()
    return panel[started | never].reset_index(drop=True)


def route_series(profile: pd.DataFrame, settings: ForecastSettings) -> pd.Series:
    """Each series' route: `dead` (zero), `new` (launch profile), `short` (under two seasons, or too little
    history for the long backtest: methods that need no seasonal history), else its demand class, whose
    candidate set competes in the long backtest.

    New: fewer than `new_below_periods` periods since the first sale, or a launch seen in the data (column
    `launched`, when the profile has it) with fewer than `new_below_nonzero` non-zero periods within a season.
    """
    dead = profile["is_dead"].to_numpy(dtype=bool)
    history = profile["history_periods"].to_numpy()
    # The history the models see: the whole record unless more than a season of zeros precedes the first sale
    # (then the item launched inside the data); intermittent demand's early zeros are history too.
    seen = profile["model_history"].to_numpy() if "model_history" in profile else history
    new = profile["is_new"].to_numpy(dtype=bool)
    if "launched" in profile:
        new = new | (
            profile["launched"].to_numpy(dtype=bool)
            & (profile["nonzero_periods"].to_numpy() < settings.new_below_nonzero)
            & (history <= settings.season_length)
        )
    new &= ~dead
    short = (seen < settings.min_long_history) & ~dead & ~new
    route = np.where(dead, "dead", np.where(new, "new", np.where(short, "short", profile["demand_class"].to_numpy())))
    return pd.Series(route, index=profile.index, name="route", dtype=object)


def _phase_matrix(last_period: np.ndarray, before: int, after: int, settings: ForecastSettings) -> np.ndarray:
    """Season phase of the `before` buckets up to each series' last one and the `after` buckets past it."""
    offsets = np.arange(-(before - 1), after + 1)
    return phase_of_period(last_period[:, None] + offsets[None, :], settings.sf_freq, settings.season_length)


def _labels(ids: np.ndarray, mapping: pd.Series | None) -> np.ndarray:
    if mapping is None:
        return np.full(len(ids), "", dtype=object)
    return pd.Series(ids).map(mapping).fillna("").astype(str).to_numpy(dtype=object)


@dataclass
class _Seasonality:
    """The pooled seasonal indices of one run: on all data, and without each series' last k periods."""

    panel: pd.DataFrame
    period: np.ndarray
    phase: np.ndarray
    settings: SeasonSettings
    categories: pd.Series | None
    classes: pd.Series
    cache: dict[int, PooledSeasonality] = field(default_factory=dict)

    def pooled(self, exclude_last: int = 0) -> PooledSeasonality:
        if exclude_last not in self.cache:
            self.cache[exclude_last] = pooled_seasonality(
                self.panel, self.period, self.phase, self.settings, self.categories, self.classes, exclude_last
            )
        return self.cache[exclude_last]

    def honest(self, exclude_last: int) -> IndexFn | None:
        """The index estimated without each series' last `exclude_last` periods, or None when nothing is seasonal."""
        pooled = self.pooled(exclude_last)
        return pooled.series_index if pooled.detected else None


def with_season_index(
    group: pd.DataFrame, settings: ForecastSettings, exclude_last: int = 0, categories: pd.Series | None = None,
    pooled: PooledSeasonality | None = None, allowed: dict[tuple[str, str], str] | None = None,
) -> pd.DataFrame:
    """`group` (validated, sorted by series and date) with the pooled seasonal index of each row's bucket as
    column `SEASON_INDEX_COLUMN`, estimated without each series' last `exclude_last` periods (the backtest
    windows, so the backtest does not see its own future); every group shape counts (the backtest decides),
    restricted to the `allowed` groups and shape kinds when given; unchanged when no series has a shape."""
    phase = season_phase(group["ds"], settings.sf_freq, settings.season_length)
    if pooled is None:
        period = period_number(group["ds"], settings.freq)
        pooled = pooled_seasonality(group, period, phase, settings.season_settings(), categories, None, exclude_last)
    if not pooled.coefs:
        return group
    index = pooled.series_index(group["unique_id"].to_numpy(), phase, detected_only=False, allowed=allowed)
    if np.allclose(index, 1.0):
        return group
    return group.assign(**{SEASON_INDEX_COLUMN: index})


def _validated_shapes(honest: PooledSeasonality, final: PooledSeasonality) -> dict[tuple[str, str], str]:
    """The groups whose final shape the backtest validated, each with the kind of shape to use. A group the
    backtest saw a shape for keeps one while it is still detected seasonal on all data, of the kind the data
    supports best (harmonic or classical, by BIC); a group not detected keeps its classical shape only where
    the backtest saw a classical one too (long histories, where the backtest rather than the test decides).
    A shape detected on a season and a half but gone on all data was noise, and a shape the backtest never
    saw is not used."""
    def kinds(pooled: PooledSeasonality) -> dict[tuple[str, str], str]:
        return dict(zip(zip(pooled.groups["level"], pooled.groups["group"]), pooled.groups["shape"]))

    seen, now = kinds(honest), kinds(final)
    out: dict[tuple[str, str], str] = {}
    for key in final.coefs:
        if key not in honest.coefs:
            continue
        if key in final.detected:
            out[key] = now.get(key) or "harmonic"
        elif seen.get(key) == "classical" and now.get(key) == "classical":
            out[key] = "classical"
    return out


def _segments_of(flags: np.ndarray, min_size: int = 50) -> list[np.ndarray]:
    """Row sets for a per-segment selection: seasonal and non-seasonal series apart when both are big enough."""
    on, off = np.flatnonzero(flags), np.flatnonzero(~flags)
    if len(on) >= min_size and len(off) >= min_size:
        return [on, off]
    return [np.arange(len(flags))]


def _forecast_long(
    demand_class: str, ids: np.ndarray, panel: pd.DataFrame, seasons: _Seasonality, settings: ForecastSettings,
    rmsse_scale: np.ndarray, qscale: np.ndarray,
) -> dict[str, Any]:
    """One class of long series: rolling-origin backtest of its candidates, selection per segment (seasonal
    categories apart), bias check, cross-fitted quantiles."""
    h, W = settings.horizon, settings.n_windows
    models = candidates_for(demand_class, settings.season_length, h)
    group = panel[panel["unique_id"].isin(set(ids))]
    cv_group = None
    seasonal_series = np.zeros(len(ids), dtype=bool)
    if any(isinstance(m, Deseasonalized) for m in models):
        honest = seasonals = None
        if settings.season_length > 1:
            honest = seasons.pooled(W * h)
            seasonals = seasons.pooled(0)
        cv_group = with_season_index(group, settings, pooled=honest) if honest is not None else group
        if SEASON_INDEX_COLUMN in cv_group:
            allowed = _validated_shapes(honest, seasonals)  # type: ignore[arg-type]
            group = with_season_index(group, settings, pooled=seasonals, allowed=allowed)
            if SEASON_INDEX_COLUMN not in group:
                group = group.assign(**{SEASON_INDEX_COLUMN: 1.0})
            sg = seasonals.series_group.set_index("unique_id").reindex(ids)  # type: ignore[union-attr]
            keys = list(zip(sg["level"].fillna(""), sg["group"].fillna("")))
            seasonal_series = np.array([k in seasonals.detected and k in allowed for k in keys], dtype=bool)  # type: ignore[union-attr]
        else:
            # No pooled index without the backtest windows: the final forecast must not use one the
            # backtest never validated, and the pooled-fallback candidates are their base models.
            models = [m for m in models if not getattr(m, "pooled_fallback", False)]
            cv_group = None
    names = [m.alias for m in models]
    cv, fc = _statsforecast(models, group, settings, cv_df=cv_group)
    S = len(ids)
    F = np.nan_to_num(cv[names].to_numpy(dtype=float).reshape(S, W, h, len(names)), nan=0.0)
    Y = cv["y"].to_numpy(dtype=float).reshape(S, W, h)
    Ffut = np.nan_to_num(fc[names].to_numpy(dtype=float).reshape(S, h, len(names)), nan=0.0)
    weights = np.zeros((S, len(names)))
    factor = np.ones(S)
    calib = np.zeros(Y.shape)
    segments: list[dict[str, Any]] = []
    strategy = settings.selection
    segment_of = np.full(S, "", dtype=object)
    parts = _segments_of(seasonal_series)
    for rows in parts:
        tag = "" if len(parts) == 1 else (":seasonal" if seasonal_series[rows].all() else ":non_seasonal")
        segment_of[rows] = f"long:2_seasons_or_more:{demand_class}{tag}"
        w, strategy, scores = select(F[rows], Y[rows], rmsse_scale[rows], settings.selection)
        cv_mean = np.maximum(np.einsum("swhm,sm->swh", F[rows], w), 0.0)
        check = bias_check(cv_mean, Y[rows])
        weights[rows], factor[rows] = w, check.factor
        calib[rows] = cross_fitted_mean(F[rows], Y[rows], rmsse_scale[rows], settings.selection, check.factor)
        label = pd.Series(["+".join(names[j] for j in np.flatnonzero(r > 0)) for r in w]).value_counts().index[0]
        segments.append({
            "segment": segment_of[rows[0]], "route": "long", "band": "2_seasons_or_more", "demand_class": demand_class,
            "seasonal_categories": bool(seasonal_series[rows].any()), "series": len(rows), "window": h, "windows": W,
            "strategy": strategy, "model": label, **{f"validation_rmsse_{k}": v for k, v in scores.items()},
            "bias_pct_raw": check.bias_pct, "window_bias_pct": check.window_bias_pct, "bias_factor": check.factor,
            "bias_systematic": check.systematic, "candidates": ", ".join(names),
        })
    cv_mean = np.maximum(np.einsum("swhm,sm->swh", F, weights), 0.0) * factor[:, None, None]
    fut_mean = np.maximum(np.einsum("shm,sm->sh", Ffut, weights), 0.0) * factor[:, None]
    pooled_q = pooled_quantiles((Y - calib) / qscale[:, None, None], np.zeros(S))[0]
    labels = np.array(["+".join(names[j] for j in np.flatnonzero(w > 0)) for w in weights], dtype=object)
    cv_q = np.stack([quantiles_from_errors(cv_mean[:, k], qscale, pooled_q) for k in range(W)], axis=1)
    backtest = _backtest_frame(ids, cv, cv_mean, cv_q, F[..., names.index(BENCHMARK_MODEL)], group, settings, demand_class)
    return {
        "mean": fut_mean, "quantiles": quantiles_from_errors(fut_mean, qscale, pooled_q), "model": labels,
        "error_quantiles": pooled_q, "backtest": backtest.assign(route="long", bias_factor=factor, segment=segment_of),
        "segments": segments, "strategy": strategy,
    }


@dataclass
class _Prepared:
    """A validated panel and everything routing needs: profile, dense matrix, routes, pooled seasonality."""

    panel: pd.DataFrame
    profile: pd.DataFrame  # in matrix order, with launched, route, category, seasonal_source
    matrix: PanelMatrix
    seasons: _Seasonality
    routes: np.ndarray
    category: np.ndarray


def _prepare(panel: pd.DataFrame, settings: ForecastSettings, categories: pd.Series | None) -> _Prepared:
    panel = validate_panel(panel, settings.freq)
    # The class comes from the history since the first sale; the models see the whole history (measured:
    # trimming it too costs accuracy on stallion, where early zeros carry the launch level's scale).
    trimmed = trim_leading_zeros(panel)
    profile = profile_panel(trimmed, settings.profile_settings())
    matrix = to_matrix(panel)
    ids_all = matrix.ids
    profile = profile.set_index("unique_id").loc[ids_all].reset_index()
    _, age, first_sale = since_launch(matrix.values)
    profile["launched"] = launched_inside(matrix.values, first_sale) & (age > 0)
    start = matrix.values.shape[1] - matrix.lengths
    lead = np.maximum(first_sale - start, 0)
    profile["model_history"] = np.where(lead > max(settings.season_length, 1), matrix.lengths - lead, matrix.lengths)
    classes = profile["demand_class"].to_numpy()
    category = _labels(ids_all, categories)
    trimmed_period = period_number(trimmed["ds"], settings.freq)
    seasons = _Seasonality(
        panel=trimmed, period=trimmed_period,
        phase=phase_of_period(trimmed_period, settings.sf_freq, settings.season_length),
        settings=settings.season_settings(),
        categories=pd.Series(category, index=ids_all) if categories is not None else None,
        classes=pd.Series(classes, index=ids_all),
    )
    routes = route_series(profile, settings).to_numpy()
    own = profile["seasonal"].to_numpy(dtype=bool)
    pooled = seasons.pooled(0).source_of(ids_all) if settings.season_length > 1 else np.full(len(ids_all), "", dtype=object)
    profile = profile.assign(
        route=routes, category=category, seasonal_source=np.where(own, "own", pooled), seasonal=own | (pooled != "")
    )
    return _Prepared(panel=panel, profile=profile, matrix=matrix, seasons=seasons, routes=routes, category=category)


def profile_routes(panel: pd.DataFrame, settings: ForecastSettings, categories: pd.Series | None = None) -> pd.DataFrame:
    """The demand profile of every series with the route the engine takes for it, its category and where
    its seasonality comes from (own test, or the pooled index of its category, class or panel); no forecast."""
    return _prepare(panel, settings, categories).profile


def forecast_panel(panel: pd.DataFrame, settings: ForecastSettings, categories: pd.Series | None = None) -> ForecastResult:
    """Forecast every series of a long panel `unique_id, ds, y` (see the module docstring).

    `categories` (optional) maps unique_id to a product category: seasonality is pooled there first (then
    in the demand class, then the whole panel) and launch analogues are looked for there.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    prepared = _prepare(panel, settings, categories)
    panel, profile, matrix, seasons = prepared.panel, prepared.profile, prepared.matrix, prepared.seasons
    routes, category = prepared.routes, prepared.category
    timings["profile_s"] = time.perf_counter() - started

    ids_all = matrix.ids
    n, h, n_levels = len(ids_all), settings.horizon, len(QUANTILE_LEVELS)
    row_of = pd.Series(np.arange(n), index=ids_all)
    qscale_all = _quantile_scale(matrix.values, matrix.lengths)
    rmsse_scale_all = np.nanmean(np.diff(matrix.values, axis=1) ** 2, axis=1)
    rmsse_scale_all = np.where(np.isfinite(rmsse_scale_all) & (rmsse_scale_all > 0), rmsse_scale_all, qscale_all**2)
    last_ds = panel.groupby("unique_id", sort=False)["ds"].max().reindex(ids_all)
    future_ds = _future_dates(last_ds.reset_index(drop=True), h, settings.freq)
    classes = profile["demand_class"].to_numpy()

    mean = np.zeros((n, h))
    quant = np.zeros((n, h, n_levels))
    model = np.empty(n, dtype=object)
    strategy_of = np.full(n, "", dtype=object)
    band_of = np.full(n, "", dtype=object)
    dead = routes == "dead"
    model[dead] = "Zero (dead)"

    segments: list[dict[str, Any]] = []
    backtests: list[pd.DataFrame] = []
    pooled_errors: list[np.ndarray] = []
    cv_seconds = 0.0
    for demand_class in DEMAND_CLASSES:
        members = routes == demand_class
        if not members.any():
            continue
        ids = np.sort(ids_all[members])
        rows = row_of.loc[ids].to_numpy()
        t0 = time.perf_counter()
        out = _forecast_long(demand_class, ids, panel, seasons, settings, rmsse_scale_all[rows], qscale_all[rows])
        cv_seconds += time.perf_counter() - t0
        mean[rows], quant[rows], model[rows] = out["mean"], out["quantiles"], out["model"]
        strategy_of[rows], band_of[rows] = out["strategy"], "2_seasons_or_more"
        backtests.append(out["backtest"])
        segments += out["segments"]
        pooled_errors.append(out["error_quantiles"])
    timings["statsforecast_s"] = cv_seconds

    short = routes == "short"
    if short.any():
        t0 = time.perf_counter()
        rows = np.flatnonzero(short)
        values = _short_rows(matrix.values[rows], settings.season_length)
        width = values.shape[1]
        last_period = period_number(pd.Series(last_ds.to_numpy()[rows]), settings.freq)
        phase = _phase_matrix(last_period, width, h, settings) if settings.season_length > 1 else None
        final = seasons.pooled(0)
        out_s = forecast_short(
            values, ids_all[rows], classes[rows], phase,
            final.series_index if final.detected else None,
            seasons.honest if settings.season_length > 1 else None,
            np.asarray(final.series_group.set_index("unique_id")["group"].reindex(ids_all[rows]).fillna("").to_numpy(), dtype=object)
            if not final.series_group.empty else np.full(len(rows), "", dtype=object),
            qscale_all[rows],
            ShortSettings(horizon=h, season_length=settings.season_length, n_windows=settings.n_windows,
                          selection=settings.selection, n_jobs=settings.n_jobs),
        )
        mean[rows], quant[rows], model[rows], band_of[rows] = out_s.mean, out_s.quantiles, out_s.model, out_s.band
        strategy_of[rows] = "class"
        if not out_s.backtest.empty:
            backtests.append(out_s.backtest.assign(route="short"))
        segments += out_s.segments
        timings["short_s"] = time.perf_counter() - t0

    new = routes == "new"
    if new.any():
        # Analogues come from the SKU's category (another category's launches say little about this one's);
        # without categories, from its demand class.
        labels = [("category", category)] if categories is not None else [("class", classes.astype(object))]
        launch = launch_forecast(matrix.values, new, labels, h, qscale_all, settings.season_length)
        rows = np.flatnonzero(new)
        mean[rows] = launch.mean
        vals = matrix.values[rows]
        post_launch = np.where(np.maximum.accumulate(np.nan_to_num(vals) > 0, axis=1), vals, np.nan)
        spread_q = launch.error_quantiles
        if spread_q is None and pooled_errors:
            spread_q = np.mean(pooled_errors, axis=0)
        if spread_q is not None:
            quant[rows] = quantiles_from_errors(launch.mean, _quantile_scale(post_launch, matrix.lengths[rows]), spread_q)
        else:
            level = launch.mean.mean(axis=1)
            spread = np.nanquantile(post_launch, QUANTILE_LEVELS, axis=1).T - np.nanmean(post_launch, axis=1)[:, None] + level[:, None]
            q = np.maximum(np.repeat(np.nan_to_num(spread)[:, None, :], h, axis=1), 0.0)
            quant[rows] = np.maximum.accumulate(q, axis=2)
        model[rows] = np.where(
            launch.profile_source != "", launch.method + " (new, " + launch.profile_source + " analogues)", "RecordTSB (new)"
        )
        band_of[rows] = "new"

    final = seasons.pooled(0)
    profile = profile.assign(model=model, selection=strategy_of, band=band_of)
    forecast = pd.DataFrame(
        {
            "unique_id": np.repeat(ids_all, h),
            "ds": future_ds.reshape(-1),
            "mean": mean.reshape(-1),
            **{c: quant[:, :, i].reshape(-1) for i, c in enumerate(QUANTILE_COLUMNS)},
            "model": np.repeat(model, h),
            "demand_class": np.repeat(classes, h),
        }
    )
    forecast["ds"] = pd.to_datetime(forecast["ds"]).astype("datetime64[ns]")
    forecast = forecast.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    backtest = pd.concat(backtests, ignore_index=True)[list(BACKTEST_COLUMNS)] if backtests else _empty_backtest()
    timings["total_s"] = time.perf_counter() - started
    return ForecastResult(
        forecast=forecast,
        profile=profile,
        backtest=backtest,
        selection=pd.DataFrame(segments),
        timings=timings,
        seasonality=final.groups,
    )


def _short_rows(values: np.ndarray, season_length: int) -> np.ndarray:
    """The history the short route sees: each row from its first sale when more than a season of zeros
    precedes it (a launch, not intermittence), else whole; right-aligned on a common width."""
    S, width = values.shape
    sold = np.nan_to_num(values) > 0
    observed = ~np.isnan(values)
    start = np.argmax(observed, axis=1)
    first = np.where(sold.any(axis=1), np.argmax(sold, axis=1), start)
    cut = np.where(first - start > max(season_length, 1), first, start)
    out = np.where(np.arange(width)[None, :] >= cut[:, None], values, np.nan)
    keep = int(max(width - cut.min(), 1)) if S else 1
    return out[:, width - keep :]


BACKTEST_COLUMNS = (
    "unique_id", "demand_class", "route", "segment", "windows", "rmsse", "mase", "spl", "bias", "abs_actual",
    "covered80", "points", "benchmark_rmsse", "recent_rmsse", "earlier_rmsse", "bias_factor",
)


def _empty_backtest() -> pd.DataFrame:
    text = ("unique_id", "demand_class", "route", "segment")
    return pd.DataFrame({c: pd.Series(dtype=object if c in text else float) for c in BACKTEST_COLUMNS})


def _backtest_frame(
    ids: np.ndarray,
    cv: pd.DataFrame,
    cv_mean: np.ndarray,
    cv_q: np.ndarray,
    benchmark: np.ndarray,
    history: pd.DataFrame,
    settings: ForecastSettings,
    demand_class: str,
) -> pd.DataFrame:
    """Per series accuracy of the selected forecast over the backtest windows, beside the benchmark's."""
    S, W, h = cv_mean.shape
    first_cutoff = cv.groupby("unique_id", sort=True)["cutoff"].min()
    train = history.merge(first_cutoff.rename("first_cutoff"), left_on="unique_id", right_index=True)
    train = train[train["ds"] <= train["first_cutoff"]][["unique_id", "ds", "y"]]
    fc = pd.DataFrame(
        {
            "unique_id": cv["unique_id"].to_numpy(),
            "ds": cv["ds"].to_numpy(),
            "mean": cv_mean.reshape(-1),
            **{c: cv_q[..., i].reshape(-1) for i, c in enumerate(QUANTILE_COLUMNS)},
        }
    )
    actual = cv[["unique_id", "ds", "y"]]
    per = score_series(fc, actual, train, settings.season_length)
    bench = score_series(fc.assign(mean=benchmark.reshape(-1))[["unique_id", "ds", "mean"]], actual, train, settings.season_length)
    per["benchmark_rmsse"] = bench["rmsse"].to_numpy()
    y = cv["y"].to_numpy(dtype=float).reshape(S, W, h)
    scale = series_scales(train, settings.season_length).set_index("unique_id")["rmsse_scale"].reindex(ids).to_numpy()
    scale = np.where(scale > 0, scale, np.nan)
    sq = (cv_mean - y) ** 2
    per["recent_rmsse"] = np.sqrt(sq[:, -1].mean(axis=1) / scale)
    per["earlier_rmsse"] = np.sqrt(sq[:, :-1].mean(axis=(1, 2)) / scale) if W > 1 else np.nan
    per.insert(1, "demand_class", demand_class)
    per.insert(2, "windows", W)
    return per
