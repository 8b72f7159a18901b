"""Plant a few realistic data-entry defects in a written file drop, so the demo shows the quality gates
quarantining bad rows while the good rows flow on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def plant_defects(folder: Path, seed: int) -> list[str]:
    """Rewrites four Parquet feeds in `folder`: one negative stock count, one order for an unknown SKU, one
    duplicated purchase-order line and one impossible history date. Returns a sentence per defect."""
    rng = np.random.default_rng(seed + 1)
    planted: list[str] = []

    def edit(name: str, change) -> None:  # noqa: ANN001
        path = folder / f"{name}.parquet"
        frame = pd.read_parquet(path)
        if len(frame):
            frame = change(frame, int(rng.integers(len(frame))))
            frame.to_parquet(path, index=False)

    def negative_stock(frame: pd.DataFrame, row: int) -> pd.DataFrame:
        frame.loc[row, "on_hand"] = -5.0
        planted.append(f"inventory_position {frame.at[row, 'sku']}@{frame.at[row, 'location_id']}: on_hand = -5")
        return frame

    def unknown_sku(frame: pd.DataFrame, row: int) -> pd.DataFrame:
        frame.loc[row, "sku"] = "SKU-UNKNOWN"
        planted.append(f"customer_order_line {frame.at[row, 'order_id']}/{frame.at[row, 'line_no']}: sku = SKU-UNKNOWN")
        return frame

    def duplicate_line(frame: pd.DataFrame, row: int) -> pd.DataFrame:
        planted.append(f"purchase_order_line {frame.at[row, 'po_id']}/{frame.at[row, 'line_no']}: delivered twice")
        return pd.concat([frame, frame.iloc[[row]]], ignore_index=True)

    def impossible_date(frame: pd.DataFrame, row: int) -> pd.DataFrame:
        # A hand-typed date nobody validated: the column travels as text, as in a CSV export.
        frame["period_start"] = pd.to_datetime(frame["period_start"]).dt.strftime("%Y-%m-%d")
        frame.loc[row, "period_start"] = "2024-13-45"
        planted.append(f"demand_history {frame.at[row, 'sku']}@{frame.at[row, 'location_id']}: period_start = 2024-13-45")
        return frame

    edit("inventory_position", negative_stock)
    edit("customer_order_line", unknown_sku)
    edit("purchase_order_line", duplicate_line)
    edit("demand_history", impossible_date)
    return planted
