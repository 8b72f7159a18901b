"""How planning numbers read in a sentence: quantities, money and days as a planner writes them, and rows as
JSON objects for the trigger values and affected orders a table keeps."""

from __future__ import annotations

import pandas as pd


def fmt_qty(values: pd.Series) -> pd.Series:
    """Quantities as a planner writes them: whole numbers with thousands separators, one decimal below 10
    when fractional."""
    v = pd.to_numeric(values, errors="coerce").astype(float)
    whole = v.round(0)
    text = whole.map("{:,.0f}".format)
    small_fraction = (v.abs() < 10) & ((v - whole).abs() > 0.05)
    return text.where(~small_fraction, v.map("{:.1f}".format)).where(v.notna(), "?")


def fmt_money(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").astype(float).round(0).map("{:,.0f}".format)


def fmt_day(values: pd.Series) -> pd.Series:
    """Dates as '3 Mar' (the year is the planning horizon's); missing dates as 'none'."""
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
