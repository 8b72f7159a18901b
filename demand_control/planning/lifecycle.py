"""The lifecycle of planning exceptions across re-runs: the operational record that survives every
re-plan, merged with what the rules detect now.

A detected key that is new opens an exception; one already active is updated in place (first seen is
kept, last seen moves, a change in its values is stamped); one that was resolved and fires again reopens as
a new occurrence; an active one that no longer fires is auto-resolved — but only if the run evaluated it
(a re-plan of a few SKU-locations must not resolve everything else). Planner states (acknowledged,
in_progress, snoozed) are kept while the condition persists; an expired snooze reopens.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from demand_control.planning.vocabulary import CASE_PRIORITY_COLUMNS, EXCEPTION_COLUMNS, ROOT_CAUSE_COLUMNS

ACTIVE_STATES: tuple[str, ...] = ("open", "acknowledged", "in_progress", "snoozed")
CLOSED_STATES: tuple[str, ...] = ("resolved", "auto_resolved")
STATES: tuple[str, ...] = (*ACTIVE_STATES, *CLOSED_STATES)

# Values copied from the latest detection onto the record; a change in any of VALUE_COLUMNS is a change a
# planner should hear about (the thread update of the next issue).
DETAIL_COLUMNS: tuple[str, ...] = (
    *(c for c in EXCEPTION_COLUMNS if c != "exception_key"),
    "severity",
    "owner_team",
    "owner_channel",
    "owner_user",
    "routing_rule",
    *ROOT_CAUSE_COLUMNS,
    *CASE_PRIORITY_COLUMNS,
)
VALUE_COLUMNS: tuple[str, ...] = ("severity", "trigger_values", "affected_orders", "owner_channel")
STATE_COLUMNS: tuple[str, ...] = (
    "state",
    "occurrence",
    "first_seen_at",
    "last_seen_at",
    "opened_at",
    "state_changed_at",
    "values_changed_at",
    "resolved_at",
    "snoozed_until",
    "sla_due_at",
    "last_change",
)
LIFECYCLE_COLUMNS: tuple[str, ...] = ("exception_key", *DETAIL_COLUMNS, *STATE_COLUMNS)


def empty_lifecycle() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in LIFECYCLE_COLUMNS})


def _utc(value: datetime | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _utc_column(values: pd.Series) -> pd.Series:
    out = pd.to_datetime(values, utc=True)
    return out


def update_lifecycle(
    previous: pd.DataFrame,
    detected: pd.DataFrame,
    now: datetime | pd.Timestamp,
    evaluated: pd.Series | None = None,
) -> pd.DataFrame:
    """The lifecycle records after this run (columns LIFECYCLE_COLUMNS), one per exception key ever seen.

    `previous` is the stored record (may be empty); `detected` the exceptions firing now, one per key, with
    the DETAIL_COLUMNS. `evaluated` is a boolean mask over `previous` rows marking the keys this run
    looked at; None means all of them (a full re-plan). `last_change` says what this run did to each row:
    opened, reopened, updated, unchanged, auto_resolved or untouched.
    """
    stamp = _utc(now)
    if detected["exception_key"].duplicated().any():
        dup = detected.loc[detected["exception_key"].duplicated(), "exception_key"].iloc[0]
        raise ValueError(f"detected exceptions must have unique keys; {dup!r} appears twice")
    prev = previous.copy() if not previous.empty else empty_lifecycle()
    for col in LIFECYCLE_COLUMNS:
        if col not in prev:
            prev[col] = None
    prev = prev[list(LIFECYCLE_COLUMNS)]
    in_scope = pd.Series(True, index=prev.index) if evaluated is None else evaluated.reindex(prev.index).astype("boolean").fillna(False).astype(bool)

    det = detected.copy()
    for col in DETAIL_COLUMNS:
        if col not in det:
            det[col] = None
    det = det[["exception_key", *DETAIL_COLUMNS]]
    merged = prev.merge(det, on="exception_key", how="outer", suffixes=("_old", ""), indicator=True)
    scope_by_key = dict(zip(prev["exception_key"], in_scope))
    merged["_in_scope"] = merged["exception_key"].map(scope_by_key).astype("boolean").fillna(True).astype(bool)

    fires = merged["_merge"] != "left_only"
    known = merged["_merge"] != "right_only"
    state = merged["state"].astype(object)
    active = state.isin(ACTIVE_STATES)
    for col in ("first_seen_at", "last_seen_at", "opened_at", "state_changed_at", "values_changed_at", "resolved_at", "snoozed_until", "sla_due_at"):
        merged[col] = _utc_column(merged[col])
    snooze_over = (state == "snoozed") & merged["snoozed_until"].notna() & (merged["snoozed_until"] <= stamp)

    opened = fires & ~known
    reopened = fires & known & ~active
    still = fires & known & active
    cleared = ~fires & active & merged["_in_scope"]

    changed = pd.Series(False, index=merged.index)
    for col in VALUE_COLUMNS:
        old, new = merged[f"{col}_old"].astype(object), merged[col].astype(object)
        changed |= still & ~((old == new) | (old.isna() & new.isna()))

    # Rows that do not fire keep their previous details; rows that fire take the new ones.
    for col in DETAIL_COLUMNS:
        merged[col] = merged[col].where(fires, merged[f"{col}_old"])

    new_state = state.copy()
    new_state[opened | reopened] = "open"
    new_state[still & snooze_over] = "open"
    new_state[cleared] = "auto_resolved"
    merged["state"] = new_state
    merged["occurrence"] = np.where(
        opened, 1, np.where(reopened, pd.to_numeric(merged["occurrence"], errors="coerce").fillna(0) + 1, pd.to_numeric(merged["occurrence"], errors="coerce"))
    )
    merged["first_seen_at"] = merged["first_seen_at"].where(~opened, stamp)
    merged["last_seen_at"] = merged["last_seen_at"].where(~fires, stamp)
    merged["opened_at"] = merged["opened_at"].where(~(opened | reopened), stamp)
    state_moved = opened | reopened | cleared | (still & snooze_over)
    merged["state_changed_at"] = merged["state_changed_at"].where(~state_moved, stamp)
    merged["values_changed_at"] = merged["values_changed_at"].where(~(opened | reopened | changed), stamp)
    merged["resolved_at"] = merged["resolved_at"].where(~cleared, stamp).where(~(opened | reopened), pd.NaT)
    merged["snoozed_until"] = merged["snoozed_until"].where(~(snooze_over | cleared | reopened), pd.NaT)
    merged["sla_due_at"] = merged["sla_due_at"].where(~(opened | reopened), pd.NaT)

    change = np.select(
        [opened, reopened, cleared, still & (changed | snooze_over), still],
        ["opened", "reopened", "auto_resolved", "updated", "unchanged"],
        default="untouched",
    )
    merged["last_change"] = change
    merged["occurrence"] = merged["occurrence"].astype("Int64")
    return merged[list(LIFECYCLE_COLUMNS)].sort_values("exception_key", kind="mergesort").reset_index(drop=True)
