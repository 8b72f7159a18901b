"""A small circuit breaker for calls to a system that can be down (the ERP): after a run of consecutive
transport failures it opens for a cool-down and refuses calls, then lets exactly one probe through
(half-open) and closes again when the probe succeeds.

Hand-written because it is small and the well-kept libraries (pybreaker, circuitbreaker) are not
dependencies of this project; the state machine is the classic one (Nygard, *Release It!*). Thread-safe, with
an injectable clock so its tests need no sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class CircuitSnapshot:
    state: CircuitState
    consecutive_failures: int
    opened_at: float | None  # clock time the circuit last opened
    reopens_at: float | None  # clock time a probe will be allowed (None when closed)
    times_opened: int


class CircuitBreaker:
    """`allow()` before each call; then `record_success()` or `record_failure()` for calls that were made.

    Closed: every call allowed; `failure_threshold` consecutive failures open the circuit. Open: calls refused
    until `cooldown_seconds` have passed, then one probe is allowed (half-open) and every other call is refused
    until the probe reports. A successful probe closes the circuit; a failed one opens it for another
    cool-down. Failures that are not the remote system's fault (a business error) should not be recorded:
    they say nothing about whether it is up.
    """

    def __init__(
        self, failure_threshold: int = 3, cooldown_seconds: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, got {failure_threshold}")
        if cooldown_seconds < 0:
            raise ValueError(f"cooldown_seconds must not be negative, got {cooldown_seconds}")
        self.failure_threshold = failure_threshold
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_out = False
        self._times_opened = 0

    @property
    def state(self) -> CircuitState:
        with self._lock:
            return self._current_state()

    def _current_state(self) -> CircuitState:
        # An open circuit whose cool-down has passed is ready for a probe: report it as half-open.
        if self._state is CircuitState.OPEN and self._clock() >= (self._opened_at or 0.0) + self.cooldown_seconds:
            return CircuitState.HALF_OPEN
        return self._state

    def allow(self) -> bool:
        """May a call be made now? In half-open, True exactly once until that probe reports."""
        with self._lock:
            state = self._current_state()
            if state is CircuitState.CLOSED:
                return True
            if state is CircuitState.OPEN or self._probe_out:
                return False
            self._state = CircuitState.HALF_OPEN
            self._probe_out = True
            return True

    def record_success(self) -> None:
        with self._lock:
            self._state = CircuitState.CLOSED
            self._failures = 0
            self._opened_at = None
            self._probe_out = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._state is CircuitState.HALF_OPEN or self._failures >= self.failure_threshold:
                self._open()

    def release_probe(self) -> None:
        """The probe allowed by `allow()` was not made after all (nothing to call): let another through."""
        with self._lock:
            self._probe_out = False

    def _open(self) -> None:
        self._state = CircuitState.OPEN
        self._opened_at = self._clock()
        self._probe_out = False
        self._times_opened += 1

    def seconds_until_probe(self) -> float:
        """0 when closed or ready for a probe; otherwise how long the cool-down still runs."""
        with self._lock:
            if self._current_state() is not CircuitState.OPEN:
                return 0.0
            return max(0.0, (self._opened_at or 0.0) + self.cooldown_seconds - self._clock())

    def snapshot(self) -> CircuitSnapshot:
        with self._lock:
            state = self._current_state()
            reopens = None if self._opened_at is None else self._opened_at + self.cooldown_seconds
            return CircuitSnapshot(state, self._failures, self._opened_at, reopens, self._times_opened)


_BREAKERS: dict[str, CircuitBreaker] = {}
_BREAKERS_LOCK = threading.Lock()


def breaker_for(name: str, failure_threshold: int, cooldown_seconds: float) -> CircuitBreaker:
    """The process's breaker for one remote system (by name): consecutive runs in a warm worker share it."""
    with _BREAKERS_LOCK:
        breaker = _BREAKERS.get(name)
        if breaker is None or (breaker.failure_threshold, breaker.cooldown_seconds) != (failure_threshold, cooldown_seconds):
            breaker = _BREAKERS[name] = CircuitBreaker(failure_threshold, cooldown_seconds)
        return breaker
