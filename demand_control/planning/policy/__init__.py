"""The routing and policy engine: who owns an exception, when it is due, how severe it is, what may be
auto-approved and who approves the rest, read from a validated YAML policy file instead of code, so that a
partner or a new business unit adopts the workflow by editing a template rather than forking it.

The packaged default is `demand_control/planning/policy/default_policy.yaml`; `DEMAND_CONTROL_POLICY` names a
file that replaces it. A bad file fails at load with one `PolicyError` naming the file, the field and the
value. The models are in `schema`, reading a file in `loading`, the functions over frames in `rules`.
"""

from demand_control.planning.policy.loading import POLICY_ENV, load_policy, parse_policy
from demand_control.planning.policy.rules import (
    assign_owners,
    decide_advisor_autonomy,
    decide_autonomy,
    escalation_steps,
    approver_role_for,
    may_approve,
    severity_from,
    sla_due_at,
)
from demand_control.planning.policy.schema import Policy, PolicyError

__all__ = [
    "POLICY_ENV",
    "Policy",
    "PolicyError",
    "assign_owners",
    "decide_advisor_autonomy",
    "decide_autonomy",
    "escalation_steps",
    "load_policy",
    "approver_role_for",
    "may_approve",
    "parse_policy",
    "severity_from",
    "sla_due_at",
]
