"""Cell by cell, a delivered value as a value of its contract type: text or typed input in, the typed value,
`_MISSING` (empty) or `_INVALID` (not a value of the type) out; a whole column at a time, computed once per
distinct value. Nothing here imports Great Expectations or Dagster."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd

from demand_control.schema.contracts import Column, Contract

_MISSING = object()  # parse result: the cell is empty
_INVALID = object()  # parse result: the cell holds something that is not a value of the type

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+(?:\.0*)?")
_ISO_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[T ]00:00(?::00(?:\.0+)?)?)?")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    if isinstance(value, str):
        return value.strip() == ""
    return False


def as_text(value: Any) -> str:
    """A cell as text for the quarantine table: '' for missing, ISO for dates, the text itself for strings."""
    if _is_missing(value):
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat()
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def _parse_string(value: Any) -> Any:
    text = as_text(value)
    return text if text else _MISSING


def _parse_integer(value: Any) -> Any:
    if isinstance(value, bool | np.bool_):
        return _INVALID
    number: int | None = None
    if isinstance(value, int | np.integer):
        number = int(value)
    elif isinstance(value, float | np.floating):
        number = int(value) if math.isfinite(value) and float(value).is_integer() else None
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        number = int(value.strip().split(".")[0])
    if number is None or not _INT64_MIN <= number <= _INT64_MAX:
        return _INVALID
    return number


def _parse_float(value: Any) -> Any:
    if isinstance(value, bool | np.bool_):
        return _INVALID
    if isinstance(value, int | np.integer | float | np.floating):
        number = float(value)
    elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        number = float(value.strip())
    else:
        return _INVALID
    return number if math.isfinite(number) else _INVALID


def _parse_boolean(value: Any) -> Any:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return _INVALID


def _parse_date(value: Any) -> Any:
    if isinstance(value, pd.Timestamp | datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).date()
    if isinstance(value, str):
        match = _ISO_DATE.fullmatch(value.strip())
        if match:
            try:
                return date.fromisoformat(match.group(1))
            except ValueError:
                return _INVALID
    return _INVALID


def _parse_datetime(value: Any) -> Any:
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return _INVALID
    if isinstance(value, datetime):  # includes pd.Timestamp
        # A timestamp without a zone is taken as UTC, the zone every source is asked to deliver in.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return _INVALID


def _parse_json(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return _INVALID
        return value.strip()
    return _INVALID


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "string": _parse_string,
    "integer": _parse_integer,
    "float": _parse_float,
    "boolean": _parse_boolean,
    "date": _parse_date,
    "datetime": _parse_datetime,
    "json": _parse_json,
}


def _typed_series(column: Column, values: list[Any]) -> pd.Series:
    """A column of parsed values (None for missing) with the dtype of its contract type."""
    if column.type == "integer":
        return pd.Series(values, dtype="Int64")
    if column.type == "float":
        return pd.Series([np.nan if v is None else v for v in values], dtype="float64")
    if column.type == "boolean":
        return pd.Series(values, dtype="boolean")
    if column.type == "datetime":
        # microseconds keep any year 1..9999 representable; implausible years are plausible_date's job
        return pd.Series(values, dtype="datetime64[us, UTC]")
    return pd.Series(values, dtype="object")  # string, json: str; date: datetime.date


def map_values(values: pd.Series, func: Callable[[Any], Any]) -> list[Any]:
    """`func` over every value, computed once per distinct value when that is safe (feeds repeat a lot).

    Distinct values are only shared for all-text or homogeneous (non-object) columns: in a mixed object
    column `True`, `1` and `1.0` hash alike but must not parse alike.
    """
    if values.dtype != object or pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        try:
            codes, uniques = pd.factorize(values, use_na_sentinel=False)
        except TypeError:  # unhashable cells (dicts in a json column)
            pass
        else:
            results = [func(u) for u in uniques]
            return [results[code] for code in codes]
    return [func(v) for v in values.tolist()]


def _parse_cell(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: _MISSING if _is_missing(value) else parse(value)


def coerce(
    contract: Contract, frame: pd.DataFrame, columns: list[Column]
) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Typed copy of `frame` (RangeIndex) for `columns`; plus, per column, a boolean mask of type failures."""
    typed: dict[str, pd.Series] = {}
    failed: dict[str, pd.Series] = {}
    for column in columns:
        if column.name in frame.columns:
            results = map_values(frame[column.name], _parse_cell(_PARSERS[column.type]))
        else:
            results = [_MISSING] * len(frame)
        typed[column.name] = _typed_series(column, [None if r is _MISSING or r is _INVALID else r for r in results])
        failed[column.name] = pd.Series([r is _INVALID for r in results], dtype=bool)
    return pd.DataFrame(typed, index=pd.RangeIndex(len(frame))), failed
