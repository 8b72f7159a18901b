"""`demand-control forecast ...`: the forecasting engine on a long panel file, the same code path as the
`demand_forecast` asset.

    demand-control forecast --input PANEL --freq {D,W,MS} --horizon H --season-length S --output OUT
    demand-control forecast backtest --input PANEL --freq ... --horizon H --season-length S

PANEL is a CSV or Parquet file with columns `unique_id, ds, y` and optionally `category` (the product
category seasonality and launch profiles are pooled in); OUT gets `unique_id, ds, mean, q05, q10, q25, q50,
q75, q90, q95, model` as CSV or Parquet by its extension.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

forecast_app = typer.Typer(
    add_completion=False,
    invoke_without_command=True,
    help="Forecast a long panel file (unique_id, ds, y), or backtest the engine on its last H periods.",
)

OUTPUT_COLUMNS = ["unique_id", "ds", "mean", "q05", "q10", "q25", "q50", "q75", "q90", "q95", "model"]

InputOpt = Annotated[Path | None, typer.Option("--input", help="Panel file: CSV or Parquet with unique_id, ds, y.")]
FreqOpt = Annotated[str, typer.Option("--freq", help="Bucket: D (days), W (Monday weeks) or MS (month starts).")]
HorizonOpt = Annotated[int, typer.Option("--horizon", min=1, help="Periods to forecast (or to hold out).")]
SeasonOpt = Annotated[int, typer.Option("--season-length", min=1, help="Periods per seasonal cycle (1: none).")]
JobsOpt = Annotated[int, typer.Option("--n-jobs", min=1, help="Processes for statsforecast on this machine.")]
WindowsOpt = Annotated[int, typer.Option("--n-windows", min=1, help="Rolling-origin backtest windows for selection.")]
SelectionOpt = Annotated[str, typer.Option("--selection", help="Model selection: class, series or auto.")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def read_panel(path: Path) -> pd.DataFrame:
    """A long panel from CSV (.csv, .csv.gz) or Parquet (.parquet, .pq)."""
    name = path.name.lower()
    if not path.exists():
        raise FileNotFoundError(f"input {path} does not exist")
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if name.endswith((".csv", ".csv.gz", ".txt")):
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    raise ValueError(f"input {path}: use a .csv or .parquet file")


def panel_categories(panel: pd.DataFrame) -> pd.Series | None:
    """`unique_id → category` from the panel's optional `category` column (the first value per series)."""
    if "category" not in panel.columns:
        return None
    first = panel.drop_duplicates("unique_id")
    return pd.Series(first["category"].fillna("").astype(str).to_numpy(), index=first["unique_id"].astype(str).to_numpy())


def check_output(path: Path, force: bool) -> None:
    """Refuse, before any work, an output that cannot be written or would overwrite a file unasked."""
    name = path.name.lower()
    if not name.endswith((".parquet", ".pq", ".csv", ".csv.gz")):
        raise ValueError(f"--output {path}: use a .csv or .parquet file name")
    if path.is_dir():
        raise ValueError(f"--output {path} is a folder; give a file name")
    if path.exists() and not force:
        raise ValueError(f"--output {path} already exists; pass --force to overwrite it")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"--output {path}: {parent} is a file, not a folder")
            break


