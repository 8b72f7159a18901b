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

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from demand_control.planning.candidates import (
    BENCHMARK_MODEL,
    SEASON_INDEX_COLUMN,
    Deseasonalized,
    candidates_for,
)
from demand_control.planning.forecast_backtest import (
    BACKTEST_COLUMNS,
    backtest_frame,
    empty_backtest,
    short_rows,
)
from demand_control.planning.forecast_inputs import (
    CLUSTER_ENV,
    FORECAST_COLUMNS,
    FREQ_ALIASES,
    ForecastResult,
    ForecastSettings,
    PanelError,
    complete_buckets,
    period_number,
    trim_leading_zeros,
    validate_panel,
)
from demand_control.planning.forecast_runs import run_statsforecast
from demand_control.planning.forecast_seasons import (
    SeasonalityInputs,
    category_labels,
    phase_matrix,
    seasonal_segments,
    validated_shapes,
    with_season_index,
)
from demand_control.planning.launch import (
    launch_forecast,
    launched_inside,
    since_launch,
)
from demand_control.planning.metrics import QUANTILE_COLUMNS, QUANTILE_LEVELS
from demand_control.planning.profile import (
    DEMAND_CLASSES,
    PanelMatrix,
    profile_panel,
    to_matrix,
)
from demand_control.planning.seasonality import (
    phase_of_period,
)
from demand_control.planning.selection import (
    bias_check,
    cross_fitted_mean,
    pooled_quantiles,
    quantiles_from_errors,
    select,
)
from demand_control.planning.short_history import ShortSettings, forecast_short

# The engine's contract is imported from here by its callers: `forecast_panel` with its settings, panel checks
# and result.
__all__ = [
    "BACKTEST_COLUMNS", "CLUSTER_ENV", "FORECAST_COLUMNS", "FREQ_ALIASES", "ForecastResult", "ForecastSettings", "PanelError", "complete_buckets",
    "forecast_panel", "period_number", "profile_routes", "route_series", "validate_panel",
]


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


def _forecast_long(
    demand_class: str, ids: np.ndarray, panel: pd.DataFrame, seasons: SeasonalityInputs, settings: ForecastSettings,
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
            allowed = validated_shapes(honest, seasonals)  # type: ignore[arg-type]
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
    cv, fc = run_statsforecast(models, group, settings, cv_df=cv_group)
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
    parts = seasonal_segments(seasonal_series)
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
    backtest = backtest_frame(ids, cv, cv_mean, cv_q, F[..., names.index(BENCHMARK_MODEL)], group, settings, demand_class)
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
    seasons: SeasonalityInputs
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
    category = category_labels(ids_all, categories)
    trimmed_period = period_number(trimmed["ds"], settings.freq)
    seasons = SeasonalityInputs(
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
        values = short_rows(matrix.values[rows], settings.season_length)
        width = values.shape[1]
        last_period = period_number(pd.Series(last_ds.to_numpy()[rows]), settings.freq)
        phase = phase_matrix(last_period, width, h, settings) if settings.season_length > 1 else None
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
    backtest = pd.concat(backtests, ignore_index=True)[list(BACKTEST_COLUMNS)] if backtests else empty_backtest()
    timings["total_s"] = time.perf_counter() - started
    return ForecastResult(
        forecast=forecast,
        profile=profile,
        backtest=backtest,
        selection=pd.DataFrame(segments),
        timings=timings,
        seasonality=final.groups,
    )
