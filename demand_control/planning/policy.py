"""The routing and policy engine: who owns an exception, when it is due, how severe it is, what may be
auto-approved and who approves the rest, read from a validated YAML policy file instead of code, so that a
partner or a new business unit adopts the workflow by editing a template rather than forking it.

The packaged default is `demand_control/policy/default_policy.yaml`; `DEMAND_CONTROL_POLICY` names a file
that replaces it. A bad file fails at load with one `PolicyError` naming the file, the field and the value.
The functions over frames loop over the rules and roles of the policy (a handful), never over rows.
"""

from __future__ import annotations

import math
import os
import re
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import numpy as np
import pandas as pd
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from demand_control.planning.inventory_common import require_columns

POLICY_ENV = "DEMAND_CONTROL_POLICY"
DEFAULT_POLICY_PACKAGE = "demand_control.policy"
DEFAULT_POLICY_FILE = "default_policy.yaml"

ActionType = Literal[
    "replenish",
    "expedite",
    "reschedule_out",
    "cancel",
    "transfer",
    "allocate",
    "notify_customer",
    "substitute",
    "supplier_followup",
    "review_forecast",
]
ExceptionType = Literal[
    "projected_stockout",
    "below_safety_stock",
    "demand_spike",
    "supplier_delay",
    "order_at_risk",
    "excess_stock",
    "forecast_degradation",
    "stale_feed",
    "data_quality",
]
Severity = Literal["critical", "high", "medium", "low"]
Tier = Literal["strategic", "key", "standard"]

ACTION_TYPES: tuple[str, ...] = get_args(ActionType)
EXCEPTION_TYPES: tuple[str, ...] = get_args(ExceptionType)
SEVERITIES: tuple[str, ...] = get_args(Severity)  # most severe first: the index is the level
TIERS: tuple[str, ...] = get_args(Tier)
MATCH_CRITERIA: tuple[str, ...] = ("exception_types", "category", "region", "supplier_id", "customer_tier")
# The exception column each match criterion reads.
MATCH_COLUMNS: dict[str, str] = {
    "exception_types": "exception_type",
    "category": "category",
    "region": "region",
    "supplier_id": "supplier_id",
    "customer_tier": "customer_tier",
}
ROUTING_COLUMNS: tuple[str, ...] = ("owner_team", "owner_channel", "owner_user", "routing_rule")
AUTONOMY_COLUMNS: tuple[str, ...] = ("policy_decision", "approver_role", "policy_reasons")
AUTO_APPROVED = "auto_approved"
AWAITING_APPROVAL = "awaiting_approval"
NO_ROLE = "none"
FALLBACK_RULE = "fallback"

Hours = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Money = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1, pattern=r"\S")]
_CHANNEL = re.compile(r"^(#[a-z0-9][a-z0-9._-]{0,79}|[CG][A-Z0-9]{6,})$")
_TEAM = re.compile(r"^team:[a-z0-9][a-z0-9_-]*$")


def _slack_channel(value: str) -> str:
    if not _CHANNEL.match(value):
        raise ValueError("a Slack channel is '#' and a lower-case name (quote it in YAML: \"#name\"), or a channel id such as C024BE91L")
    return value


def _team(value: str) -> str:
    # Dagster accepts owners as "team:name" or an email; routing owners are teams.
    if not _TEAM.match(value):
        raise ValueError("an owner team is written team:name, lower case (e.g. team:buying-fresh)")
    return value


SlackChannel = Annotated[str, AfterValidator(_slack_channel)]
TeamName = Annotated[str, AfterValidator(_team)]


class PolicyError(ValueError):
    """A policy file that cannot be used: missing, not YAML, or not a valid policy. The message names the file,
    and for a validation failure every bad field with its value."""


class _Strict(BaseModel):
    # strict: a quoted "5000" or "yes" in the YAML is a typo to report, not a value to guess at.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Owner(_Strict):
    """Who owns an exception: a team (as Dagster names owners), the Slack channel its alerts go to, and
    optionally one Slack user to mention."""

    team: TeamName
    channel: SlackChannel
    user: Name | None = None