def write_forecast(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        frame.to_parquet(path, index=False)
    elif name.endswith((".csv", ".csv.gz")):
        frame.to_csv(path, index=False, date_format="%Y-%m-%d")
    else:
        raise ValueError(f"output {path}: use a .csv or .parquet file name")


def _settings(freq: str, horizon: int, season_length: int, n_jobs: int, n_windows: int, selection: str):
    from demand_control.planning.forecasting import CLUSTER_ENV, ForecastSettings

    return ForecastSettings(
        freq=freq,
        horizon=horizon,
        season_length=season_length,
        n_jobs=n_jobs,
        n_windows=n_windows,
        selection=selection,  # type: ignore[arg-type]
        cluster_address=os.environ.get(CLUSTER_ENV) or None,
    )


@forecast_app.callback()
def forecast(
    ctx: typer.Context,
    input: InputOpt = None,
    freq: FreqOpt = "W",
    horizon: HorizonOpt = 26,
    season_length: SeasonOpt = 52,
    output: Annotated[Path | None, typer.Option("--output", help="Forecast file: .csv or .parquet.")] = None,
    n_jobs: JobsOpt = 2,
    n_windows: WindowsOpt = 2,
    selection: SelectionOpt = "class",
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUT if it exists.")] = False,
) -> None:
    """Forecast every series of PANEL and write mean and quantiles q05..q95 to OUT."""
    if ctx.invoked_subcommand is not None:
        return
    from demand_control.planning.forecasting import PanelError, forecast_panel

    if input is None or output is None:
        raise _fail("--input and --output are required (or use `forecast backtest`)")
    try:
        check_output(output, force)
        settings = _settings(freq, horizon, season_length, n_jobs, n_windows, selection)
        panel = read_panel(input)
        started = time.perf_counter()
        result = forecast_panel(panel, settings, panel_categories(panel))
        out = result.forecast[OUTPUT_COLUMNS]
        write_forecast(out, output)
    except (PanelError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    routes = result.profile["route"].value_counts().to_dict()
    typer.echo(
        f"forecast {out['unique_id'].nunique():,} series x {horizon} periods in {time.perf_counter() - started:.1f} s "
        f"-> {output} (routes: {', '.join(f'{k} {v}' for k, v in routes.items())})"
    )


@forecast_app.command("backtest")
def backtest(
    input: InputOpt = None,
    freq: FreqOpt = "W",
    horizon: HorizonOpt = 26,
    season_length: SeasonOpt = 52,
    n_jobs: JobsOpt = 2,
    n_windows: WindowsOpt = 2,
    selection: SelectionOpt = "class",
) -> None:
    """Hold out the last H periods of every series, forecast from the rest and print the accuracy."""
    from demand_control.planning.forecasting import PanelError, forecast_panel, validate_panel
    from demand_control.planning.metrics import holdout_split, score_series, summarise

    if input is None:
        raise _fail("--input is required")
    try:
        settings = _settings(freq, horizon, season_length, n_jobs, n_windows, selection)
        raw = read_panel(input)
        categories = panel_categories(raw)
        panel = validate_panel(raw, freq)
        train, test = holdout_split(panel, horizon)
        if train.empty:
            raise ValueError(f"every series is at most {horizon} periods long: nothing left to train on")
        started = time.perf_counter()
        result = forecast_panel(train, settings, categories)
        seconds = time.perf_counter() - started
    except (PanelError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    ours = summarise(score_series(result.forecast, test, train, season_length))
    rows = [{"forecast": "demand-control", **ours, "seconds": seconds}]
    bench = _seasonal_naive(train, settings)
    rows.append({"forecast": "seasonal naive", **summarise(score_series(bench, test, train, season_length)), "seconds": None})
    table = pd.DataFrame(rows)[["forecast", "series", "rmsse", "rmsse_median", "mase", "spl", "bias_pct", "cover80", "seconds"]]
    typer.echo(f"held out the last {horizon} periods of {ours['series']:,} series ({input})")
    typer.echo(table.to_markdown(index=False, floatfmt=".3f"))
    by_class = score_series(result.forecast, test, train, season_length).merge(
        result.profile[["unique_id", "route"]], on="unique_id"
    )
    summary = by_class.groupby("route").apply(lambda g: pd.Series(summarise(g)), include_groups=False).reset_index()
    typer.echo("\nby route:")
    typer.echo(summary[["route", "series", "rmsse", "mase", "spl", "bias_pct", "cover80"]].to_markdown(index=False, floatfmt=".3f"))
    if len(result.selection):
        cols = ["segment", "series", "model", "bias_pct_raw", "bias_factor", "bias_systematic"]
        typer.echo("\nselection and bias check per segment (internal backtest):")
        typer.echo(result.selection[[c for c in cols if c in result.selection]].to_markdown(index=False, floatfmt=".3f"))


def _seasonal_naive(train: pd.DataFrame, settings) -> pd.DataFrame:  # noqa: ANN001
    from statsforecast import StatsForecast
    from statsforecast.models import Naive, SeasonalNaive

    model = SeasonalNaive(season_length=settings.season_length) if settings.season_length > 1 else Naive()
    fc = StatsForecast(models=[model], freq=settings.sf_freq, n_jobs=1).forecast(df=train, h=settings.horizon)
    return fc.rename(columns={model.alias: "mean"})[["unique_id", "ds", "mean"]]


if __name__ == "__main__":
    forecast_app()
    sys.exit(0)
