"""The decision scorecard (group `kpis`): the digital twin replays the distributor under a scenario and scores
the control layer's decisions (event-driven and weekly) against Tryton's order-point rule on the same draws.

Thin over `demand_control.twin.simulate`: the asset runs the scenario, writes the scorecard folder and
carries the headline figures as numeric metadata, so the UI plots them run over run. Job `simulate` runs it.
The twin plans in warehouses of its own (one per control arm, under the run's folder): it needs no resource.
"""

from pathlib import Path

import dagster as dg

from demand_control.schema.asset_metadata import TEAM_PLANNING
from demand_control.infra import settings

SIMULATE_JOB_NAME = "simulate"
SCORECARD_KINDS = {"pandas", "python"}
SCORECARD_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("arm", "string", description="control_event, control_weekly or order_point."),
        dg.TableColumn("figure", "string", description="A scorecard key (DOMAIN.md, \"Decision quality\"); tiers and exception types as key.member."),
        dg.TableColumn("value", "float", description="The figure over the simulated window; absent where it has no meaning for the arm."),
    ],
    constraints=dg.TableConstraints(other=["primary key (arm, figure)"]),
)
HEADLINE = ("line_fill_rate", "unit_fill_rate", "avg_inventory_value", "stockout_day_share", "promise_accuracy",
            "late_lines_notified_share", "flagged_ahead_share", "human_touches_per_100_per_week", "sla_breaches", "signal_to_action_hours_p50")


class SimulateConfig(dg.Config):
    scenario: str = ""  # a scenario YAML; empty: the packaged default
    policy: str = ""  # a policy YAML; empty: DEMAND_CONTROL_POLICY, else the packaged default
    out: str = ""  # the scorecard folder; empty: <state home>/twin/<run id>
    arms: list[str] = ["control_event", "control_weekly", "order_point"]
    forecast_every_weeks: int = 1
    jobs: int = 2


@dg.asset(
    name="decision_scorecard",
    group_name="kpis",
    owners=[TEAM_PLANNING],
    kinds=SCORECARD_KINDS,
    description="How good the control layer's decisions are: fill rate, inventory, promises kept, human load and reaction time per arm of a digital-twin replay.",
    metadata={"dagster/column_schema": SCORECARD_SCHEMA},
)
def decision_scorecard(context: dg.AssetExecutionContext, config: SimulateConfig) -> dg.MaterializeResult:
    from demand_control.twin.scenario import ScenarioError, load_scenario
    from demand_control.twin.scorecard import headline
    from demand_control.twin.simulate import simulate

    try:
        scenario = load_scenario(config.scenario or None)
    except ScenarioError as exc:
        raise dg.Failure(description=str(exc)) from None
    out = Path(config.out) if config.out else settings.state_home() / "twin" / context.run_id
    result = simulate(scenario, out, policy_path=config.policy or None, arms=tuple(config.arms), forecast_every_weeks=config.forecast_every_weeks,
                      jobs=config.jobs, progress=lambda arm, week: context.log.debug(f"{arm}: week {week}"), log=context.log.info)
    metadata: dict = {"scenario": scenario.source, "folder": str(out), "seconds": round(result.seconds["total"], 1),
                      "scorecard": dg.MetadataValue.md(result.files["scorecard.md"].read_text())}
    rows = 0
    for arm, card in result.cards.items():
        figures = headline(card)
        rows += len(figures)
        for key in HEADLINE:
            if key in figures:
                metadata[f"{arm}.{key}"] = figures[key]
    metadata["dagster/row_count"] = rows
    context.log.info(f"scored {', '.join(result.cards)} in {result.seconds['total']:.0f} s; folder {out}")
    return dg.MaterializeResult(metadata=metadata)


simulate_job = dg.define_asset_job(
    SIMULATE_JOB_NAME,
    selection=dg.AssetSelection.assets(decision_scorecard),
    description="Replay the distributor under a scenario (config: scenario, policy, out) and score every arm's decisions.",
)

defs = dg.Definitions(assets=[decision_scorecard], jobs=[simulate_job])
