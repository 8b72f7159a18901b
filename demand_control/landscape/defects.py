"""Plant a few realistic data-entry defects in a generated landscape, so the demo shows the quality gates
quarantining bad rows while the good rows flow on."""

from __future__ import annotations

import numpy as np
import pandas as pd


def plant_defects(frames: dict[str, pd.DataFrame], seed: int) -> list[str]:
    """Changes `frames` in place: one negative stock count, one order for an unknown SKU, one duplicated
    purchase-order line and one impossible history date. Returns a sentence per defect."""
    rng = np.random.default_rng(seed + 1)
    planted: list[str] = []

    inventory = frames["inventory_position"]
    row = int(rng.integers(len(inventory)))
    inventory.loc[row, "on_hand"] = -5.0
    planted.append(
        f"inventory_position {inventory.at[row, 'sku']}@{inventory.at[row, 'location_id']}: on_hand = -5"
    )

    orders = frames["customer_order_line"]
    if len(orders):
        row = int(rng.integers(len(orders)))
        orders.loc[row, "sku"] = "SKU-UNKNOWN"
        planted.append(f"customer_order_line {orders.at[row, 'order_id']}/{orders.at[row, 'line_no']}: sku = SKU-UNKNOWN")

    purchases = frames["purchase_order_line"]
    if len(purchases):
        row = int(rng.integers(len(purchases)))
        frames["purchase_order_line"] = pd.concat([purchases, purchases.iloc[[row]]], ignore_index=True)
        planted.append(
            f"purchase_order_line {purchases.at[row, 'po_id']}/{purchases.at[row, 'line_no']}: delivered twice"
        )

    history = frames["demand_history"]
    # A hand-typed date the export did not validate: the column travels as text, as a CSV export would.
    history["period_start"] = pd.to_datetime(history["period_start"]).dt.strftime("%Y-%m-%d")
    row = int(rng.integers(len(history)))
    history.loc[row, "period_start"] = "2024-13-45"
    planted.append(f"demand_history {history.at[row, 'sku']}@{history.at[row, 'location_id']}: period_start = 2024-13-45")
    return planted
