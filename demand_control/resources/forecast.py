"""Forecast settings: the bucket, horizon and season of the demand forecast, its backtest and its gates.

Shared by the `forecasts` assets and their checks. The Dask scheduler address is read from
`DEMAND_CONTROL_FORECAST_CLUSTER` when a run starts, never at import time.
"""

import os
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from demand_control.infra.settings import FORECAST_CLUSTER_ENV

if TYPE_CHECKING:
    from demand_control.planning.forecasting import ForecastSettings


class ForecastSettingsResource(dg.ConfigurableResource):
    """How demand is forecast: bucket, horizon, season, backtest and the accuracy gates."""

    freq: str = Field(default="W", description="Bucket of demand_history: W (Monday weeks), MS (months) or D.")
    horizon: int = Field(default=26, ge=1, description="Buckets to forecast.")
    season_length: int = Field(default=52, ge=1, description="Buckets per seasonal cycle (52 for weeks, 12 for months).")
    n_windows: int = Field(default=2, ge=1, description="Rolling-origin backtest windows of `horizon` buckets.")
    selection: str = Field(default="class", description="Model selection: class, series or auto.")
    n_jobs: int = Field(default=2, ge=1, description="Processes statsforecast uses on this machine.")
    benchmark_tolerance: float = Field(
        default=0.05, ge=0, description="Backtest RMSSE may exceed the seasonal-naive benchmark's by this share at most."
    )
    degradation_factor: float = Field(
        default=1.5, ge=1, description="A series is degraded when its recent RMSSE exceeds its earlier one by this factor."
    )
    pipeline_signal: bool = Field(
        default=False,
        description="Add the probability-weighted open CRM pipeline to the forecast in its expected buckets (column "
        "pipeline_qty). Off by default: no history of pipeline snapshots exists to backtest it on.",
    )
    pipeline_max_uplift: float = Field(
        default=1.0, ge=0, description="The pipeline adds at most this multiple of a bucket's statistical forecast."
    )

    def engine_settings(self) -> "ForecastSettings":
        # Imported here: statsforecast takes seconds to import, and most runs (replan) never forecast.
        from demand_control.planning.forecasting import ForecastSettings

        # The cluster is read when the run starts, never at import time.
        return ForecastSettings(
            freq=self.freq,
            horizon=self.horizon,
            season_length=self.season_length,
            n_windows=self.n_windows,
            selection=self.selection,  # type: ignore[arg-type]
            n_jobs=self.n_jobs,
            cluster_address=os.environ.get(FORECAST_CLUSTER_ENV) or None,
        )
