"""`make demo`: a small distributor generated, ingested and validated end to end, with a report of it all."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

import dagster as dg
import pandas as pd
from sqlalchemy import func, select

from demand_control import settings, tables
from demand_control.contracts import FILE_DROP_OBJECTS
from demand_control.landscape import generate_landscape, write_landscape
from demand_control.landscape.defects import plant_defects
from demand_control.quality.feeds import latest_load
from demand_control.resources import resources_from_env


def run_demo(skus: int, locations: int, weeks: int, seed: int, echo: Callable[[str], None] = print) -> int:
    """Returns the process exit code: 0 when the ingestion run succeeded."""
    from demand_control.definitions import defs
    from demand_control.demand_assets import INGEST_JOB_NAME

    resources = resources_from_env(deferred=False)
    warehouse = resources["warehouse"]
    folder = resources["signal_source"].path
    today = datetime.now(UTC).date()

    echo(f"1. Sample distributor: {skus} SKUs x {locations} DCs, {weeks} weeks of history, seed {seed}, as of {today}")
    frames = generate_landscape(skus=skus, locations=locations, weeks=weeks, seed=seed, as_of=today)
    write_landscape(frames, folder, "parquet")
    planted = plant_defects(folder, seed=seed)
    echo(f"   file drop: {folder}")
    for line in planted:
        echo(f"   planted defect: {line}")

    echo(f"2. Ingesting into the warehouse at {warehouse.url.split('@')[-1]}")
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    job = defs.resolve_job_def(INGEST_JOB_NAME)
    # Step-by-step logs stay in the run's event log (the UI shows them); the console gets the summary.
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    result = job.execute_in_process(instance=instance, run_config=quiet, raise_on_error=False)
    echo(f"   Dagster run {result.run_id}: {'succeeded' if result.success else 'FAILED'}")

    echo("3. Tables")
    echo(f"   {'object':<22}{'delivered':>10}{'staged':>10}{'quarantined':>13}  status")
    for name in FILE_DROP_OBJECTS:
        load = latest_load(warehouse, name)
        if load is None:
            echo(f"   {name:<22}{'-':>10}{'-':>10}{'-':>13}  not extracted")
            continue
        echo(
            f"   {name:<22}{load.rows_extracted:>10,}{warehouse.count(name):>10,}"
            f"{load.rows_quarantined or 0:>13,}  {load.status}"
        )

    echo("4. Checks")
    evaluations = result.get_asset_check_evaluations()
    failed = [e for e in evaluations if not e.passed]
    echo(f"   {len(evaluations) - len(failed)} of {len(evaluations)} checks passed")
    for evaluation in failed:
        echo(f"   FAILED {evaluation.asset_key.to_user_string()}:{evaluation.check_name} {evaluation.description or ''}")

    echo("5. Quarantine (latest load of each feed)")
    echo(quarantine_summary(warehouse))
    echo(
        "Next: `make dev` opens the Dagster UI on this run; analysts can query the tables at "
        f"{settings.state_home() / 'warehouse.sqlite' if warehouse.dialect == 'sqlite' else 'the configured database'}."
    )
    return 0 if result.success else 1


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
