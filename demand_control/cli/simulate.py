"""`demand-control simulate`: the digital twin on a scenario file, with a progress bar by simulated week.

    demand-control simulate --scenario FILE [--policy FILE] --out DIR

DIR gets scorecard.json (per arm), scorecard.md, the plots and the draws (demand.parquet, supply.parquet,
supply_draws.parquet). Without --scenario the packaged default scenario runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ARMS_HELP = "Arms to run, comma-separated: control_event, control_weekly, order_point."


def simulate(
    out: Annotated[Path, typer.Option("--out", help="Folder for the scorecard, plots and draws.")],
    scenario: Annotated[Path | None, typer.Option("--scenario", help="Scenario YAML (default: the packaged default.yaml).")] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="Policy YAML the control arms decide under (default: DEMAND_CONTROL_POLICY, else the packaged one).")] = None,
    arms: Annotated[str, typer.Option("--arms", help=ARMS_HELP)] = "control_event,control_weekly,order_point",
    forecast_every: Annotated[int, typer.Option("--forecast-every", min=1, help="Refit the demand forecast every N simulated weeks.")] = 1,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Processes for the control arms (one each).")] = 2,
) -> None:
    """Replay the distributor under a scenario and score every arm's decisions on the same draws."""
    from demand_control.cli.errors import one_line
    from demand_control.planning.policy import PolicyError, load_policy
    from demand_control.twin.run import ARMS
    from demand_control.twin.scenario import ScenarioError, load_scenario
    from demand_control.twin.simulate import simulate as run

    chosen = tuple(a.strip() for a in arms.split(",") if a.strip())
    unknown = [a for a in chosen if a not in ARMS]
    if unknown or not chosen:
        raise typer.BadParameter(f"--arms: unknown {unknown or 'none given'}; choose from {', '.join(ARMS)}")
    try:
        sc = load_scenario(scenario)
        load_policy(policy)  # a broken policy is reported now, not after the first simulated weeks
    except (ScenarioError, PolicyError) as exc:
        typer.echo(f"error: {one_line(str(exc))}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"scenario {sc.source}: {sc.skus} SKUs x {sc.locations} DCs, {sc.weeks} weeks from {sc.as_of}, seed {sc.seed}, "
               f"{len(sc.disruptions)} disruptions; arms {', '.join(chosen)}")
    done: dict[str, int] = {}
    with typer.progressbar(length=sc.weeks * len(chosen), label="simulated weeks") as bar:
        def progress(arm: str, week: int) -> None:
            bar.update(week - done.get(arm, 0))
            done[arm] = week

        try:
            result = run(sc, out, policy_path=str(policy) if policy else None, arms=chosen, forecast_every_weeks=forecast_every,
                         jobs=jobs, progress=progress, log=lambda m: None)
        except (ScenarioError, PolicyError) as exc:
            typer.echo(f"\nerror: {one_line(str(exc))}", err=True)
            raise typer.Exit(2) from None
    typer.echo(result.files["scorecard.md"].read_text())
    typer.echo(f"wrote {out}: " + ", ".join(sorted(p.name for p in result.files.values())))
    typer.echo("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in result.seconds.items()))
