"""Write a landscape as a file drop: one `<object>.parquet` or `<object>.csv` per canonical object.

Columns are typed from the contract (string, date32, int64, float64, bool) and written through Arrow
without pandas or Arrow schema metadata, so the bytes depend only on the data: the same frames give the
same files, and readers get plain strings and dates back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from demand_control.schema.contracts import CONTRACTS

_ARROW_TYPES = {
    "string": pa.string(),
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us", tz="UTC"),
    "json": pa.string(),
}


def write_landscape(
    frames: dict[str, pd.DataFrame], out_dir: Path, fmt: Literal["parquet", "csv"] = "parquet"
) -> dict[str, Path]:
    """Write each frame to `out_dir/<object>.<fmt>`; returns the path written per object.

    CSV: header row, no index, ISO `YYYY-MM-DD` dates, empty field for a missing value, `true`/`false`.
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"unknown format {fmt!r}: parquet or csv")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, frame in frames.items():
        table = _to_arrow(name, frame)
        path = out_dir / f"{name}.{fmt}"
        if fmt == "parquet":
            # store_schema=False: no ARROW:schema blob, so categoricals come back as plain strings.
            pq.write_table(table, path, store_schema=False)
        else:
            table = pa.table([_decode(c) for c in table.columns], names=table.column_names)
            pa_csv.write_csv(table, path, pa_csv.WriteOptions(quoting_style="needed"))
        written[name] = path
    return written


def _decode(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


def _to_arrow(name: str, frame: pd.DataFrame) -> pa.Table:
    contract = CONTRACTS.get(name)
    arrays, names = [], []
    for col in frame.columns:
        kind = None
        if contract is not None:
            try:
                kind = contract.column(col).type
            except KeyError:
                kind = None
        arrays.append(_column(frame[col], kind))
        names.append(str(col))
    return pa.Table.from_arrays(arrays, names=names)


def _column(series: pd.Series, kind: str | None) -> pa.Array:
    if kind is None:
        return pa.Array.from_pandas(series)
    target = _ARROW_TYPES[kind]
    if kind in ("string", "json"):
        if isinstance(series.dtype, pd.CategoricalDtype):
            # Keep the dictionary: Parquet writes it as is, no 15M-string materialisation.
            codes = series.cat.codes.to_numpy()
            indices = pa.array(codes.astype(np.int32), mask=codes < 0)
            dictionary = pa.array(series.cat.categories.astype(str).to_numpy(dtype=object), type=pa.string())
            return pa.DictionaryArray.from_arrays(indices, dictionary)
        values = series.to_numpy(dtype=object, na_value=None)
        return pa.array(values, type=pa.string(), from_pandas=True)
    if kind == "date":
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            values = series.to_numpy()
            days = values.astype("datetime64[D]").astype(np.int64)
            return pa.array(days.astype(np.int32), type=pa.int32(), mask=np.isnat(values)).view(pa.date32())
        return pa.array(pd.to_datetime(series).dt.date.to_numpy(dtype=object, na_value=None), type=pa.date32())
    if kind == "datetime":
        return pa.array(pd.to_datetime(series, utc=True), type=target)
    if kind == "boolean":
        if series.isna().any():
            return pa.array(series.to_numpy(dtype=object, na_value=None), type=target)
        return pa.array(series.to_numpy(dtype=bool), type=target)
    if kind == "integer":
        if series.isna().any():
            return pa.array(series.to_numpy(dtype=object, na_value=None), type=target)
        return pa.array(series.to_numpy(dtype=np.int64), type=target)
    # float: NaN is a missing value
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    return pa.array(values, type=target, mask=np.isnan(values))
