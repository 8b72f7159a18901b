"""The planner model: the people who decide what the policy leaves to them.

An item is a case the product puts in front of a person (`for_person`) whose presented action (the
worklist's: the recommended one, else the case's next customer notice awaiting a person) awaits approval and
has no decision yet. Each owner team works on working days (Mon-Fri, 09:00-17:00) and
decides at most `capacity_per_team_per_day` items a day, in the order the product presents them (its
worklist: the cases a person must act on, by expected loss × urgency), none sooner than `response_hours`
after it was first recommended. A decision approves the recommended action through the product's own approval path
(`services.approvals.record_click` + `decide`, as the CLI does), as a member of the role the policy names;
what is not decided waits and ages against its SLA. An action no role may approve is never decided.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import select

from demand_control.infra import clock
from demand_control.planning.policy import Policy
from demand_control.planning.vocabulary import AWAITING_APPROVAL, NO_ROLE
from demand_control.planning.worklist import worklist
from demand_control.resources.warehouse import Warehouse
from demand_control.schema.tables import action_decisions
from demand_control.services.approvals import decide, record_click

WORK_START, WORK_END = 9.0, 17.0


def presented_queue(warehouse: Warehouse) -> pd.DataFrame:
    """The items awaiting a person, in the order the product presents them (`planning.worklist`: the cases
    a person must act on, by priority): exception_key, occurrence, owner_team, severity, sku, location_id,
    action_id, action_type, approver_role, presented_at."""
    cases = warehouse.read("planning_exceptions")
    actions = warehouse.read("recommended_actions", columns=["action_id", "exception_key", "occurrence", "action_type", "rank", "policy_decision", "approver_role", "expected_impact", "created_at"])
    with warehouse.engine.connect() as conn:
        decided = set(conn.execute(select(action_decisions.c.action_id)).scalars())
    awaiting = actions[(actions["policy_decision"] == AWAITING_APPROVAL) & ~actions["action_id"].isin(decided)]
    items = worklist(cases, actions, decided=decided)
    # A case with nothing to approve (a stockout no action can reach) is read, not decided.
    items = items[items["action_id"].isin(awaiting["action_id"])]
    created = awaiting.set_index("action_id")["created_at"]
    items = items.assign(presented_at=pd.to_datetime(items["action_id"].map(created), utc=True))
    return items.reset_index(drop=True)


def choose(items: pd.DataFrame, day_start: dt.datetime, capacity: int, response_hours: float) -> pd.DataFrame:
    """The items each team decides on the working day starting `day_start` (midnight): the first `capacity`
    of its items that were presented at least `response_hours` before the end of the day, in presented
    order, each with the time it is decided (`decided_at`)."""
    if items.empty or capacity <= 0:
        return items.iloc[0:0].assign(decided_at=pd.Series(dtype="datetime64[ns, UTC]"))
    ready = items["presented_at"] + pd.Timedelta(hours=response_hours)
    end = pd.Timestamp(day_start) + pd.Timedelta(hours=WORK_END)
    eligible = items[ready <= end].copy()
    eligible["_ready"] = ready[ready <= end]
    eligible["_n"] = eligible.groupby("owner_team", sort=False).cumcount()
    chosen = eligible[eligible["_n"] < capacity].copy()
    # A team works through its items one after another over the day.
    slot = pd.to_timedelta((WORK_END - WORK_START) / max(capacity, 1) * chosen["_n"], unit="h")
    start = pd.Timestamp(day_start) + pd.Timedelta(hours=WORK_START)
    chosen["decided_at"] = pd.concat([chosen["_ready"], (start + slot).rename("_ready")], axis=1).max(axis=1).dt.ceil("s")
    return chosen.drop(columns=["_ready", "_n"])


def approve(warehouse: Warehouse, policy: Policy, item: pd.Series) -> tuple[str, str]:
    """Approve the item's action as a member of its approver role; (outcome, user). Without a role that
    may approve it nobody can: ("no_role", "")."""
    role = item.get("approver_role")
    members = policy.roles[role].members if role and role != NO_ROLE and role in policy.roles else []
    if not members:
        return "no_role", ""
    user = members[0]
    at = pd.Timestamp(item["decided_at"]).to_pydatetime()
    with clock.use(at):
        click = record_click(warehouse.engine, item["action_id"], "approve", user, "cli", f"twin:{item['action_id']}", at)
        outcome = decide(warehouse.engine, policy, click, at)
    return ("approved" if outcome.decision == "approved" and outcome.outcome == "decided" else outcome.outcome), user