class RuleMatch(_Strict):
    """The criteria of an ownership rule; each is a list of allowed values, and every criterion given must hold."""

    exception_types: list[ExceptionType] | None = Field(default=None, min_length=1)
    category: list[Name] | None = Field(default=None, min_length=1)
    region: list[Name] | None = Field(default=None, min_length=1)
    supplier_id: list[Name] | None = Field(default=None, min_length=1)
    customer_tier: list[Tier] | None = Field(default=None, min_length=1)

    @field_validator("supplier_id", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        # A YAML author writing `supplier_id: [4711]` means the id "4711"; ids are compared as text.
        if isinstance(value, list):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return value

    @property
    def criteria(self) -> dict[str, list[str]]:
        return {name: list(getattr(self, name)) for name in MATCH_CRITERIA if getattr(self, name) is not None}

    @model_validator(mode="after")
    def _not_empty(self) -> RuleMatch:
        if not self.criteria:
            raise ValueError(f"a rule must match on at least one of {', '.join(MATCH_CRITERIA)} (use owners.fallback for the rest)")
        return self


class OwnershipRule(_Strict):
    name: Name
    match: RuleMatch
    owner: Owner

    @property
    def specificity(self) -> int:
        return len(self.match.criteria)


class Owners(_Strict):
    fallback: Owner
    rules: list[OwnershipRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> Owners:
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique, repeated: {', '.join(dupes)}")
        if FALLBACK_RULE in names:
            raise ValueError(f"the rule name {FALLBACK_RULE!r} is reserved for owners.fallback")
        return self


class Sla(_Strict):
    """Hours from first seen to the time an owner must have acted, per severity (calendar hours)."""

    critical: Hours
    high: Hours
    medium: Hours
    low: Hours

    @model_validator(mode="after")
    def _ordered(self) -> Sla:
        hours = [getattr(self, s) for s in SEVERITIES]
        if any(a > b for a, b in zip(hours, hours[1:])):
            raise ValueError(f"a more severe exception cannot have more time than a less severe one, got {dict(zip(SEVERITIES, hours))}")
        return self

    def hours_for(self, severity: str) -> float:
        return float(getattr(self, severity))


class EscalationStep(_Strict):
    """Once an exception is `after_hours` past its SLA, notify a role, a channel and/or a user."""

    after_hours: Hours
    notify_role: Name | None = None
    channel: SlackChannel | None = None
    user: Name | None = None

    @model_validator(mode="after")
    def _notifies_someone(self) -> EscalationStep:
        if self.notify_role is None and self.channel is None and self.user is None:
            raise ValueError("an escalation step must name at least one of notify_role, channel, user")
        return self


class Escalation(_Strict):
    steps: list[EscalationStep] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ascending(self) -> Escalation:
        hours = [s.after_hours for s in self.steps]
        if any(a >= b for a, b in zip(hours, hours[1:])):
            raise ValueError(f"steps: after_hours must be strictly ascending, got {hours}")
        return self


class Autonomy(_Strict):
    """Bounded autonomy: what the system may approve by itself. Everything else waits for a role."""

    enabled: bool = True
    auto_approvable: list[ActionType] = Field(default_factory=list)
    default_limit: Money = 0.0
    limits: dict[ActionType, Money] = Field(default_factory=dict)
    min_confidence: float = Field(ge=0, le=1)
    excluded_categories: list[Name] = Field(default_factory=list)

    def limit_for(self, action_type: str) -> float:
        return float(self.limits.get(action_type, self.default_limit))  # type: ignore[call-overload]


class Role(_Strict):
    """A role that approves actions: its members, the action types it may approve and its value band (the
    largest action value it may approve; none: no upper limit)."""

    members: list[Name] = Field(default_factory=list)
    may_approve: list[ActionType] = Field(min_length=1)
    max_value: Money | None = None

    @property
    def band(self) -> float:
        return math.inf if self.max_value is None else float(self.max_value)


class SeverityBands(_Strict):
    """Money at risk at or above which an exception is critical / high / medium; below medium it is low."""

    critical: Money
    high: Money
    medium: Money

    @model_validator(mode="after")
    def _descending(self) -> SeverityBands:
        if not self.critical >= self.high >= self.medium:
            raise ValueError(f"severity bands must satisfy critical ≥ high ≥ medium, got {self.critical:g}, {self.high:g}, {self.medium:g}")
        return self


class Thresholds(_Strict):
    """The knobs of the exception detector. The detector fields carry the names of
    `planning.exceptions.ExceptionThresholds`, so `ExceptionThresholds(**policy.thresholds.detector_kwargs())`
    plus the two the planning run sets from its own configuration: the review period (inventory config) and
    the degradation ratio (the forecast settings, shared with the forecast_degraded check)."""

    below_safety_stock_consecutive_buckets: int = Field(default=2, ge=1)
    demand_spike_k_sigma: float = Field(default=3.0, gt=0, allow_inf_nan=False)
    pipeline_surge_share: float = Field(default=0.5, gt=0, allow_inf_nan=False)
    excess_days_of_cover: float = Field(default=120.0, gt=0, allow_inf_nan=False)
    data_quality_quarantine_share: float = Field(default=0.02, ge=0, le=1)
    default_lead_time_days: float = Field(default=14.0, gt=0, allow_inf_nan=False)
    severity_bands: SeverityBands = SeverityBands(critical=50_000.0, high=10_000.0, medium=1_000.0)
    # Levels a customer tier raises severity by (1: medium → high); negative lowers it.
    tier_bump: dict[Tier, Annotated[int, Field(ge=-3, le=3)]] = Field(default_factory=lambda: {"strategic": 1, "key": 0, "standard": 0})
    # Exceptions without money at risk (a stale feed, bad data) still matter: the least severity per type.
    severity_floor: dict[ExceptionType, Severity] = Field(default_factory=lambda: {"stale_feed": "high", "data_quality": "medium"})

    def detector_kwargs(self) -> dict[str, Any]:
        return self.model_dump(exclude={"severity_bands", "tier_bump", "severity_floor"})


class Policy(_Strict):
    version: Literal[1]
    owners: Owners
    sla: Sla
    escalation: Escalation = Escalation()
    autonomy: Autonomy
    roles: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], Role] = Field(default_factory=dict)
    thresholds: Thresholds = Thresholds()

    _source: str = PrivateAttr(default="<in memory>")

    @property
    def source(self) -> str:
        """Where the policy was read from: a file path, or `<in memory>` when built in code."""
        return self._source

    @model_validator(mode="after")
    def _roles_exist(self) -> Policy:
        for i, step in enumerate(self.escalation.steps):
            if step.notify_role is not None and step.notify_role not in self.roles:
                raise ValueError(
                    f"escalation.steps[{i}].notify_role: role {step.notify_role!r} is not defined under roles ({', '.join(self.roles) or 'none'})"
                )
        return self


