"""The forecasting engine's contract: its settings, the demand panel it accepts (validated, completed to
whole buckets, trimmed of the zeros before a launch) and the result it returns. No Dagster import."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from demand_control.infra.settings import FORECAST_CLUSTER_ENV
from demand_control.planning.metrics import QUANTILE_COLUMNS
from demand_control.planning.profile import ProfileSettings
from demand_control.planning.seasonality import (
    SeasonSettings,
)
from demand_control.planning.selection import (
    Selection,
)

FREQ_ALIASES: dict[str, str] = {"D": "D", "W": "W-MON", "W-MON": "W-MON", "MS": "MS", "M": "MS"}


PANEL_COLUMNS = ("unique_id", "ds", "y")


FORECAST_COLUMNS = ("unique_id", "ds", "mean", *QUANTILE_COLUMNS, "model", "demand_class")


CLUSTER_ENV = FORECAST_CLUSTER_ENV


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
    filled = _placed_on_grid(panel, first.index, grid, start_pos, lengths)
    if filled is not None:
        full["y"] = filled
        return full
    full = full.merge(panel[["unique_id", "ds", "y"]], on=["unique_id", "ds"], how="left")
    full["y"] = full["y"].fillna(0.0)
    return full


def _placed_on_grid(
    panel: pd.DataFrame, ids: pd.Index, grid: pd.DatetimeIndex, start_pos: np.ndarray, lengths: np.ndarray
) -> np.ndarray | None:
    """`complete_buckets`' y column (missing buckets zero) by placing each row at its bucket's position, or None
    where that is not what the merge gives: a duplicated (unique_id, ds) or a ds off the grid. The merge on
    (unique_id, ds) hashes every row's key: over a region's 10M rows, a GB the placement does not need."""
    if panel["y"].dtype != np.float64 or not pd.api.types.is_datetime64_dtype(panel["ds"]):
        return None  # the merge would keep another dtype
    series = ids.get_indexer(panel["unique_id"])
    if (series < 0).any():
        return None
    ds = panel["ds"].to_numpy()
    at = grid.searchsorted(ds)
    if not (at < len(grid)).all() or not (grid.to_numpy()[at] == ds).all():
        return None
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    row = offsets[series] + (at - start_pos[series])
    y = np.zeros(int(lengths.sum()), dtype=float)
    if len(row) and np.bincount(row, minlength=len(y)).max() > 1:
        return None
    values = panel["y"].to_numpy()
    y[row] = np.where(np.isnan(values), 0.0, values)
    return y


# Running statsforecast ---------------------------------------------------------------------------------------


def trim_leading_zeros(panel: pd.DataFrame) -> pd.DataFrame:
    """Each series from its first non-zero demand on: zeros before it mean "not sold yet", not "no demand",
    and would make a newly launched item look intermittent. All-zero series are kept whole (dead or new)."""
    positive = panel["y"].to_numpy() > 0
    started = pd.Series(positive).groupby(panel["unique_id"].to_numpy(), sort=False).cummax().to_numpy()
    never = ~pd.Series(positive).groupby(panel["unique_id"].to_numpy(), sort=False).transform("any").to_numpy()
    return panel[started | never].reset_index(drop=True)
