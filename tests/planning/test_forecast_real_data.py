"""A slice of a real shared panel (stallion, monthly beverages): the engine beats seasonal naive on the
held-out year. Skips when ../shared/data is absent."""

from __future__ import annotations

import pytest

from demand_control.planning.forecasting import ForecastSettings, forecast_panel
from demand_control.planning.metrics import holdout_split, score_series, summarise
from demand_control.planning.panels import DEFAULT_DATA_DIR, PANELS, load_panel


def test_stallion_slice_beats_seasonal_naive() -> None:
    if not (DEFAULT_DATA_DIR / PANELS["stallion"].file).exists():
        pytest.skip(f"shared panels not found at {DEFAULT_DATA_DIR} (they live beside the repo, never in it)")
    from statsforecast import StatsForecast
    from statsforecast.models import SeasonalNaive

    panel = load_panel("stallion")
    keep = sorted(panel["unique_id"].unique())[:60]
    panel = panel[panel["unique_id"].isin(keep)]
    train, test = holdout_split(panel, 12)
    result = forecast_panel(train, ForecastSettings(freq="MS", horizon=12, season_length=12))
    ours = summarise(score_series(result.forecast, test, train, 12))
    naive = StatsForecast(models=[SeasonalNaive(12)], freq="MS").forecast(df=train, h=12)
    bench = summarise(score_series(naive.rename(columns={"SeasonalNaive": "mean"}), test, train, 12))
    assert ours["series"] == 60
    assert ours["rmsse"] < bench["rmsse"]
    assert 0.6 <= ours["cover80"] <= 0.95
