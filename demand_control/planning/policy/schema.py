"""The policy file's schema: the pydantic models that validate owners, SLA, escalation, autonomy, roles and
thresholds strictly, so a typo in the YAML is reported rather than guessed at."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from demand_control.planning.policy.currencies import ISO_4217
from demand_control.planning.vocabulary import SEVERITIES, ActionType, ExceptionType, Severity, Tier

MATCH_CRITERIA: tuple[str, ...] = ("exception_types", "category", "region", "supplier_id", "customer_tier")
# The exception column each match criterion reads.
MATCH_COLUMNS: dict[str, str] = {
    "exception_types": "exception_type",
    "category": "category",
    "region": "region",
    "supplier_id": "supplier_id",
    "customer_tier": "customer_tier",
}
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


def _currency(value: str) -> str:
    if value not in ISO_4217:
        raise ValueError("a currency is its three-letter ISO 4217 code in capitals, e.g. EUR, USD, GBP, CHF")
    return value


SlackChannel = Annotated[str, AfterValidator(_slack_channel)]
TeamName = Annotated[str, AfterValidator(_team)]
CurrencyCode = Annotated[str, AfterValidator(_currency)]
DEFAULT_CURRENCY = "EUR"


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
        """Twice the number of criteria, plus one when exception_types is among them: more criteria win, and
        between rules naming as many, the one that names the case's type (a supplier delay, a forecast
        alert) wins over one that names only where it happens (a category, a region)."""
        criteria = self.match.criteria
        return 2 * len(criteria) + (1 if "exception_types" in criteria else 0)


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
    # A tighter ceiling for some categories (short shelf life: a wrong order spoils): the lower of this and
    # the action type's limit applies.
    category_limits: dict[Name, Money] = Field(default_factory=dict)
    # Customer tiers whose orders a person always handles: what such a customer is told, offered or allotted
    # (notify_customer, substitute, allocate) is never auto-approved.
    human_tiers: list[Tier] = Field(default_factory=list)

    def limit_for(self, action_type: str) -> float:
        return float(self.limits.get(action_type, self.default_limit))  # type: ignore[call-overload]


class AdvisorAutonomy(_Strict):
    """The advisor's own, lower autonomy limits (issue 18): what an action the optional model proposed may be
    approved without a person. Its other conditions (fresh data, healthy forecast, excluded categories,
    human tiers) are the autonomy section's. Absent from the file: an advisor proposal is never auto-approved."""

    auto_approvable: list[ActionType] = Field(default_factory=list)
    default_limit: Money = 0.0
    limits: dict[ActionType, Money] = Field(default_factory=dict)
    # Never below the autonomy section's threshold (checked by Policy); a proposal also needs this confidence.
    min_confidence: float = Field(default=1.0, ge=0, le=1)

    def limit_for(self, action_type: str) -> float:
        return float(self.limits.get(action_type, self.default_limit))  # type: ignore[call-overload]


class Role(_Strict):
    """A role that approves actions: its members, the action types it may approve, its value band (the
    largest action value it may approve; none: no upper limit) and the product categories it covers (empty:
    every category; a role limited to categories does not approve an action whose category is unknown)."""

    members: list[Name] = Field(default_factory=list)
    may_approve: list[ActionType] = Field(min_length=1)
    max_value: Money | None = None
    categories: list[Name] = Field(default_factory=list)

    @property
    def band(self) -> float:
        return math.inf if self.max_value is None else float(self.max_value)

    def covers_category(self, category: object) -> bool:
        """Whether the role may act on an action of this category (None or NaN: unknown)."""
        if not self.categories:
            return True
        return isinstance(category, str) and category in self.categories


class Retention(_Strict):
    """How long personal data is kept before the retention job redacts it (services/retention.py)."""

    personal_data_days: int = Field(default=90, ge=1, le=3650)


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
    # Days ahead of the promise date customers order a line: [fewest, most].
    customer_order_lead_days: Annotated[list[Annotated[float, Field(ge=0, allow_inf_nan=False)]], Field(min_length=2, max_length=2)] = [7.0, 42.0]
    severity_bands: SeverityBands = SeverityBands(critical=50_000.0, high=10_000.0, medium=1_000.0)
    # Levels a customer tier raises severity by (1: medium → high); negative lowers it.
    tier_bump: dict[Tier, Annotated[int, Field(ge=-3, le=3)]] = Field(default_factory=lambda: {"strategic": 1, "key": 0, "standard": 0})
    # Exceptions without money at risk (a stale feed, bad data) still matter: the least severity per type.
    severity_floor: dict[ExceptionType, Severity] = Field(default_factory=lambda: {"stale_feed": "high", "data_quality": "medium"})

    @field_validator("customer_order_lead_days")
    @classmethod
    def _fewest_first(cls, days: list[float]) -> list[float]:
        if days[0] > days[1]:
            raise ValueError(f"customer_order_lead_days is [fewest, most], got {days}")
        return days

    def detector_kwargs(self) -> dict[str, Any]:
        kwargs = self.model_dump(exclude={"severity_bands", "tier_bump", "severity_floor"})
        kwargs["customer_order_lead_days"] = tuple(kwargs["customer_order_lead_days"])
        return kwargs


