"""Data quality: contract-generated Great Expectations suites, feed validation with quarantine, feed
freshness/reference look-ups, and the asset checks built from them (`defs`). Importing this package does not
import Great Expectations (slow); it is loaded the first time a suite is built."""

import dagster as dg

from demand_control.quality.checks import staged_checks
from demand_control.quality.decision_checks import decision_checks
from demand_control.quality.forecast_checks import forecast_checks
from demand_control.quality.suites import build_suite
from demand_control.quality.validation import (
    QUARANTINE_COLUMNS,
    FeedValidation,
    TableValidation,
    normalise,
    validate_feed,
    validate_table,
)

__all__ = [
    "QUARANTINE_COLUMNS",
    "FeedValidation",
    "TableValidation",
    "build_suite",
    "normalise",
    "validate_feed",
    "validate_table",
]

defs = dg.Definitions(asset_checks=[*staged_checks, *forecast_checks, *decision_checks])
