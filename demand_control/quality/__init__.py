"""Data quality: contract-generated Great Expectations suites, feed validation with quarantine, and feed
freshness/reference look-ups. Importing this package does not import Great Expectations (slow); it is
loaded the first time a suite is built."""

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
