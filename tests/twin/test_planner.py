"""The planner model never decides more than its capacity, and decides in the order the product presents."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from demand_control.twin.planner import choose

DAY = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)  # a Tuesday, midnight


def items(n_a: int, n_b: int, presented_hour: float = -20.0) -> pd.DataFrame:
    rows = [{"exception_key": f"A{i:02d}", "owner_team": "team:a", "presented_at": pd.Timestamp(DAY) + pd.Timedelta(hours=presented_hour)} for i in range(n_a)]
    rows += [{"exception_key": f"B{i:02d}", "owner_team": "team:b", "presented_at": pd.Timestamp(DAY) + pd.Timedelta(hours=presented_hour)} for i in range(n_b)]
    return pd.DataFrame(rows)  # already in presented order


def test_each_team_decides_at_most_its_capacity_in_presented_order() -> None:
    queue = items(7, 2)
    chosen = choose(queue, DAY, capacity=3, response_hours=4.0)
    assert chosen.groupby("owner_team").size().to_dict() == {"team:a": 3, "team:b": 2}
    assert chosen.loc[chosen["owner_team"] == "team:a", "exception_key"].tolist() == ["A00", "A01", "A02"]
    times = chosen.loc[chosen["owner_team"] == "team:a", "decided_at"].tolist()
    assert times == sorted(times) and times[0] == pd.Timestamp(DAY) + pd.Timedelta(hours=9)
    assert all(t <= pd.Timestamp(DAY) + pd.Timedelta(hours=17) for t in chosen["decided_at"])


def test_nothing_is_decided_before_the_response_time() -> None:
    fresh = items(2, 0, presented_hour=14.0)  # presented at 14:00, response 4 h: ready 18:00, after work
    assert choose(fresh, DAY, capacity=5, response_hours=4.0).empty
    morning = items(2, 0, presented_hour=6.0)  # presented at 06:00: ready at 10:00
    chosen = choose(morning, DAY, capacity=5, response_hours=4.0)
    assert chosen["decided_at"].min() == pd.Timestamp(DAY) + pd.Timedelta(hours=10)


def test_a_team_without_capacity_decides_nothing() -> None:
    assert choose(items(3, 3), DAY, capacity=0, response_hours=0.0).empty
