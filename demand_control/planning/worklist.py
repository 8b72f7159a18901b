"""Which cases need a person, and in what order: the ranked worklist a planner trusts.

A case reaches a person only when a person must act: no tolerance holds it back, it is not a symptom of
another case (`cause_key`), and its presented action awaits approval — or nothing automatic can act on it (a
stale feed, a stockout no order can reach any more). The presented action is the recommended one (rank 1)
while it awaits a person; once it is decided or went ahead automatically, the case's next customer notice
still awaiting a person (notices are one per order line, each its own decision, not alternatives: a
strategic customer whose notice ranked second must still hear). Everything else is recorded, counted in
the KPIs and audited, and the policy's decisions run it.

Cases are ranked by expected loss × urgency (Lokad's prioritised decision lists, frePPLe's weighted problem
list): shortage money is the lost margin weighted by the strictest customer tier waiting; excess money is
the holding cost of the stock beyond need, kept apart and on a weekly cadence; urgency halves with every week
between now and the date the recommended action must be taken by. The Slack App Home, the daily digest and
`demand-control worklist` all show this one order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from demand_control.planning.inventory_common import as_timestamp
from demand_control.planning.vocabulary import AWAITING_APPROVAL, PER_LINE_ACTIONS, TIER_WEIGHT

SHORTAGE_TYPES: tuple[str, ...] = (
    "replenishment_due", "projected_stockout", "below_safety_stock", "order_at_risk", "supplier_delay", "demand_spike",
)
EXCESS_TYPES: tuple[str, ...] = ("excess_stock",)
URGENCY_HALF_LIFE_DAYS = 7.0
WORKLIST_COLUMNS: tuple[str, ...] = (
    "exception_key", "occurrence", "exception_type", "severity", "owner_team", "owner_channel", "owner_user", "sku", "location_id",
    "sentence", "loss_kind", "expected_loss", "act_by", "priority", "last_change", "action_id", "action_type", "expected_impact",
    "approver_role",
)


CASE_KEYS: list[str] = ["exception_key", "occurrence"]


def presented_actions(actions: pd.DataFrame, decided: set[str] | frozenset[str] = frozenset()) -> pd.DataFrame:
    """One action per case, the one a person is shown (see the module docstring), with `_awaits` (it awaits a
    person). `actions`: action_id, exception_key, occurrence, rank, action_type, policy_decision, …; `decided`:
    ids of actions a person already decided. A case whose candidates all went ahead or were decided presents
    its rank-1 action, awaiting nobody."""
    acts = actions.assign(occurrence=pd.to_numeric(actions["occurrence"], errors="coerce"))
    candidates = acts[(acts["rank"] == 1) | acts["action_type"].isin(PER_LINE_ACTIONS)].copy()
    candidates["_awaits"] = (candidates["policy_decision"] == AWAITING_APPROVAL) & ~candidates["action_id"].isin(decided)
    # Awaiting first, then by rank; ties (a re-run's duplicate rank) by action id, as the surfaces always did.
    candidates = candidates.assign(_waiting_last=~candidates["_awaits"]).sort_values([*CASE_KEYS, "_waiting_last", "rank", "action_id"], kind="mergesort")
    first = candidates.drop_duplicates(CASE_KEYS).drop(columns="_waiting_last")
    # Nothing awaits: the case shows its recommended action (a decided one drops it from the surfaces).
    return first[first["_awaits"] | (first["rank"] == 1)]


def rank_cases(exceptions: pd.DataFrame, actions: pd.DataFrame, as_of: pd.Timestamp | str, decided: set[str] | frozenset[str] = frozenset()) -> pd.DataFrame:
    """The cases with for_person, loss_kind, expected_loss, act_by and priority (see the module docstring).

    `exceptions`: exception_key, occurrence, exception_type, customer_tier, money_at_risk, suppressed_reason,
    cause_key, sla_due_at; `actions`: action_id, exception_key, occurrence, rank, policy_decision, order_by,
    needed_by; `decided`: ids of actions a person already decided (they await nobody any more).
    """
    now = as_timestamp(as_of)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    out = exceptions.copy()
    kind = np.select([out["exception_type"].isin(SHORTAGE_TYPES), out["exception_type"].isin(EXCESS_TYPES)], ["shortage", "excess"], "none")
    out["loss_kind"] = kind
    weight = out["customer_tier"].map(TIER_WEIGHT).astype(float).fillna(TIER_WEIGHT["standard"])
    money = pd.to_numeric(out["money_at_risk"], errors="coerce").fillna(0.0).astype(float)
    out["expected_loss"] = np.where(kind == "shortage", money * weight, np.where(kind == "excess", money, 0.0))

    keys = CASE_KEYS
    if actions.empty:
        first = pd.DataFrame(columns=[*keys, "_awaits", "_act_by"])
        any_action = pd.DataFrame(columns=[*keys, "_acts"])
    else:
        acts = actions.assign(occurrence=pd.to_numeric(actions["occurrence"], errors="coerce"))
        first = presented_actions(acts, decided)
        when = pd.to_datetime(first["order_by"]).fillna(pd.to_datetime(first["needed_by"]))
        first = first.assign(_act_by=when.dt.tz_localize("UTC") if when.dt.tz is None else when.dt.tz_convert("UTC"))[[*keys, "_awaits", "_act_by"]]
        any_action = acts.groupby(keys, as_index=False).size().rename(columns={"size": "_acts"})
    out["occurrence"] = pd.to_numeric(out["occurrence"], errors="coerce")
    out = out.merge(first, on=keys, how="left").merge(any_action, on=keys, how="left")
    awaits = out["_awaits"].astype("boolean").fillna(False).astype(bool)
    nothing_automatic = out["_acts"].isna()
    # A shortage nothing can reach but the SKU-location's routine order (no transfer, no expedite) is that
    # order's symptom: the plan already does all there is to do.
    routine = out.loc[out["exception_type"] == "replenishment_due", ["sku", "location_id", "exception_key"]].rename(columns={"exception_key": "_routine"})
    out = out.merge(routine.drop_duplicates(["sku", "location_id"]), on=["sku", "location_id"], how="left")
    only_the_order = nothing_automatic.to_numpy() & out["exception_type"].isin(["projected_stockout", "below_safety_stock"]).to_numpy() & out["_routine"].notna().to_numpy()
    out["cause_key"] = out["cause_key"].astype(object).where(~(only_the_order & out["cause_key"].isna()), out["_routine"])
    out = out.drop(columns="_routine")
    held_back = out["suppressed_reason"].notna() | out["cause_key"].notna()
    # A snoozed case waits for its snooze to end (the lifecycle reopens it), not for a person.
    snoozed = (out["state"] == "snoozed").to_numpy() if "state" in out else np.zeros(len(out), dtype=bool)
    out["for_person"] = ~held_back & (awaits | nothing_automatic) & ~snoozed

    sla = pd.to_datetime(out["sla_due_at"], utc=True)
    act_by = pd.to_datetime(out["_act_by"], utc=True)
    # Excess is capital on a weekly cadence: its own SLA, not an order date, says when it must be looked at.
    out["act_by"] = act_by.where((kind != "excess") & act_by.notna(), sla).fillna(sla)
    days = ((out["act_by"] - now) / pd.Timedelta(days=1)).clip(lower=0).fillna(0.0)
    out["priority"] = out["expected_loss"] * np.power(0.5, days / URGENCY_HALF_LIFE_DAYS)
    return out.drop(columns=["_awaits", "_act_by", "_acts"])


def presented_order(cases: pd.DataFrame) -> pd.DataFrame:
    """Cases in the one order every surface shows them: highest priority first, then the more severe, then by
    key (stable)."""
    level = cases["severity"].map({"critical": 0, "high": 1, "medium": 2, "low": 3}).fillna(4)
    priority = pd.to_numeric(cases["priority"], errors="coerce").fillna(0.0)
    return cases.assign(_p=-priority, _l=level).sort_values(["_p", "_l", "exception_key"], kind="mergesort").drop(columns=["_p", "_l"])


def worklist(
    cases: pd.DataFrame, actions: pd.DataFrame, owner_team: str | None = None, limit: int | None = None, decided: set[str] | frozenset[str] = frozenset()
) -> pd.DataFrame:
    """The cases a person must act on (`for_person`), in presented order, each with its presented action
    (`presented_actions`; columns WORKLIST_COLUMNS); `owner_team` keeps one team's, `limit` the first N,
    `decided` the actions a person decided since the cases were ranked."""
    todo = cases[cases["for_person"].astype("boolean").fillna(False).astype(bool)]
    if owner_team:
        todo = todo[todo["owner_team"] == owner_team]
    top = presented_actions(actions, decided) if len(actions) else actions.assign(_awaits=pd.Series(dtype=bool))
    cols = ["exception_key", "occurrence", "action_id", "action_type", "expected_impact", "approver_role"]
    merged = todo.merge(top[cols].assign(occurrence=pd.to_numeric(top["occurrence"], errors="coerce")), on=["exception_key", "occurrence"], how="left")
    merged = presented_order(merged)
    for col in WORKLIST_COLUMNS:
        if col not in merged:
            merged[col] = None
    merged = merged[list(WORKLIST_COLUMNS)].reset_index(drop=True)
    return merged.head(limit) if limit else merged
