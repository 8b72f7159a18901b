"""How planning numbers read in a sentence: quantities, money and days as a planner writes them, and rows as
JSON objects for the trigger values and affected orders a table keeps."""

from __future__ import annotations

import numpy as np
import pandas as pd

from demand_control.planning.inventory_common import per_distinct


def fmt_qty(values: pd.Series) -> pd.Series:
    """Quantities as a planner writes them: whole numbers with thousands separators, one decimal below 10
    when fractional."""
    v = pd.to_numeric(values, errors="coerce").astype(float)
    if v.empty:
        return v.map("{:,.0f}".format)
    # One pass over plain floats: every exception rule and action text calls this on small frames, where a
    # chain of Series operations cost more than the formatting itself.
    exact = v.to_numpy()
    whole = np.round(exact, 0)
    with np.errstate(invalid="ignore"):  # inf - inf is NaN, and NaN compares False, as in pandas
        small_fraction = (np.abs(exact) < 10) & (np.abs(exact - whole) > 0.05)
    text = [
        "?" if value != value else "{:.1f}".format(value) if small else "{:,.0f}".format(rounded)  # value != value: NaN
        for value, rounded, small in zip(exact.tolist(), whole.tolist(), small_fraction.tolist())
    ]
    return pd.Series(text, index=v.index, name=v.name, dtype=object)


def fmt_money(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").astype(float).round(0).map("{:,.0f}".format)


def fmt_day(values: pd.Series) -> pd.Series:
    """Dates as '3 Mar' (the year is the planning horizon's); missing dates as 'none'."""
    return per_distinct(values, _fmt_day)


def _fmt_day(values: pd.Series) -> pd.Series:
    d = pd.to_datetime(values)
    return (d.dt.day.astype("Int64").astype(str) + d.dt.strftime(" %b")).where(d.notna(), "none")


def json_rows(frame: pd.DataFrame) -> pd.Series:
    """One JSON object per row (dates as ISO days), aligned to the frame's index."""
    if frame.empty:
        return pd.Series([], index=frame.index, dtype=object)
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].dt.strftime("%Y-%m-%d")
    lines = out.to_json(orient="records", lines=True, double_precision=4).splitlines()
    return pd.Series(lines, index=frame.index, dtype=object)
