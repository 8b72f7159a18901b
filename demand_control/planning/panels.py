"""The shared real demand panels (`../shared/data`) in long format `unique_id, ds, y`, by the conventions of
that folder's README: which series key, which bucket, how much is held out and which season; their
truncated versions (a distributor's short history: only the last months or weeks of each series); and the
category each series belongs to (the level above it in the panel's own hierarchy)."""

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
    source: str = ""  # the full panel a truncated one is cut from ("" for a full panel)
    keep_last: int = 0  # periods kept at the end of each series (0: all)

    @property
    def base(self) -> str:
        return self.source or self.name


PANELS: dict[str, PanelSpec] = {
    "stallion": PanelSpec("stallion", "stallion.parquet", "MS", 12, 12),
    "pasta": PanelSpec("pasta", "pasta_long.parquet", "W-MON", 13, 52),
    "pbs": PanelSpec("pbs", "PBS_long.parquet", "MS", 12, 12),
    # A distributor's short history: 12 months to train and 12 to score; 52 weeks to train and 26 to score.
    "stallion_24": PanelSpec("stallion_24", "stallion.parquet", "MS", 12, 12, source="stallion", keep_last=24),
    "pbs_24": PanelSpec("pbs_24", "PBS_long.parquet", "MS", 12, 12, source="pbs", keep_last=24),
    "pasta_78": PanelSpec("pasta_78", "pasta_long.parquet", "W-MON", 26, 52, source="pasta", keep_last=78),
}


def panel_categories(name: str, ids: pd.Series | list[str]) -> pd.Series:
    """Each series' category: the level above it in the panel's hierarchy, as a distributor's product category
    is above its SKU-locations: stallion the SKU (across agencies), pasta the brand, PBS concession and type
    (the scheme that drives its seasonality)."""
    ids = pd.Series(pd.unique(pd.Series(ids).astype(str)))
    parts = ids.str.split("|", expand=True)
    base = PANELS[name].base
    if base == "stallion":
        labels = parts[1]
    elif base == "pbs":
        labels = parts[0] + "|" + parts[1]
    else:
        labels = parts[0]
    return pd.Series(labels.to_numpy(), index=ids.to_numpy(), name="category")


def load_panel(name: str, data_dir: Path | str = DEFAULT_DATA_DIR) -> pd.DataFrame:
    """One shared panel as `unique_id, ds, y`, sorted; raises FileNotFoundError when the data is absent.

    A truncated panel keeps the last `keep_last` periods of each series of its source panel.
    """
    spec = PANELS[name]
    if spec.keep_last:
        full = load_panel(spec.base, data_dir)
        keep = full.groupby("unique_id", sort=False).cumcount(ascending=False) < spec.keep_last
        return full[keep].reset_index(drop=True)
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
