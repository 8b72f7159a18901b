"""The same engine on a Dask cluster (statsforecast's distributed backend) gives the local path's results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from demand_control.planning.forecasting import ForecastSettings, forecast_panel


def test_dask_cluster_equals_local_path() -> None:
    distributed = pytest.importorskip("dask.distributed")
    rng = np.random.default_rng(8)
    weeks = 70
    frames = []
    for i in range(12):
        if i % 3 == 0:
            y = np.where(rng.random(weeks) < 0.3, rng.integers(1, 20, weeks), 0)
        else:
            y = rng.poisson(10 + i, weeks)
        frames.append(pd.DataFrame({"unique_id": f"s{i:02d}", "ds": pd.date_range("2023-01-02", periods=weeks, freq="W-MON"), "y": y.astype(float)}))
    panel = pd.concat(frames, ignore_index=True)
    settings = ForecastSettings(freq="W", horizon=8, season_length=4, n_windows=2)
    local = forecast_panel(panel, settings)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        remote = forecast_panel(panel, ForecastSettings(**{**settings.__dict__, "cluster_address": cluster.scheduler_address}))
    # statsforecast's distributed backend hands model outputs back as float32: equal to ~7 significant digits.
    pd.testing.assert_frame_equal(local.forecast, remote.forecast, check_exact=False, rtol=1e-6, atol=1e-6)
    pd.testing.assert_frame_equal(local.backtest, remote.backtest, check_exact=False, rtol=1e-5, atol=1e-6)
    assert (local.profile["model"] == remote.profile["model"]).all()
