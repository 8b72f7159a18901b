"""The optional model-backed advisor (issue 18): case narratives, supplier follow-up drafts, root causes and
next-best actions from a model, each checked (grounded, in the vocabulary, in the case's scope) and every
proposal decided by the policy. Off unless DEMAND_CONTROL_ADVISOR_MODEL is set; the entry point is
`service.advise_cases`, the configuration `settings.advisor_settings`. Nothing here imports the model library
until an advisor is configured."""