class Tolerances(_Strict):
    """What is recorded (for the KPIs and the audit) but not sent to a person: conditions the plan already
    covers, and signals too small to act on. A case a tolerance holds back keeps its reason in
    `suppressed_reason`; its actions still go through autonomy."""

    # A supplier delay the projected balance covers changes nothing a person must do.
    supplier_delay_when_covered: bool = False
    # A dip below safety stock that receipts already scheduled or approved restore within the protection window.
    below_safety_stock_when_receipts_restore: bool = False
    # A demand spike is for a person only when it lasts this many weeks in a row (the recent-demand signal)
    # and exceeds the forecast by at least this many units and this share of a week's forecast.
    demand_spike_min_weeks: int = Field(default=2, ge=1)
    demand_spike_min_units: float = Field(default=20.0, ge=0, allow_inf_nan=False)
    demand_spike_min_share: float = Field(default=0.25, ge=0, allow_inf_nan=False)
    # Excess stock is capital, not an emergency: its hours to act, whatever its severity; and an excess whose
    # holding cost until used is below this is not worth a person's time.
    excess_stock_sla_hours: float = Field(default=168.0, gt=0, allow_inf_nan=False)
    excess_stock_min_holding_cost: float = Field(default=250.0, ge=0, allow_inf_nan=False)
    # Yearly holding cost as a share of unit cost: the money of excess is what holding it costs until used.
    holding_cost_rate: float = Field(default=0.25, gt=0, le=5, allow_inf_nan=False)
    # A degraded forecast is for a person on the class-A SKU-locations: those making up this share of the
    # horizon's forecast value, largest first. Elsewhere it is recorded and does not hold the item's actions:
    # the tail runs on the policy within the autonomy limits (1.0: every degraded forecast to a person).
    forecast_degradation_value_share: float = Field(default=0.8, ge=0, le=1, allow_inf_nan=False)


class Policy(_Strict):
    version: Literal[1]
    # The company currency the warehouse's money is in: what planners read beside every amount.
    currency: CurrencyCode = DEFAULT_CURRENCY
    owners: Owners
    sla: Sla
    escalation: Escalation = Escalation()
    autonomy: Autonomy
    roles: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], Role] = Field(default_factory=dict)
    # The command line's operators: the identity the deployment authenticated (DEMAND_CONTROL_OPERATOR) → the
    # policy user they act as. Unlisted operators are refused.
    operators: dict[Name, Name] = Field(default_factory=dict)
    retention: Retention = Retention()
    thresholds: Thresholds = Thresholds()
    tolerances: Tolerances = Tolerances()
    advisor: AdvisorAutonomy = AdvisorAutonomy()

    _source: str = PrivateAttr(default="<in memory>")

    @property
    def source(self) -> str:
        """Where the policy was read from: a file path, or `<in memory>` when built in code."""
        return self._source

    @model_validator(mode="after")
    def _operators_act_as_role_members(self) -> Policy:
        members = {m for role in self.roles.values() for m in role.members}
        for operator, user in self.operators.items():
            if user not in members:
                raise ValueError(f"operators.{operator}: acts as {user!r}, who is not a member of any role")
        return self

    @model_validator(mode="after")
    def _advisor_within_autonomy(self) -> Policy:
        # The advisor's limits are lower than the system's own, never a way around them.
        advisor, auto = self.advisor, self.autonomy
        if advisor.min_confidence < auto.min_confidence:
            raise ValueError(f"advisor.min_confidence: {advisor.min_confidence:g} is below autonomy.min_confidence "
                             f"{auto.min_confidence:g}; an advisor proposal needs at least the policy's threshold")
        for action_type in advisor.auto_approvable:
            if action_type not in auto.auto_approvable:
                raise ValueError(f"advisor.auto_approvable: {action_type} is not in autonomy.auto_approvable")
            if advisor.limit_for(action_type) > auto.limit_for(action_type):
                raise ValueError(f"advisor limit for {action_type}: {advisor.limit_for(action_type):g} is above the autonomy limit "
                                 f"{auto.limit_for(action_type):g}")
        return self

    @model_validator(mode="after")
    def _roles_exist(self) -> Policy:
        for i, step in enumerate(self.escalation.steps):
            if step.notify_role is not None and step.notify_role not in self.roles:
                raise ValueError(
                    f"escalation.steps[{i}].notify_role: role {step.notify_role!r} is not defined under roles ({', '.join(self.roles) or 'none'})"
                )
        return self