def _format_loc(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if part == "[key]":
            path += " (key)"
        elif isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _yaml_line(text: str, loc: tuple[int | str, ...]) -> int | None:
    """The line (1-based) in the YAML of a pydantic error location (of the key, for a mapping entry; of the
    nearest existing parent for a missing field), for the message."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if part == "[key]":
            break
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)), None)
            if pair is None:
                break
            line, node = pair[0].start_mark.line + 1, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _rule_name(data: Any, loc: tuple[int | str, ...]) -> str | None:
    """The name of the innermost named list item (an ownership rule) along `loc`, to say which rule is bad."""
    name = None
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(part, int) and isinstance(data, dict) and isinstance(data.get("name"), str):
            name = data["name"]
    return name


def _validation_message(source: str, error: ValidationError, text: str, data: Any) -> str:
    lines = []
    for err in error.errors(include_url=False):
        loc = err["loc"]
        if not loc:
            # A check across sections (Policy's own validator): its message names the field.
            lines.append(f"  {err['msg'].removeprefix('Value error, ')}")
            continue
        path = _format_loc(loc)
        name = _rule_name(data, loc)
        line = _yaml_line(text, loc)
        where = path + (f" (rule {name!r})" if name else "") + (f" at line {line}" if line else "")
        if err["type"] == "extra_forbidden":
            lines.append(f"  {where}: unknown key (a typo? not a field here), value {_short_repr(err['input'])}")
        elif err["type"] == "missing":
            lines.append(f"  {where}: required, missing")
        elif isinstance(err["input"], (dict, list)) and err["type"] == "value_error":
            # A check across fields: its message names the values; repeating the whole section is noise.
            lines.append(f"  {where}: {err['msg'].removeprefix('Value error, ')}")
        else:
            lines.append(f"  {where}: {err['msg'].removeprefix('Value error, ')} (got {_short_repr(err['input'])})")
    count = len(lines)
    return f"invalid policy {source}: {count} error{'s' if count > 1 else ''}\n" + "\n".join(lines)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a repeated key: PyYAML keeps the last silently, and a policy where the second
    `replenish:` limit wins over the first is a typo that should not reach production."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"found duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def parse_policy(text: str, source: str = "<in memory>") -> Policy:
    """Validate policy YAML text; `source` names it in errors and in `Policy.source`."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        context_mark = getattr(exc, "context_mark", None)
        if context and context_mark is not None and context_mark.line != getattr(mark, "line", None):
            context += f" started at line {context_mark.line + 1}"
        raise PolicyError(f"invalid YAML in policy {source}{where}: {problem}" + (f" ({context})" if context else "")) from None
    if data is None:
        raise PolicyError(f"policy {source} is empty")
    if not isinstance(data, dict):
        raise PolicyError(f"policy {source} must be a mapping of sections at the top level, got {type(data).__name__}")
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_validation_message(source, exc, text, data)) from None
    policy._source = source
    return policy


