"""The code location's single Definitions object: each folder contributes its own definitions (assets and
their jobs, checks, the jobs with side effects, sensors); the resources are bound here, once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from demand_control import demand_assets, ops, quality, sensors
from demand_control.resources import resources_from_env


def build_definitions(resources: Mapping[str, Any] | None = None) -> dg.Definitions:
    """All definitions, bound to the environment's resources, with `resources` (a test's or the demo's)
    taking the place of the ones they name."""
    return dg.Definitions.merge(
        demand_assets.defs,
        quality.defs,
        ops.defs,
        sensors.defs,
        dg.Definitions(resources={**resources_from_env(), **(resources or {})}),
    )


defs = build_definitions()
