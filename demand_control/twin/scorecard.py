"""The scorecard of an arm: every figure of DOMAIN.md's "Decision quality", over the simulated window only.

Conventions the definitions leave open, fixed here:
- Lines due in the window: first promise date inside the simulated days. A line is "due to ship" on the
  promise in force when it ships (a customer told of a later date is due then); promise_accuracy and the
  late lines use the first promise.
- Cover for overstock: stock over the SKU-location's mean daily demand due in the window (the same for
  every arm), against the policy's excess_days_of_cover.
- Stockout episode cause: the earliest of (a) the order day of a line left unmet on the episode's first
  day, (b) the day a scenario disruption touching the SKU-location became known, (c) the due day of a
  purchase line overdue then. It was known a lead time ahead when that day is at least the lane's lead time
  before the episode; the episode was flagged ahead when a projected_stockout or order_at_risk case on the
  SKU-location was open at some moment between the cause becoming known and one lead time before.
- A case is closed "without a person" when nobody decided any of its actions; an SLA breach is a case the
  product put in front of a person (`for_person` at some plan) whose SLA fell due in the window while it was
  open and no decision (person or policy) had been taken on it.
- signal_to_action_hours_p50: per disruption, hours from 06:00 of the day it became known to the first
  replenishment, expedite, transfer or customer notice executed on a SKU-location it touches; the median
  over disruptions that got one.
Figures that have no meaning for an arm (the order-point arm has no exception cases) are null.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from demand_control.twin.demand import TIERS
from demand_control.twin.run import ArmResult

KEYS = (
    "line_fill_rate", "unit_fill_rate", "fill_rate_by_tier", "avg_inventory_value", "stockout_day_share", "overstock_day_share",
    "promise_accuracy", "late_lines_notified_share", "flagged_ahead_share", "human_touches_per_100_per_week", "exceptions_per_week",
    "auto_resolved_share", "sla_breaches", "signal_to_action_hours_p50",
)
FLAG_TYPES = ("projected_stockout", "order_at_risk")
SIGNAL_ACTIONS = ("replenish", "expedite", "transfer", "notify_customer")


def _share(num: float, den: float) -> float | None:
    return None if den == 0 else round(float(num) / float(den), 4)


def _hours(ts, origin: pd.Timestamp) -> float:  # noqa: ANN001
    return (pd.Timestamp(ts) - origin) / pd.Timedelta(hours=1)


def stockout_matrix(result: ArmResult) -> np.ndarray:
    twin = result.twin
    return (twin.stock_eod <= 0) & twin.unmet


def episodes(result: ArmResult) -> pd.DataFrame:
    """Maximal runs of stockout days per SKU-location: series, start, end (inclusive)."""
    m = stockout_matrix(result)
    padded = np.vstack([np.zeros((1, m.shape[1]), bool), m, np.zeros((1, m.shape[1]), bool)]).astype(np.int8)
    diff = np.diff(padded, axis=0)
    start_day, start_series = np.nonzero(diff == 1)
    end_day, end_series = np.nonzero(diff == -1)
    starts = pd.DataFrame({"series": start_series, "start": start_day}).sort_values(["series", "start"]).reset_index(drop=True)
    ends = pd.DataFrame({"series": end_series, "end": end_day - 1}).sort_values(["series", "end"]).reset_index(drop=True)
    return starts.assign(end=ends["end"].to_numpy())


def _flagged_ahead(result: ArmResult, origin: pd.Timestamp) -> tuple[int, int]:
    twin = result.twin
    ep = episodes(result)
    if ep.empty:
        return 0, 0
    lead = np.maximum(np.rint(twin.lead), 1).astype(np.int64)
    # (a) unmet demand: lines due by the first day of the episode and still not complete that evening.
    lines = pd.DataFrame({"series": twin.l_series, "order_day": twin.l_order_day, "due": twin.l_first_promise, "complete": twin.l_complete_day})
    lines = lines.merge(ep[["series", "start"]], on="series")
    open_then = (lines["due"] <= lines["start"]) & ((lines["complete"] < 0) | (lines["complete"] > lines["start"]))
    cause = lines[open_then].groupby(["series", "start"])["order_day"].min().rename("cause")
    # (c) purchase lines overdue on the first day.
    po = twin.po.frame()
    po["due"] = np.where(po["confirmed_day"] > -10**6, po["confirmed_day"], po["expected_day"])
    po = po.merge(ep[["series", "start"]], on="series")
    overdue = (po["due"] < po["start"]) & ((po["received_day"] < 0) | (po["received_day"] > po["start"]))
    late = po[overdue].groupby(["series", "start"])["due"].min().rename("late")
    ep = ep.merge(cause, on=["series", "start"], how="left").merge(late, on=["series", "start"], how="left")
    # (b) disruptions known by then.
    known = [(k.day, s) for k in twin.known for s in k.series]
    if known:
        kd = pd.DataFrame(known, columns=["known", "series"])
        ep = ep.merge(kd, on="series", how="left")
        ep.loc[ep["known"] > ep["start"], "known"] = np.nan
        ep = ep.groupby(["series", "start", "end", "cause", "late"], dropna=False, as_index=False)["known"].min()
    else:
        ep["known"] = np.nan
    ep["K"] = ep[["cause", "late", "known"]].min(axis=1)
    ep["deadline"] = ep["start"] - lead[ep["series"].to_numpy()]
    eligible = ep[ep["K"].notna() & (ep["K"] <= ep["deadline"])]
    if eligible.empty or result.cases is None or result.cases.empty:
        return 0, len(eligible)
    cases = result.cases[result.cases["exception_type"].isin(FLAG_TYPES)].copy()
    cases["series"] = [twin.key.get(k, -1) for k in zip(cases["sku"], cases["location_id"])]
    cases["opened"] = [_hours(t, origin) / 24 for t in cases["opened_at"]]
    cases["closed"] = [np.inf if t is None or pd.isna(t) else _hours(t, origin) / 24 for t in cases["closed_at"]]
    hit = eligible.merge(cases[["series", "opened", "closed"]], on="series", how="left")
    ok = (hit["opened"] <= hit["deadline"]) & (hit["closed"] > hit["K"])
    flagged = hit[ok].drop_duplicates(["series", "start"])
    return len(flagged), len(eligible)


def scorecard(result: ArmResult, excess_days_of_cover: float) -> dict:
    """The scorecard of one arm (keys KEYS)."""
    twin = result.twin
    world = twin.world
    D, weeks = world.days, world.days / 7.0
    origin = pd.Timestamp(twin.instant(0, 0))
    due = (twin.l_first_promise >= 0) & (twin.l_first_promise < D)
    filled = twin.l_in_full_on_due[due]
    by_tier = {t: _share(filled[twin.l_tier[due] == i].sum(), (twin.l_tier[due] == i).sum()) for i, t in enumerate(TIERS)}
    complete_by_first = (twin.l_complete_day >= 0) & (twin.l_complete_day <= twin.l_first_promise)
    late = due & ~complete_by_first
    notified = twin.l_notified_hour < 24.0 * twin.l_first_promise

    listed = world.series["listed_day"].to_numpy()[None, :] <= np.arange(D)[:, None]
    stock = twin.stock_eod.astype(float)
    value = (stock * twin.unit_cost[None, :]).sum(axis=1)
    demand_due = np.bincount(twin.l_series[due], weights=twin.l_qty[due], minlength=twin.N)
    active_days = np.maximum(listed.sum(axis=0), 1)
    daily = demand_due / active_days
    over = stock > excess_days_of_cover * daily[None, :]
    stockout = stockout_matrix(result)

    flagged, eligible = _flagged_ahead(result, origin)
    card: dict = {
        "line_fill_rate": _share(filled.sum(), due.sum()),
        "unit_fill_rate": _share(twin.l_units_on_time[due].sum(), twin.l_qty[due].sum()),
        "fill_rate_by_tier": by_tier,
        "avg_inventory_value": round(float(value.mean()), 2),
        "stockout_day_share": _share((stockout & listed).sum(), listed.sum()),
        "overstock_day_share": _share((over & listed).sum(), listed.sum()),
        "promise_accuracy": _share(complete_by_first[due].sum(), due.sum()),
        "late_lines_notified_share": _share((late & notified).sum(), late.sum()),
        "flagged_ahead_share": _share(flagged, eligible),
        "human_touches_per_100_per_week": round(len(result.touches) / (twin.N / 100.0) / weeks, 3),
    }
    cases, decisions = result.cases, result.decisions
    if cases is None:
        card |= {"exceptions_per_week": {}, "auto_resolved_share": None, "sla_breaches": None}
    else:
        card["exceptions_per_week"] = {t: round(n / weeks, 2) for t, n in cases.groupby("exception_type").size().sort_index().items()}
        closed = cases[cases["closed_at"].notna()]
        human = set(zip(decisions.loc[decisions["human"], "exception_key"], decisions.loc[decisions["human"], "occurrence"]))
        without = [(k, o) not in human for k, o in zip(closed["exception_key"], closed["occurrence"])]
        card["auto_resolved_share"] = _share(sum(without), len(closed))
        # An SLA is a promise a person keeps: only cases the product put in front of one can breach it.
        presented = cases[cases["for_person"].astype(bool)] if "for_person" in cases else cases
        card["sla_breaches"] = _sla_breaches(presented, decisions, twin.instant(D, 0))
    card["signal_to_action_hours_p50"] = _signal_to_action(result)
    return {k: card[k] for k in KEYS}


def _sla_breaches(cases: pd.DataFrame, decisions: pd.DataFrame, end) -> int:  # noqa: ANN001
    first = decisions.groupby(["exception_key", "occurrence"])["at"].min() if len(decisions) else pd.Series(dtype=object)
    count = 0
    for row in cases.itertuples(index=False):
        due = row.sla_due_at
        if due is None or pd.isna(due) or pd.Timestamp(due) >= pd.Timestamp(end):
            continue
        if row.closed_at is not None and not pd.isna(row.closed_at) and pd.Timestamp(row.closed_at) <= pd.Timestamp(due):
            continue
        decided = first.get((row.exception_key, row.occurrence))
        if decided is None or pd.Timestamp(decided) > pd.Timestamp(due):
            count += 1
    return count


def _signal_to_action(result: ArmResult) -> float | None:
    twin = result.twin
    actions = pd.DataFrame(twin.actions, columns=["day", "at", "action_type", "series", "detail", "by"])
    actions = actions[actions["action_type"].isin(SIGNAL_ACTIONS)]
    hours = []
    for k in twin.known:
        known_at = pd.Timestamp(twin.instant(k.day))
        mine = actions[actions["series"].isin(set(int(s) for s in k.series))]
        after = [pd.Timestamp(t) for t in mine["at"] if pd.Timestamp(t) >= known_at]
        if after:
            hours.append((min(after) - known_at) / pd.Timedelta(hours=1))
    return None if not hours else round(float(np.median(hours)), 2)


def headline(card: dict) -> dict[str, float]:
    """The numeric figures (tiers and types flattened), for Dagster metadata and plots."""
    out: dict[str, float] = {}
    for key, value in card.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                if v is not None:
                    out[f"{key}.{sub}"] = float(v)
        elif value is not None and not (isinstance(value, float) and math.isnan(value)):
            out[key] = float(value)
    return out
