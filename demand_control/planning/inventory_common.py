"""Small helpers shared by the inventory policy and the inventory projection: the SKU-location key, date
normalisation and the per-SKU-location bucket index of a forecast."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pandas as pd

SKU_LOCATION: list[str] = ["sku", "location_id"]
# Draft purchase orders are proposals (ours included) until the buyer sends them: not scheduled receipts.
SCHEDULED_PO_STATUSES: tuple[str, ...] = ("sent", "confirmed", "partial")


def as_timestamp(value: date | str | pd.Timestamp) -> pd.Timestamp:
    """A date-like scalar as a midnight `pd.Timestamp` without time zone (tables store plain dates)."""
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(None)
    return ts.normalize()


def per_distinct(values: pd.Series, convert: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """`convert(values)` computed once per distinct value: a column of dates read from the warehouse holds a few
    dozen distinct days in thousands of rows, and converting or formatting Python dates goes value by value."""
    if values.dtype != object or len(values) < 64:
        return convert(values)
    codes, uniques = pd.factorize(values, use_na_sentinel=False)  # missing values are one distinct value too
    converted = convert(pd.Series(uniques, dtype=object))
    return pd.Series(converted.to_numpy()[codes], index=values.index, name=values.name, dtype=converted.dtype)


def as_datetime_column(values: pd.Series) -> pd.Series:
    """A column of dates (python `date`, strings or timestamps) as `datetime64[ns]` at midnight."""
    return per_distinct(values, _as_datetime)


def _as_datetime(values: pd.Series) -> pd.Series:
    out = pd.to_datetime(values)
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert(None)
    return out.dt.normalize().astype("datetime64[ns]")


def require_columns(frame: pd.DataFrame, columns: list[str] | tuple[str, ...], what: str) -> None:
    """Fail early, naming the frame and the missing columns, rather than deep inside a merge."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} is missing columns {missing}")


def with_bucket_index(forecast: pd.DataFrame) -> pd.DataFrame:
    """The forecast sorted by SKU-location and period with `bucket` = 0, 1, … counted per SKU-location from
    its first period (the horizon's first bucket is 0)."""
    out = forecast.copy()
    out["period_start"] = as_datetime_column(out["period_start"])
    out = out.sort_values([*SKU_LOCATION, "period_start"], kind="mergesort").reset_index(drop=True)
    out["bucket"] = out.groupby(SKU_LOCATION, sort=False).cumcount().astype("int64")
    return out
