"""The code location's single Definitions object: every folder contributes its own definitions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from demand_control import demand_assets, ops, sensors
from demand_control.quality.checks import staged_checks
from demand_control.resources import resources_from_env


def _with_defaults(resources: Mapping[str, Any]) -> dict[str, Any]:
    """Resources given by a test or the demo, completed with the embedded defaults they did not name (a
    Slack notifier without a token prints and writes the notifications table)."""
    from demand_control.resources.clock import PlanningClock
    from demand_control.resources.mail import mailer_from_env
    from demand_control.resources.slack import SlackNotifier
    from demand_control.resources.erp.write import TrytonErp

    return {"slack_notifier": SlackNotifier(), "erp": TrytonErp(), "clock": PlanningClock(), "mailer": mailer_from_env(), **resources}


def build_definitions(resources: Mapping[str, Any] | None = None) -> dg.Definitions:
    """All definitions, bound to `resources` (tests and the demo) or to the environment's (the default)."""
    return dg.Definitions.merge(
        demand_assets.defs,
        dg.Definitions(asset_checks=staged_checks),
        ops.defs,
        sensors.defs,
        dg.Definitions(resources=_with_defaults(resources) if resources is not None else resources_from_env()),
    )


defs = build_definitions()
