"""Policy templates shipped with the package: the default routing, SLA, escalation and autonomy policy."""
