"""The forecasting engine: validated panel in, selected forecasts with calibrated quantiles out.

`forecast_panel` profiles every series, forecasts dead series as zero and new ones by their history,
routes the others by Syntetos–Boylan class to a small set of fast statsforecast candidates, and runs one
rolling-origin cross-validation per class. Seasonally adjusted candidates also see the class's pooled
seasonal index (an exogenous column; for the backtest estimated without its windows), which they shrink
their own indices towards or, as `PSA_` candidates, use where a series shows no seasonality of its own.
From the backtest it selects per series or per class (single models or an equal-weight combination of the
best few), whichever validates better on the last window after selecting on the earlier ones. A class's
forecast is rescaled when its backtest bias persisted from the earlier windows into the last. Quantiles
q05..q95 come from the backtest errors of the selected forecast, each window's forecast selected on the
other windows (cross-fitted, so the errors are out of selection sample): empirical, scaled, pooled per class
and horizon step; non-negative and monotone. New and short series borrow those pooled errors, in the unit
of their own post-launch variability.
The same code runs on a Dask cluster through statsforecast's distributed backend when a scheduler address
is given. No Dagster import: the assets and the CLI both call this module.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from demand_control.planning.candidates import BENCHMARK_MODEL, SEASON_INDEX_COLUMN, Deseasonalized, candidates_for
from demand_control.planning.metrics import QUANTILE_COLUMNS, QUANTILE_LEVELS, score_series, series_scales
from demand_control.infra.settings import FORECAST_CLUSTER_ENV
from demand_control.planning.profile import DEMAND_CLASSES, ProfileSettings, pooled_season_index, profile_panel

log = logging.getLogger(__name__)

FREQ_ALIASES: dict[str, str] = {"D": "D", "W": "W-MON", "W-MON": "W-MON", "MS": "MS", "M": "MS"}
PANEL_COLUMNS = ("unique_id", "ds", "y")
FORECAST_COLUMNS = ("unique_id", "ds", "mean", *QUANTILE_COLUMNS, "model", "demand_class")
CLUSTER_ENV = FORECAST_CLUSTER_ENV
# Below this many series a process pool costs more than it saves; statsforecast runs in-process.
_PARALLEL_FROM_SERIES = 2_000
# Pool backtest errors per (class, horizon step) only when each pool has this many; else per class, else all.
_MIN_POOL = 60
_COMBINE_TOP = 4
# A class's backtest bias is corrected by at most this share of its forecast.
_MAX_LEVEL_CORRECTION = 0.2
_SERIES_CHUNK = 20_000

Selection = Literal["auto", "series", "class"]


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
    dead_after_periods: int = 26

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
    selection: pd.DataFrame  # per class: strategy validation scores and the strategy chosen
    timings: dict[str, float] = field(default_factory=dict)


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
    columns may differ (the pooled seasonal index is estimated without the backtest windows there).
    """
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
            fc = sf.forecast(df=dd.from_pandas(df, npartitions=npartitions), h=settings.horizon)
            cv, fc = _to_pandas(cv), _to_pandas(fc)
    else:
        n_jobs = settings.n_jobs if n_series >= _PARALLEL_FROM_SERIES else 1
        sf = StatsForecast(models=models, freq=settings.sf_freq, n_jobs=n_jobs)
        cv = sf.cross_validation(df=cv_df, h=settings.horizon, n_windows=settings.n_windows, step_size=settings.horizon)
        fc = sf.forecast(df=df, h=settings.horizon)
    cv = cv.sort_values(["unique_id", "cutoff", "ds"]).reset_index(drop=True)
    fc = fc.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    return cv, fc


def with_season_index(group: pd.DataFrame, settings: ForecastSettings, exclude_last: int = 0) -> pd.DataFrame:
    """`group` (validated, sorted by series and date) with the pooled seasonal index of each row's period as
    column `SEASON_INDEX_COLUMN`, estimated without each series' last `exclude_last` periods (the backtest
    windows, so the backtest does not see its own future); unchanged when nothing can be pooled."""
    period = period_number(group["ds"], settings.freq)
    keep = np.ones(len(group), dtype=bool)
    if exclude_last > 0:
        keep = group.groupby("unique_id", sort=False).cumcount(ascending=False).to_numpy() >= exclude_last
    pooled = pooled_season_index(
        group["unique_id"].to_numpy()[keep], period[keep], group["y"].to_numpy(dtype=float)[keep], settings.season_length
    )
    if pooled is None:
        return group
    return group.assign(**{SEASON_INDEX_COLUMN: pooled[period % settings.season_length]})


