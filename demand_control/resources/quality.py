"""Limits the quality gates apply, configurable per deployment."""

import dagster as dg
from pydantic import Field


class QualitySettings(dg.ConfigurableResource):
    """Limits the quality gates apply."""

    quarantine_limit: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Largest share of a feed's rows that may be quarantined before the feed blocks downstream.",
    )
