"""Quantities read as a planner writes them, whatever the input column holds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from demand_control.planning.formatting import fmt_qty


def test_fmt_qty_writes_whole_numbers_one_decimal_for_small_fractions_and_question_marks_for_missing() -> None:
    values = pd.Series([1234567.5, 12.4, 9.96, 9.94, 2.5, -0.3, 0.04, 3, np.nan, None, "7", "x", np.inf], index=range(10, 23), name="qty")
    out = fmt_qty(values)
    assert out.tolist() == ["1,234,568", "12", "10", "9.9", "2.5", "-0.3", "0", "3", "?", "?", "7", "?", "inf"]
    assert out.index.equals(values.index) and out.name == "qty" and out.dtype == object
    assert fmt_qty(pd.Series(pd.array([4, None], dtype="Int64"))).tolist() == ["4", "?"]
    assert fmt_qty(pd.Series([], dtype=float)).empty