def _to_pandas(frame: Any) -> pd.DataFrame:
    if hasattr(frame, "compute"):
        frame = frame.compute()
    frame = pd.DataFrame(frame)
    frame["unique_id"] = frame["unique_id"].astype(str)
    for col in ("ds", "cutoff"):
        if col in frame:
            frame[col] = pd.to_datetime(frame[col]).astype("datetime64[ns]")
    return frame


# Selection ---------------------------------------------------------------------------------------------------


def _combos(ranked: list[int]) -> list[tuple[int, ...]]:
    top = ranked[:_COMBINE_TOP]
    combos: list[tuple[int, ...]] = [(m,) for m in ranked]
    for k in (2, 3):
        combos += list(itertools.combinations(sorted(top), k))
    return combos


def _combo_scores(F: np.ndarray, Y: np.ndarray, scale: np.ndarray, combos: list[tuple[int, ...]], windows: slice) -> np.ndarray:
    """Per series RMSSE (S, K) of each equal-weight combination over the chosen backtest windows."""
    out = np.empty((F.shape[0], len(combos)))
    for lo in range(0, F.shape[0], _SERIES_CHUNK):
        f = F[lo : lo + _SERIES_CHUNK, windows]
        y = Y[lo : lo + _SERIES_CHUNK, windows]
        for k, combo in enumerate(combos):
            pred = f[..., list(combo)].mean(axis=-1)
            out[lo : lo + _SERIES_CHUNK, k] = np.sqrt(((pred - y) ** 2).mean(axis=(1, 2)) / scale[lo : lo + _SERIES_CHUNK])
    return out


def _weights_class(F: np.ndarray, Y: np.ndarray, scale: np.ndarray, windows: slice) -> tuple[np.ndarray, tuple[int, ...]]:
    """One combination for the whole class: the single or equal-weight mix with the lowest mean RMSSE."""
    singles = _combo_scores(F, Y, scale, [(m,) for m in range(F.shape[-1])], windows)
    ranked = list(np.argsort(np.nanmean(singles, axis=0)))
    combos = _combos([int(m) for m in ranked])
    scores = np.nanmean(_combo_scores(F, Y, scale, combos, windows), axis=0)
    best = combos[int(np.nanargmin(scores))]
    w = np.zeros((F.shape[0], F.shape[-1]))
    w[:, list(best)] = 1.0 / len(best)
    return w, best


def _weights_series(F: np.ndarray, Y: np.ndarray, scale: np.ndarray, windows: slice, top: int = 1) -> np.ndarray:
    """Per series the best single model (top=1) or the equal mix of its `top` best, by backtest RMSSE."""
    mse = ((F[:, windows] - Y[:, windows, :, None]) ** 2).mean(axis=(1, 2))
    order = np.argsort(mse, axis=1, kind="stable")[:, :top]
    w = np.zeros(mse.shape)
    np.put_along_axis(w, order, 1.0 / top, axis=1)
    return w


STRATEGIES = ("class", "series", "series_top2")


def _select(F: np.ndarray, Y: np.ndarray, scale: np.ndarray, selection: Selection) -> tuple[np.ndarray, str, dict[str, float]]:
    """Weights (S, M) of the selected forecast per series, the strategy used and its validation scores.

    With `auto` and two or more windows each strategy selects on all windows but the last and is scored
    on the last (an honest out-of-sample comparison); the winner then re-selects on every window.
    """
    n_windows = F.shape[1]
    every = slice(0, n_windows)

    def weights(strategy: str, windows: slice) -> np.ndarray:
        if strategy == "class":
            return _weights_class(F, Y, scale, windows)[0]
        return _weights_series(F, Y, scale, windows, top=2 if strategy == "series_top2" else 1)

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


def _level_factor(pred: np.ndarray, actual: np.ndarray) -> float:
    total = float(np.nansum(pred))
    return float(np.clip(np.nansum(actual) / total, 1 - _MAX_LEVEL_CORRECTION, 1 + _MAX_LEVEL_CORRECTION)) if total > 0 else 1.0


