"""The as-of of a run: every asset and op that reads "now" or "today" takes this resource, so a run plans as
of the date its tag or config names, and otherwise as of the process clock (`DEMAND_CONTROL_AS_OF`, else
the wall clock)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime

import dagster as dg
from pydantic import Field

from demand_control.infra import clock


class PlanningClock(dg.ConfigurableResource):
    """When a run plans as of: the run tag `demand_control/as_of`, else `as_of`, else the process clock."""

    as_of: str = Field(
        default="",
        description="ISO date (or instant) the run plans as of; empty: the run tag demand_control/as_of, else "
        "DEMAND_CONTROL_AS_OF, else today (UTC).",
    )

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[PlanningClock]:
        run = context.dagster_run
        tagged = run.tags.get(clock.AS_OF_TAG) if run is not None else None
        field = f"run tag {clock.AS_OF_TAG}" if tagged else "resources.clock.config.as_of"
        try:
            setting = tagged or self.as_of or None
            if setting is not None:
                clock.parse_as_of(setting, field)
        except ValueError as exc:
            raise dg.Failure(description=str(exc)) from exc
        # The whole step (and the services it calls) reads the one clock, set for the step's duration.
        with clock.use(setting, field):
            yield self

    def now(self) -> datetime:
        return clock.now()

    def today(self) -> date:
        return clock.today()
