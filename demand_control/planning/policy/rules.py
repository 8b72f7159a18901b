"""The policy applied to frames: the owner of each exception, its SLA due time and severity, the autonomy
decision and approver role of each action, who may approve what, and which escalation steps are due. Each
function loops over the rules and roles of the policy (a handful), never over rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from demand_control.planning.inventory_common import require_columns
from demand_control.planning.policy.schema import FALLBACK_RULE, MATCH_COLUMNS, EscalationStep, Policy
from demand_control.planning.vocabulary import (
    ACTION_TYPES,
    AUTO_APPROVED,
    AWAITING_APPROVAL,
    CUSTOMER_ACTIONS,
    FACT_BASED_ACTIONS,
    NO_ROLE,
    SEVERITIES,
)

# The columns `assign_owners` and `decide_autonomy` add.
ROUTING_COLUMNS: tuple[str, ...] = ("owner_team", "owner_channel", "owner_user", "routing_rule")
AUTONOMY_COLUMNS: tuple[str, ...] = ("policy_decision", "approver_role", "policy_reasons")


def _as_text(values: pd.Series) -> pd.Series:
    """Values as text for matching against the YAML's lists; nulls stay null so they match no rule."""
    return values.astype(object).where(values.notna()).map(lambda v: v if v is None or isinstance(v, str) else str(v))