def _level_correction(cv_mean: np.ndarray, Y: np.ndarray, scale: np.ndarray) -> float:
    """One multiplicative factor for a class's selected forecast that removes its backtest bias, or 1.

    The factor (Σ actual / Σ forecast, clipped) is learnt on the earlier windows and kept only when it lowers
    the mean RMSSE on the last window, i.e. when the class's bias persisted out of sample; it is then
    re-learnt on every window. With one window there is nothing to validate it on: no correction.
    """
    W = cv_mean.shape[1]
    if W < 2:
        return 1.0
    factor = _level_factor(cv_mean[:, :-1], Y[:, :-1])

    def rmsse(pred: np.ndarray) -> float:
        return float(np.nanmean(np.sqrt(((pred - Y[:, -1]) ** 2).mean(axis=1) / scale)))

    if rmsse(cv_mean[:, -1] * factor) >= rmsse(cv_mean[:, -1]):
        return 1.0
    return _level_factor(cv_mean, Y)


def _cross_fitted_mean(F: np.ndarray, Y: np.ndarray, scale: np.ndarray, selection: Selection, factor: float) -> np.ndarray:
    """The backtest forecast (S, W, H) with each window's weights selected on the other windows only, so the
    errors quantiles are calibrated on are out of selection sample (with one window: the in-sample ones)."""
    W = F.shape[1]
    out = np.empty(Y.shape)
    for w in range(W):
        others = [k for k in range(W) if k != w] or [w]
        wts = _select(F[:, others], Y[:, others], scale, selection)[0]
        out[:, w] = np.maximum(np.einsum("shm,sm->sh", F[:, w], wts), 0.0) * factor
    return out


# Quantiles ---------------------------------------------------------------------------------------------------


def _pooled_quantiles(errors: np.ndarray, groups: np.ndarray) -> dict[Any, np.ndarray]:
    """Empirical quantiles (H, L) of scaled backtest errors per group; errors is (S, W, H)."""
    out: dict[Any, np.ndarray] = {}
    levels = np.asarray(QUANTILE_LEVELS)
    overall = errors.reshape(-1, errors.shape[-1])
    overall_q = _quantiles_by_step(overall, levels)
    for g in np.unique(groups):
        e = errors[groups == g].reshape(-1, errors.shape[-1])
        out[g] = _quantiles_by_step(e, levels, fallback=overall_q)
    out[None] = overall_q
    return out


def _quantiles_by_step(e: np.ndarray, levels: np.ndarray, fallback: np.ndarray | None = None) -> np.ndarray:
    finite = np.isfinite(e)
    if finite.sum(axis=0).min(initial=0) >= _MIN_POOL:
        return np.stack([np.nanquantile(np.where(finite[:, h], e[:, h], np.nan), levels) for h in range(e.shape[1])])
    if finite.sum() >= _MIN_POOL or fallback is None:
        flat = e[finite]
        q = np.quantile(flat, levels) if flat.size else np.zeros(len(levels))
        return np.tile(q, (e.shape[1], 1))
    return fallback


def quantiles_from_errors(mean: np.ndarray, qscale: np.ndarray, scaled_error_quantiles: np.ndarray) -> np.ndarray:
    """Quantile forecasts (S, H, L) = mean + scale · error quantile, clipped at zero and made monotone in q."""
    q = mean[:, :, None] + qscale[:, None, None] * scaled_error_quantiles[None, :, :]
    q = np.maximum(q, 0.0)
    return np.maximum.accumulate(q, axis=2)


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
    """Each series' route: `dead` (zero), `new` or `short` (too little history to backtest: moving average),
    else its demand class, whose candidate set competes in the backtest."""
    dead = profile["is_dead"].to_numpy(dtype=bool)
    short = (profile["history_periods"].to_numpy() < settings.min_cv_history) & ~dead
    new = profile["is_new"].to_numpy(dtype=bool) & ~dead
    route = np.where(dead, "dead", np.where(new, "new", np.where(short, "short", profile["demand_class"].to_numpy())))
    return pd.Series(route, index=profile.index, name="route", dtype=object)


