"""The shared real demand panels (`../shared/data`) in long format `unique_id, ds, y`, by the conventions of
that folder's README: which series key, which bucket, how much is held out and which season."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@dataclass(frozen=True)
class PanelSpec:
    name: str
    file: str
    freq: str
    horizon: int
    season_length: int


PANELS: dict[str, PanelSpec] = {
    "stallion": PanelSpec("stallion", "stallion.parquet", "MS", 12, 12),
    "pasta": PanelSpec("pasta", "pasta_long.parquet", "W-MON", 13, 52),
    "pbs": PanelSpec("pbs", "PBS_long.parquet", "MS", 12, 12),
}


def load_panel(name: str, data_dir: Path | str = DEFAULT_DATA_DIR) -> pd.DataFrame:
    """One shared panel as `unique_id, ds, y`, sorted; raises FileNotFoundError when the data is absent."""
    spec = PANELS[name]
    path = Path(data_dir) / spec.file
    if not path.exists():
        raise FileNotFoundError(f"shared panel {path} not found")
    raw = pd.read_parquet(path)
    if name == "stallion":
        out = pd.DataFrame(
            {
                "unique_id": raw["agency"].astype(str) + "|" + raw["sku"].astype(str),
                "ds": pd.to_datetime(raw["date"]).astype("datetime64[ns]"),
                "y": raw["volume"].astype(float),
            }
        )
    elif name == "pbs":
        out = pd.DataFrame(
            {
                "unique_id": raw["Concession"].astype(str) + "|" + raw["Type"].astype(str) + "|" + raw["ATC2"].astype(str),
                "ds": pd.to_datetime(raw["Month"]).astype("datetime64[ns]"),
                "y": raw["Scripts"].astype(float),
            }
        )
    else:
        out = _pasta_weekly(raw)
    return out.sort_values(["unique_id", "ds"]).reset_index(drop=True)


def _pasta_weekly(raw: pd.DataFrame) -> pd.DataFrame:
    """Daily pasta sales summed into Monday-start weeks; the partial first and last weeks are dropped.

    Only the ends are cut: a week inside the range with a closed day (a holiday) is a real, complete week.
    """
    day = pd.to_datetime(raw["date"]).astype("datetime64[ns]")
    week = day - pd.to_timedelta(day.dt.weekday, unit="D")
    first, last = day.min(), day.max()
    keep = pd.Series(True, index=raw.index)
    if first.weekday() != 0:
        keep &= week != week.min()
    if last.weekday() != 6:
        keep &= week != week.max()
    frame = pd.DataFrame(
        {"unique_id": raw["brand"].astype(str) + "|" + raw["product"].astype(str), "ds": week, "y": raw["value"].astype(float)}
    )[keep]
    return frame.groupby(["unique_id", "ds"], as_index=False)["y"].sum()
