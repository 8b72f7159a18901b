"""The advisor's KPIs on hand-made calls and decisions, each figure computed by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from demand_control.planning.advisor_kpis import acceptance_share, advisor_kpis


def calls() -> pd.DataFrame:
    rows = [
        # model, outcome, narrative used, follow-up used, tokens in/out, cost, latency ms, proposal
        ("m1", "used", True, True, 1000, 100, 0.60, 800, "advisor:a"),
        ("m1", "used", True, False, 1000, 100, 0.60, 1200, "advisor:b"),
        ("m1", "rejected", False, False, 1000, 100, 0.60, 900, None),
        ("m2", "failed", False, False, 0, 0, 0.0, 20000, None),
    ]
    return pd.DataFrame(rows, columns=["model", "outcome", "narrative_used", "followup_used", "input_tokens", "output_tokens", "cost",
                                       "latency_ms", "proposal_action_id"])


def decisions() -> pd.DataFrame:
    return pd.DataFrame([
        {"action_id": "advisor:a", "decision": "auto_approved", "decided_by": "policy"},
        {"action_id": "advisor:b", "decision": "rejected", "decided_by": "ana.planner"},
        {"action_id": "A-planner", "decision": "rejected", "decided_by": "ana.planner"},  # not the advisor's
    ])


def value(kpis: pd.DataFrame, kpi: str, member: str = "all") -> float:
    return float(kpis[(kpis["kpi"] == kpi) & (kpis["member"] == member)]["value"].iloc[0])


def test_acceptance_share_counts_failed_calls_as_not_used() -> None:
    assert acceptance_share(calls()["outcome"]) == 0.5
    assert math.isnan(acceptance_share(pd.Series([], dtype=object)))


def test_advisor_kpis_overall_and_per_model() -> None:
    kpis = advisor_kpis(calls(), decisions())
    assert value(kpis, "advisor_calls") == 4 and value(kpis, "advisor_calls", "m1") == 3
    assert value(kpis, "advisor_acceptance_share") == 0.5
    assert value(kpis, "advisor_acceptance_share", "m1") == 2 / 3
    assert value(kpis, "advisor_narrative_share") == 0.5 and value(kpis, "advisor_followup_share") == 0.25
    assert value(kpis, "advisor_failed_share", "m2") == 1.0
    assert value(kpis, "advisor_cost") == pytest.approx(1.8) and value(kpis, "advisor_tokens") == 3300
    assert value(kpis, "advisor_proposals") == 2
    assert value(kpis, "advisor_proposal_accepted_share") == 0.5  # one auto-approved, one rejected
    assert value(kpis, "advisor_override_share") == 1.0  # the one human verdict on its proposals was a rejection
    assert set(kpis["unit"]) <= {"count", "share", "money", "seconds"}


def test_no_calls_no_rows() -> None:
    assert advisor_kpis(calls().iloc[0:0], decisions()).empty
