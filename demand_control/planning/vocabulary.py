"""The planning vocabulary, defined once: the action types, the exception taxonomy and the columns every
exception carries, severities, customer tiers and the policy's decisions, shared by detection,
recommendation, the policy engine and the services that act on their output."""

from __future__ import annotations

from typing import Literal, get_args

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
    "replenishment_due",
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
# Why an exception happened, from a fixed vocabulary: the deterministic classifier and the optional advisor
# may only name one of these (issue 18).
RootCause = Literal[
    "supplier_chronic_lateness",
    "supplier_one_off_delay",
    "single_customer_order",
    "broad_demand_shift",
    "seasonal_peak",
    "forecast_bias",
    "new_item",
    "data_error",
    "unknown",
]

ACTION_TYPES: tuple[str, ...] = get_args(ActionType)
ROOT_CAUSES: tuple[str, ...] = get_args(RootCause)
# Actions that rest on facts already in the ERP (a confirmed date, an open order line, projected supply),
# not on the forecast: a degraded forecast does not stop their autonomy.
FACT_BASED_ACTIONS: tuple[str, ...] = ("notify_customer", "supplier_followup")
# Actions about one customer's order (what they are told, offered or allotted).
CUSTOMER_ACTIONS: tuple[str, ...] = ("notify_customer", "substitute", "allocate")
# Actions a case holds one of per customer line, each its own decision (not alternatives to the recommended
# one): every customer must hear, so each awaits a person until decided, whatever was decided before it.
PER_LINE_ACTIONS: tuple[str, ...] = ("notify_customer",)
EXCEPTION_TYPES: tuple[str, ...] = get_args(ExceptionType)
SEVERITIES: tuple[str, ...] = get_args(Severity)  # most severe first: the index is the level
TIERS: tuple[str, ...] = get_args(Tier)
# Customer tiers by rank, strictest first: service level, severity and allocation priority all rank by it.
TIER_RANK: dict[str, int] = {tier: rank for rank, tier in enumerate(TIERS)}

EXCEPTION_COLUMNS: tuple[str, ...] = (
    "exception_key",
    "exception_type",
    "entity",
    "sku",
    "location_id",
    "supplier_id",
    "po_id",
    "po_line_no",
    "category",
    "region",
    "customer_tier",
    "window_start",
    "units_at_risk",
    "money_at_risk",
    "trigger_values",
    "sentence",
    "affected_orders",
    "affected_order_count",
    "cause_key",
    "suppressed_reason",
)
# Why the case happened (`planning.root_cause.classify_root_causes`): a RootCause, 0-1, and the numbers that decided it.
ROOT_CAUSE_COLUMNS: tuple[str, ...] = ("root_cause", "root_cause_confidence", "root_cause_evidence")
# Set once the actions and the policy's decisions are known (`planning.worklist.rank_cases`).
CASE_PRIORITY_COLUMNS: tuple[str, ...] = ("for_person", "loss_kind", "expected_loss", "act_by", "priority")

# What a case's money means: margin lost to a shortage, the holding cost of stock beyond need, or nothing.
LOSS_KINDS: tuple[str, ...] = ("shortage", "excess", "none")
# Weight of a customer tier in expected loss and allocation (a strategic customer's lost line counts thrice).
TIER_WEIGHT: dict[str, float] = {"strategic": 3.0, "key": 2.0, "standard": 1.0}

# The policy's decision on a recommended action, and the approver role of one no role may approve.
AUTO_APPROVED = "auto_approved"
AWAITING_APPROVAL = "awaiting_approval"
NO_ROLE = "none"
