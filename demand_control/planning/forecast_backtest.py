"""The engine's backtest table: per series, the accuracy of the selected forecast and of the benchmark in
the cross-fitted rolling-origin backtest, the columns analysts read in `forecast_accuracy`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from demand_control.planning.forecast_inputs import ForecastSettings
from demand_control.planning.metrics import (
    QUANTILE_COLUMNS,
    score_series,
    series_scales,
)


def short_rows(values: np.ndarray, season_length: int) -> np.ndarray:
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


def empty_backtest() -> pd.DataFrame:
    text = ("unique_id", "demand_class", "route", "segment")
    return pd.DataFrame({c: pd.Series(dtype=object if c in text else float) for c in BACKTEST_COLUMNS})


def backtest_frame(
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