def load_policy(path: str | os.PathLike[str] | None = None) -> Policy:
    """The policy from `path`; without one from the file `$DEMAND_CONTROL_POLICY` names, else the packaged
    default. Raises `PolicyError` for a missing, unreadable or invalid file."""
    if path is None and os.environ.get(POLICY_ENV):
        path, origin = os.environ[POLICY_ENV], f" (named by ${POLICY_ENV})"
    else:
        origin = ""
    if path is None:
        resource = files(DEFAULT_POLICY_PACKAGE).joinpath(DEFAULT_POLICY_FILE)
        return parse_policy(resource.read_text(encoding="utf-8"), str(resource))
    source = str(Path(path))
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"policy file {source}{origin} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"policy file {source}{origin} cannot be read: {exc}") from None
    return parse_policy(text, source)


def _as_text(values: pd.Series) -> pd.Series:
    """Values as text for matching against the YAML's lists; nulls stay null so they match no rule."""
    return values.astype(object).where(values.notna()).map(lambda v: v if v is None or isinstance(v, str) else str(v))


def assign_owners(exceptions: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """A copy of `exceptions` with owner_team, owner_channel, owner_user and routing_rule (the rule's name or
    "fallback"). The most specific matching rule wins (the one with the most criteria, all of which hold);
    among equally specific rules the first in the file. A null value matches no criterion on its column."""
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


def _approver_roles(action_type: pd.Series, value: pd.Series, requested_by: pd.Series, policy: Policy) -> pd.Series:
    """Per action, the role with the smallest value band that may approve its type and value and has a member
    other than the requester (a role whose only member asked for the action cannot approve it); ties go to
    the role listed first; NO_ROLE when no role can. An unknown value is covered only by an unlimited band."""
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
        covers = action_type.isin(role.may_approve).to_numpy() & (amount <= role.band) & has_other
        better = covers & (~found | (role.band < best_band))
        best[better] = name
        best_band[better] = role.band
        found |= covers
    return pd.Series(best, index=action_type.index, name="approver_role")


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
    value_text, limit_text = _fmt_amount(value), _fmt_amount(limit)
    conf_text = confidence.map("{:.2f}".format).astype(object).where(confidence.notna(), "unknown")
    min_conf = f"{auto.min_confidence:.2f}"
    category = actions["category"].astype(object)

    approvable = action_type.isin(auto.auto_approvable).to_numpy()
    within = (value <= limit).to_numpy()
    confident = (confidence >= auto.min_confidence).to_numpy()
    fresh_known = actions["data_fresh"].notna().to_numpy()
    fresh = _true(actions["data_fresh"])
    degraded_known = actions["forecast_degraded"].notna().to_numpy()
    degraded = _true(actions["forecast_degraded"])
    # With exclusions configured, an action without a category cannot be shown to be outside them.
    category_known = category.notna().to_numpy() | (not auto.excluded_categories)
    excluded = category.isin(auto.excluded_categories).to_numpy() | ~category_known
    allowed = approvable & within & confident & fresh & ~degraded & degraded_known & ~excluded & auto.enabled

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
    ]
    reasons = pd.Series("", index=actions.index, dtype=object)
    for failed, against, in_favour in checks:
        against_s = pd.Series(against, index=actions.index, dtype=object) if not isinstance(against, str) else against
        in_favour_s = pd.Series(in_favour, index=actions.index, dtype=object) if not isinstance(in_favour, str) else in_favour
        text = pd.Series(np.where(failed, against_s, np.where(allowed, in_favour_s, "")), index=actions.index, dtype=object)
        reasons = reasons + np.where(text != "", "; " + text, "")
    reasons = reasons.str.removeprefix("; ")

    requested_by = actions["requested_by"].astype(object) if "requested_by" in actions else pd.Series(None, index=actions.index, dtype=object)
    approver = _approver_roles(action_type, value, requested_by, policy)
    nobody = (~allowed) & (approver == NO_ROLE).to_numpy()
    reasons = reasons.where(~nobody, reasons + "; no role may approve " + action_type + " of " + value_text)

    out = actions.copy()
    out["policy_decision"] = np.where(allowed, AUTO_APPROVED, AWAITING_APPROVAL)
    out["approver_role"] = approver.where(~allowed, None)
    out["policy_reasons"] = reasons
    return out


def may_approve(policy: Policy, user: str, action_type: str, value: float, requested_by: str | None) -> tuple[bool, str]:
    """Whether `user` may approve an action of this type and value through any of their roles, and why (or
    why not). Nobody approves their own request; an unknown (NaN) value needs an unlimited band."""
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
