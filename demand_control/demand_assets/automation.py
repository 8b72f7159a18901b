"""The plan runs itself: once a day every stage of the flow, signals → staged → forecasts → inventory →
exceptions → actions → kpis, is requested by Declarative Automation, and the ERP feeds carry freshness
policies (how old the staged copy of each feed may be before it is overdue).

Why `AutomationCondition.on_cron` on every asset of the chain rather than a schedule of one big job: the
condition requests an asset once per cron tick *after all its upstream assets have updated since the
tick*, so one tick requests the whole graph in dependency order, an asset whose upstream failed its
blocking check waits instead of planning on old facts, and the UI's Automation tab says for every asset
why it was or was not requested. `eager()` would also re-run the forecast whenever the ERP sync sensor
refreshed an order table (several times an hour); the event path re-plans those SKU-locations already.

The cadence and freshness live here, in one place, and are laid onto the asset definitions with
`dagster.map_asset_specs`, so the asset modules stay about what each table means.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import dagster as dg

from demand_control.demand_assets.replan_log import REPLAN_LOG
from demand_control.schema.contracts import CONTRACTS, FILE_DROP_OBJECTS

# 05:00 UTC: after the ERP's nightly close and before planners start in Europe. The first evaluation after
# the daemon starts never fires (Dagster waits for a tick to pass), so starting `make dev` launches nothing.
PLAN_CRON = "0 5 * * *"
PLAN_TIMEZONE = "UTC"
DAILY_PLAN_SENSOR_NAME = "daily_plan"
PLAN_GROUPS = ("signals", "staged", "forecasts", "inventory", "exceptions", "actions", "kpis")
# The decision scorecard replays a year of the digital twin: job `simulate` runs it, not the daily plan; the
# replan log is written by the event path only.
NOT_DAILY = ("decision_scorecard", REPLAN_LOG)
# A staged feed older than a day and a bit means a daily plan was missed: warn; past the contract's
# freshness window (the source's own cadence) the feed is overdue.
MISSED_DAILY_PLAN = timedelta(hours=26)

DAILY_PLAN_SELECTION = dg.AssetSelection.groups(*PLAN_GROUPS) - dg.AssetSelection.assets(*NOT_DAILY)


def daily_plan_condition(across_partitionings: bool = False, same_partitioning: Sequence[dg.AssetKey] = ()) -> dg.AutomationCondition:
    """Once per tick, after every upstream asset has updated since the tick. `across_partitionings`: the asset
    and one of its upstream assets are partitioned differently (the region-partitioned forecast and decision
    assets below and above the whole-panel ones), so they can never share a run; such an asset waits until
    that upstream has actually updated instead of counting on what the same evaluation will request
    (`on_cron`'s `will_be_requested`), or the two runs would start together and race. Its upstream assets
    partitioned like it (`same_partitioning`: a region's forecast above its policy) do share its region's
    run, so for them what the evaluation will request counts, as in `on_cron`: one region's run goes from its
    forecast to its projection in one wave."""
    if not across_partitionings:
        return dg.AutomationCondition.on_cron(PLAN_CRON, PLAN_TIMEZONE)
    tick = dg.AutomationCondition.cron_tick_passed(PLAN_CRON, PLAN_TIMEZONE)
    updated = dg.AutomationCondition.newly_updated().since(tick)
    upstream_done = dg.AutomationCondition.all_deps_match(updated)
    if same_partitioning:
        alike = dg.AssetSelection.assets(*same_partitioning)
        upstream_done = dg.AutomationCondition.all_deps_match(updated).ignore(alike) & dg.AutomationCondition.all_deps_match(
            updated | dg.AutomationCondition.will_be_requested()
        ).allow(alike)
    return (
        dg.AutomationCondition.in_latest_time_window() & tick.since_last_handled() & upstream_done
    ).with_label(f"on_cron({PLAN_CRON}, {PLAN_TIMEZONE}) after upstream runs")


def feed_freshness_policy(object_name: str) -> dg.FreshnessPolicy:
    """The staged feed is overdue once older than its contract's freshness window; it warns a day after a
    missed daily plan when the window is longer than that."""
    window = timedelta(hours=CONTRACTS[object_name].freshness_hours)
    warn = MISSED_DAILY_PLAN if window > MISSED_DAILY_PLAN else None
    return dg.FreshnessPolicy.time_window(fail_window=window, warn_window=warn)


def automated(spec: dg.AssetSpec, across_partitionings: bool = False, same_partitioning: Sequence[dg.AssetKey] = ()) -> dg.AssetSpec:
    """The spec with the daily plan's condition when it is in the chain, and a freshness policy when it is a
    staged ERP feed."""
    name = spec.key.to_user_string()
    if spec.group_name in PLAN_GROUPS and name not in NOT_DAILY:
        spec = spec.replace_attributes(automation_condition=daily_plan_condition(across_partitionings, same_partitioning))
    if spec.group_name == "staged" and name in FILE_DROP_OBJECTS:
        spec = spec.replace_attributes(freshness_policy=feed_freshness_policy(name))
    return spec


def automate(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """`assets` with the daily plan's condition on every asset of the chain and a freshness policy on every
    staged ERP feed."""
    partitioning = {key: a.partitions_def for a in assets for key in a.keys}

    def lay_on(spec: dg.AssetSpec) -> dg.AssetSpec:
        own = partitioning.get(spec.key)
        across = any(dep.asset_key in partitioning and partitioning[dep.asset_key] != own for dep in spec.deps)
        alike = sorted(dep.asset_key for dep in spec.deps if own is not None and partitioning.get(dep.asset_key) == own)
        return automated(spec, across, alike)

    return list(dg.map_asset_specs(lay_on, assets))


daily_plan_sensor = dg.AutomationConditionSensorDefinition(
    DAILY_PLAN_SENSOR_NAME,
    target=DAILY_PLAN_SELECTION,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description=(
        f"The daily plan (on by default): at {PLAN_CRON} ({PLAN_TIMEZONE}) requests every asset of signals → staged → forecasts → "
        "inventory → exceptions → actions → kpis, each once its upstream assets have updated since the tick. Stop it in the UI's "
        "Automation tab to plan by hand."
    ),
)
