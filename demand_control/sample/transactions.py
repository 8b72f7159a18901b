"""The sample distributor's open transactions: stock on hand, open customer order lines, open purchase
orders (overdue, slipped, draft and partly received ones planted among them) and CRM opportunities. Drawn
after the master data and the demand history, from what those draws left on the generator, in a fixed
order from the same random stream, so the landscape stays deterministic."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from demand_control.sample.catalogue import (
    HOME_DC_SHARE,
    LINE_SHARE,
    LINE_TIER_FACTOR,
    MAX_LINES_PER_PO,
    ORDER_TIER_WEIGHT,
    PRIORITY_RANGE,
    PROMISE_DAYS,
    REGIONS,
    REVIEW_DAYS,
)
from demand_control.sample.draws import codes, days_after, draw_category


class OpenTransactions:
    """The transaction half of the landscape generator (`generator._Generator` inherits it): reads the
    master data and demand the generator drew (the attributes below) and draws the open transactions."""

    rng: np.random.Generator
    S: int
    L: int
    N: int
    W: int
    as_of: dt.date
    _po: dict
    active: np.ndarray
    cat_order: np.ndarray
    cust_codes: np.ndarray
    cust_region: np.ndarray
    cust_tier: np.ndarray
    lane_lead: np.ndarray
    lane_lead_std: np.ndarray
    lane_moq: np.ndarray
    loc_codes: np.ndarray
    loc_region: np.ndarray
    qty: np.ndarray
    series_mean: np.ndarray
    series_recent: np.ndarray
    sku_codes: np.ndarray
    sku_pack: np.ndarray
    sku_supplier: np.ndarray
    sup_codes: np.ndarray
    sup_order_weekday: np.ndarray
    on_hand: np.ndarray

    def inventory_position(self) -> pd.DataFrame:
        """Stock of a periodic-review (R, s, S) process that mostly works, with its open POs (drawn here too,
        so that stock and pipeline agree; `purchase_order_lines` only lays them out).

        Per SKU-location: weekly demand rate d, lane lead time LT, review period R = 1 week, safety stock
        SS = z·sqrt(σ²·(LT + R) + d²·σ_LT²) and an order quantity Q of one to four weeks of demand (at least
        the lane MOQ, in whole packs), so an order goes out every Q/d weeks. Orders were placed on the
        supplier's weekday, the latest a random part of a cycle ago; those not yet due are the open POs, each
        expected one lead time after its order date. Stock available now is what keeps the projected
        balance at SS or above until every open PO has landed and through LT + R (the inventory position then
        lies between the reorder point and the order-up-to level), plus the demand noise since the last
        receipt. Planted trouble on top: stocked-out SKU-locations, excess stock without POs, overdue and
        slipped POs (see `_purchase_orders`), drafts and partial receipts.
        """
        rng, S, L, N = self.rng, self.S, self.L, self.N
        series_sku = np.repeat(np.arange(S), L)
        series_loc = np.tile(np.arange(L), S)
        d = np.maximum(np.maximum(self.series_recent, 0.5 * self.series_mean), 0.2)  # units per week
        daily = d / 7.0
        sigma = self.qty[:, -26:].std(axis=1) if self.W else np.zeros(N)
        lead_days = np.maximum(np.rint(self.lane_lead).astype(np.int64), 1)
        z = rng.uniform(1.3, 2.0, N)
        safety = z * np.sqrt(sigma**2 * (lead_days + REVIEW_DAYS) / 7.0 + (d * self.lane_lead_std / 7.0) ** 2)
        safety = np.minimum(safety, d * (lead_days + REVIEW_DAYS) / 7.0)  # slow movers: at most a second LT + R
        pack = self.sku_pack[series_sku]
        cycle_want = np.array([1.0, 2.0, 3.0, 4.0])[draw_category(rng, [0.3, 0.3, 0.2, 0.2], N)]
        q = np.ceil(np.maximum(self.lane_moq, d * cycle_want) / pack) * pack
        cycle = np.maximum(q / d, cycle_want)  # weeks between orders (>= 1, so order weeks never coincide)

        # Planted trouble: a few stocked out or nearly so, a few overstocked (which get no PO), the rest normal.
        u = rng.random(N)
        active = self.active[series_sku]
        stocked_out = active & (u < 0.03)
        low = active & (u >= 0.03) & (u < 0.045)
        excess = active & (u >= 0.045) & (u < 0.11)
        ordering = active & ~excess

        lines = self._purchase_orders(series_sku, series_loc, ordering, lead_days, cycle, q, pack)
        line_series, arrival, line_qty, received = lines
        # Balance needed now so that the projection stays at SS or above: before each open PO lands (lines in
        # arrival order, overdue ones landing today) and at the end of LT + R with all of them received.
        need = np.zeros(N)
        if len(line_series):
            before = np.cumsum(line_qty) - line_qty
            first = np.flatnonzero(np.r_[True, line_series[1:] != line_series[:-1]])
            before -= np.repeat(before[first], np.diff(np.r_[first, len(line_series)]))
            np.maximum.at(need, line_series, daily[line_series] * np.maximum(arrival, 0) - before)
        pipeline = np.bincount(line_series, weights=line_qty, minlength=N)
        need = np.maximum(need, daily * (lead_days + REVIEW_DAYS) - pipeline)
        noise = rng.normal(0.0, 1.0, N) * 0.35 * sigma * np.sqrt(np.minimum(cycle, 6.0))
        available = np.maximum(np.round(safety + need + noise), 0.0)
        available = np.where(excess, np.round(d * rng.uniform(15.0, 40.0, N)), available)
        available = np.where(low, np.round(d * rng.uniform(0.1, 0.6, N)), available)
        available = np.where(~active, np.round(d * rng.uniform(0.0, 8.0, N)), available)
        available = np.where(stocked_out, 0.0, available)
        # Part of a partially received PO line is on the shelf already.
        available += np.bincount(line_series, weights=received, minlength=N)
        # A quarter have a delivery on the way (a transfer or a shipped part of an order): no longer on hand.
        moving = active & (rng.random(N) < 0.25)
        in_transit = np.where(moving, np.minimum(np.round(d * rng.uniform(0.5, 2.0, N)), available), 0.0)
        on_hand = available - in_transit
        allocated = np.where(rng.random(N) < 0.6, np.floor(on_hand * rng.uniform(0.0, 0.35, N)), 0.0)
        on_hand = on_hand + allocated  # reserved units are on the shelf too, just not available
        self.on_hand = on_hand
        return pd.DataFrame(
            {
                "sku": self.sku_codes[series_sku],
                "location_id": self.loc_codes[series_loc],
                "as_of": days_after(self.as_of, np.zeros(N, dtype=np.int64)),
                "on_hand": on_hand.astype(np.float64),
                "allocated": allocated.astype(np.float64),
                "in_transit": in_transit.astype(np.float64),
            }
        )

    def customer_order_lines(self) -> pd.DataFrame:
        rng, S, L = self.rng, self.S, self.L
        lines_per_order = np.minimum(rng.geometric(0.35, max(10, int(0.6 * self.N / 2.8))), 12)
        n_orders = len(lines_per_order)
        tier_weight = np.array(ORDER_TIER_WEIGHT)[self.cust_tier]
        cust = draw_category(rng, tier_weight, n_orders)
        # Customers are served from a DC of their region when there is one.
        home = rng.integers(0, L, n_orders)
        cust_region = self.cust_region[cust]
        for r in range(len(REGIONS)):
            dcs = np.flatnonzero(self.loc_region == r)
            mine = cust_region == r
            if len(dcs) and mine.any():
                home[mine] = dcs[rng.integers(0, len(dcs), int(mine.sum()))]
        loc = np.where(rng.random(n_orders) < HOME_DC_SHARE, home, rng.integers(0, L, n_orders))
        overdue = rng.random(n_orders) < 0.06
        promise_offset = np.where(overdue, -rng.integers(1, 15, n_orders), rng.integers(*PROMISE_DAYS, n_orders))
        tier = self.cust_tier[cust]
        prio_lo = np.array(PRIORITY_RANGE[0])[tier]
        prio_hi = np.array(PRIORITY_RANGE[1])[tier]
        priority = rng.integers(prio_lo, prio_hi + 1)
        on_hold = rng.random(n_orders) < 0.05

        order = np.repeat(np.arange(n_orders), lines_per_order)
        starts = np.concatenate([[0], np.cumsum(lines_per_order)[:-1]])
        line_no = np.arange(len(order)) - starts[order] + 1
        n_lines = len(order)
        sku_weight = self.series_mean.reshape(S, L).sum(axis=1) * self.active + 1e-9
        sku = draw_category(rng, sku_weight, n_lines)
        series = sku * L + loc[order]
        d = np.maximum(self.series_mean[series], 0.5)
        qty = np.ceil(d * rng.uniform(*LINE_SHARE, n_lines) * np.array(LINE_TIER_FACTOR)[tier[order]])
        status = draw_category(rng, [0.76, 0.12, 0.09, 0.03], n_lines)
        stocked_out = self.on_hand[series] <= 0
        status = np.where(stocked_out & (rng.random(n_lines) < 0.7), 2, status)
        status = np.where(on_hold[order], 3, status)
        return pd.DataFrame(
            {
                "order_id": codes("SO-", 4_000_001 + np.arange(n_orders), 7)[order],
                "line_no": line_no.astype(np.int64),
                "customer_id": self.cust_codes[cust[order]],
                "sku": self.sku_codes[sku],
                "location_id": self.loc_codes[loc[order]],
                "qty_open": qty.astype(np.float64),
                "promise_date": days_after(self.as_of, promise_offset[order]),
                "priority": priority[order].astype(np.int64),
                "status": np.array(("open", "partial", "backordered", "on_hold"), dtype=object)[status],
            }
        )

    def _purchase_orders(
        self,
        series_sku: np.ndarray,
        series_loc: np.ndarray,
        ordering: np.ndarray,
        lead_days: np.ndarray,
        cycle: np.ndarray,
        q: np.ndarray,
        pack: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The open PO lines of the replenishment cycle, laid out into `self._po` for `purchase_order_lines`.

        Returns per line (sorted by SKU-location, then expected date): its SKU-location, the day it is
        expected (from as_of, <= 0: overdue), its open quantity and the part already received.
        """
        rng, N = self.rng, self.N
        sup_of = self.sku_supplier[series_sku]
        # Each supplier is ordered from on a fixed weekday; orders go out every `cycle` weeks, the latest
        # `phase` weeks ago. Those not yet due are open; for one in ten SKU-locations the one before is too,
        # overdue by up to three weeks (the ones a buyer chases).
        last_order_day = -((self.as_of.weekday() - self.sup_order_weekday[sup_of]) % 7)
        phase = rng.random(N) * cycle
        horizon = lead_days + last_order_day  # an order placed w weeks back is open while 7·w < horizon
        n_open = np.where(ordering, np.ceil(np.maximum(horizon / 7.0 - phase, 0.0) / cycle), 0).astype(np.int64)
        overdue = ordering & (rng.random(N) < 0.10)
        count = n_open + overdue
        series = np.repeat(np.arange(N), count)
        n = len(series)
        k = np.arange(n) - np.repeat(np.cumsum(count) - count, count)
        weeks_back = np.floor(phase[series] + k * cycle[series]).astype(np.int64)
        order_offset = last_order_day[series] - 7 * weeks_back
        expected_offset = order_offset + lead_days[series]
        # Overdue extras are the latest order already due (k == n_open) if it was due in the last three weeks;
        # the candidate bound is conservative, so keep only open lines and those extras.
        keep = (expected_offset > 0) | ((k == n_open[series]) & (expected_offset > -22))
        series, order_offset, expected_offset = series[keep], order_offset[keep], expected_offset[keep]
        n = len(series)
        sku, loc, sup = series_sku[series], series_loc[series], sup_of[series]
        qty = q[series]
        line_pack = pack[series]

        # Lines of one supplier, DC and order day form a PO (split past MAX_LINES_PER_PO lines).
        order = np.lexsort((sku, order_offset, loc, sup))
        series, sku, loc, sup, order_offset, expected_offset, qty, line_pack = (
            a[order] for a in (series, sku, loc, sup, order_offset, expected_offset, qty, line_pack)
        )
        new_group = np.ones(n, dtype=bool)
        if n:
            new_group[1:] = (sup[1:] != sup[:-1]) | (loc[1:] != loc[:-1]) | (order_offset[1:] != order_offset[:-1])
        group = np.cumsum(new_group) - 1
        group_start = np.flatnonzero(new_group)
        rank = np.arange(n) - group_start[group] if n else np.zeros(0, dtype=np.int64)
        new_po = new_group | (rank % MAX_LINES_PER_PO == 0)
        po = np.cumsum(new_po) - 1
        line_no = rank % MAX_LINES_PER_PO + 1
        n_po = int(po[-1]) + 1 if n else 0

        confirmed = rng.random(n_po) < 0.7
        kind = draw_category(rng, [0.55, 0.35, 0.10], n_po)
        slip = np.where(kind == 1, rng.integers(1, 22, n_po), np.where(kind == 2, -rng.integers(1, 4, n_po), 0))
        partial = confirmed & (rng.random(n_po) < 0.15)
        # A draft is mostly this week's order not sent yet; now and then an older one that was forgotten.
        this_week = np.zeros(n_po, dtype=bool)
        this_week[po] = order_offset > -7
        draft = ~confirmed & (rng.random(n_po) < np.where(this_week, 0.3, 0.05))
        status = np.where(partial, 3, np.where(confirmed, 2, np.where(draft, 0, 1)))
        # Part of a partially received line is in already.
        received = np.minimum(line_pack * np.floor(rng.random(n) * qty / line_pack), qty - line_pack)
        received = np.where(partial[po], np.maximum(received, 0.0), 0.0)
        confirmed_dates = days_after(self.as_of, expected_offset + slip[po])
        confirmed_dates[~confirmed[po]] = np.datetime64("NaT")
        self._po = pd.DataFrame(
            {
                "po_id": codes("PO-", 7_000_001 + np.arange(n_po), 7)[po],
                "line_no": line_no.astype(np.int64),
                "supplier_id": self.sup_codes[sup],
                "sku": self.sku_codes[sku],
                "location_id": self.loc_codes[loc],
                "qty_open": (qty - received).astype(np.float64),
                "order_date": days_after(self.as_of, order_offset),
                "expected_date": days_after(self.as_of, expected_offset),
                "confirmed_date": confirmed_dates,
                "status": np.array(("draft", "sent", "confirmed", "partial"), dtype=object)[status[po]],
            }
        )
        by_series = np.lexsort((expected_offset, series))
        return series[by_series], expected_offset[by_series], qty[by_series], received[by_series]

    def purchase_order_lines(self) -> pd.DataFrame:
        """The open PO lines drawn with the stock in `inventory_position` (which must run first)."""
        return self._po

    def pipeline_opportunities(self) -> pd.DataFrame:
        rng, S, L = self.rng, self.S, self.L
        n_opp = max(10, S // 8)
        k = np.minimum(rng.geometric(0.55, n_opp), min(5, S))
        opp = np.repeat(np.arange(n_opp), k)
        starts = np.concatenate([[0], np.cumsum(k)[:-1]])
        j = np.arange(len(opp)) - starts[opp]
        # An opportunity quotes neighbouring SKUs of one category (k <= S keeps them distinct).
        base = rng.integers(0, S, n_opp)
        sku = self.cat_order[(base[opp] + j) % S]
        cust = draw_category(rng, np.array([3.0, 2.0, 1.0])[self.cust_tier], n_opp)
        stage = draw_category(rng, [0.25, 0.20, 0.20, 0.15, 0.10, 0.10], n_opp)
        p_lo = np.array([0.05, 0.15, 0.35, 0.60, 1.0, 0.0])[stage]
        p_hi = np.array([0.15, 0.35, 0.60, 0.85, 1.0, 0.0])[stage]
        probability = np.round(rng.uniform(p_lo, p_hi), 2)
        expected = rng.integers(7, 85, n_opp)
        weekly = np.maximum(self.series_mean.reshape(S, L).sum(axis=1), 1.0)
        qty = np.ceil(weekly[sku] * rng.uniform(2.0, 12.0, len(opp)))
        return pd.DataFrame(
            {
                "opportunity_id": codes("OPP-", 1 + np.arange(n_opp), 6)[opp],
                "sku": self.sku_codes[sku],
                "customer_id": self.cust_codes[cust[opp]],
                "qty": qty.astype(np.float64),
                "probability": probability[opp].astype(np.float64),
                "expected_date": days_after(self.as_of, expected[opp]),
                "stage": np.array(
                    ("prospecting", "qualification", "proposal", "negotiation", "won", "lost"), dtype=object
                )[stage[opp]],
            }
        )
