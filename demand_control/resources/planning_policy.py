"""The routing and policy file as a resource: ownership, SLA, escalation, autonomy, roles and the exception
thresholds, validated when a run loads it (an invalid file fails the run naming the file, field and value)."""

import dagster as dg
from pydantic import Field

from demand_control.planning.policy import Policy, load_policy


class PlanningPolicy(dg.ConfigurableResource):
    """Which policy file the exception and action assets apply."""

    # Empty by default so that DEMAND_CONTROL_POLICY is read when a run loads the policy, not at import.
    path: str = Field(default="", description="Policy YAML; empty: DEMAND_CONTROL_POLICY, else the packaged default.")

    def load(self) -> Policy:
        return load_policy(self.path or None)