def assign_owners(exceptions: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """A copy of `exceptions` with owner_team, owner_channel, owner_user and routing_rule (the rule's name or
    "fallback"). The most specific matching rule wins (`OwnershipRule.specificity`: the most criteria, all of
    which hold, and at equal count the one naming the exception type); among equally specific rules the first
    in the file. A null value matches no criterion on its column."""
    require_columns(exceptions, list(MATCH_COLUMNS.values()), "exceptions")
    n = len(exceptions)
    best_rule = np.full(n, -1)
    best_score = np.full(n, -1)
    columns = {col: _as_text(exceptions[col]) for col in MATCH_COLUMNS.values()}
    for i, rule in enumerate(policy.owners.rules):
        hit = np.ones(n, dtype=bool)
        for criterion, allowed in rule.match.criteria.items():
            hit &= columns[MATCH_COLUMNS[criterion]].isin(allowed).to_numpy()
        # Strictly greater: an equally specific later rule does not displace an earlier one.
        better = hit & (rule.specificity > best_score)
        best_rule[better] = i
        best_score[better] = rule.specificity
    owners = [r.owner for r in policy.owners.rules] + [policy.owners.fallback]
    names = [r.name for r in policy.owners.rules] + [FALLBACK_RULE]
    pick = np.where(best_rule >= 0, best_rule, len(owners) - 1)
    out = exceptions.copy()
    out["owner_team"] = np.array([o.team for o in owners], dtype=object)[pick]
    out["owner_channel"] = np.array([o.channel for o in owners], dtype=object)[pick]
    out["owner_user"] = np.array([o.user for o in owners], dtype=object)[pick]
    out["routing_rule"] = np.array(names, dtype=object)[pick]
    return out


def _check_severities(severity: pd.Series) -> None:
    unknown = sorted(set(severity[~severity.isin(SEVERITIES)].astype(str)))
    if unknown:
        raise ValueError(f"unknown severities {unknown}; the policy knows {', '.join(SEVERITIES)}")


def sla_due_at(severity: pd.Series, first_seen: pd.Series, policy: Policy) -> pd.Series:
    """When the owner must have acted: first_seen plus the SLA hours of the severity, as timezone-aware UTC
    timestamps (naive first_seen values are taken as UTC). A null first_seen gives NaT."""
    _check_severities(severity)
    hours = severity.map({s: policy.sla.hours_for(s) for s in SEVERITIES}).astype(float)
    start = pd.to_datetime(first_seen, utc=True)
    return (start + pd.to_timedelta(hours.to_numpy(), unit="h")).rename("sla_due_at")


def severity_from(money_at_risk: pd.Series, customer_tier: pd.Series, policy: Policy, exception_type: pd.Series | None = None) -> pd.Series:
    """Severity from money at risk (each band's floor is inclusive; null money counts as none), then moved by
    the customer tier's bump, kept within critical..low, then raised to the type's floor (`severity_floor`)
    when `exception_type` is given. An unknown or null tier moves nothing."""
    bands = policy.thresholds.severity_bands
    money = pd.to_numeric(money_at_risk, errors="coerce").fillna(0.0).to_numpy(dtype=float)
    level = np.select([money >= bands.critical, money >= bands.high, money >= bands.medium], [0, 1, 2], default=3)
    bump = customer_tier.map(dict(policy.thresholds.tier_bump)).fillna(0).to_numpy(dtype=int)
    level = np.clip(level - bump, 0, len(SEVERITIES) - 1)
    if exception_type is not None:
        floors = {t: SEVERITIES.index(s) for t, s in policy.thresholds.severity_floor.items()}
        floor = exception_type.map(floors).fillna(len(SEVERITIES) - 1).to_numpy(dtype=int)
        level = np.minimum(level, floor)
    return pd.Series(np.array(SEVERITIES, dtype=object)[level], index=money_at_risk.index, name="severity")


def _fmt_amount(values: pd.Series) -> pd.Series:
    """Money as a planner writes it: thousands separators, cents only when there are cents."""
    v = pd.to_numeric(values, errors="coerce").astype(float)
    whole = v.map("{:,.0f}".format).astype(object)
    cents = v.map("{:,.2f}".format).astype(object)
    return whole.where((v - v.round(0)).abs() < 0.005, cents).where(v.notna(), "unknown").where(~np.isinf(v), "unlimited")


def _true(values: pd.Series) -> np.ndarray:
    """True where the flag is set; null is not set."""
    return values.astype("boolean").fillna(False).to_numpy(dtype=bool)


# Who requested an action the planner recommended: the system itself (a role member of that name, e.g. an
# automation account, is its requester and never its approver).
SYSTEM_REQUESTER = "planner-engine"


def _approver_roles(action_type: pd.Series, value: pd.Series, requested_by: pd.Series, policy: Policy,
                    category: pd.Series | None = None) -> pd.Series:
    """Per action, the role with the smallest value band that may approve its type, value and category and has
    a member other than the requester (a role whose only member asked for the action cannot approve it); ties
    go to the role listed first; NO_ROLE when no role can. An unknown value is covered only by an unlimited
    band, an unknown category only by a role not limited to categories."""
    n = len(action_type)
    best = np.full(n, NO_ROLE, dtype=object)
    best_band = np.full(n, np.inf)
    found = np.zeros(n, dtype=bool)
    amount = pd.to_numeric(value, errors="coerce").astype(float).fillna(np.inf).to_numpy()
    for name, role in policy.roles.items():
        members = set(role.members)
        if len(members) >= 2:
            has_other = np.ones(n, dtype=bool)
        elif len(members) == 1:
            has_other = (requested_by != next(iter(members))).to_numpy(dtype=bool)
        else:
            has_other = np.zeros(n, dtype=bool)
        in_scope = (category.isin(role.categories).to_numpy(dtype=bool) if category is not None else np.zeros(n, dtype=bool)) \
            if role.categories else np.ones(n, dtype=bool)
        covers = action_type.isin(role.may_approve).to_numpy() & (amount <= role.band) & has_other & in_scope
        better = covers & (~found | (role.band < best_band))
        best[better] = name
        best_band[better] = role.band
        found |= covers
    return pd.Series(best, index=action_type.index, name="approver_role")


def approver_role_for(policy: Policy, action_type: str, value: float | None, requested_by: str | None = SYSTEM_REQUESTER,
                      category: str | None = None) -> str:
    """The role that approves one action (as `decide_autonomy` routes it); NO_ROLE when no role can."""
    index = pd.RangeIndex(1)
    return str(_approver_roles(pd.Series([action_type], index=index, dtype=object), pd.Series([value], index=index, dtype=float),
                               pd.Series([requested_by], index=index, dtype=object), policy,
                               pd.Series([category], index=index, dtype=object)).iloc[0])


def decide_autonomy(actions: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """A copy of `actions` with policy_decision, approver_role and policy_reasons. An action is auto-approved
    only when every condition of `autonomy` holds: its type is auto-approvable, value ≤ the limit for its type,
    confidence ≥ min_confidence, its input data fresh, its forecast not degraded and its category not excluded.
    An unknown value, confidence, flag or (when categories are excluded) category counts against it: autonomy
    fails closed. Otherwise it awaits the role with the smallest value band that covers it (NO_ROLE if none).
    policy_reasons lists every reason against, or for an auto-approval every reason it was allowed."""
    require_columns(actions, ["action_type", "value", "confidence", "category", "data_fresh", "forecast_degraded"], "actions")
    unknown = sorted(set(actions.loc[~actions["action_type"].isin(ACTION_TYPES), "action_type"].astype(str)))
    if unknown:
        raise ValueError(f"unknown action types {unknown}; the policy knows {', '.join(ACTION_TYPES)}")
    auto = policy.autonomy
    action_type = actions["action_type"].astype(object)
    value = pd.to_numeric(actions["value"], errors="coerce").astype(float)
    confidence = pd.to_numeric(actions["confidence"], errors="coerce").astype(float)
    limit = action_type.map({a: auto.limit_for(a) for a in ACTION_TYPES}).astype(float)
    if auto.category_limits:
        ceiling = actions["category"].map(auto.category_limits).astype(float)
        limit = np.fmin(limit, ceiling)
    value_text, limit_text = _fmt_amount(value), _fmt_amount(limit)
    conf_text = confidence.map("{:.2f}".format).astype(object).where(confidence.notna(), "unknown")
    min_conf = f"{auto.min_confidence:.2f}"
    category = actions["category"].astype(object)

    approvable = action_type.isin(auto.auto_approvable).to_numpy()
    within = (value <= limit).to_numpy()
    confident = (confidence >= auto.min_confidence).to_numpy()
    fresh_known = actions["data_fresh"].notna().to_numpy()
    fresh = _true(actions["data_fresh"])
    # A degraded forecast stops what rests on the forecast; a notice of a revised date or a supplier chaser rests
    # on facts and goes ahead.
    fact_based = action_type.isin(FACT_BASED_ACTIONS).to_numpy()
    degraded_known = actions["forecast_degraded"].notna().to_numpy() | fact_based
    degraded = _true(actions["forecast_degraded"]) & ~fact_based
    # With exclusions configured, an action without a category cannot be shown to be outside them.
    category_known = category.notna().to_numpy() | (not auto.excluded_categories)
    excluded = category.isin(auto.excluded_categories).to_numpy() | ~category_known
    tier = actions["customer_tier"].astype(object) if "customer_tier" in actions else pd.Series(None, index=actions.index, dtype=object)
    for_a_person = (action_type.isin(CUSTOMER_ACTIONS) & tier.isin(auto.human_tiers)).to_numpy()
    allowed = approvable & within & confident & fresh & ~degraded & degraded_known & ~excluded & ~for_a_person & auto.enabled

    # Each check contributes its reason against (refusal) or for (allowed) the action; joined in a fixed order.
    checks: list[tuple[np.ndarray, pd.Series | str, pd.Series | str]] = [
        (np.full(len(actions), not auto.enabled), "auto-approval is switched off", ""),
        (~approvable, action_type + " is never auto-approved", action_type + " is auto-approvable"),
        (~within, np.where(value.isna(), "value unknown", "value " + value_text + " > limit " + limit_text + " for " + action_type),
         "value " + value_text + " ≤ limit " + limit_text + " for " + action_type),
        (~confident, np.where(confidence.isna(), "confidence unknown", "confidence " + conf_text + " < " + min_conf),
         "confidence " + conf_text + " ≥ " + min_conf),
        (~fresh, np.where(fresh_known, "stale data", "data freshness unknown"), "data fresh"),
        (degraded | ~degraded_known, np.where(degraded_known, "forecast degraded", "forecast health unknown"), "forecast healthy"),
        (excluded, np.where(category_known, "category " + category.astype(str) + " excluded from auto-approval", "category unknown"),
         np.where(category.notna(), "category " + category.astype(str) + " not excluded", "no categories excluded")),
        (for_a_person, "a " + tier.astype(str) + " customer's order: a person decides", ""),
    ]
    reasons = pd.Series("", index=actions.index, dtype=object)
    for failed, against, in_favour in checks:
        against_s = pd.Series(against, index=actions.index, dtype=object) if not isinstance(against, str) else against
        in_favour_s = pd.Series(in_favour, index=actions.index, dtype=object) if not isinstance(in_favour, str) else in_favour
        text = pd.Series(np.where(failed, against_s, np.where(allowed, in_favour_s, "")), index=actions.index, dtype=object)
        reasons = reasons + np.where(text != "", "; " + text, "")
    reasons = reasons.str.removeprefix("; ")

    # The requester as approvals reads it from the stored action: the recommending system unless a person asked.
    requested_by = (actions["requested_by"].astype(object).where(actions["requested_by"].notna(), SYSTEM_REQUESTER)
                    if "requested_by" in actions else pd.Series(SYSTEM_REQUESTER, index=actions.index, dtype=object))
    approver = _approver_roles(action_type, value, requested_by, policy, category)
    nobody = (~allowed) & (approver == NO_ROLE).to_numpy()
    reasons = reasons.where(~nobody, reasons + "; no role may approve " + action_type + " of " + value_text)

    out = actions.copy()
    out["policy_decision"] = np.where(allowed, AUTO_APPROVED, AWAITING_APPROVAL)
    out["approver_role"] = approver.where(~allowed, None)
    out["policy_reasons"] = reasons
    return out


def may_approve(policy: Policy, user: str, action_type: str, value: float, requested_by: str | None,
                category: str | None = None) -> tuple[bool, str]:
    """Whether `user` may approve an action of this type, value and category through any of their roles, and
    why (or why not). Nobody approves their own request; an unknown (NaN) value needs an unlimited band, an
    unknown category a role not limited to categories."""
    if action_type not in ACTION_TYPES:
        raise ValueError(f"unknown action type {action_type!r}; the policy knows {', '.join(ACTION_TYPES)}")
    amount = _fmt_amount(pd.Series([value])).iloc[0]
    if requested_by is not None and user == requested_by:
        return False, f"{user} requested this {action_type} and may not approve their own request"
    held = {name: role for name, role in policy.roles.items() if user in role.members}
    if not held:
        return False, f"{user} holds no approving role"
    typed = {name: role for name, role in held.items() if action_type in role.may_approve}
    if not typed:
        return False, f"{user}'s roles ({', '.join(held)}) may not approve {action_type}"
    scoped = {name: role for name, role in typed.items() if role.covers_category(category)}
    if not scoped:
        where = f"category {category}" if isinstance(category, str) else "an action of unknown category"
        covered = ", ".join(f"{name}: {', '.join(role.categories)}" for name, role in typed.items())
        return False, f"{user}'s roles may not approve {action_type} in {where} (they cover {covered})"
    typed = scoped
    v = math.inf if value is None or math.isnan(value) else float(value)
    covering = sorted(((role.band, name) for name, role in typed.items() if v <= role.band))
    if covering:
        band, name = covering[0]
        return True, f"{user} may approve {action_type} of {amount} as {name} (band {_fmt_amount(pd.Series([band])).iloc[0]})"
    bands = ", ".join(f"{name} up to {_fmt_amount(pd.Series([role.band])).iloc[0]}" for name, role in typed.items())
    return False, f"{action_type} of {amount} exceeds {user}'s band ({bands})"


def escalation_steps(policy: Policy, hours_overdue: float) -> list[EscalationStep]:
    """The escalation steps due once an exception is `hours_overdue` past its SLA (none before it is due)."""
    return [step for step in policy.escalation.steps if step.after_hours <= hours_overdue]


def decide_advisor_autonomy(actions: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """`decide_autonomy` for actions the optional advisor proposed: the same checks under the policy's `advisor`
    limits (its auto-approvable types, lower limits and a confidence threshold at least the policy's), so a
    proposal is never auto-approved where the planner's own would not be."""
    advisor = policy.advisor
    limits = policy.autonomy.model_copy(update={
        "auto_approvable": list(advisor.auto_approvable), "default_limit": advisor.default_limit,
        "limits": dict(advisor.limits), "min_confidence": max(advisor.min_confidence, policy.autonomy.min_confidence),
    })
    decided = decide_autonomy(actions, policy.model_copy(update={"autonomy": limits}))
    decided["policy_reasons"] = "advisor proposal: " + decided["policy_reasons"].astype(str)
    return decided
