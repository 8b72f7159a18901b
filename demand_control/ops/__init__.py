"""Ops and jobs with side effects (re-plan, notify owners, write back to the ERP, tell customers, escalate,
redact personal data past its retention), one module per job; the logic they run lives in `demand_control.services`."""

import dagster as dg

from demand_control.ops.customer_notices import notify_customers_job
from demand_control.ops.escalation import escalate_overdue_job
from demand_control.ops.notify import notify_owners_job
from demand_control.ops.pending_clicks import decide_pending_clicks_job
from demand_control.ops.replan import replan_job
from demand_control.ops.retention import redact_personal_data_job, redact_personal_data_schedule
from demand_control.ops.write_back import write_back_job

defs = dg.Definitions(
    jobs=[replan_job, notify_owners_job, write_back_job, notify_customers_job, escalate_overdue_job, decide_pending_clicks_job,
          redact_personal_data_job],
    schedules=[redact_personal_data_schedule],
)
