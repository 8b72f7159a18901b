"""Quantities read as a planner writes them, whatever the input column holds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from demand_control.planning.formatting import fmt_day, fmt_qty


def test_fmt_qty_writes_whole_numbers_one_decimal_for_small_fractions_and_question_marks_for_missing() -> None:
    values = pd.Series([1234567.5, 12.4, 9.96, 9.94, 2.5, -0.3, 0.04, 3, np.nan, None, "7", "x", np.inf], index=range(10, 23), name="qty")
    out = fmt_qty(values)
    assert out.tolist() == ["1,234,568", "12", "10", "9.9", "2.5", "-0.3", "0", "3", "?", "?", "7", "?", "inf"]
    assert out.index.equals(values.index) and out.name == "qty" and out.dtype == object
    assert fmt_qty(pd.Series(pd.array([4, None], dtype="Int64"))).tolist() == ["4", "?"]
    assert fmt_qty(pd.Series([], dtype=float)).empty


def test_dates_converted_once_per_distinct_value_equal_the_column_converted_whole() -> None:
    """`per_distinct` (behind `fmt_day` and `as_datetime_column`) gives the same column, index, name and dtype
    as converting every value: Python dates with missing ones (None, NaN), ISO strings, tz-aware timestamps."""
    import datetime as dt

    import numpy as np

    from demand_control.planning.formatting import _fmt_day
    from demand_control.planning.inventory_common import _as_datetime, as_datetime_column

    rng = np.random.default_rng(0)
    days = [dt.date(2026, 11, 1) + dt.timedelta(days=int(i)) for i in rng.integers(0, 60, 300)]
    columns = [
        pd.Series(days, index=np.arange(300) * 3, name="needed_by"),
        pd.Series([None if i % 7 == 0 else d for i, d in enumerate(days)], dtype=object),
        pd.Series([np.nan if i % 5 == 0 else d for i, d in enumerate(days)], dtype=object),
        pd.Series([d.isoformat() for d in days], dtype=object),
        pd.Series([pd.Timestamp(d, tz="UTC") + pd.Timedelta(hours=23) for d in days], dtype=object),
        pd.Series(pd.to_datetime(days)),
    ]
    for column in columns:
        pd.testing.assert_series_equal(as_datetime_column(column), _as_datetime(column))
        pd.testing.assert_series_equal(fmt_day(column), _fmt_day(column))
    assert fmt_day(columns[1]).iloc[0] == "none" and fmt_day(columns[0]).iloc[0] == f"{days[0].day} {days[0]:%b}"
