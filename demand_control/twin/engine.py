"""The day-by-day simulation of the distributor, vectorised over SKU-locations: stock, the customer order book,
open purchase lines with their true arrival, transfers between DCs, and the ERP's view of all of it.

A day: purchase lines and transfers due arrive in the morning (06:00); the suppliers' disruption notices of
the day reach the ERP; the arm plans and acts (its `morning` and `workday` hooks); customers' new lines
appear; in the evening (18:00) each DC ships the lines due, from stock, in promise order (then tier, then
line), partial shipments allowed, the rest backordered. Units are conserved per SKU-location: received
(purchase receipts + transfers in) = shipped (to customers + transfers out) + change in on hand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from demand_control.twin import supply
from demand_control.twin.demand import TIERS, World
from demand_control.twin.scenario import Scenario

# Days a transfer between two DCs takes (the landscape has no DC-to-DC lanes): one day to pick and load,
# two on the road.
TRANSFER_DAYS = 3
PLAN_HOUR, SHIP_HOUR = 6, 18
# A supplier's notice of a disruption in week k arrives on the Wednesday of that week (day 7k + 2 from a
# Monday as-of): mid-week, so that a weekly plan hears of it only the next Monday.
ANNOUNCE_DAY = 2
PO_STATUS = ("draft", "sent", "confirmed", "partial")


class Columns:
    """A growable struct of numpy arrays (one per column), appended to in blocks."""

    def __init__(self, dtypes: dict[str, type | str]):
        self._dtypes = dtypes
        self.n = 0
        self._cap = 256
        self.a = {k: np.zeros(self._cap, dtype=t) for k, t in dtypes.items()}

    def append(self, **cols: np.ndarray) -> np.ndarray:
        k = len(next(iter(cols.values())))
        while self.n + k > self._cap:
            self._cap *= 2
            for name, arr in self.a.items():
                grown = np.zeros(self._cap, dtype=arr.dtype)
                grown[: self.n] = arr[: self.n]
                self.a[name] = grown
        for name, values in cols.items():
            self.a[name][self.n : self.n + k] = values
        idx = np.arange(self.n, self.n + k)
        self.n += k
        return idx

    def __getitem__(self, name: str) -> np.ndarray:
        return self.a[name][: self.n]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({k: v[: self.n] for k, v in self.a.items()})


@dataclass
class Ledger:
    received_po: np.ndarray
    received_transfer: np.ndarray
    shipped_customer: np.ndarray
    shipped_transfer: np.ndarray
    on_hand_start: np.ndarray


@dataclass
class KnownDisruption:
    index: int
    kind: str
    day: int
    series: np.ndarray  # SKU-locations it touches
    supplier_events: pd.DataFrame = field(default_factory=pd.DataFrame)


class Twin:
    """One arm's world. The arm reads the ERP views and calls the action methods; the engine moves goods."""

    def __init__(self, world: World, scenario: Scenario, arm: str, prefix: str):
        self.world, self.scenario, self.arm, self.prefix = world, scenario, arm, prefix
        self.seed = scenario.seed
        self.days = world.days
        s = world.series
        self.N = len(s)
        frames = world.frames
        self.supplier_ids = frames["supplier"]["supplier_id"].to_numpy()
        self.sup_index = {sid: i for i, sid in enumerate(self.supplier_ids)}
        self.reliability = frames["supplier"]["reliability"].to_numpy(dtype=float)
        self.series_supplier = s["supplier_id"].map(self.sup_index).fillna(0).to_numpy(dtype=np.int64)
        self.lead = s["lead_time_days"].fillna(14.0).to_numpy(dtype=float)
        self.lead_std = s["lead_time_std_days"].fillna(0.0).to_numpy(dtype=float)
        self.unit_cost = s["unit_cost"].fillna(0.0).to_numpy(dtype=float)
        self.key = {k: i for i, k in enumerate(zip(s["sku"], s["location_id"]))}
        inv = frames["inventory_position"].merge(s.reset_index()[["index", "sku", "location_id"]], on=["sku", "location_id"])
        self.on_hand = np.zeros(self.N)
        self.on_hand[inv["index"].to_numpy()] = inv["on_hand"].to_numpy(dtype=float)
        # Stock the landscape had on its way (a transfer or a shipped part of an order) lands on day 1.
        self.transfers = Columns({"to": np.int64, "frm": np.int64, "qty": float, "ship_day": np.int64, "arrive_day": np.int64, "done": bool})
        moving = inv["in_transit"].to_numpy(dtype=float) > 0
        if moving.any():
            rows = inv["index"].to_numpy()[moving]
            self.transfers.append(to=rows, frm=np.full(len(rows), -1), qty=inv["in_transit"].to_numpy(dtype=float)[moving],
                                  ship_day=np.full(len(rows), -1), arrive_day=np.ones(len(rows), dtype=np.int64), done=np.zeros(len(rows), bool))
        self.ledger = Ledger(*(np.zeros(self.N) for _ in range(4)), on_hand_start=self.on_hand.copy())
        self._lines(world)
        self._purchases(frames)
        self.stock_eod = np.zeros((self.days, self.N), dtype=np.float32)
        self.unmet = np.zeros((self.days, self.N), dtype=bool)
        self.actions = []  # executed actions: dicts with day, at (datetime), type, series, detail
        self.disruptions = [(i, d) for i, d in enumerate(scenario.disruptions)]
        self.known: list[KnownDisruption] = []
        self.outages: list[tuple[int, int, int, int]] = []  # (index, supplier, start, end)
        self._seq = np.zeros(self.N, dtype=np.int64)  # lines placed per SKU-location today (CRN key)
        self._seq_day = -1
        self.progress: Callable[[str, int], None] | None = None

    # Set-up ----------------------------------------------------------------------------------------------

    def _lines(self, world: World) -> None:
        L = world.lines
        self.l_series = L["series"].to_numpy(dtype=np.int64)
        self.l_qty = L["qty"].to_numpy(dtype=float)
        self.l_order_day = L["order_day"].to_numpy(dtype=np.int64)
        self.l_first_promise = L["promise_day"].to_numpy(dtype=np.int64)
        self.l_promise = self.l_first_promise.copy()
        self.l_tier = L["tier"].to_numpy(dtype=np.int64)
        self.l_customer = L["customer"].to_numpy(dtype=np.int64)
        self.l_priority = L["priority"].to_numpy(dtype=np.int64)
        self.l_order_id = L["order_id"].to_numpy(dtype=object)
        self.l_line_no = L["line_no"].to_numpy(dtype=np.int64)
        n = len(L)
        self.l_shipped = np.zeros(n)
        self.l_nship = np.zeros(n, dtype=np.int64)
        self.l_complete_day = np.full(n, -1, dtype=np.int64)
        self.l_in_full_on_due = np.zeros(n, dtype=bool)
        self.l_units_on_time = np.zeros(n)
        self.l_notified_hour = np.full(n, np.nan)
        self.l_index = {(o, int(k)): i for i, (o, k) in enumerate(zip(self.l_order_id, self.l_line_no))}
        self._next_line = 0
        self.open_lines = np.zeros(0, dtype=np.int64)

    def _purchases(self, frames: dict[str, pd.DataFrame]) -> None:
        self.po = Columns({
            "series": np.int64, "supplier": np.int64, "qty": float, "qty_open": float, "deliver": float, "order_day": np.int64,
            "expected_day": np.int64, "confirmed_day": np.int64, "arrival_day": np.int64, "status": np.int64, "open": bool,
            "received_day": np.int64, "on_time_draw": bool, "delay_days": np.int64, "outage_days": np.int64,
            "shortfall_qty": float, "expedited": np.int64, "origin": np.int64, "line_no": np.int64, "key": np.int64,
        })
        self.po_id: list[str] = []
        po = frames["purchase_order_line"].merge(self.world.series.reset_index()[["index", "sku", "location_id"]], on=["sku", "location_id"])
        base = pd.Timestamp(self.world.as_of)
        day = lambda c: ((pd.to_datetime(po[c]) - base).dt.days).to_numpy()  # noqa: E731
        order_day, expected = day("order_date"), day("expected_date")
        confirmed = (pd.to_datetime(po["confirmed_date"]) - base).dt.days
        confirmed_day = confirmed.fillna(-10**6).to_numpy(dtype=np.int64)
        series = po["index"].to_numpy(dtype=np.int64)
        supplier = po["supplier_id"].map(self.sup_index).to_numpy(dtype=np.int64)
        planned = np.where(confirmed.notna(), confirmed_day, expected)
        # The line's sequence among its SKU-location's lines of the same order day, for the draw key.
        seq = po.groupby(["index", "order_date"]).cumcount().to_numpy()
        key = supply.line_key(order_day, seq)
        arrival, on_time = supply.arrival_days(self.seed, series, key, np.maximum(planned, 0), self.reliability[supplier], self.lead_std[series], np.zeros(len(po), dtype=np.int64))
        # Drafts of the landscape are sent on day 0 (the buyer's first act of the run), in every arm alike.
        status = po["status"].map({s: i for i, s in enumerate(PO_STATUS)}).to_numpy()
        status = np.where(status == 0, 1, status)
        qty = po["qty_open"].to_numpy(dtype=float)
        self.po.append(
            series=series, supplier=supplier, qty=qty, qty_open=qty, deliver=qty, order_day=order_day, expected_day=expected,
            confirmed_day=confirmed_day, arrival_day=arrival, status=status, open=np.ones(len(po), bool), received_day=np.full(len(po), -1),
            on_time_draw=on_time, delay_days=np.zeros(len(po), dtype=np.int64), outage_days=np.zeros(len(po), dtype=np.int64),
            shortfall_qty=np.zeros(len(po)), expedited=np.zeros(len(po), dtype=np.int64), origin=np.zeros(len(po), dtype=np.int64),
            line_no=po["line_no"].to_numpy(dtype=np.int64), key=key,
        )
        self.po_id = list(po["po_id"])
        self.po_index = {(p, int(k)): i for i, (p, k) in enumerate(zip(self.po_id, po["line_no"]))}

    # Time ------------------------------------------------------------------------------------------------

    def instant(self, day: int, hour: float = PLAN_HOUR) -> dt.datetime:
        return dt.datetime.combine(self.world.as_of, dt.time(0), tzinfo=dt.UTC) + dt.timedelta(days=int(day), hours=hour)

    def is_workday(self, day: int) -> bool:
        return (self.world.as_of + dt.timedelta(days=int(day))).weekday() < 5

    def is_monday(self, day: int) -> bool:
        return (self.world.as_of + dt.timedelta(days=int(day))).weekday() == 0

    def listed(self, day: int) -> np.ndarray:
        return self.world.series["listed_day"].to_numpy() <= day

    # Physical flows --------------------------------------------------------------------------------------

    def receive(self, day: int) -> None:
        a = self.po
        due = np.flatnonzero(a["open"] & (a["arrival_day"] <= day))
        if len(due):
            qty = a["deliver"][due]
            np.add.at(self.on_hand, a["series"][due], qty)
            np.add.at(self.ledger.received_po, a["series"][due], qty)
            a.a["open"][due] = False
            a.a["received_day"][due] = day
            a.a["qty_open"][due] = 0.0
        t = self.transfers
        arriving = np.flatnonzero(~t["done"] & (t["arrive_day"] <= day))
        if len(arriving):
            np.add.at(self.on_hand, t["to"][arriving], t["qty"][arriving])
            np.add.at(self.ledger.received_transfer, t["to"][arriving], t["qty"][arriving])
            t.a["done"][arriving] = True

    def open_book(self, day: int) -> None:
        """Customers' lines ordered up to today join the book (lines are sorted by order day)."""
        end = int(np.searchsorted(self.l_order_day, day, side="right"))
        if end > self._next_line:
            self.open_lines = np.concatenate([self.open_lines, np.arange(self._next_line, end)])
            self._next_line = end

    def ordered_series(self, day: int) -> np.ndarray:
        """The SKU-locations customers ordered on `day` (lines are sorted by order day)."""
        lo, hi = np.searchsorted(self.l_order_day, [day - 1, day], side="right")
        return np.unique(self.l_series[lo:hi])

    def ship(self, day: int) -> None:
        open_ = self.open_lines
        due = open_[self.l_first_promise[open_] <= day]
        if len(due):
            order = np.lexsort((due, self.l_tier[due], self.l_promise[due], self.l_series[due]))
            due = due[order]
            rem = self.l_qty[due] - self.l_shipped[due]
            s = self.l_series[due]
            cum = np.cumsum(rem)
            start = np.r_[True, s[1:] != s[:-1]]
            group_base = np.maximum.accumulate(np.where(start, cum - rem, 0.0))
            before = cum - rem - group_base
            give = np.clip(self.on_hand[s] - before, 0.0, rem)
            give = np.where(give > 1e-9, give, 0.0)
            shipped = np.bincount(s, weights=give, minlength=self.N)
            self.on_hand -= shipped
            self.on_hand[np.abs(self.on_hand) < 1e-9] = 0.0
            self.ledger.shipped_customer += shipped
            full_now = (give >= rem - 1e-9) & (give > 0)
            on_time = day <= self.l_promise[due]
            self.l_in_full_on_due[due] |= full_now & (self.l_nship[due] == 0) & on_time
            self.l_units_on_time[due] += np.where(on_time, give, 0.0)
            self.l_shipped[due] += give
            self.l_nship[due] += give > 0
            done = due[full_now]
            self.l_complete_day[done] = day
            left = due[~full_now]
            self.unmet[day, np.unique(self.l_series[left])] = True
            self.open_lines = open_[self.l_complete_day[open_] < 0]

    def record(self, day: int) -> None:
        self.stock_eod[day] = self.on_hand

    # Purchase lines ----------------------------------------------------------------------------------------

    def place_po(self, series: np.ndarray, qty: np.ndarray, day: int, origin: int, supplier: np.ndarray | None = None) -> np.ndarray:
        """New purchase lines placed today at the quoted lead time; the draws fix when they really arrive."""
        series = np.asarray(series, dtype=np.int64)
        qty = np.asarray(qty, dtype=float)
        keep = qty > 0
        series, qty = series[keep], qty[keep]
        if not len(series):
            return np.zeros(0, dtype=np.int64)
        if self._seq_day != day:
            self._seq[:] = 0
            self._seq_day = day
        seq = np.zeros(len(series), dtype=np.int64)
        for i, s in enumerate(series):  # a handful of lines a day per SKU-location; keeps keys unique
            seq[i] = self._seq[s]
            self._seq[s] += 1
        sup = self.series_supplier[series] if supplier is None else np.asarray(supplier, dtype=np.int64)
        quoted = np.maximum(np.rint(self.lead[series]).astype(np.int64), 1)
        expected = day + quoted
        key = supply.line_key(np.full(len(series), day), seq)
        arrival, on_time = supply.arrival_days(self.seed, series, key, expected, self.reliability[sup], self.lead_std[series], np.full(len(series), day + 1))
        confirmed = np.full(len(series), -10**6, dtype=np.int64)
        outage_days = np.zeros(len(series), dtype=np.int64)
        for index, sup_i, start, end in self.outages:
            hit = (sup == sup_i) & (day < end) & (arrival < end)
            if hit.any():
                pushed = end + supply.outage_spread(self.seed, index, series[hit], key[hit])
                outage_days[hit] = pushed - arrival[hit]
                arrival[hit] = pushed
                confirmed[hit] = np.maximum(pushed, expected[hit])  # the supplier confirms the later date
        n0 = self.po.n
        idx = self.po.append(
            series=series, supplier=sup, qty=qty, qty_open=qty, deliver=qty, order_day=np.full(len(series), day), expected_day=expected,
            confirmed_day=confirmed, arrival_day=arrival, status=np.where(confirmed > -10**6, 2, 1), open=np.ones(len(series), bool),
            received_day=np.full(len(series), -1), on_time_draw=on_time, delay_days=np.zeros(len(series), dtype=np.int64),
            outage_days=outage_days, shortfall_qty=np.zeros(len(series)), expedited=np.zeros(len(series), dtype=np.int64),
            origin=np.full(len(series), origin), line_no=np.ones(len(series), dtype=np.int64), key=key,
        )
        for j in range(len(series)):
            pid = f"PO-{self.prefix}{n0 + j:07d}"
            self.po_id.append(pid)
            self.po_index[(pid, 1)] = n0 + j
        return idx

    def due_day(self, idx: np.ndarray) -> np.ndarray:
        """The day the ERP expects the lines: confirmed, else expected."""
        c = self.po["confirmed_day"][idx]
        return np.where(c > -10**6, c, self.po["expected_day"][idx])

    # Disruptions -------------------------------------------------------------------------------------------

    def disruptions_of(self, day: int) -> list[KnownDisruption]:
        """Apply the supplier disruptions announced today and report every disruption that becomes known
        today with the SKU-locations it touches (`disruptions.known_today`)."""
        from demand_control.twin.disruptions import known_today

        known = known_today(self, day)
        self.known.extend(known)
        return known

    # Actions the arms execute ----------------------------------------------------------------------------------

    def log_action(self, day: int, at: dt.datetime, kind: str, series: np.ndarray, detail: str = "", by: str = "") -> None:
        for s in np.atleast_1d(series):
            self.actions.append({"day": day, "at": at, "action_type": kind, "series": int(s), "detail": detail, "by": by})

    def expedite(self, i: int, new_day: int, day: int) -> bool:
        a = self.po
        if not a["open"][i]:
            return False
        s = a["series"][i]
        works = bool(supply.expedite_works(self.seed, np.array([s]), day, self.reliability[a["supplier"][i]:a["supplier"][i] + 1])[0])
        a.a["expedited"][i] += 1
        if works:
            target = max(int(new_day), day + 1)
            if target < a["arrival_day"][i]:
                a.a["arrival_day"][i] = target
            a.a["confirmed_day"][i] = max(target, int(a["arrival_day"][i]))
            a.a["status"][i] = max(a["status"][i], 2)
        return works

    def reschedule(self, i: int, new_day: int) -> None:
        a = self.po
        if a["open"][i]:
            a.a["arrival_day"][i] = max(int(a["arrival_day"][i]), int(new_day))
            a.a["confirmed_day"][i] = int(new_day)

    def cancel(self, i: int) -> None:
        a = self.po
        if a["open"][i]:
            a.a["open"][i] = False
            a.a["qty_open"][i] = 0.0
            a.a["deliver"][i] = 0.0

    def confirm_true_date(self, i: int) -> None:
        """A follow-up makes the supplier say when the line really comes."""
        if self.po["open"][i]:
            self.po.a["confirmed_day"][i] = int(self.po["arrival_day"][i])
            self.po.a["status"][i] = max(self.po["status"][i], 2)

    def transfer(self, frm: int, to: int, qty: float, day: int) -> float:
        moved = float(min(max(qty, 0.0), self.on_hand[frm]))
        if moved <= 0:
            return 0.0
        self.on_hand[frm] -= moved
        self.ledger.shipped_transfer[frm] += moved
        self.transfers.append(to=np.array([to]), frm=np.array([frm]), qty=np.array([moved]), ship_day=np.array([day]),
                              arrive_day=np.array([day + TRANSFER_DAYS]), done=np.zeros(1, bool))
        return moved

    def notify(self, line: int, hour: float, new_day: int | None) -> None:
        if np.isnan(self.l_notified_hour[line]):
            self.l_notified_hour[line] = hour
        if new_day is not None:
            self.l_promise[line] = max(int(new_day), int(self.l_promise[line]))

    # ERP views -----------------------------------------------------------------------------------------------

    def date(self, day: np.ndarray) -> np.ndarray:
        return (np.datetime64(self.world.as_of, "D") + np.asarray(day, dtype=np.int64)).astype("datetime64[ns]")

    def inventory_position_frame(self, day: int) -> pd.DataFrame:
        s = self.world.series
        t = self.transfers
        moving = ~t["done"]
        in_transit = np.bincount(t["to"][moving], weights=t["qty"][moving], minlength=self.N)
        listed = self.listed(day)
        return pd.DataFrame({
            "sku": s["sku"].to_numpy()[listed], "location_id": s["location_id"].to_numpy()[listed],
            "as_of": self.date(np.full(int(listed.sum()), day)), "on_hand": self.on_hand[listed], "allocated": 0.0, "in_transit": in_transit[listed],
        })

    def order_lines_frame(self, day: int) -> pd.DataFrame:
        i = self.open_lines
        s = self.world.series
        rem = self.l_qty[i] - self.l_shipped[i]
        status = np.where(self.l_shipped[i] > 0, "partial", np.where(self.l_promise[i] < day, "backordered", "open"))
        cust = self.world.frames["customer"]["customer_id"].to_numpy()
        return pd.DataFrame({
            "order_id": self.l_order_id[i], "line_no": self.l_line_no[i], "customer_id": cust[self.l_customer[i]],
            "sku": s["sku"].to_numpy()[self.l_series[i]], "location_id": s["location_id"].to_numpy()[self.l_series[i]],
            "qty_open": rem, "promise_date": self.date(self.l_promise[i]), "priority": self.l_priority[i], "status": status,
        })

    def purchase_lines_frame(self, day: int, idx: np.ndarray | None = None) -> pd.DataFrame:
        a = self.po
        if idx is None:
            idx = np.flatnonzero(a["open"] & (a["qty_open"] > 0))
        s = self.world.series
        confirmed = a["confirmed_day"][idx]
        confirmed_date = pd.Series(self.date(np.where(confirmed > -10**6, confirmed, 0))).where(confirmed > -10**6)
        return pd.DataFrame({
            "po_id": np.array(self.po_id, dtype=object)[idx] if len(idx) else np.array([], dtype=object), "line_no": a["line_no"][idx],
            "supplier_id": self.supplier_ids[a["supplier"][idx]], "sku": s["sku"].to_numpy()[a["series"][idx]],
            "location_id": s["location_id"].to_numpy()[a["series"][idx]], "qty_open": a["qty_open"][idx],
            "order_date": self.date(a["order_day"][idx]), "expected_date": self.date(a["expected_day"][idx]),
            "confirmed_date": confirmed_date.to_numpy(), "status": np.array(PO_STATUS, dtype=object)[a["status"][idx]],
        })

    def conservation(self) -> pd.DataFrame:
        """Per SKU-location: received, shipped and the change in on hand, which must balance."""
        lg = self.ledger
        return pd.DataFrame({
            "received": lg.received_po + lg.received_transfer, "shipped": lg.shipped_customer + lg.shipped_transfer,
            "delta_on_hand": self.on_hand - lg.on_hand_start,
        })

    def tiers(self) -> np.ndarray:
        return np.array(TIERS, dtype=object)[self.l_tier]
