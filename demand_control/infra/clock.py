"""The one clock every "now" and "today" of the product reads, so that a run, a test or a replay can set it.

Planning time is not the wall clock: a plan is made *as of* a date. The clock answers, in order:
1. a clock set in this process with `use(...)` (a Dagster run's as-of through the `clock` resource, a test),
   the innermost one when blocks nest; it holds for every thread of the process (an in-process gateway
   answers on another thread);
2. `DEMAND_CONTROL_AS_OF` (an ISO date): the wall clock shifted by whole days so that today is that date
   while the time of day keeps running — every process started with it (daemon, run workers, gateway,
   CLI) agrees on the date, and timers, leases and SLA clocks still advance;
3. the wall clock, in UTC.

What must stay on the wall clock does not read this: signature timestamps and their skew checks (the peer
signs with its real clock), timeouts and latency measurements.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

AS_OF_ENV = "DEMAND_CONTROL_AS_OF"
AS_OF_TAG = "demand_control/as_of"  # a Dagster run tag: the run plans as of this date


@dataclass(frozen=True)
class _Setting:
    """A fixed instant (`frozen`) or a whole-day shift of the wall clock (`shift`)."""

    frozen: datetime | None = None
    shift: timedelta = timedelta(0)

    def now(self) -> datetime:
        return self.frozen if self.frozen is not None else datetime.now(UTC) + self.shift


_lock = threading.Lock()
_settings: list[_Setting] = []


def parse_as_of(value: str | date | datetime, field: str = AS_OF_ENV) -> date | datetime:
    """An ISO date (`2026-11-23`) or an instant (`2026-11-23T09:00:00+00:00`, naive means UTC); a clear
    error naming `field` and the value otherwise."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if "T" in text or " " in text:
            instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return instant if instant.tzinfo else instant.replace(tzinfo=UTC)
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{field} must be a date like 2026-11-23 (or an instant like 2026-11-23T09:00:00Z), got {value!r}") from exc


def _setting_for(value: str | date | datetime, field: str = AS_OF_ENV, running: bool = False) -> _Setting:
    parsed = parse_as_of(value, field)
    if isinstance(parsed, datetime) and running:
        return _Setting(shift=parsed.astimezone(UTC) - datetime.now(UTC))
    if isinstance(parsed, datetime):
        return _Setting(frozen=parsed.astimezone(UTC))
    return _Setting(shift=timedelta(days=(parsed - datetime.now(UTC).date()).days))


def _current() -> _Setting | None:
    with _lock:
        if _settings:
            return _settings[-1]
    env = os.environ.get(AS_OF_ENV, "").strip()
    return _setting_for(env) if env else None


def now() -> datetime:
    """The planning clock's current instant, timezone-aware UTC."""
    setting = _current()
    return setting.now() if setting is not None else datetime.now(UTC)


def as_utc(value: Any) -> datetime | None:
    """An aware UTC datetime for a timestamp as the warehouse, pandas or a caller hands it over; None for
    None, NaN and NaT. Naive means UTC: every timestamp we store is UTC, and SQLite gives them back naive."""
    if value is None or value != value:  # NaN and NaT are the values not equal to themselves
        return None
    if not isinstance(value, datetime):
        # numpy datetime64 or text: pandas parses them (imported here, only for values that need it)
        import pandas as pd

        value = pd.Timestamp(value)
    if hasattr(value, "to_pydatetime"):  # a pandas Timestamp: a plain datetime for drivers and arithmetic
        value = value.to_pydatetime()
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def today() -> date:
    """The planning clock's date (UTC)."""
    return now().date()


def to_wall(instant: datetime) -> datetime | None:
    """The wall-clock time of a planning-clock instant, for comparing with what other systems stamped (a
    Slack message's ts); None under a frozen clock, where there is no such time."""
    setting = _current()
    if setting is None:
        return instant
    return None if setting.frozen is not None else instant - setting.shift


def is_set() -> bool:
    """Whether anything other than the wall clock answers."""
    return _current() is not None


@contextmanager
def use(as_of: str | date | datetime | None, field: str = AS_OF_ENV, *, running: bool = False) -> Iterator[None]:
    """Within the block, the process's clock is `as_of`: a date shifts the wall clock to that day (time of
    day running), an instant freezes it there — or, with `running`, starts there and runs with the wall
    clock (for code that waits for time to pass). None leaves the clock as it is."""
    if as_of is None or as_of == "":
        yield
        return
    setting = _setting_for(as_of, field, running)
    with _lock:
        _settings.append(setting)
    try:
        yield
    finally:
        with _lock:
            # Remove this block's own entry (by identity): blocks on other threads may close out of order.
            for index in range(len(_settings) - 1, -1, -1):
                if _settings[index] is setting:
                    del _settings[index]
                    break
