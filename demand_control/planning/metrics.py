"""Scale-free forecast accuracy measures (M5's RMSSE and scaled pinball loss, MASE, bias, coverage).

Definitions match `../shared/data/BASELINES.md` so our figures compare with the reference baselines:

- RMSSE of the mean: sqrt(mean((ŷ − y)²) / mean(Δy_train²)), Δ the one-step difference of the training part.
- MASE of the median (q50, else the mean): mean|ŷ − y| / mean|y_t − y_{t−s}| over the training part, s the
  season (1 when the training part is not longer than s).
- SPL: mean over horizon and quantile levels of the pinball loss, divided by the MASE scale.
- bias %: 100 · Σ(ŷ − y) / Σ|y| over all held-out points; cover80: share of points inside [q10, q90].

Per-series figures are averaged over the series with a finite value. MAPE and sMAPE are deliberately absent:
they break on zero demand and must never select a model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

QUANTILE_LEVELS: tuple[float, ...] = (0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95)
# The levels the reference baselines were scored on (from their 50% and 80% intervals).
SPL_LEVELS: tuple[float, ...] = (0.10, 0.25, 0.50, 0.75, 0.90)


def quantile_column(level: float) -> str:
    """`q05`, `q10`, ... `q95`: the column holding the forecast quantile at `level`."""
    return f"q{round(level * 100):02d}"


QUANTILE_COLUMNS: tuple[str, ...] = tuple(quantile_column(q) for q in QUANTILE_LEVELS)


def series_scales(train: pd.DataFrame, season_length: int) -> pd.DataFrame:
    """Per series the RMSSE and MASE denominators of its training part (long frame `unique_id, ds, y`)."""
    train = train.sort_values(["unique_id", "ds"])
    y = train["y"].to_numpy(dtype=float)
    ids = train["unique_id"].to_numpy()
    codes, uniques = pd.factorize(ids, sort=False)
    starts = np.r_[0, np.flatnonzero(codes[1:] != codes[:-1]) + 1]
    counts = np.diff(np.r_[starts, len(y)])
    position = np.arange(len(y)) - np.repeat(starts, counts)

    d1 = np.full(len(y), np.nan)
    d1[1:] = np.diff(y)
    d1[position < 1] = np.nan
    lag = np.where(np.repeat(counts, counts) > season_length, season_length, 1)
    ds = np.full(len(y), np.nan)
    idx = np.arange(len(y))
    ok = position >= lag
    ds[ok] = y[idx[ok]] - y[idx[ok] - lag[ok]]

    frame = pd.DataFrame({"code": codes, "sq": d1**2, "abs": np.abs(ds)})
    grouped = frame.groupby("code", sort=True)
    out = pd.DataFrame(
        {
            "unique_id": uniques,
            "rmsse_scale": grouped["sq"].mean().to_numpy(),
            "mase_scale": grouped["abs"].mean().to_numpy(),
            "n_train": counts,
        }
    )
    return out


def pinball(y: np.ndarray, q_hat: np.ndarray, level: float) -> np.ndarray:
    """Pinball (quantile) loss of forecast `q_hat` at `level` for outcomes `y`, elementwise."""
    diff = y - q_hat
    return np.maximum(level * diff, (level - 1.0) * diff)


def _safe_ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    return out.where(np.isfinite(out))


def score_series(
    forecast: pd.DataFrame,
    actual: pd.DataFrame,
    train: pd.DataFrame,
    season_length: int,
    mean_col: str = "mean",
    levels: Sequence[float] = SPL_LEVELS,
) -> pd.DataFrame:
    """Per-series accuracy of a forecast against the held-out actuals.

    `forecast` has `unique_id, ds`, the mean column and (optionally) quantile columns `q05..q95`; `actual`
    has `unique_id, ds, y`; `train` is the history the forecast was made from (it sets the scales). Returns
    one row per series: rmsse, mase, spl (NaN without quantiles), bias (Σ error), abs_actual (Σ|y|),
    covered80 (points inside [q10, q90]) and points.
    """
    merged = actual[["unique_id", "ds", "y"]].merge(forecast, on=["unique_id", "ds"], how="inner")
    if merged.empty:
        raise ValueError("forecast and actuals share no (unique_id, ds): nothing to score")
    y = merged["y"].to_numpy(dtype=float)
    mean = merged[mean_col].to_numpy(dtype=float)
    median = merged["q50"].to_numpy(dtype=float) if "q50" in merged else mean
    quantile_cols = [quantile_column(q) for q in levels]
    has_quantiles = all(c in merged for c in quantile_cols)
    parts = {
        "unique_id": merged["unique_id"].to_numpy(),
        "sq": (mean - y) ** 2,
        "abs": np.abs(median - y),
        "err": mean - y,
        "abs_y": np.abs(y),
    }
    if has_quantiles:
        losses = [pinball(y, merged[c].to_numpy(dtype=float), q) for q, c in zip(levels, quantile_cols)]
        parts["pin"] = np.mean(losses, axis=0)
        parts["in80"] = (
            (y >= merged["q10"].to_numpy(dtype=float)) & (y <= merged["q90"].to_numpy(dtype=float))
        ).astype(float)
    else:
        parts["pin"] = np.full(len(y), np.nan)
        parts["in80"] = np.full(len(y), np.nan)
    per = pd.DataFrame(parts).groupby("unique_id", sort=True).agg(
        mse=("sq", "mean"),
        mae=("abs", "mean"),
        pin=("pin", "mean"),
        bias=("err", "sum"),
        abs_actual=("abs_y", "sum"),
        covered80=("in80", "sum"),
        points=("sq", "size"),
    )
    scales = series_scales(train, season_length).set_index("unique_id")
    per = per.join(scales[["rmsse_scale", "mase_scale"]], how="left")
    per["rmsse"] = np.sqrt(_safe_ratio(per["mse"], per["rmsse_scale"]))
    per["mase"] = _safe_ratio(per["mae"], per["mase_scale"])
    per["spl"] = _safe_ratio(per["pin"], per["mase_scale"])
    if not has_quantiles:
        per["covered80"] = np.nan
    return per.reset_index()[["unique_id", "rmsse", "mase", "spl", "bias", "abs_actual", "covered80", "points"]]


def summarise(per_series: pd.DataFrame) -> dict[str, float]:
    """Panel figures from `score_series`: means over finite series, pooled bias % and 80% coverage."""
    abs_actual = float(per_series["abs_actual"].sum())
    points = float(per_series["points"].sum())
    covered = per_series["covered80"]
    return {
        "series": int(len(per_series)),
        "rmsse": float(per_series["rmsse"].mean()),
        "rmsse_median": float(per_series["rmsse"].median()),
        "mase": float(per_series["mase"].mean()),
        "spl": float(per_series["spl"].mean()) if per_series["spl"].notna().any() else float("nan"),
        "bias_pct": 100.0 * float(per_series["bias"].sum()) / abs_actual if abs_actual else float("nan"),
        "cover80": float(covered.sum()) / points if covered.notna().any() and points else float("nan"),
    }


def holdout_split(panel: pd.DataFrame, horizon: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The panel without its last `horizon` periods per series, and those periods (the test part)."""
    panel = panel.sort_values(["unique_id", "ds"])
    from_end = panel.groupby("unique_id", sort=False).cumcount(ascending=False)
    test = from_end < horizon
    return panel[~test].reset_index(drop=True), panel[test].reset_index(drop=True)
