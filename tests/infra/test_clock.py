"""The one planning clock: a run tag, the resource's config, DEMAND_CONTROL_AS_OF, a test's frozen instant."""

import time
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from demand_control.infra import clock
from demand_control.resources.clock import PlanningClock
from tests.conftest import NOW


def test_the_suite_runs_on_a_frozen_clock() -> None:
    assert clock.now() == NOW and clock.today() == NOW.date()


def test_a_date_in_the_environment_shifts_the_wall_clock_by_whole_days(monkeypatch: pytest.MonkeyPatch) -> None:
    with clock.use(None):  # None leaves the session's frozen clock on
        assert clock.now() == NOW
    wall = datetime.now(UTC)
    monkeypatch.setenv(clock.AS_OF_ENV, "2027-02-28")
    with clock.use("2027-02-28"):
        first = clock.now()
        time.sleep(0.01)
        assert first.date() == date(2027, 2, 28) and clock.now() > first, "the time of day keeps running"
        assert abs((first - timedelta(days=(date(2027, 2, 28) - wall.date()).days)) - wall) < timedelta(seconds=5)
        assert abs(clock.to_wall(first) - wall) < timedelta(seconds=5)


def test_the_innermost_setting_wins_and_leaving_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    later = datetime(2028, 2, 29, 12, 0, tzinfo=UTC)
    with clock.use(later):
        assert clock.now() == later and clock.to_wall(later) is None
        with clock.use(later, running=True):
            assert later <= clock.now() < later + timedelta(seconds=5)
        assert clock.now() == later
    assert clock.now() == NOW


def test_a_bad_as_of_names_the_setting_and_the_value() -> None:
    with pytest.raises(ValueError, match=r"DEMAND_CONTROL_AS_OF must be a date like 2026-11-23.*'next tuesday'"):
        clock.parse_as_of("next tuesday")


@dg.op
def _record_as_of(clock: PlanningClock) -> tuple:
    from demand_control.infra import clock as planning_clock

    return clock.today().isoformat(), planning_clock.today().isoformat()


@dg.job(resource_defs={"clock": PlanningClock()})
def _as_of_job() -> None:
    _record_as_of()


def _seen(result: dg.ExecuteInProcessResult) -> tuple[str, str]:
    return result.output_for_node("_record_as_of")


def test_a_run_tag_sets_the_as_of_of_the_run_and_of_what_it_calls() -> None:
    result = _as_of_job.execute_in_process(tags={clock.AS_OF_TAG: "2027-02-28"})
    assert _seen(result) == ("2027-02-28", "2027-02-28")
    assert clock.now() == NOW, "the run's clock ends with the run"


def test_the_resource_config_sets_it_when_there_is_no_tag() -> None:
    result = _as_of_job.execute_in_process(run_config={"resources": {"clock": {"config": {"as_of": "2026-12-06"}}}})
    assert _seen(result) == ("2026-12-06", "2026-12-06")
    untouched = _as_of_job.execute_in_process()
    assert _seen(untouched) == (NOW.date().isoformat(), NOW.date().isoformat())


def test_a_bad_run_tag_fails_the_run_naming_the_tag() -> None:
    result = _as_of_job.execute_in_process(tags={clock.AS_OF_TAG: "2027-13-01"}, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_failure)
    assert "run tag demand_control/as_of" in str(failure.event_specific_data.error) and "2027-13-01" in str(failure.event_specific_data.error)
