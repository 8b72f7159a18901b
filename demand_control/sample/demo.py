"""`make demo`: a small distributor generated, ingested and validated end to end, with a report of it all."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable

import dagster as dg
import pandas as pd
from sqlalchemy import func, select

from demand_control.infra import clock, settings
from demand_control.planning.vocabulary import AUTO_APPROVED
from demand_control.quality.feeds import latest_load
from demand_control.resources import FileDropSource, resources_from_env
from demand_control.resources.erp.base import ReplenishOrder
from demand_control.sample import generate_landscape, write_landscape
from demand_control.sample.defects import plant_defects
from demand_control.sample.tryton import (
    TrytonSite,
    database_exists,
    is_serving,
    restore_or_init,
    serve,
    stop,
)
from demand_control.schema import tables
from demand_control.schema.contracts import FILE_DROP_OBJECTS


def run_demo(
    skus: int, locations: int, weeks: int, seed: int, source: str = "tryton", echo: Callable[[str], None] = print
) -> int:
    """Returns the process exit code: 0 when the ingestion run succeeded."""
    from demand_control.definitions import build_definitions
    from demand_control.demand_assets.jobs import INGEST_JOB_NAME

    resources = resources_from_env(deferred=False)
    warehouse = resources["warehouse"]
    today = clock.today()

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
        # The exports are delivered as of the planning date, so a demo run --as-of another day finds them fresh.
        stamp = clock.now().timestamp()
        for path in folder.iterdir():
            os.utime(path, (stamp, stamp))
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
            result = _demo_seed_scenario(defs, instance, quiet, resources, warehouse, today, echo) or result
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
    from demand_control.demand_assets.jobs import FORECAST_JOB_NAME

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
    from demand_control.demand_assets.jobs import DECISION_JOB_NAME

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
    auto = (actions["policy_decision"] == AUTO_APPROVED).sum()
    echo(f"   {len(actions)} recommended actions: {auto} within the autonomy limits (auto-approved), "
         f"{len(actions) - auto} awaiting a planner, buyer or manager")
    ranked = exceptions.assign(_sev=exceptions["severity"].map(SEVERITY_ORDER)).sort_values(["_sev", "money_at_risk"], ascending=[True, False])
    primary = actions[actions["rank"] == 1].set_index("exception_key")
    for _, row in ranked.head(top).iterrows():
        echo(f"   [{row['severity']}] {row['sentence']}")
        echo(f"      owner {row['owner_team']} in {row['owner_channel']}, act by {pd.Timestamp(row['sla_due_at']):%d %b %H:%M} UTC")
        if row["exception_key"] in primary.index:
            act = primary.loc[row["exception_key"]]
            decision = "auto-approved" if act["policy_decision"] == AUTO_APPROVED else f"awaiting {act['approver_role']}"
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


def _demo_seed_scenario(defs, instance, run_config, resources, warehouse, today, echo: Callable[[str], None]):  # noqa: ANN001, ANN202
    """The coordination loop end to end, in process: signed webhooks → inbox → replan → owner told →
    signed Slack approval → outbox → ERP write-back → customer notice → audit chain. None when the landscape
    offers nothing to play it on (the reason is printed)."""
    import secrets as random_secrets

    from starlette.testclient import TestClient

    from demand_control.gateway.app import create_app
    from demand_control.ops.replan import REPLAN_JOB_NAME
    from demand_control.planning.policy import load_policy
    from demand_control.resources.mail import Mailer
    from demand_control.sample import seed_scenario as scenario
    from demand_control.services.auto_approval import auto_approve
    from demand_control.services.audit import verify_chain
    from demand_control.services.notices import notify_customers_for
    from demand_control.services.outbox import drain_outbox

    echo("10. Seed scenario: a demand spike and a supplier delay through the whole loop")
    target = scenario.pick_target(warehouse, today)
    if isinstance(target, scenario.NoTarget):
        echo(f"   nothing to play it on as of {today}: {target.reason}")
        return None
    echo(f"   {target.sku} at {target.location_id}: a spike of {target.spike_qty:,.0f} units (about {target.weekly_forecast:,.0f}/week forecast) "
         f"promised {target.spike_promise:%d %b}, and PO {target.po_id}/{target.po_line_no} due {target.po_due:%d %b} slipping "
         f"{target.delay_days} days, leave order {target.order_id}/{target.order_line_no} short until {target.revised_date:%d %b}")
    webhook_secret = "whsec_" + base64.b64encode(random_secrets.token_bytes(24)).decode()
    slack_secret = random_secrets.token_hex(16)
    app = create_app(warehouse, secrets={scenario.SOURCE: [webhook_secret]}, slack_signing_secret=slack_secret)
    client = TestClient(app)
    tag = f"{today:%Y%m%d}-{random_secrets.token_hex(3)}"
    events = scenario.scenario_events(target, today, tag)
    for event in events:
        body = json.dumps(event["body"])
        answer = client.post(f"/webhooks/{event['source']}", content=body, headers=scenario.sign_webhook(webhook_secret, event["webhook_id"], body))
        echo(f"   webhook {event['body']['type']}: {answer.status_code} {answer.json().get('status')} (inbox {answer.json().get('inbox_id')})")
    first, last = scenario.inbox_range(warehouse, [e["webhook_id"] for e in events])
    config = {**run_config, "ops": {"replan_from_inbox": {"config": {"inbox_from": first, "inbox_to": last}}}}
    result = defs.resolve_job_def(REPLAN_JOB_NAME).execute_in_process(instance=instance, run_config=config, raise_on_error=False)
    echo(f"   replan run {result.run_id[:8]}: {'succeeded' if result.success else 'FAILED'} — re-planned {target.sku} at {target.location_id} only")
    if not result.success:
        return result
    for _, row in scenario.exceptions_of(warehouse, target).iterrows():
        echo(f"   [{row['severity']}] {row['sentence']}")
    told = warehouse.read("slack_messages")
    echo(f"   owners told: {len(told)} exception messages ({'Slack' if resources['slack_notifier'].enabled else 'console and the notifications table: no SLACK_BOT_TOKEN'})")
    scenarios = warehouse.read("allocation_scenarios")
    mine = scenarios[(scenarios["sku"] == target.sku) & (scenarios["location_id"] == target.location_id)]
    for _, row in mine.iterrows():
        echo(f"   allocation {row['scenario']:<18} fill {row['fill_rate']:.0%}, revenue at risk {row['revenue_at_risk']:,.0f}, "
             f"{int(row['customers_affected'])} customers short{'  ← recommended' if row['recommended'] else ''}")

    action = scenario.action_to_approve(warehouse, target)
    policy = load_policy()
    user = scenario.approver_for(policy, action)
    parent = told[told["exception_key"] == action["exception_key"]]
    body, headers = scenario.slack_click(slack_secret, action["action_id"], user, parent["channel"].iloc[0] if len(parent) else None, parent["ts"].iloc[0] if len(parent) else None)
    answer = client.post("/slack/interactions", content=body, headers=headers)
    decision = warehouse.read("action_decisions", where=tables.action_decisions.c.action_id == action["action_id"])
    echo(f"   {user} pressed Approve on {action['action_id']} ({action['expected_impact']}): gateway {answer.status_code}; "
         f"decision {decision['decision'].iloc[0] if len(decision) else 'none'}")
    auto = auto_approve(warehouse.engine, clock.now())
    summary = drain_outbox(warehouse, resources["erp"])
    row = warehouse.read("erp_outbox", where=tables.erp_outbox.c.action_id == action["action_id"])
    echo(f"   write-back: {summary.as_metadata()} (+{len(auto)} auto-approved queued); {action['action_id']} → "
         f"{row['status'].iloc[0] if len(row) else '?'} in {row['erp_model'].iloc[0] if len(row) else '?'} {row['erp_record_ids'].iloc[0] if len(row) else ''}, reconciled {bool(row['reconciled'].iloc[0]) if len(row) else False}")
    notices = notify_customers_for(warehouse, Mailer(), actor="demo", action_ids=[action["action_id"]], log=lambda m: None)
    sent = warehouse.read("customer_notices", where=tables.customer_notices.c.action_id == action["action_id"])
    for _, notice in sent.iterrows():
        echo(f"   customer notice to {notice['email']} ({notice['status']}): {notice['subject']}")
    echo(f"   notices: {notices}")
    report = verify_chain(warehouse.engine)
    echo(f"   audit chain: {'intact' if report.ok else 'BROKEN'} over {report.rows:,} rows ({report.reason})")
    return result


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
