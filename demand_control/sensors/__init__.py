"""Sensors: read external state by cursor and request runs keyed by what changed; no side effects here."""

import dagster as dg

from demand_control.sensors.customer_notices import customer_notice_sensor
from demand_control.sensors.erp_changes import erp_change_sensor
from demand_control.sensors.erp_sync_replan import erp_sync_replan
from demand_control.sensors.file_drop import file_drop_sensor
from demand_control.sensors.inbox import inbox_sensor
from demand_control.sensors.notify_after_planning import notify_after_planning
from demand_control.sensors.outbox import outbox_sensor
from demand_control.sensors.pending_clicks import pending_clicks_sensor
from demand_control.sensors.run_failure import run_failure_notice
from demand_control.sensors.sla import sla_escalation_sensor

defs = dg.Definitions(sensors=[
    file_drop_sensor, inbox_sensor, run_failure_notice, erp_change_sensor, erp_sync_replan, notify_after_planning,
    customer_notice_sensor, sla_escalation_sensor, outbox_sensor,
    pending_clicks_sensor,
])
