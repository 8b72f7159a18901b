"""Which order lines changed in Tryton since a time: the cheap probe the ERP-changes sensor polls, on the
same `last_modified_at` stamp the incremental extract's cursor uses."""

from __future__ import annotations

import datetime as dt
from typing import Any

from demand_control.resources.erp.client import TrytonClient


def changed_order_lines(client: TrytonClient, since: dt.datetime | None, limit: int) -> dict[str, Any]:
    """The sale and purchase lines changed after `since` (every one when None), newest first, at most `limit`
    per query: a line counts as changed when it, or its sale or purchase, was created or written since.

    Two `search_read` calls per line model (the line's own `last_modified_at`, and its order header's, which is
    what moves when a sale is confirmed or cancelled or a purchase's header delivery date changes), each
    ordered newest first so `newest` is the true high-water mark even when a page is full. `last_modified_at`
    is Tryton's coalesce(write_date, create_date), the same stamp the incremental extract's cursor uses.
    Returns {"lines": [{"model", "id", "changed_at", "sku", "location_id"}], "newest": datetime | None,
    "truncated": bool}; timestamps are timezone-aware UTC (Tryton keeps naive UTC).
    """
    after = since.astimezone(dt.UTC).replace(tzinfo=None) if since is not None and since.tzinfo else since
    lines: dict[tuple[str, int], dict[str, Any]] = {}
    truncated = False
    for model, header in (("sale.line", "sale"), ("purchase.line", "purchase")):
        fields = ["last_modified_at", f"{header}.last_modified_at", "product.code", f"{header}.warehouse.code"]
        for stamp in ("last_modified_at", f"{header}.last_modified_at"):
            domain: list[Any] = [("type", "=", "line")]
            if after is not None:
                domain.append((stamp, ">", after))
            rows = client.search_read(model, domain, fields, order=[(stamp, "DESC"), ("id", "DESC")], limit=limit)
            truncated = truncated or len(rows) >= limit
            for row in rows:
                order = row.get(f"{header}.") or {}
                stamps = [s for s in (row["last_modified_at"], order.get("last_modified_at")) if s is not None]
                changed_at = max(stamps).replace(tzinfo=dt.UTC) if stamps else None
                lines[(model, row["id"])] = {
                    "model": model,
                    "id": row["id"],
                    "changed_at": changed_at,
                    "sku": (row.get("product.") or {}).get("code"),
                    "location_id": (order.get("warehouse.") or {}).get("code"),
                }
    found = sorted(lines.values(), key=lambda r: (r["changed_at"] or dt.datetime.min.replace(tzinfo=dt.UTC), r["model"], r["id"]))
    stamps = [r["changed_at"] for r in found if r["changed_at"] is not None]
    return {"lines": found, "newest": max(stamps) if stamps else None, "truncated": truncated}
