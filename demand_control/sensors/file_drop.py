"""Re-ingest when a new export lands in the file drop."""


import json

import dagster as dg

from demand_control.schema.contracts import FILE_DROP_OBJECTS
from demand_control.demand_assets.jobs import INGEST_JOB_NAME
from demand_control.resources.sources import FILE_SUFFIXES, FileDropSource


def changed_feeds(source: FileDropSource, seen: dict[str, float]) -> dict[str, float]:
    """Feed files whose modification time differs from the one recorded in the cursor."""
    current: dict[str, float] = {}
    for name in FILE_DROP_OBJECTS:
        for suffix in FILE_SUFFIXES:
            path = source.path / f"{name}{suffix}"
            if path.exists():
                current[path.name] = path.stat().st_mtime
    return {f: m for f, m in current.items() if seen.get(f) != m}


@dg.sensor(
    job_name=INGEST_JOB_NAME,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Starts an ingestion run when files in the file drop change; one run per set of changes. Off by default "
    "(the daily plan ingests once a day): turn it on in the UI (Automation → file_drop_sensor) to ingest as files land.",
)
def file_drop_sensor(context: dg.SensorEvaluationContext, signal_source: FileDropSource) -> dg.SensorResult | dg.SkipReason:
    seen: dict[str, float] = json.loads(context.cursor) if context.cursor else {}
    if not signal_source.path.exists():
        return dg.SkipReason(f"file drop {signal_source.path} does not exist yet")
    changed = changed_feeds(signal_source, seen)
    if not changed:
        return dg.SkipReason(f"no feed in {signal_source.path} changed since the last run")
    seen.update(changed)
    run_key = "file-drop:" + ",".join(f"{f}@{m:.0f}" for f, m in sorted(changed.items()))
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=run_key, tags={"demand_control/changed_feeds": ",".join(sorted(changed))})],
        cursor=json.dumps(seen, sort_keys=True),
    )
