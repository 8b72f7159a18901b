"""Demand profile per series: how much history, how often and how regularly it sells, how seasonal it is.

The Syntetos–Boylan class (DOMAIN.md) comes from ADI (average interval between non-zero demands, here
periods / non-zero periods) and CV² (squared coefficient of variation of the non-zero sizes, population
variance). Seasonality is detected by autocorrelation at the season lag of the detrended series. Series
with too little history are `new`; series without demand for a long stretch are `dead`. Everything is
computed on a dense series × period matrix, so a 100k-series panel profiles in about a second. A series
too short or noisy for its own test can still be seasonal through its category's pooled index
(`planning.seasonality`; `pooled_season_index` gives one group's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ADI_CUTOFF = 1.32
CV2_CUTOFF = 0.49
DEMAND_CLASSES = ("smooth", "erratic", "intermittent", "lumpy")

PROFILE_COLUMNS = (
    "unique_id",
    "history_periods",
    "nonzero_periods",
    "zero_share",
    "adi",
    "cv2",
    "demand_class",
    "seasonality_strength",
    "seasonal",
    "periods_since_demand",
    "mean_demand",
    "is_new",
    "is_dead",
)


@dataclass(frozen=True)
class ProfileSettings:
    season_length: int
    # Fewer periods than this: a new item, forecast by a moving average (frePPLe uses 10 buckets).
    new_below_periods: int = 10
    # This many trailing periods without demand (and none ever after): a dead item, forecast zero.
    dead_after_periods: int = 26
    # Autocorrelation at the season lag above this (and two full seasons of history): seasonal.
    seasonal_acf: float = 0.3


@dataclass(frozen=True)
class PanelMatrix:
    """A long panel as a dense matrix: one row per series, right-aligned on its last period, NaN before."""

    ids: np.ndarray
    values: np.ndarray  # (series, periods) float, NaN where a series has no history yet
    lengths: np.ndarray  # periods of history per series


def to_matrix(panel: pd.DataFrame) -> PanelMatrix:
    """`unique_id, ds, y` (one row per series and period, no gaps) as a right-aligned matrix."""
    panel = panel.sort_values(["unique_id", "ds"], kind="stable")
    codes, ids = pd.factorize(panel["unique_id"], sort=False)
    lengths = np.bincount(codes, minlength=len(ids))
    width = int(lengths.max()) if len(lengths) else 0
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    position = np.arange(len(panel)) - np.repeat(starts, lengths)
    column = position + (width - np.repeat(lengths, lengths))
    values = np.full((len(ids), width), np.nan)
    values[codes, column] = panel["y"].to_numpy(dtype=float)
    return PanelMatrix(ids=np.asarray(ids), values=values, lengths=lengths)


def season_autocorrelation(values: np.ndarray, season_length: int) -> np.ndarray:
    """Autocorrelation at lag `season_length` of each row after removing a centred moving average (the trend).

    Rows are right-aligned with NaN before their history; rows with fewer than two seasons get NaN.
    """
    n_series, width = values.shape
    out = np.full(n_series, np.nan)
    s = season_length
    if s < 2 or width < 2 * s + 1 or n_series == 0:
        return out
    # Classical decomposition's trend: a centred moving average of length s (2×s for an even s).
    kernel = np.ones(s) / s
    if s % 2 == 0:
        kernel = np.convolve(kernel, [0.5, 0.5])
    observed = ~np.isnan(values)
    filled = np.where(observed, values, 0.0)
    from scipy.ndimage import convolve1d  # imported on use: keeps the code location quick to load

    trend = convolve1d(filled, kernel, axis=1, mode="constant")
    covered = convolve1d(observed.astype(float), kernel, axis=1, mode="constant")
    half = len(kernel) // 2
    valid = np.isclose(covered, 1.0)
    valid[:, :half] = False
    valid[:, width - half :] = False
    detrended = np.where(valid, values - trend, np.nan)
    centred = detrended - np.nanmean(np.where(valid, detrended, np.nan), axis=1, keepdims=True)
    a, b = centred[:, s:], centred[:, :-s]
    both = ~np.isnan(a) & ~np.isnan(b)
    num = np.where(both, a * b, 0.0).sum(axis=1)
    den = np.nansum(centred**2, axis=1)
    enough = (both.sum(axis=1) >= s) & (den > 0)
    out[enough] = num[enough] / den[enough]
    return out


def profile_matrix(matrix: PanelMatrix, settings: ProfileSettings) -> pd.DataFrame:
    """The demand profile of every series of a dense panel matrix (see the module docstring)."""
    values = matrix.values
    n = matrix.lengths.astype(float)
    observed = ~np.isnan(values)
    nonzero = observed & (np.nan_to_num(values) > 0)
    n_nonzero = nonzero.sum(axis=1)
    sizes = np.where(nonzero, values, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        size_mean = sizes.sum(axis=1) / n_nonzero
        size_var = (sizes**2).sum(axis=1) / n_nonzero - size_mean**2
        cv2 = np.where(n_nonzero > 0, np.maximum(size_var, 0.0) / size_mean**2, np.nan)
        adi = np.where(n_nonzero > 0, n / n_nonzero, np.inf)
        mean_demand = np.nansum(values, axis=1) / n
    width = values.shape[1]
    last_nonzero = np.where(nonzero.any(axis=1), width - 1 - np.argmax(nonzero[:, ::-1], axis=1), -1)
    since = np.where(last_nonzero >= 0, width - 1 - last_nonzero, n).astype(int)

    smooth_interval = adi < ADI_CUTOFF
    steady_size = np.nan_to_num(cv2, nan=0.0) < CV2_CUTOFF
    cls = np.where(smooth_interval, np.where(steady_size, 0, 1), np.where(steady_size, 2, 3))
    acf = season_autocorrelation(values, settings.season_length)
    seasonal = (np.nan_to_num(acf, nan=-1.0) > settings.seasonal_acf) & (n >= 2 * settings.season_length)
    is_new = n < settings.new_below_periods
    is_dead = (since >= settings.dead_after_periods) & ~is_new

    return pd.DataFrame(
        {
            "unique_id": matrix.ids,
            "history_periods": matrix.lengths.astype(int),
            "nonzero_periods": n_nonzero.astype(int),
            "zero_share": 1.0 - n_nonzero / n,
            "adi": adi,
            "cv2": cv2,
            "demand_class": np.asarray(DEMAND_CLASSES, dtype=object)[cls],
            "seasonality_strength": acf,
            "seasonal": seasonal,
            "periods_since_demand": since,
            "mean_demand": mean_demand,
            "is_new": is_new,
            "is_dead": is_dead,
        }
    )


def profile_panel(panel: pd.DataFrame, settings: ProfileSettings) -> pd.DataFrame:
    """Demand profile per series of a long panel `unique_id, ds, y` (one row per series and period)."""
    return profile_matrix(to_matrix(panel), settings)


def pooled_season_index(
    ids: np.ndarray, period: np.ndarray, y: np.ndarray, season_length: int, min_series: int = 10
) -> np.ndarray | None:
    """The pooled multiplicative seasonal index of one group of series, by calendar phase (`period % s`).

    `period` numbers consecutive buckets (`forecasting.period_number`), so series that end on different
    dates still align by calendar. The index is the harmonic regression of `seasonality.pooled_seasonality`
    evaluated at the s phases; None when s < 2, fewer than `min_series` series have history, or the group
    shows no significant seasonality.
    """
    from demand_control.planning.seasonality import SeasonSettings, pooled_seasonality

    s = int(season_length)
    if s < 2 or len(y) == 0:
        return None
    period = np.asarray(period, dtype=np.int64)
    panel = pd.DataFrame({"unique_id": np.asarray(ids), "ds": period, "y": np.asarray(y, dtype=float)})
    phase = (period % s) / s
    pooled = pooled_seasonality(panel, period, phase, SeasonSettings(season_length=s, min_series=min_series))
    key = ("panel", "all")
    if key not in pooled.detected:
        return None
    return pooled.index(key, np.arange(s) / s)
