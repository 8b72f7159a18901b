"""`make demo`: a small distributor generated, ingested and validated end to end, with a report of it all."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd
from sqlalchemy import func, select

from demand_control import settings, tables
from demand_control.contracts import FILE_DROP_OBJECTS
from demand_control.landscape import generate_landscape, write_landscape
from demand_control.landscape.defects import plant_defects
from demand_control.quality.feeds import latest_load
from demand_control.landscape.tryton_setup import TrytonSite, database_exists, is_serving, restore_or_init, serve, stop
from demand_control.resources import FileDropSource, resources_from_env
from demand_control.resources.erp import ReplenishOrder


def run_demo(
    skus: int, locations: int, weeks: int, seed: int, source: str = "tryton", echo: Callable[[str], None] = print
) -> int:
    """Returns the process exit code: 0 when the ingestion run succeeded."""
    from demand_control.definitions import build_definitions
    from demand_control.demand_assets import INGEST_JOB_NAME

    resources = resources_from_env(deferred=False)
    warehouse = resources["warehouse"]
    today = datetime.now(UTC).date()

    echo(f"1. Sample distributor: {skus} SKUs x {locations} DCs, {weeks} weeks of history, seed {seed}, as of {today}")
    frames = generate_landscape(skus=skus, locations=locations, weeks=weeks, seed=seed, as_of=today)
    server = None
    if source == "tryton":
        erp = resources["erp"]
        server = _ensure_tryton(frames, cache_key=f"s{skus}-l{locations}-w{weeks}-seed{seed}-{today}", echo=echo)
        resources["signal_source"] = erp
    else:
        folder = FileDropSource(folder=os.environ.get(settings.SOURCE_FOLDER_ENV, "")).path
        write_landscape(frames, folder, "parquet")
        echo(f"   file drop: {folder}")
        for line in plant_defects(folder, seed=seed):
            echo(f"   planted defect: {line}")
        resources["signal_source"] = FileDropSource(folder=str(folder))

    try:
        echo(f"2. Ingesting from {resources['signal_source'].describe()} into the warehouse at {_safe(warehouse.url)}")
        instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
        defs = build_definitions(resources)
        job = defs.resolve_job_def(INGEST_JOB_NAME)
        # Step-by-step logs stay in the run's event log (the UI shows them); the console gets the summary.
        quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        result = job.execute_in_process(instance=instance, run_config=quiet, raise_on_error=False)
        echo(f"   Dagster run {result.run_id}: {'succeeded' if result.success else 'FAILED'}")
        _report_tables(warehouse, echo)
        _report_checks(result, echo)
        echo("5. Quarantine (latest load of each feed)")
        echo(quarantine_summary(warehouse))
        if result.success:
            result = _demo_forecast(defs, instance, quiet, warehouse, echo)
        if result.success:
            result = _demo_inventory(defs, instance, quiet, warehouse, echo)
        if source == "tryton" and result.success:
            _demo_write_back(resources["erp"], warehouse, today, echo)
    finally:
        if server is not None:
            stop(server)
            echo("   (stopped the Tryton server the demo started; `demand-control erp serve` runs it again)")
    echo(
        "Next: `make dev` opens the Dagster UI on this run; analysts can query the tables at "
        f"{settings.state_home() / 'warehouse.sqlite' if warehouse.dialect == 'sqlite' else 'the configured database'}."
    )
    return 0 if result.success else 1


def _ensure_tryton(frames, cache_key: str, echo: Callable[[str], None]):  # noqa: ANN001, ANN202
    """Initialise the local Tryton when it is absent and serve it when it is down; returns the server process
    the demo started (None when one was already running)."""
    site = TrytonSite()
    if database_exists(site):
        echo(f"   Tryton database {site.database!r} exists ({site.sqlite_path if site.backend == 'sqlite' else site.backend}); using it")
    else:
        report = restore_or_init(site, frames, cache_key)
        how = "restored from the cached seeded copy" if report.restored else (
            f"created and seeded in {report.create_seconds + report.seed_seconds:.0f} s"
        )
        echo(f"   Tryton database {site.database!r} {how}")
    if is_serving(site):
        echo(f"   Tryton already serving at {site.rpc_url}")
        return None
    proc = serve(site)
    echo(f"   Tryton serving at {site.rpc_url}")
    return proc


def _report_tables(warehouse, echo: Callable[[str], None]) -> None:  # noqa: ANN001
    echo("3. Tables")
    echo(f"   {'object':<22}{'mode':>12}{'delivered':>10}{'staged':>10}{'quarantined':>13}  status")
    for name in FILE_DROP_OBJECTS:
        load = latest_load(warehouse, name)
        if load is None:
            echo(f"   {name:<22}{'-':>12}{'-':>10}{'-':>10}{'-':>13}  not extracted")
            continue
        echo(
            f"   {name:<22}{load.mode:>12}{load.rows_extracted:>10,}{warehouse.count(name):>10,}"
            f"{load.rows_quarantined or 0:>13,}  {load.status}"
        )


def _report_checks(result, echo: Callable[[str], None]) -> None:  # noqa: ANN001
    echo("4. Checks")
    evaluations = result.get_asset_check_evaluations()
    failed = [e for e in evaluations if not e.passed]
    echo(f"   {len(evaluations) - len(failed)} of {len(evaluations)} checks passed")
    for evaluation in failed:
        echo(f"   FAILED {evaluation.asset_key.to_user_string()}:{evaluation.check_name} {evaluation.description or ''}")


def _demo_forecast(defs, instance, run_config, warehouse, echo: Callable[[str], None]):  # noqa: ANN001, ANN202
    """Run the forecast job on the staged history and summarise its backtest by demand class."""
    from demand_control.demand_assets import FORECAST_JOB_NAME

    job = defs.resolve_job_def(FORECAST_JOB_NAME)
    result = job.execute_in_process(instance=instance, run_config=run_config, raise_on_error=False)
    echo(f"6. Forecast: Dagster run {result.run_id}: {'succeeded' if result.success else 'FAILED'}; "
         f"{warehouse.count('demand_forecast'):,} forecast rows")
    accuracy = warehouse.read("forecast_accuracy")
    summary = accuracy[accuracy["scope"] != "series"][
        ["subject", "series", "rmsse", "benchmark_rmsse", "bias_pct", "cover80"]
    ].rename(columns={"subject": "class", "benchmark_rmsse": "seasonal_naive_rmsse"})
    echo("   backtest by demand class (RMSSE of ours vs seasonal naive, bias %, 80% interval coverage)")
    echo("\n".join("   " + line for line in summary.round(3).to_string(index=False).splitlines()))
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed:
            echo(f"   {'WARN' if evaluation.severity.value == 'WARN' else 'FAILED'} "
                 f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name} {(evaluation.description or '')[:160]}")
    return result


def _demo_inventory(defs, instance, run_config, warehouse, echo: Callable[[str], None]):  # noqa: ANN001, ANN202
    """Plan inventory, raise the exceptions, recommend actions; print the ones a planner would open first."""
    from demand_control.demand_assets import DECISION_JOB_NAME

    job = defs.resolve_job_def(DECISION_JOB_NAME)
    result = job.execute_in_process(instance=instance, run_config=run_config, raise_on_error=False)
    projection = warehouse.read("projected_inventory")
    policy = warehouse.read("inventory_policy")
    short = projection[projection["stockout"]].groupby(["sku", "location_id"])["period_start"].min()
    echo(f"7. Inventory: Dagster run {result.run_id}: {'succeeded' if result.success else 'FAILED'}; "
         f"policy for {len(policy):,} SKU-locations "
         f"({(policy['method'] == 'lead_time_quantile').sum()} on the lead-time quantile method, "
         f"{(policy['lead_time_observations'] > 0).sum()} with lead times updated from supplier confirmations), "
         f"{len(short)} would stock out within the horizon if nothing more were ordered")
    if result.success:
        _report_exceptions(warehouse, echo)
    return result


SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def _report_exceptions(warehouse, echo: Callable[[str], None], top: int = 5) -> None:  # noqa: ANN001
    exceptions = warehouse.read("planning_exceptions")
    actions = warehouse.read("recommended_actions")
    counts = exceptions.groupby("exception_type").size().sort_values(ascending=False)
    echo(f"8. Exceptions: {len(exceptions)} open, {exceptions['money_at_risk'].sum():,.0f} at risk — "
         + ", ".join(f"{n} {t}" for t, n in counts.items()))
    auto = (actions["policy_decision"] == "auto_approved").sum()
    echo(f"   {len(actions)} recommended actions: {auto} within the autonomy limits (auto-approved), "
         f"{len(actions) - auto} awaiting a planner, buyer or manager")
    ranked = exceptions.assign(_sev=exceptions["severity"].map(SEVERITY_ORDER)).sort_values(["_sev", "money_at_risk"], ascending=[True, False])
    primary = actions[actions["rank"] == 1].set_index("exception_key")
    for _, row in ranked.head(top).iterrows():
        echo(f"   [{row['severity']}] {row['sentence']}")
        echo(f"      owner {row['owner_team']} in {row['owner_channel']}, act by {pd.Timestamp(row['sla_due_at']):%d %b %H:%M} UTC")
        if row["exception_key"] in primary.index:
            act = primary.loc[row["exception_key"]]
            decision = "auto-approved" if act["policy_decision"] == "auto_approved" else f"awaiting {act['approver_role']}"
            echo(f"      → {act['action_type']}: {act['expected_impact']} (confidence {act['confidence']:.2f}; {decision})")


def _demo_write_back(erp, warehouse, today, echo: Callable[[str], None]) -> None:  # noqa: ANN001
    """Write the most valuable recommended replenishment back to Tryton, twice: the second time must find
    the first (the action id is the idempotency key)."""
    actions = warehouse.read("recommended_actions")
    replenish = actions[(actions["action_type"] == "replenish") & (actions["quantity"] > 0)].sort_values(["value", "action_id"], ascending=[False, True])
    if replenish.empty:
        echo("9. Write-back: no replenishment recommended")
        return
    pick = replenish.iloc[0]
    needed_by = pick["needed_by"] if pd.notna(pick["needed_by"]) else today
    action = ReplenishOrder(
        action_id=pick["action_id"], sku=pick["sku"], location_id=pick["location_id"], quantity=float(pick["quantity"]),
        supplier_id=pick["supplier_id"], needed_by=needed_by,
    )
    first = erp.apply(action)
    again = erp.apply(action)
    echo(f"9. Write-back to Tryton: {pick['action_id']} — {pick['expected_impact']} ({pick['policy_decision'].replace('_', ' ')})")
    echo(f"   {first.model} {list(first.record_ids)} {'created' if first.created else 'already there from an earlier run'}; "
         f"reconciled: {'yes' if first.reconciled else '; '.join(map(str, first.differences))}")
    echo(f"   applied again with the same action id: {'created a duplicate!' if again.created else 'nothing new, found ' + str(list(again.record_ids))}")


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def quarantine_summary(warehouse) -> str:  # noqa: ANN001
    q, f = tables.quarantine, tables.feed_load
    latest = select(f.c.object, func.max(f.c.load_id).label("load_id")).group_by(f.c.object).subquery()
    stmt = (
        select(q.c.object, q.c.rule, q.c.column, func.count().label("rows"), func.min(q.c.offending_value).label("example"))
        .join(latest, (latest.c.object == q.c.object) & (latest.c.load_id == q.c.load_id))
        .group_by(q.c.object, q.c.rule, q.c.column)
        .order_by(q.c.object, q.c.rule)
    )
    with warehouse.engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(stmt).fetchall())
    if frame.empty:
        return "   nothing quarantined"
    return "\n".join("   " + line for line in frame.to_string(index=False).splitlines())
