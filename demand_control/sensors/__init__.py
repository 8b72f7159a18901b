"""Sensors: read external state by cursor and request runs keyed by what changed; no side effects here."""

import dagster as dg

from demand_control.ops.replan import replan_job
from demand_control.ops.write_back import write_back_job
from demand_control.sensors.erp_changes import erp_change_sensor, erp_sync_replan
from demand_control.sensors.file_drop import file_drop_sensor
from demand_control.sensors.inbox import inbox_sensor
from demand_control.sensors.notify_after_planning import notify_after_planning
from demand_control.sensors.outbox import outbox_sensor
from demand_control.sensors.run_failure import run_failure_notice
from demand_control.sensors.sla import decisions_out_defs

defs = dg.Definitions(sensors=[file_drop_sensor, inbox_sensor, run_failure_notice], jobs=[replan_job])
defs = dg.Definitions.merge(defs, dg.Definitions(sensors=[erp_change_sensor, erp_sync_replan, notify_after_planning]))
defs = dg.Definitions.merge(defs, decisions_out_defs)
defs = dg.Definitions.merge(defs, dg.Definitions(sensors=[outbox_sensor], jobs=[write_back_job]))
