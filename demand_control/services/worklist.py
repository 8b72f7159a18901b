"""The worklist as the warehouse holds it: one read that `demand-control worklist`, the Slack App Home and the
daily digest all show, so the three list the same cases in the same order (`planning.worklist.worklist`).

The order and the choice of cases are the last plan's (`planning_exceptions.for_person` and `priority`, written
by the plan or replan that ranked them). A case whose presented action a person has decided since then
(approved, rejected or snoozed: `action_decisions`) shows its next customer notice still awaiting a person,
or, with none, awaits nobody any more and is left out, as the next plan will leave it out. No Dagster import.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from demand_control.planning.policy import Policy
from demand_control.planning.vocabulary import PER_LINE_ACTIONS, ROOT_CAUSE_COLUMNS
from demand_control.planning.worklist import WORKLIST_COLUMNS, worklist
from demand_control.resources.warehouse import Warehouse
from demand_control.schema import tables

# What the surfaces show beyond the worklist's columns: taken from the case and its recommended action.
CASE_DETAIL_COLUMNS: tuple[str, ...] = (
    "state", "supplier_id", "customer_tier", "money_at_risk", "units_at_risk", "affected_orders", "affected_order_count", "sla_due_at",
    *ROOT_CAUSE_COLUMNS,
)
ACTION_DETAIL_COLUMNS: tuple[str, ...] = ("policy_decision", "confidence", "policy_reasons")
COLUMNS: tuple[str, ...] = (*WORKLIST_COLUMNS, *CASE_DETAIL_COLUMNS, *ACTION_DETAIL_COLUMNS)


def settled_action_ids(warehouse: Warehouse) -> set[str]:
    """Actions a person approved or rejected: they await nobody any more. A snooze is not among them: while it
    lasts its case is `snoozed` (and off the worklist); when it ends the case is open and the action awaits
    again."""
    decisions = warehouse.read("action_decisions", columns=["action_id", "decision"])
    return set(decisions.loc[decisions["decision"] != "snoozed", "action_id"])


def read_worklist(warehouse: Warehouse, owner_team: str | None = None, limit: int | None = None) -> pd.DataFrame:
    """The cases a person must act on, in the worklist's order (columns COLUMNS); `owner_team` keeps one
    team's, `limit` the first N."""
    cases = warehouse.read("planning_exceptions")
    if cases.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    # Cases stored before they were ranked count as for a person (as the notifier treats them).
    cases["for_person"] = cases["for_person"].astype("boolean").fillna(True) & (cases["state"] != "snoozed")
    table = tables.recommended_actions
    actions = warehouse.read("recommended_actions", where=(table.c.rank == 1) | table.c.action_type.in_(PER_LINE_ACTIONS))
    settled = settled_action_ids(warehouse)
    ordered = worklist(cases, actions, owner_team=owner_team, decided=settled)
    ordered = ordered[~ordered["action_id"].isin(settled)].copy()
    details = cases.drop_duplicates("exception_key").set_index("exception_key")
    for col in CASE_DETAIL_COLUMNS:
        ordered[col] = ordered["exception_key"].map(details[col]) if len(ordered) else None
    chosen = actions.drop_duplicates("action_id").set_index("action_id")
    for col in ACTION_DETAIL_COLUMNS:
        ordered[col] = ordered["action_id"].map(chosen[col]) if len(ordered) and len(chosen) else None
    ordered = ordered[list(COLUMNS)].reset_index(drop=True)
    return ordered.head(limit) if limit else ordered


def party_names(warehouse: Warehouse) -> dict[str, str]:
    """Customer and supplier ids → names (the staged master data), for 'Name (ID)' in planner-facing text."""
    names: dict[str, str] = {}
    for name, key in (("supplier", "supplier_id"), ("customer", "customer_id")):
        frame = warehouse.read(name, columns=[key, "name"]).dropna()
        names.update(zip(frame[key].astype(str), frame["name"].astype(str)))
    return names


def policy_teams(policy: Policy) -> list[str]:
    """Every team the policy routes to (the fallback first, then the rules' in file order)."""
    teams = [policy.owners.fallback.team, *(rule.owner.team for rule in policy.owners.rules)]
    return list(dict.fromkeys(teams))


@dataclass(frozen=True)
class Audience:
    """Who a person is on the worklist: the teams whose owner they are (routing rules, the fallback) and the
    roles they approve for (`roles.*.members`)."""

    user: str
    teams: tuple[str, ...]
    roles: tuple[str, ...]

    def keeps(self, items: pd.DataFrame) -> pd.Series:
        """Which worklist rows are this person's: their teams' cases, and the cases awaiting their role."""
        return items["owner_team"].isin(self.teams) | items["approver_role"].isin(self.roles)


def audiences(policy: Policy) -> list[Audience]:
    """Every owner user and role member of the policy with their teams and roles, in the policy's order."""
    teams: dict[str, list[str]] = {}
    roles: dict[str, list[str]] = {}
    for owner in [policy.owners.fallback, *(rule.owner for rule in policy.owners.rules)]:
        if owner.user:
            teams.setdefault(owner.user, [])
            if owner.team not in teams[owner.user]:
                teams[owner.user].append(owner.team)
    for role, spec in policy.roles.items():
        for member in spec.members:
            roles.setdefault(member, []).append(role)
    users = list(dict.fromkeys([*teams, *roles]))
    return [Audience(user, tuple(teams.get(user, ())), tuple(roles.get(user, ()))) for user in users]


def last_plan_day(warehouse: Warehouse) -> date | None:
    """The as-of date of the latest plan (full or scoped) that ranked the cases, if any."""
    runs = warehouse.read("plan_runs", columns=["as_of", "planned_at"])
    if runs.empty:
        return None
    latest = runs.sort_values("planned_at", kind="mergesort").iloc[-1]["as_of"]
    return pd.Timestamp(latest).date() if not pd.isna(latest) else None
