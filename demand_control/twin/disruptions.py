"""The supplier and demand disruptions of a scenario as they happen in one arm's world: on the day a supplier
announces a delay, an outage or a shortfall, the lines it hits change physically (their true arrival or the
quantity delivered) and the supplier's notice reaches the ERP through the same event semantics as the
gateway's (`planning.event_effects.apply_events`); demand spikes and new SKUs are in the demand draws, and
become known on the day of the surge's first order or of the listing.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd

from demand_control.planning.event_effects import apply_events
from demand_control.twin import supply
from demand_control.twin.engine import ANNOUNCE_DAY, KnownDisruption, Twin
from demand_control.twin.scenario import Shortfall, SupplierDelay, SupplierOutage


def known_today(twin: Twin, day: int) -> list[KnownDisruption]:
    """Apply the supplier disruptions that start today (physical effect and the supplier's notice, which
    reaches the ERP through the same event semantics as the gateway's), and report every disruption that
    becomes known today with the SKU-locations it touches."""
    known = []
    for index, d in twin.disruptions:
        start = 7 * d.start_week
        if isinstance(d, (SupplierDelay, SupplierOutage, Shortfall)) and day == start + ANNOUNCE_DAY:
            known.append(_supplier_disruption(twin, index, d, day))
        elif d.type == "demand_spike" and twin.world.spike_known_day.get(index) == day:
            hit = np.unique(twin.l_series[twin.world.lines["spike"].to_numpy() == index])
            known.append(KnownDisruption(index, d.type, day, hit))
        elif d.type == "new_sku" and day == start:
            listed = twin.world.series["listed_day"].to_numpy()
            fresh = np.flatnonzero((listed == start) & (twin.world.series["category"].to_numpy() == d.category))
            known.append(KnownDisruption(index, d.type, day, fresh))
    return known


def _supplier_disruption(twin: Twin, index: int, d, day: int) -> KnownDisruption:  # noqa: ANN001
    a = twin.po
    sup = twin.sup_index[d.supplier]
    open_ = np.flatnonzero(a["open"] & (a["supplier"] == sup) & (a["qty_open"] > 0))
    if isinstance(d, SupplierDelay):
        hit = open_[supply.selected(twin.seed, index, a["series"][open_], a["key"][open_], d.share)]
        a.a["arrival_day"][hit] += d.days
        a.a["delay_days"][hit] += d.days
        new_date = twin.due_day(hit) + d.days
        events = _events(twin, index, "supplier.delay", hit, new_date=new_date)
    elif isinstance(d, SupplierOutage):
        end = day + 7 * d.weeks
        twin.outages.append((index, sup, day, end))
        hit = open_[a["arrival_day"][open_] < end]
        pushed = end + supply.outage_spread(twin.seed, index, a["series"][hit], a["key"][hit])
        a.a["outage_days"][hit] += pushed - a["arrival_day"][hit]
        a.a["arrival_day"][hit] = pushed
        events = _events(twin, index, "supplier.delay", hit, new_date=np.maximum(pushed, twin.due_day(hit)))
    else:
        hit = open_
        scale = twin.world.series["scale"].to_numpy()[a["series"][hit]]
        new_qty = np.floor(a["qty_open"][hit] * (1 - d.share) * scale + 1e-9) / scale
        a.a["shortfall_qty"][hit] += a["qty_open"][hit] - new_qty
        a.a["deliver"][hit] = new_qty
        events = _events(twin, index, "supplier.shortfall", hit, new_qty=new_qty)
    _apply_supplier_events(twin, events, hit, day)
    return KnownDisruption(index, d.type, day, np.unique(a["series"][hit]), events)


def _events(twin: Twin, index: int, kind: str, hit: np.ndarray, new_date: np.ndarray | None = None, new_qty: np.ndarray | None = None) -> pd.DataFrame:
    rows = []
    for j, i in enumerate(hit):
        data = {"supplier_id": twin.supplier_ids[twin.po["supplier"][i]], "po_id": twin.po_id[i], "line_no": int(twin.po["line_no"][i])}
        if new_date is not None:
            data["new_date"] = str(twin.world.as_of + dt.timedelta(days=int(new_date[j])))
        if new_qty is not None:
            data["new_qty"] = float(new_qty[j])
        rows.append({"inbox_id": len(rows) + 1, "webhook_id": f"twin-{index}-{i}", "event_type": kind,
                     "payload": json.dumps({"type": kind, "data": data})})
    return pd.DataFrame(rows, columns=["inbox_id", "webhook_id", "event_type", "payload"])


def _apply_supplier_events(twin: Twin, events: pd.DataFrame, hit: np.ndarray, day: int) -> None:
    """The ERP takes the supplier's notices as the replan job does (`apply_events`): a delay moves the
    line's confirmed date, a shortfall its open quantity."""
    if events.empty:
        return
    lines = twin.purchase_lines_frame(day, hit)
    applied = apply_events(events, lines, lines.iloc[0:0].rename(columns={"po_id": "order_id"}), twin.instant(day))
    for row in applied.purchase_lines.to_dict("records"):
        i = twin.po_index[(row["po_id"], int(row["line_no"]))]
        if row.get("confirmed_date") is not None and not pd.isna(row["confirmed_date"]):
            twin.po.a["confirmed_day"][i] = (pd.Timestamp(row["confirmed_date"]) - pd.Timestamp(twin.world.as_of)).days
            twin.po.a["status"][i] = max(twin.po.a["status"][i], 2)
        twin.po.a["qty_open"][i] = float(row["qty_open"])