def forecast_panel(panel: pd.DataFrame, settings: ForecastSettings) -> ForecastResult:
    """Forecast every series of a long panel `unique_id, ds, y` (see the module docstring)."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    panel = validate_panel(panel, settings.freq)
    # The class comes from the history since the first sale; the models see the whole history (measured:
    # trimming it too costs accuracy on stallion, where early zeros carry the launch level's scale).
    profile = profile_panel(trim_leading_zeros(panel), settings.profile_settings())
    timings["profile_s"] = time.perf_counter() - started

    from demand_control.planning.profile import to_matrix

    matrix = to_matrix(panel)
    row_of = pd.Series(np.arange(len(matrix.ids)), index=matrix.ids)
    profile = profile.set_index("unique_id").loc[matrix.ids].reset_index()
    qscale_all = _quantile_scale(matrix.values, matrix.lengths)
    rmsse_scale_all = np.nanmean(np.diff(matrix.values, axis=1) ** 2, axis=1)
    rmsse_scale_all = np.where(np.isfinite(rmsse_scale_all) & (rmsse_scale_all > 0), rmsse_scale_all, qscale_all**2)
    last_ds = panel.groupby("unique_id", sort=False)["ds"].max().reindex(matrix.ids)
    future_ds = _future_dates(last_ds.reset_index(drop=True), settings.horizon, settings.freq)

    n, h, n_levels = len(matrix.ids), settings.horizon, len(QUANTILE_LEVELS)
    mean = np.zeros((n, h))
    quant = np.zeros((n, h, n_levels))
    model = np.empty(n, dtype=object)
    route = np.empty(n, dtype=object)
    strategy_of = np.full(n, "", dtype=object)

    routes = route_series(profile, settings)
    dead = (routes == "dead").to_numpy()
    too_short = routes.isin(["new", "short"]).to_numpy()
    new = (routes == "new").to_numpy()
    route[:] = routes.to_numpy()
    model[dead] = "Zero (dead)"

    selection_rows: list[dict[str, Any]] = []
    backtests: list[pd.DataFrame] = []
    pooled: dict[str, np.ndarray] = {}
    cv_seconds = 0.0
    for demand_class in DEMAND_CLASSES:
        members = (profile["demand_class"].to_numpy() == demand_class) & ~dead & ~too_short
        if not members.any():
            continue
        ids = np.sort(matrix.ids[members])
        rows = row_of.loc[ids].to_numpy()
        models = candidates_for(demand_class, settings.season_length, settings.horizon)
        names = [m.alias for m in models]
        group = panel[panel["unique_id"].isin(set(ids))]
        t0 = time.perf_counter()
        cv_group = None
        if any(isinstance(m, Deseasonalized) for m in models):
            cv_group = with_season_index(group, settings, exclude_last=settings.n_windows * settings.horizon)
            if SEASON_INDEX_COLUMN in cv_group:
                group = with_season_index(group, settings)
            else:
                # No pooled index without the backtest windows: the final forecast must not use one the
                # backtest never validated, and the pooled-fallback candidates are their base models.
                models = [m for m in models if not getattr(m, "pooled_fallback", False)]
                names = [m.alias for m in models]
        cv, fc = _statsforecast(models, group, settings, cv_df=cv_group)
        cv_seconds += time.perf_counter() - t0
        S, W = len(ids), settings.n_windows
        F = cv[names].to_numpy(dtype=float).reshape(S, W, h, len(names))
        Y = cv["y"].to_numpy(dtype=float).reshape(S, W, h)
        Ffut = fc[names].to_numpy(dtype=float).reshape(S, h, len(names))
        F = np.nan_to_num(F, nan=0.0)
        Ffut = np.nan_to_num(Ffut, nan=0.0)
        scale = rmsse_scale_all[rows]
        weights, strategy, scores = _select(F, Y, scale, settings.selection)
        strategy_of[rows] = strategy
        cv_mean = np.maximum(np.einsum("swhm,sm->swh", F, weights), 0.0)
        fut_mean = np.maximum(np.einsum("shm,sm->sh", Ffut, weights), 0.0)
        level_factor = _level_correction(cv_mean, Y, scale)
        cv_mean, fut_mean = cv_mean * level_factor, fut_mean * level_factor
        calib_mean = _cross_fitted_mean(F, Y, scale, settings.selection, level_factor)
        scaled_err = (Y - calib_mean) / qscale_all[rows][:, None, None]
        pooled[demand_class] = _pooled_quantiles(scaled_err, np.zeros(S))[0]
        mean[rows] = fut_mean
        quant[rows] = quantiles_from_errors(fut_mean, qscale_all[rows], pooled[demand_class])
        labels = np.array(["+".join(names[j] for j in np.flatnonzero(w > 0)) for w in weights], dtype=object)
        model[rows] = labels

        cv_q = np.stack(
            [quantiles_from_errors(cv_mean[:, k], qscale_all[rows], pooled[demand_class]) for k in range(W)], axis=1
        )
        backtests.append(
            _backtest_frame(ids, cv, cv_mean, cv_q, F[..., names.index(BENCHMARK_MODEL)], group, settings, demand_class)
        )
        selection_rows.append(
            {
                "demand_class": demand_class,
                "series": S,
                "strategy": strategy,
                **{f"validation_rmsse_{k}": v for k, v in scores.items()},
                "candidates": ", ".join(names),
                "top_model": pd.Series(labels).value_counts().index[0],
            }
        )
    timings["statsforecast_s"] = cv_seconds

    # New and short series: too little history since the first sale to backtest. The level is the mean of
    # the last season (pre-launch zeros included: they damp a launch spike, which measured better on
    # stallion's launches than the post-launch mean, +82% bias), the spread the pooled scaled
    # backtest errors of the backtested series (a conformal pool borrowed from other series) in the unit of
    # the series' own post-launch variability; with nothing backtested, the history's own quantiles.
    simple = too_short
    if simple.any():
        vals = matrix.values[simple]
        recent = np.arange(vals.shape[1])[None, :] >= vals.shape[1] - settings.season_length
        level = np.nan_to_num(np.nanmean(np.where(recent, vals, np.nan), axis=1))
        launched = np.maximum.accumulate(np.nan_to_num(vals) > 0, axis=1)
        launched |= ~launched.any(axis=1, keepdims=True)
        vals = np.where(launched, vals, np.nan)
        mean[simple] = level[:, None]
        if pooled:
            pool = np.mean([pooled[c] for c in pooled], axis=0)  # (H, L)
            quant[simple] = quantiles_from_errors(mean[simple], _quantile_scale(vals, matrix.lengths[simple]), pool)
        else:
            spread = np.nanquantile(vals, QUANTILE_LEVELS, axis=1).T - np.nanmean(vals, axis=1)[:, None] + level[:, None]
            q = np.maximum(np.repeat(np.nan_to_num(spread)[:, None, :], h, axis=1), 0.0)
            quant[simple] = np.maximum.accumulate(q, axis=2)
        model[simple] = np.where(new[simple], "MovingAverage (new)", "MovingAverage (short history)")

    profile = profile.assign(route=route, model=model, selection=strategy_of)
    classes = profile["demand_class"].to_numpy()
    forecast = pd.DataFrame(
        {
            "unique_id": np.repeat(matrix.ids, h),
            "ds": future_ds.reshape(-1),
            "mean": mean.reshape(-1),
            **{c: quant[:, :, i].reshape(-1) for i, c in enumerate(QUANTILE_COLUMNS)},
            "model": np.repeat(model, h),
            "demand_class": np.repeat(classes, h),
        }
    )
    forecast["ds"] = pd.to_datetime(forecast["ds"]).astype("datetime64[ns]")
    forecast = forecast.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    backtest = pd.concat(backtests, ignore_index=True) if backtests else _empty_backtest()
    timings["total_s"] = time.perf_counter() - started
    return ForecastResult(
        forecast=forecast,
        profile=profile,
        backtest=backtest,
        selection=pd.DataFrame(selection_rows),
        timings=timings,
    )


BACKTEST_COLUMNS = (
    "unique_id", "demand_class", "windows", "rmsse", "mase", "spl", "bias", "abs_actual", "covered80", "points",
    "benchmark_rmsse", "recent_rmsse", "earlier_rmsse",
)


def _empty_backtest() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if c in ("unique_id", "demand_class") else float) for c in BACKTEST_COLUMNS})


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
    return per[list(BACKTEST_COLUMNS)]
