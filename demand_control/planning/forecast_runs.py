"""One statsforecast run of a set of candidate models: a rolling-origin backtest and a forecast, in-process
(a process pool from a couple of thousand series) or on a Dask cluster through statsforecast's distributed
backend when a scheduler address is given."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd

from demand_control.planning.candidates import (
    for_final_forecast,
)
from demand_control.planning.forecast_inputs import ForecastSettings

# Below this many series a process pool costs more than it saves; statsforecast runs in-process.
_PARALLEL_FROM_SERIES = 2_000


@contextmanager
def _dask_client(address: str) -> Iterator[Any]:
    from dask.distributed import Client

    client = Client(address, set_as_default=True)
    try:
        yield client
    finally:
        client.close()


def run_statsforecast(
    models: list[Any], df: pd.DataFrame, settings: ForecastSettings, cv_df: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One backtest (`n_windows` back-to-back windows of `horizon`) and one forecast of every model.

    `cv_df` (default `df`) is the panel the backtest runs on: the same series and values, but exogenous
    columns may differ (the pooled seasonal index is estimated without the backtest windows there). The
    forecast runs the models of `for_final_forecast`.
    """
    final = for_final_forecast(models, settings.horizon)
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
            fc = StatsForecast(models=final, freq=settings.sf_freq).forecast(
                df=dd.from_pandas(df, npartitions=npartitions), h=settings.horizon
            )
            cv, fc = _to_pandas(cv), _to_pandas(fc)
    else:
        n_jobs = settings.n_jobs if n_series >= _PARALLEL_FROM_SERIES else 1
        sf = StatsForecast(models=models, freq=settings.sf_freq, n_jobs=n_jobs)
        cv = sf.cross_validation(df=cv_df, h=settings.horizon, n_windows=settings.n_windows, step_size=settings.horizon)
        fc = StatsForecast(models=final, freq=settings.sf_freq, n_jobs=n_jobs).forecast(df=df, h=settings.horizon)
    cv = cv.sort_values(["unique_id", "cutoff", "ds"]).reset_index(drop=True)
    fc = fc.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    return cv, fc


def _to_pandas(frame: Any) -> pd.DataFrame:
    if hasattr(frame, "compute"):
        frame = frame.compute()
    frame = pd.DataFrame(frame)
    frame["unique_id"] = frame["unique_id"].astype(str)
    for col in ("ds", "cutoff"):
        if col in frame:
            frame[col] = pd.to_datetime(frame[col]).astype("datetime64[ns]")
    return frame


# The engine --------------------------------------------------------------------------------------------------
