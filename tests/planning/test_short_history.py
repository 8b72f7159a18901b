"""Forecasting where distributors live (issue 14): short histories, weekly seasonality pooled by category,
launch profiles, bias correction and the CRM pipeline signal, on hand-made panels whose right answer is
known, and on the sample distributor's generator truth."""

from __future__ import annotations

import datetime as dt
import sys

import numpy as np
import pandas as pd
import pytest

from demand_control.planning.forecasting import ForecastSettings, forecast_panel, profile_routes
from demand_control.planning.launch import launch_forecast, record_tsb
from demand_control.planning.pipeline_signal import PipelineSettings, apply_pipeline
from demand_control.planning.seasonality import (
    SeasonSettings,
    phase_of_period,
    pooled_seasonality,
    season_phase,
    shrink_towards_pooled,
)
from demand_control.planning.selection import MIN_POOL, bias_check, extend_steps
from demand_control.planning.short_history import calibration_quantiles
from demand_control.planning.metrics import QUANTILE_COLUMNS, QUANTILE_LEVELS


def weekly_panel(series: dict[str, np.ndarray], end: str = "2026-11-16") -> pd.DataFrame:
    frames = []
    for uid, values in series.items():
        ds = pd.date_range(end=end, periods=len(values), freq="W-MON")
        frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": np.asarray(values, dtype=float)}))
    return pd.concat(frames, ignore_index=True)


def monthly_panel(series: dict[str, np.ndarray], start: str = "2024-01-01") -> pd.DataFrame:
    frames = []
    for uid, values in series.items():
        ds = pd.date_range(start, periods=len(values), freq="MS")
        frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": np.asarray(values, dtype=float)}))
    return pd.concat(frames, ignore_index=True)


