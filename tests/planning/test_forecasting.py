"""The forecasting engine on tiny hand-made panels whose right answer is known: profiles and classes,
routing, metrics, quantiles, bad-input errors, the blocking check rules and the CLI round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from demand_control.cli.forecast import OUTPUT_COLUMNS, forecast_app
from demand_control.planning.candidates import (
    SEASON_INDEX_COLUMN,
    Deseasonalized,
    candidates_for,
)
from demand_control.planning.forecast_seasons import with_season_index
from demand_control.planning.forecasting import (
    ForecastSettings,
    PanelError,
    complete_buckets,
    forecast_panel,
    route_series,
    validate_panel,
)
from demand_control.planning.metrics import QUANTILE_COLUMNS, score_series, summarise
from demand_control.planning.profile import (
    ProfileSettings,
    pooled_season_index,
    profile_panel,
)
from demand_control.planning.selection import (
    cross_fitted_mean,
    level_correction,
    quantiles_from_errors,
)
from demand_control.quality.forecast_checks import (
    accuracy_vs_benchmark,
    degraded_series,
    incomplete_series,
    invalid_values,
    unordered_quantiles,
)


def panel_of(series: dict[str, list[float]], start: str = "2024-01-01", freq: str = "W-MON") -> pd.DataFrame:
    frames = []
    for uid, values in series.items():
        ds = pd.date_range(start, periods=len(values), freq=freq)
        frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": np.asarray(values, dtype=float)}))
    return pd.concat(frames, ignore_index=True)


def test_profile_classes_adi_and_cv2_by_hand() -> None:
    panel = panel_of(
        {
            "smooth": [10, 11, 9, 10, 10, 11, 9, 10, 10, 10, 11, 9],  # every period, sizes steady
            "erratic": [1, 20, 2, 30, 1, 25, 2, 1, 40, 1, 2, 30],  # every period, sizes wild
            "intermittent": [5, 0, 0, 5, 0, 0, 5, 0, 0, 5, 0, 0],  # ADI 12/4 = 3, CV² 0
            "lumpy": [1, 0, 0, 30, 0, 0, 2, 0, 0, 40, 0, 0],  # ADI 3, sizes wild
        }
    )
    profile = profile_panel(panel, ProfileSettings(season_length=4, new_below_periods=3, dead_after_periods=8))
    p = profile.set_index("unique_id")
    assert p.loc["smooth", "demand_class"] == "smooth"
    assert p.loc["erratic", "demand_class"] == "erratic"
    assert p.loc["intermittent", "demand_class"] == "intermittent"
    assert p.loc["lumpy", "demand_class"] == "lumpy"
    assert p.loc["intermittent", "adi"] == pytest.approx(3.0)
    assert p.loc["intermittent", "cv2"] == pytest.approx(0.0)
    sizes = np.array([1, 30, 2, 40.0])
    assert p.loc["lumpy", "cv2"] == pytest.approx(sizes.var() / sizes.mean() ** 2)
    assert p.loc["smooth", "adi"] == pytest.approx(1.0)
    assert p.loc["intermittent", "periods_since_demand"] == 2
    assert not p["is_new"].any() and not p["is_dead"].any()


def test_new_dead_and_seasonal_flags() -> None:
    season = [1, 5, 9, 5] * 6
    panel = panel_of({"new": [3, 4, 5], "dead": [4, 5, 6] + [0] * 10, "seasonal": season, "flat": [5, 7, 4, 6, 5, 4, 7, 5, 6, 6, 4, 5, 7, 4, 5, 6, 5, 7, 6, 4, 4, 6, 5, 7]})
    profile = profile_panel(panel, ProfileSettings(season_length=4, new_below_periods=5, dead_after_periods=8))
    p = profile.set_index("unique_id")
    assert p.loc["new", "is_new"] and not p.loc["new", "is_dead"]
    assert p.loc["dead", "is_dead"] and p.loc["dead", "periods_since_demand"] == 10
    assert p.loc["seasonal", "seasonal"] and p.loc["seasonal", "seasonality_strength"] > 0.6
    assert not p.loc["flat", "seasonal"]


def test_routing_per_class() -> None:
    names = {c: [m.alias for m in candidates_for(c, 12, 6)] for c in ("smooth", "erratic", "intermittent", "lumpy")}
    for aliases in names.values():
        assert "SeasonalNaive" in aliases  # the benchmark competes everywhere
    assert "SA_Naive" in names["smooth"] and "SA_Naive" not in names["erratic"]
    assert "CrostonSBA" in names["intermittent"] and "CrostonSBA" not in names["smooth"]
    assert "HistoricAverage" in names["lumpy"]
    with pytest.raises(ValueError, match="unknown demand class"):
        candidates_for("weird", 12, 6)
    profile = pd.DataFrame(
        {
            "is_dead": [True, False, False, False],
            "is_new": [False, True, False, False],
            "history_periods": [50, 4, 12, 60],
            "demand_class": ["smooth", "smooth", "lumpy", "erratic"],
        }
    )
    settings = ForecastSettings(freq="W", horizon=6, season_length=4, n_windows=2)
    assert route_series(profile, settings).tolist() == ["dead", "new", "short", "erratic"]


def test_metrics_by_hand() -> None:
    train = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2024-01-01", periods=4, freq="MS"), "y": [1.0, 3.0, 2.0, 4.0]})
    actual = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2024-05-01", periods=2, freq="MS"), "y": [4.0, 2.0]})
    fc = actual[["unique_id", "ds"]].assign(mean=[3.0, 3.0], q10=[1.0, 1.0], q25=[2.0, 2.0], q50=[3.0, 2.0], q75=[4.0, 4.0], q90=[5.0, 5.0])
    per = score_series(fc, actual, train, season_length=1).iloc[0]
    # Δy = [2, -1, 2] → mean square 3; errors of the mean [-1, 1] → mse 1 → RMSSE sqrt(1/3)
    assert per["rmsse"] == pytest.approx(np.sqrt(1 / 3))
    # MASE of q50: |3-4|, |2-2| → 0.5; scale mean|Δy| = 5/3
    assert per["mase"] == pytest.approx(0.5 / (5 / 3))
    assert per["bias"] == pytest.approx(0.0)
    assert per["covered80"] == 2
    # pinball at q10 for y=4, q=1: 0.1*3 = 0.3 ...; computed directly here
    levels = [0.1, 0.25, 0.5, 0.75, 0.9]
    qs = [[1, 2, 3, 4, 5], [1, 2, 2, 4, 5]]
    ys = [4.0, 2.0]
    pin = np.mean([[max(l * (y - q), (l - 1) * (y - q)) for l, q in zip(levels, row)] for y, row in zip(ys, qs)])
    assert per["spl"] == pytest.approx(pin / (5 / 3))
    summary = summarise(score_series(fc, actual, train, season_length=1))
    assert summary["bias_pct"] == pytest.approx(0.0)
    assert summary["cover80"] == pytest.approx(1.0)


def test_quantiles_are_monotone_and_non_negative() -> None:
    mean = np.array([[0.2, 5.0]])
    # Deliberately crossing error quantiles: the result must still be ordered and never below zero.
    errors = np.array([[-3.0, -1.0, -2.0, 0.0, 1.0, 0.5, 2.0], [-1.0, -0.5, 0.0, 0.0, 0.5, 1.0, 1.5]])
    q = quantiles_from_errors(mean, np.array([1.0]), errors)
    assert (q >= 0).all()
    assert (np.diff(q, axis=2) >= 0).all()
    assert q[0, 0, 0] == 0.0


def test_forecast_panel_full_horizon_quantiles_and_routes() -> None:
    rng = np.random.default_rng(3)
    weeks = 60
    series = {
        "smooth": list(20 + rng.normal(0, 2, weeks).round()),
        "lumpy": list(np.where(rng.random(weeks) < 0.3, rng.integers(1, 40, weeks), 0)),
        "intermittent": list(np.where(rng.random(weeks) < 0.35, 4, 0)),
        "dead": [5.0] * 20 + [0.0] * 40,
        "new": [3.0, 4.0, 2.0],
    }
    panel = panel_of(series)
    result = forecast_panel(panel, ForecastSettings(freq="W", horizon=8, season_length=4, n_windows=2, dead_after_periods=26))
    fc = result.forecast
    assert fc.groupby("unique_id").size().eq(8).all() and fc["unique_id"].nunique() == 5
    values = fc[["mean", *QUANTILE_COLUMNS]].to_numpy()
    assert np.isfinite(values).all() and (values >= 0).all()
    assert (np.diff(fc[list(QUANTILE_COLUMNS)].to_numpy(), axis=1) >= 0).all()
    routes = result.profile.set_index("unique_id")["route"]
    assert routes["dead"] == "dead" and routes["new"] == "new"
    assert (fc[fc["unique_id"] == "dead"][["mean", *QUANTILE_COLUMNS]].to_numpy() == 0).all()
    # No analogue launches in the panel: TSB on the record (sold every period; size 3 → 3.1 → 2.99).
    assert fc[fc["unique_id"] == "new"]["mean"].iloc[0] == pytest.approx(2.99)
    # Forecast buckets continue the history: the Monday after each series' last one.
    last = panel.groupby("unique_id")["ds"].max()
    first = fc.groupby("unique_id")["ds"].min()
    assert ((first - last.reindex(first.index)) == pd.Timedelta(days=7)).all()
    assert set(result.backtest["unique_id"]) == {"smooth", "lumpy", "intermittent"}


SHAPE = np.array([0.6, 1.0, 1.4, 1.0])  # a season of 4 with mean 1


def test_pooled_season_index_recovers_the_shared_shape_by_calendar() -> None:
    rng = np.random.default_rng(7)
    # 12 series share one seasonal shape at different levels; half of them end a period earlier, so
    # only a calendar alignment (not an end alignment) recovers the shape.
    series = {}
    for k in range(12):
        n = 24 if k % 2 else 23
        level = 10.0 * (k + 1)
        series[f"s{k}"] = list(level * np.tile(SHAPE, 6)[:n] * rng.uniform(0.95, 1.05, n))
    panel = panel_of(series, freq="MS")
    from demand_control.planning.forecasting import period_number

    period = period_number(panel["ds"], "MS")
    pooled = pooled_season_index(panel["unique_id"].to_numpy(), period, panel["y"].to_numpy(), 4)
    assert pooled is not None
    first_phase = int(period.min()) % 4
    assert np.roll(pooled, -first_phase) == pytest.approx(SHAPE, abs=0.05)
    # Too few series to pool, or no season: nothing.
    few = panel[panel["unique_id"].isin(["s0", "s1"])]
    assert pooled_season_index(few["unique_id"].to_numpy(), period_number(few["ds"], "MS"), few["y"].to_numpy(), 4) is None
    assert pooled_season_index(panel["unique_id"].to_numpy(), period, panel["y"].to_numpy(), 1) is None


def test_season_index_column_is_estimated_without_the_backtest_windows() -> None:
    series = {f"s{k}": list((k + 5) * np.tile(SHAPE, 6)) for k in range(12)}
    panel = validate_panel(panel_of(series, freq="MS"), "MS")
    settings = ForecastSettings(freq="MS", horizon=4, season_length=4, n_windows=2)
    full = with_season_index(panel, settings)
    assert SEASON_INDEX_COLUMN in full
    # 24 periods less 2 windows of 4 leave 16: still enough to pool.
    assert SEASON_INDEX_COLUMN in with_season_index(panel, settings, exclude_last=8)
    # Less than a season plus one left after the windows: no index, the panel comes back unchanged.
    short = with_season_index(panel, settings, exclude_last=20)
    assert SEASON_INDEX_COLUMN not in short and short.equals(panel)


def test_deseasonalized_shrinks_noisy_own_indices_towards_the_pooled_ones() -> None:
    from statsforecast.models import Naive, WindowAverage

    rng = np.random.default_rng(11)
    n, s = 48, 4
    pooled = np.tile(SHAPE, n // s)[:, None]
    model = Deseasonalized(WindowAverage(window_size=4), s)
    # A seasonal series with the pooled shape plus noise: the blended indices are nearer the true shape
    # than its own noisy ones.
    y = 100 * np.tile(SHAPE, n // s) * rng.uniform(0.75, 1.25, n)
    own = model.indices(y)
    blended = model.indices(y, pooled[-s:, 0])
    truth = SHAPE  # index 0 is the next period's position: phase 0, as n is a multiple of s
    assert own is not None and blended is not None
    assert np.abs(blended - truth).sum() < np.abs(own - truth).sum()
    # A noiseless series keeps its own, different shape: nothing says its indices are noisy.
    other = np.array([1.3, 0.7, 1.3, 0.7])
    exact = 50 * np.tile(other, n // s)
    assert model.indices(exact, pooled[-s:, 0]) == pytest.approx(other)
    # A flat series is not seasonal: SA_ leaves it alone, PSA_ (pooled fallback) takes the pooled shape.
    flat = np.full(n, 10.0)
    plain = Deseasonalized(Naive(), s).forecast(flat, 4, X=pooled)["mean"]
    fallback = Deseasonalized(Naive(), s, pooled_fallback=True).forecast(flat, 4, X=pooled)["mean"]
    assert plain == pytest.approx([10.0] * 4)
    assert fallback == pytest.approx(10.0 * SHAPE)


def test_engine_uses_pooled_candidates_only_when_the_backtest_can_see_the_pool() -> None:
    rng = np.random.default_rng(5)
    series = {f"s{k}": list(np.round((20 + k) * np.tile(SHAPE, 10) * rng.uniform(0.8, 1.2, 40))) for k in range(12)}
    panel = panel_of(series, freq="MS")
    pooled = forecast_panel(panel, ForecastSettings(freq="MS", horizon=4, season_length=4, n_windows=2))
    assert "PSA_SES" in pooled.selection["candidates"].iloc[0]
    # 28 periods (two seasons of 12 and the backtest: long route) less 3 windows of 6 leave 10, less than the
    # season the pool needs: no pooled index for the backtest, so no PSA_ candidate and none in the forecast.
    short = panel[panel.groupby("unique_id").cumcount() < 28]
    no_pool = forecast_panel(short, ForecastSettings(freq="MS", horizon=6, season_length=12, n_windows=3))
    assert set(no_pool.profile["route"]) == {"smooth"}
    assert not any("PSA_" in c for c in no_pool.selection["candidates"])
    assert np.isfinite(no_pool.forecast["mean"]).all()


def test_level_correction_only_when_the_bias_persists() -> None:
    rng = np.random.default_rng(0)
    actual = 10 + rng.normal(0, 1, (30, 2, 6))
    scale = np.ones(30)
    # 25% over-forecast in both windows: corrected to within the cap (0.8 = 1 - 0.2).
    factor = level_correction(actual * 1.25, actual, scale)
    assert factor == pytest.approx(0.8)
    # Over in the first window, under in the last: the learnt factor would hurt out of sample, so none.
    flipped = np.concatenate([actual[:, :1] * 1.1, actual[:, 1:] * 0.9], axis=1)
    assert level_correction(flipped, actual, scale) == 1.0
    # One window: nothing to validate on.
    assert level_correction(actual[:, :1] * 1.25, actual[:, :1], scale) == 1.0


def test_cross_fitted_backtest_selects_each_window_on_the_others() -> None:
    Y = np.full((4, 2, 3), 10.0)
    # Model 0 is right in window 0 only, model 1 in window 1 only: each window gets the other's pick.
    F = np.stack([np.stack([Y[:, 0], Y[:, 1] + 5], axis=1), np.stack([Y[:, 0] + 5, Y[:, 1]], axis=1)], axis=-1)
    out = cross_fitted_mean(F, Y, np.ones(4), "class", 1.0)
    assert out.shape == Y.shape
    assert np.allclose(out, 15.0)


def test_new_series_quantiles_use_post_launch_spread() -> None:
    rng = np.random.default_rng(5)
    weeks = 60
    series = {f"s{i}": list(20 + rng.normal(0, 3, weeks).round()) for i in range(3)}
    series["launch"] = [0.0] * (weeks - 5) + [30.0, 50.0, 40.0, 60.0, 45.0]
    result = forecast_panel(panel_of(series), ForecastSettings(freq="W", horizon=8, season_length=4, n_windows=2))
    assert result.profile.set_index("unique_id").loc["launch", "route"] == "new"
    fc = result.forecast[result.forecast["unique_id"] == "launch"]
    # The pre-launch zeros must not make the interval collapse: it spans the post-launch variability.
    assert (fc["q90"] - fc["q10"]).min() > 10
    assert (fc["q10"] <= fc["mean"]).all() and (fc["mean"] <= fc["q90"]).all()


@pytest.mark.parametrize(
    ("mutate", "column", "example"),
    [
        (lambda p: p.drop(columns=["y"]), "'y'", "unique_id"),
        (lambda p: p.assign(y=p["y"].astype(object).where(p.index != 3, "lots")), "'y'", "lots"),
        (lambda p: pd.concat([p, p.iloc[[2]]]), "'unique_id', 'ds'", "a"),
        (lambda p: p.drop(index=4), "'ds'", "2024-02-05"),
        (lambda p: p.assign(ds=p["ds"].where(p.index != 1, pd.Timestamp("2024-01-09"))), "'ds'", "2024-01-09"),
        (lambda p: p.assign(y=p["y"].where(p.index != 2, -3.0)), "'y'", "-3.0"),
    ],
    ids=["missing_column", "non_numeric_y", "duplicate_key", "gap", "not_monday", "negative"],
)
def test_bad_input_names_column_and_example_row(mutate, column, example) -> None:
    panel = panel_of({"a": [1, 2, 3, 4, 5, 6, 7, 8]})
    with pytest.raises(PanelError) as err:
        validate_panel(mutate(panel), "W")
    assert column in str(err.value) and example in str(err.value), str(err.value)


def test_complete_buckets_fills_zero_weeks() -> None:
    panel = panel_of({"a": [1, 2, 3, 4]}).drop(index=[1, 2])
    panel = pd.concat([panel, panel_of({"b": [5, 5, 5, 5, 5]})], ignore_index=True)
    full = complete_buckets(panel, "W")
    assert full.groupby("unique_id").size().to_dict() == {"a": 5, "b": 5}
    assert full[full["unique_id"] == "a"]["y"].tolist() == [1.0, 0.0, 0.0, 4.0, 0.0]


def test_complete_buckets_placement_equals_the_merge(monkeypatch: pytest.MonkeyPatch) -> None:
    """The positional fill gives the merge's frame exactly (order, dtypes, NaN demand as zero), and hands
    back to the merge where it would not (a duplicated bucket, a date off the grid)."""
    from demand_control.planning import forecast_inputs

    rng = np.random.default_rng(7)
    rows = [
        (f"s{i}", pd.Timestamp("2024-01-01") + pd.Timedelta(weeks=int(t)), float(rng.poisson(3)) if rng.random() > 0.05 else np.nan)
        for i in range(60) for t in range(int(rng.integers(0, 40)), 52) if rng.random() < 0.7
    ]
    shuffled = pd.DataFrame(rows, columns=["unique_id", "ds", "y"]).sample(frac=1.0, random_state=1).reset_index(drop=True)
    duplicated = pd.concat([shuffled, shuffled.iloc[:3]], ignore_index=True)
    off_grid = shuffled.assign(ds=shuffled["ds"].where(shuffled.index != 5, shuffled["ds"] + pd.Timedelta(days=2)))
    placed = {name: complete_buckets(frame, "W") for name, frame in (("shuffled", shuffled), ("duplicated", duplicated), ("off_grid", off_grid))}
    monkeypatch.setattr(forecast_inputs, "_placed_on_grid", lambda *args: None)
    for name, frame in (("shuffled", shuffled), ("duplicated", duplicated), ("off_grid", off_grid)):
        pd.testing.assert_frame_equal(placed[name], complete_buckets(frame, "W"), check_exact=True)


def test_check_rules_fail_on_crafted_bad_forecasts() -> None:
    good = pd.DataFrame(
        {
            "sku": "S1",
            "location_id": "DC1",
            "period_start": pd.date_range("2025-01-06", periods=3, freq="W-MON"),
            "mean": 5.0,
            **{c: float(i) for i, c in enumerate(QUANTILE_COLUMNS)},
        }
    )
    expected = pd.DataFrame({"sku": ["S1", "S2"], "location_id": ["DC1", "DC1"]})
    missing = incomplete_series(good, expected, horizon=3)
    assert missing[["sku", "buckets"]].values.tolist() == [["S2", 0]]
    assert incomplete_series(good.iloc[:2], expected.iloc[:1], horizon=3)["buckets"].tolist() == [2]
    assert invalid_values(good).empty and unordered_quantiles(good).empty
    nan = good.copy()
    nan.loc[1, "q75"] = np.nan
    neg = good.copy()
    neg.loc[0, "mean"] = -1.0
    inf = good.copy()
    inf.loc[2, "q95"] = np.inf
    assert invalid_values(nan)["column"].tolist() == ["q75"]
    assert invalid_values(neg)["column"].tolist() == ["mean"]
    assert invalid_values(inf)["column"].tolist() == ["q95"]
    crossed = good.copy()
    crossed.loc[0, "q25"] = 10.0
    assert len(unordered_quantiles(crossed)) == 1

    accuracy = pd.DataFrame(
        {
            "scope": ["overall", "series", "series"],
            "sku": [None, "S1", "S2"],
            "location_id": [None, "DC1", "DC1"],
            "demand_class": [None, "smooth", "lumpy"],
            "rmsse": [1.2, 1.0, 1.0],
            "benchmark_rmsse": [1.0, 1.1, 0.5],
            "recent_rmsse": [None, 1.0, 3.0],
            "earlier_rmsse": [None, 0.9, 1.0],
        }
    )
    assert accuracy_vs_benchmark(accuracy, tolerance=0.05)[0] is False
    assert accuracy_vs_benchmark(accuracy, tolerance=0.25)[0] is True
    assert degraded_series(accuracy, factor=1.5)["sku"].tolist() == ["S2"]


def test_cli_round_trip_and_bad_input(tmp_path) -> None:
    rng = np.random.default_rng(5)
    panel = panel_of({f"s{i}": list(rng.poisson(8, 40).astype(float)) for i in range(4)}, freq="MS")
    src = tmp_path / "panel.csv"
    panel.to_csv(src, index=False)
    runner = CliRunner()
    for out in (tmp_path / "fc.csv", tmp_path / "fc.parquet"):
        result = runner.invoke(
            forecast_app, ["--input", str(src), "--freq", "MS", "--horizon", "6", "--season-length", "12", "--output", str(out)]
        )
        assert result.exit_code == 0, result.output
        written = pd.read_parquet(out) if out.suffix == ".parquet" else pd.read_csv(out)
        assert list(written.columns) == OUTPUT_COLUMNS
        assert len(written) == 4 * 6
    result = runner.invoke(forecast_app, ["backtest", "--input", str(src), "--freq", "MS", "--horizon", "6", "--season-length", "12"])
    assert result.exit_code == 0, result.output
    assert "rmsse" in result.output and "seasonal naive" in result.output

    bad = panel.assign(y=panel["y"].astype(object))
    bad.loc[5, "y"] = "n/a"
    bad.to_csv(src, index=False)
    result = runner.invoke(
        forecast_app, ["--input", str(src), "--freq", "MS", "--horizon", "6", "--season-length", "12", "--output", str(tmp_path / "x.csv")]
    )
    assert result.exit_code == 2
    assert "'y'" in result.output and "n/a" in result.output
