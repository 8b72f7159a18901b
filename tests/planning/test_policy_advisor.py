"""The policy's advisor section: lower autonomy limits for actions the optional advisor proposes, validated
against the autonomy section, and applied by `decide_advisor_autonomy` with the same checks as the planner's."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from demand_control.planning.policy import PolicyError, decide_advisor_autonomy, decide_autonomy, load_policy, parse_policy
from demand_control.planning.vocabulary import AUTO_APPROVED, AWAITING_APPROVAL

BASE = textwrap.dedent("""
    version: 1
    owners:
      fallback: {team: "team:planning", channel: "#planning-exceptions"}
    sla: {critical: 4, high: 24, medium: 72, low: 168}
    autonomy:
      auto_approvable: [replenish, review_forecast]
      default_limit: 0
      limits: {replenish: 5000, review_forecast: 1000}
      min_confidence: 0.8
    roles:
      planner: {members: [ana.planner, ben.planner], may_approve: [replenish, review_forecast], max_value: 10000}
""")


def with_advisor(section: str):  # noqa: ANN201
    return parse_policy(BASE + textwrap.dedent(section), "advisor-test.yaml")


def action(action_type: str, value: float, confidence: float) -> dict[str, object]:
    return {"action_type": action_type, "value": value, "confidence": confidence, "category": "dry", "data_fresh": True, "forecast_degraded": False}


def test_without_an_advisor_section_no_advisor_proposal_is_auto_approved() -> None:
    policy = parse_policy(BASE, "no-advisor.yaml")
    decided = decide_advisor_autonomy(pd.DataFrame([action("replenish", 10.0, 1.0)]), policy)
    assert decided.iloc[0]["policy_decision"] == AWAITING_APPROVAL
    assert decided.iloc[0]["policy_reasons"].startswith("advisor proposal: replenish is never auto-approved")


def test_advisor_limits_are_lower_than_the_planners_and_its_threshold_higher() -> None:
    policy = with_advisor("""
        advisor:
          auto_approvable: [replenish]
          limits: {replenish: 500}
          min_confidence: 0.9
    """)
    frame = pd.DataFrame([action("replenish", 400.0, 0.95), action("replenish", 600.0, 0.95), action("replenish", 400.0, 0.85),
                          action("review_forecast", 0.0, 0.99)])
    advisor = decide_advisor_autonomy(frame, policy)
    planner = decide_autonomy(frame, policy)
    assert list(advisor["policy_decision"]) == [AUTO_APPROVED, AWAITING_APPROVAL, AWAITING_APPROVAL, AWAITING_APPROVAL]
    assert list(planner["policy_decision"]) == [AUTO_APPROVED] * 4  # the same actions from the planner go through
    assert "value 600 > limit 500 for replenish" in advisor.iloc[1]["policy_reasons"]
    assert "confidence 0.85 < 0.90" in advisor.iloc[2]["policy_reasons"]
    assert advisor.iloc[1]["approver_role"] == "planner"


@pytest.mark.parametrize(("section", "message"), [
    ("advisor: {min_confidence: 0.5}", "advisor.min_confidence: 0.5 is below autonomy.min_confidence 0.8"),
    ("advisor: {auto_approvable: [cancel]}", "advisor.auto_approvable: cancel is not in autonomy.auto_approvable"),
    ("advisor: {auto_approvable: [replenish], limits: {replenish: 9000}}", "advisor limit for replenish: 9000 is above the autonomy limit 5000"),
])
def test_an_advisor_section_that_would_widen_autonomy_is_refused(section: str, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        with_advisor(section)
    assert message in str(caught.value) and "advisor-test.yaml" in str(caught.value)


def test_the_packaged_policy_keeps_the_advisor_below_the_planner() -> None:
    policy = load_policy()
    assert policy.advisor.min_confidence >= policy.autonomy.min_confidence
    for action_type in policy.advisor.auto_approvable:
        assert policy.advisor.limit_for(action_type) <= policy.autonomy.limit_for(action_type)
