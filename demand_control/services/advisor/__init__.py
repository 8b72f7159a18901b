"""The optional model-backed advisor (issue 18): case narratives, supplier follow-up drafts, root causes and
next-best actions from a model, each checked (grounded, in the vocabulary, in the case's scope) and every
proposal decided by the policy. Off unless DEMAND_CONTROL_ADVISOR_MODEL is set; see `service.advise_cases`."""

from demand_control.services.advisor.service import AdvisorSummary, advise_cases
from demand_control.services.advisor.settings import AdvisorSettings, advisor_settings

__all__ = ["AdvisorSettings", "AdvisorSummary", "advise_cases", "advisor_settings"]