def year_fraction(ds: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    days = pd.DatetimeIndex(ds).to_numpy(dtype="datetime64[D]").astype(np.int64)
    return ((days + 3) / 365.2425) % 1.0


def test_season_phase_is_calendar_aligned() -> None:
    # Months: January is phase 0 in every year; weeks: the same calendar week a year apart has (nearly) the
    # same phase although 52 weeks are 364 days.
    months = pd.Series(pd.to_datetime(["2023-01-01", "2024-01-01", "2024-07-01"]))
    assert season_phase(months, "MS", 12) == pytest.approx([0.0, 0.0, 0.5])
    weeks = pd.Series(pd.to_datetime(["2024-06-03", "2025-06-02"]))
    a, b = season_phase(weeks, "W-MON", 52)
    assert abs(a - b) < 1.5 / 365
    # The bucket-number form agrees with the date form.
    period = np.array([(weeks.iloc[0] - pd.Timestamp("1970-01-05")).days // 7 + 0])
    assert phase_of_period(period, "W-MON", 52)[0] == pytest.approx(a, abs=0.02)


def test_a_series_of_12_points_never_gets_a_seasonal_naive_forecast() -> None:
    rng = np.random.default_rng(1)
    shape = 1 + 0.6 * np.cos(2 * np.pi * (np.arange(12) - 6) / 12)
    series = {f"s{k:02d}": np.round((20 + 3 * k) * shape * rng.uniform(0.7, 1.3, 12)) for k in range(30)}
    panel = monthly_panel(series)
    result = forecast_panel(panel, ForecastSettings(freq="MS", horizon=12, season_length=12))
    assert set(result.profile["route"]) == {"short"}
    assert not result.forecast["model"].str.contains("SeasonalNaive").any()
    fc = result.forecast.pivot(index="unique_id", columns="ds", values="mean")
    last_year = panel.pivot(index="unique_id", columns="ds", values="y").loc[fc.index].to_numpy()
    # Not last year repeated: every series' forecast differs from its own last 12 months.
    gap = np.abs(fc.to_numpy() - last_year).max(axis=1)
    assert (gap > 1e-6 * np.maximum(last_year.max(axis=1), 1)).all()
    # The shape all 30 share is borrowed (it is strong and common), shrunk: the forecast is seasonal, its
    # swing smaller than a noisy year's.
    assert (result.profile["seasonal_source"] == "category").sum() == 0  # no categories given: class / panel
    assert result.profile["seasonal"].all()
    assert (fc.max(axis=1) / fc.min(axis=1)).min() > 1.5


def test_short_series_select_on_a_backtest_that_fits_their_history() -> None:
    rng = np.random.default_rng(2)
    series = {f"s{k:02d}": rng.poisson(10 + k, 12).astype(float) for k in range(20)}
    result = forecast_panel(monthly_panel(series), ForecastSettings(freq="MS", horizon=12, season_length=12))
    segment = result.selection.iloc[0]
    # 12 points: two back-to-back windows of 4 (train on 4 and 8), the 12-step horizon extrapolated.
    assert segment["route"] == "short" and segment["window"] == 4 and segment["windows"] == 2
    assert segment["band"] == "1_to_2_seasons"
    fc = result.forecast
    q = fc[list(QUANTILE_COLUMNS)].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all() and (q >= 0).all()
    assert (fc["q90"] - fc["q10"]).min() > 0
    assert set(result.backtest["route"]) == {"short"}


def category_weekly_panel(weeks: int, seed: int = 4) -> tuple[pd.DataFrame, pd.Series, dict[str, float]]:
    """Three categories of 12 series: `Garden` peaks in May (amplitude 0.5), `Cleaning` is flat, `Snacks`
    peaks in December (amplitude 0.4); weekly noise 30 %."""
    rng = np.random.default_rng(seed)
    end = "2026-11-16"
    frac = year_fraction(pd.date_range(end=end, periods=weeks, freq="W-MON"))
    peaks = {"Garden": (0.37, 0.5), "Cleaning": (0.0, 0.0), "Snacks": (0.95, 0.4)}
    series, cats = {}, {}
    for cat, (peak, amplitude) in peaks.items():
        for k in range(12):
            level = rng.uniform(20, 80)
            season = 1 + amplitude * np.cos(2 * np.pi * (frac - peak))
            series[f"{cat}-{k:02d}"] = np.round(level * season * rng.lognormal(0, 0.3, weeks))
            cats[f"{cat}-{k:02d}"] = cat
    return weekly_panel(series, end), pd.Series(cats), {c: p for c, (p, _) in peaks.items()}


def test_weekly_category_seasonality_is_detected_with_104_weeks() -> None:
    panel, categories, peaks = category_weekly_panel(104)
    settings = ForecastSettings(freq="W", horizon=26, season_length=52)
    profile = profile_routes(panel, settings, categories).set_index("unique_id")
    # Too noisy for any series' own test; the category sees it.
    assert not (profile["seasonal_source"] == "own").any()
    for cat in ("Garden", "Snacks"):
        members = profile[profile["category"] == cat]
        assert (members["seasonal_source"] == "category").all() and members["seasonal"].all(), cat
    assert not profile[profile["category"] == "Cleaning"]["seasonal"].any()
    # The forecast follows each category's calendar shape (the backtest chose the pooled index).
    result = forecast_panel(panel, settings, categories)
    fc = result.forecast.assign(category=lambda f: f["unique_id"].map(categories))
    frac = year_fraction(fc["ds"].drop_duplicates().sort_values())
    for cat in ("Garden", "Snacks"):
        truth = np.cos(2 * np.pi * (frac - peaks[cat]))
        for _, rows in fc[fc["category"] == cat].groupby("unique_id"):
            assert np.corrcoef(rows.sort_values("ds")["mean"], truth)[0, 1] > 0.5
    flat = fc[fc["category"] == "Cleaning"].groupby("unique_id")["mean"].agg(lambda m: m.max() / m.min())
    assert (flat < 1.1).all()


def test_pooled_seasonality_needs_a_full_cycle_and_passes_its_test_only_on_real_shape() -> None:
    panel, categories, _ = category_weekly_panel(104)
    period = (pd.to_datetime(panel["ds"]).to_numpy(dtype="datetime64[D]").astype(np.int64)) // 7
    phase = phase_of_period(period, "W-MON", 52)
    pooled = pooled_seasonality(panel, period, phase, SeasonSettings(season_length=52), categories=categories)
    groups = pooled.groups.set_index(["level", "group"])
    assert groups.loc[("category", "Garden"), "seasonal"] and groups.loc[("category", "Snacks"), "seasonal"]
    assert not groups.loc[("category", "Cleaning"), "seasonal"]
    # Without a full season of data left there is nothing to pool.
    short = pooled_seasonality(panel, period, phase, SeasonSettings(season_length=52), categories=categories, exclude_last=60)
    assert not short.detected


def test_empirical_bayes_keeps_a_large_series_own_shape_and_pools_a_small_one() -> None:
    rng = np.random.default_rng(3)
    pooled_shape = np.array([0.6, 1.0, 1.4, 1.0])
    own_shape = np.array([1.4, 1.0, 0.6, 1.0])
    levels = np.array([1000.0] * 10 + [2.0] * 10)
    # Noise of a ratio falls with the level (Poisson): big series show their own shape, small ones noise.
    own = np.array([own_shape + rng.normal(0, 1 / np.sqrt(lv), 4) for lv in levels])
    own = own / own.mean(axis=1, keepdims=True)
    pooled = np.tile(pooled_shape, (20, 1))
    blended = shrink_towards_pooled(own, pooled, levels, np.zeros(20))
    big, small = blended[:10], blended[10:]
    assert np.abs(big - own_shape).mean() < np.abs(big - pooled_shape).mean()
    assert np.abs(small - pooled_shape).mean() < np.abs(own[10:] - pooled_shape).mean()
    assert blended.mean(axis=1) == pytest.approx(np.ones(20))


def launch_panel(seed: int = 5) -> tuple[pd.DataFrame, pd.Series, np.ndarray]:
    """A `Launch` category whose 8 analogues ramp up after their first sale (×1, ×1.5, ×2, ×2.5, then ×3),
    launched at different weeks; a new SKU two weeks after its launch; steady series of another category."""
    rng = np.random.default_rng(seed)
    weeks = 60
    ramp = np.array([1.0, 1.5, 2.0, 2.5] + [3.0] * weeks)
    series, cats = {}, {}
    for k in range(8):
        start = 10 + 3 * k
        level = rng.uniform(8, 20)
        y = np.zeros(weeks)
        y[start:] = np.round(level * ramp[: weeks - start] * rng.uniform(0.9, 1.1, weeks - start))
        series[f"launch-{k}"], cats[f"launch-{k}"] = y, "Launch"
    for k in range(10):
        series[f"steady-{k}"], cats[f"steady-{k}"] = rng.poisson(30, weeks).astype(float), "Steady"
    new = np.zeros(weeks)
    new[-2:] = [10.0, 15.0]
    series["new-sku"], cats["new-sku"] = new, "Launch"
    return weekly_panel(series), pd.Series(cats), ramp


def test_a_new_sku_gets_its_category_launch_shape() -> None:
    panel, categories, ramp = launch_panel()
    result = forecast_panel(panel, ForecastSettings(freq="W", horizon=8, season_length=4), categories)
    profile = result.profile.set_index("unique_id")
    assert profile.loc["new-sku", "route"] == "new"
    assert profile.loc["new-sku", "model"] == "LaunchProfile (new, category analogues)"
    fc = result.forecast[result.forecast["unique_id"] == "new-sku"].sort_values("ds")["mean"].to_numpy()
    # Age 2: own post-launch mean 12.5 (its first two weeks ran at ×1 and ×1.5 of its level); the analogues
    # at age 2 go on at ×2, ×2.5, then ×3 of their level: ×1.6, ×2 and ×2.4 of their first-two-week mean.
    expected = 12.5 * ramp[2:10] / ramp[:2].mean()
    assert fc == pytest.approx(expected, rel=0.12)
    assert fc[2] > fc[0] * 1.3
    # A category of its own: no launch shape to borrow, TSB on the record.
    ids = sorted(panel["unique_id"].unique())
    labels = np.array(["Solo" if u == "new-sku" else categories[u] for u in ids], dtype=object)
    alone = launch_forecast(
        panel.pivot(index="unique_id", columns="ds", values="y").loc[ids].to_numpy(),
        np.array([u == "new-sku" for u in ids]), [("category", labels)], 8, np.ones(len(ids)), 4,
    )
    assert alone.method.tolist() == ["RecordTSB"] and alone.profile_source.tolist() == [""]


def test_record_tsb_starts_slowly_after_zeros() -> None:
    values = np.array([[0.0, 0.0, 0.0, 10.0], [5.0, 5.0, 5.0, 5.0]])
    out = record_tsb(values, np.array([4, 4]))
    # Probability 0 → 0 → 0 → 0.1 (first sale), size 10: 1.0; always selling: 5.
    assert out == pytest.approx([1.0, 5.0])


def test_bias_correction_is_systematic_only_and_never_makes_a_forecast_negative() -> None:
    rng = np.random.default_rng(6)
    actual = rng.poisson(5, (40, 2, 6)).astype(float)
    over = bias_check(actual * 1.3 + 0.5, actual)
    assert over.systematic and over.factor == pytest.approx(0.8)
    assert all(b > 0 for b in over.window_bias_pct)
    flipped = bias_check(np.concatenate([actual[:, :1] * 1.3, actual[:, 1:] * 0.7], axis=1), actual)
    assert not flipped.systematic and flipped.factor == 1.0
    # On the engine: demand that keeps falling is over-forecast in every window; the correction pulls the
    # forecast down, never below zero, quantiles still ordered.
    weeks = 80
    series = {f"s{k}": np.maximum(np.round(np.linspace(40, 2, weeks) * rng.uniform(0.6, 1.4, weeks)), 0) for k in range(20)}
    series.update({f"z{k}": np.where(rng.random(weeks) < 0.2, rng.integers(1, 5, weeks), 0).astype(float) for k in range(10)})
    result = forecast_panel(weekly_panel(series), ForecastSettings(freq="W", horizon=8, season_length=1, n_windows=2))
    corrected = result.selection[result.selection["bias_systematic"].astype(bool)]
    assert (corrected["bias_factor"] < 1).any()
    values = result.forecast[["mean", *QUANTILE_COLUMNS]].to_numpy()
    assert (values >= 0).all() and np.isfinite(values).all()
    assert (np.diff(result.forecast[list(QUANTILE_COLUMNS)].to_numpy(), axis=1) >= 0).all()


def test_quantiles_extend_past_the_backtest_steps_as_the_spread_grew() -> None:
    levels = np.asarray(QUANTILE_LEVELS)
    widths = np.array([1.0, 2.0 ** 0.25, 3.0 ** 0.25])  # spread growing like step^0.25
    q = np.stack([w * (levels - 0.5) for w in widths])
    out = extend_steps(q, 6)
    assert out.shape == (6, len(levels))
    assert out[5, -1] == pytest.approx(q[2, -1] * 2.0 ** 0.25, rel=0.02)  # (6 / 3)^0.25
    assert extend_steps(q, 2).shape == (2, len(levels))


def test_one_season_intervals_calibrate_on_the_latest_window_of_series_forecast_the_same_way() -> None:
    # One season in all: the oldest window (shortest training) erred widely for every series; in the latest
    # one the series forecast with a seasonal shape erred by ±1 and the others by ±3.
    rng = np.random.default_rng(3)
    n, w = 2 * MIN_POOL, 4
    shaped = np.arange(n) < MIN_POOL
    latest = np.where(shaped[:, None], 1.0, 3.0) * rng.choice([-1.0, 1.0], size=(n, w))
    errors = np.stack([10.0 * rng.choice([-1.0, 1.0], size=(n, w)), latest], axis=1)
    levels = list(QUANTILE_LEVELS)

    def width80(q: np.ndarray) -> np.ndarray:
        return q[..., levels.index(0.9)] - q[..., levels.index(0.1)]

    pooled = calibration_quantiles(errors, None)
    assert np.allclose(width80(pooled), 20.0)  # every window pooled: the wide oldest one dominates the tails
    split = calibration_quantiles(errors, shaped)
    assert np.allclose(width80(split[shaped]), 2.0)
    assert np.allclose(width80(split[~shaped]), 6.0)
    # A part too small to pool on its own falls back to the group's pool.
    few = np.arange(n) < 3
    assert np.allclose(width80(calibration_quantiles(errors, few)[few]), width80(pooled[few]))

def test_pipeline_adjustment_is_capped_and_in_its_own_column() -> None:
    weeks = pd.date_range("2026-11-23", periods=4, freq="W-MON")
    forecast = pd.DataFrame(
        {
            "sku": ["A"] * 8, "location_id": ["DC-N"] * 4 + ["DC-S"] * 4, "period_start": list(weeks) * 2,
            "mean": [10.0] * 4 + [4.0] * 4, **{c: [1.0 + i] * 8 for i, c in enumerate(QUANTILE_COLUMNS)},
        }
    )
    pipeline = pd.DataFrame(
        {
            "opportunity_id": ["O1", "O2", "O3", "O4", "O5"],
            "sku": ["A"] * 5,
            "customer_id": ["C-S", "C-S", "C-S", "C-N", "C-S"],
            "qty": [20.0, 100.0, 50.0, 8.0, 30.0],
            "probability": [0.5, 1.0, 0.0, 0.5, 0.6],
            "expected_date": pd.to_datetime(["2026-12-02", "2026-12-02", "2026-12-09", "2026-11-25", "2027-03-01"]),
            "stage": ["proposal", "won", "lost", "negotiation", "qualification"],
        }
    )
    customers = pd.DataFrame({"customer_id": ["C-N", "C-S"], "region": ["North", "South"]})
    locations = pd.DataFrame({"location_id": ["DC-N", "DC-S"], "region": ["North", "South"]})
    off = apply_pipeline(forecast, pipeline, customers, locations, PipelineSettings(enabled=False))
    assert (off["pipeline_qty"] == 0).all() and (off["base_mean"] == off["mean"]).all()

    on = apply_pipeline(forecast, pipeline, customers, locations, PipelineSettings(enabled=True, max_uplift=1.0))
    added = on.set_index(["location_id", "period_start"])["pipeline_qty"]
    # O1 (open, 20 × 0.5 = 10) lands at the south DC in the week of 30 Nov, capped at its forecast of 4; O4
    # (8 × 0.5 = 4) at the north DC in the week of 23 Nov; won, lost and beyond-horizon deals add nothing.
    assert added[("DC-S", pd.Timestamp("2026-11-30"))] == pytest.approx(4.0)
    assert added[("DC-N", pd.Timestamp("2026-11-23"))] == pytest.approx(4.0)
    assert added.sum() == pytest.approx(8.0)
    assert np.allclose(on["mean"], on["base_mean"] + on["pipeline_qty"])
    assert np.allclose(on["q05"], forecast["q05"] + on["pipeline_qty"])
    assert (np.diff(on[list(QUANTILE_COLUMNS)].to_numpy(), axis=1) >= 0).all()


def test_the_generator_seasonal_skus_are_forecast_with_a_seasonal_shape() -> None:
    from demand_control.sample import generate_landscape

    captured: dict[str, np.ndarray] = {}

    def capture(frame, event, arg):  # noqa: ANN001 - a profiler hook
        # The generator's own draw of which SKUs are seasonal is a local of demand_history: read it there.
        if event == "return" and frame.f_code.co_name == "demand_history" and "seasonal" in frame.f_locals:
            captured.update({k: np.asarray(frame.f_locals[k]) for k in ("seasonal", "amplitude", "peak")})

    sys.setprofile(capture)
    try:
        frames = generate_landscape(skus=200, locations=3, weeks=130, seed=7, as_of=dt.date(2026, 11, 23))
    finally:
        sys.setprofile(None)
    history, products = frames["demand_history"], frames["product"]
    panel = pd.DataFrame({"unique_id": history["sku"].astype(str) + "|" + history["location_id"].astype(str),
                          "ds": history["period_start"], "y": history["qty"]})
    ids = pd.Series(panel["unique_id"].unique())
    categories = pd.Series(ids.str.split("|").str[0].map(products.set_index("sku")["category"]).to_numpy(), index=ids)
    result = forecast_panel(panel, ForecastSettings(freq="W", horizon=26, season_length=52), categories)
    wide = result.forecast.pivot(index="unique_id", columns="ds", values="mean")
    sku = wide.index.str.split("|").str[0]
    codes = products["sku"].to_numpy()
    seasonal = pd.Series(captured["seasonal"], index=codes).reindex(sku).to_numpy(dtype=bool)
    amplitude = pd.Series(captured["amplitude"], index=codes).reindex(sku).to_numpy()
    peak = pd.Series(captured["peak"], index=codes).reindex(sku).to_numpy()
    truth = 1 + amplitude[:, None] * np.cos(2 * np.pi * (year_fraction(wide.columns)[None, :] - peak[:, None]))
    values = wide.to_numpy()
    swing = (values.max(axis=1) - values.min(axis=1)) / values.mean(axis=1)
    corr = np.array([np.corrcoef(a, b)[0, 1] if np.std(a) > 0 else 0.0 for a, b in zip(values, truth)])
    shaped = (corr > 0.5) & (swing >= 0.1)
    assert seasonal.sum() > 200
    assert shaped[seasonal].mean() >= 0.9
    assert result.profile.set_index("unique_id").loc[wide.index[seasonal], "seasonal"].mean() >= 0.9
