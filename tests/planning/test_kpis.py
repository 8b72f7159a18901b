"""Decision-flow KPIs on tiny frames whose answers are computed by hand; existing callers keep working."""

from __future__ import annotations

import pandas as pd
import pytest

from demand_control.planning.kpis import coordination_kpis, decision_kpis, notice_kpis, write_back_kpis

NOW = pd.Timestamp("2026-03-02 12:00", tz="UTC")
T0 = pd.Timestamp("2026-03-01 00:00", tz="UTC")


def value(kpis: pd.DataFrame, kpi: str, dimension: str = "all", member: str = "all") -> float:
    row = kpis[(kpis["kpi"] == kpi) & (kpis["dimension"] == dimension) & (kpis["member"] == member)]
    assert len(row) == 1, (kpi, dimension, member)
    return float(row["value"].iloc[0])


ACTIONS = pd.DataFrame({
    "action_id": ["a1", "a2", "a3", "a4", "a5"],
    "action_type": ["replenish", "replenish", "expedite", "expedite", "transfer"],
    "value": [100.0, 250.0, 80.0, 60.0, 40.0],  # a2 was 200 when approved: edited after approval
    "policy_decision": ["awaiting_approval"] * 4 + ["auto_approved"],
    "created_at": [T0] * 5,
})
DECISIONS = pd.DataFrame({
    "action_id": ["a1", "a2", "a3", "a4", "a5"],
    "decision": ["approved", "approved", "rejected", "snoozed", "auto_approved"],
    "decided_by": ["alice", "bob", "alice", "carol", "policy"],
    "decided_at": [T0 + pd.Timedelta(hours=h) for h in (2, 4, 10, 1, 0)],
    "recommended_at": [T0, T0, T0, T0, T0],
    "value": [100.0, 200.0, 80.0, 60.0, 40.0],
})


def test_approval_latency_shares_and_overrides() -> None:
    k = decision_kpis(DECISIONS, ACTIONS)
    # Human verdicts (approved/rejected, not the snooze): 2, 4, 10 hours.
    assert value(k, "approval_latency_hours") == pytest.approx(16 / 3)
    assert value(k, "approval_latency_hours_p90") == pytest.approx(8.8)  # linear between 4 and 10 at 0.9
    assert value(k, "approval_latency_hours", "action_type", "replenish") == pytest.approx(3.0)
    assert value(k, "approval_latency_hours", "action_type", "expedite") == pytest.approx(10.0)
    assert value(k, "decided_by_human_share") == pytest.approx(0.8)
    assert value(k, "decided_by_policy_share") == pytest.approx(0.2)
    assert value(k, "decided_by_policy_share", "action_type", "transfer") == pytest.approx(1.0)
    assert value(k, "rejected_share") == pytest.approx(1 / 3)
    # Overrides: a3 rejected, a2 approved at 200 and now worth 250.
    assert value(k, "override_share") == pytest.approx(2 / 3)
    assert value(k, "override_share", "action_type", "replenish") == pytest.approx(0.5)
    assert value(k, "decisions", "decision", "snoozed") == 1


def test_recommended_at_falls_back_to_the_action_creation_time() -> None:
    k = decision_kpis(DECISIONS.assign(recommended_at=pd.NaT), ACTIONS)
    assert value(k, "approval_latency_hours") == pytest.approx(16 / 3)


def test_write_back_success_and_dead_letters() -> None:
    outbox = pd.DataFrame({
        "action_id": list("abcde"),
        "kind": ["replenish", "replenish", "replenish", "revise_promise", "revise_promise"],
        "status": ["done", "done", "dead_letter", "done", "pending"],
    })
    k = write_back_kpis(outbox)
    assert value(k, "write_back_success_rate") == pytest.approx(0.75)
    assert value(k, "write_back_success_rate", "kind", "replenish") == pytest.approx(2 / 3)
    assert value(k, "dead_letters") == 1
    assert value(k, "write_backs_waiting") == 1


def test_notices_and_escalations() -> None:
    notices = pd.DataFrame({"notice_id": list("abcd"), "status": ["sent", "console", "failed", "sending"]})
    escalations = pd.DataFrame({"exception_key": ["x", "x", "y"], "occurrence": [1, 1, 1], "step": [0, 1, 0]})
    k = notice_kpis(notices, escalations)
    assert value(k, "customer_notices_sent") == 2
    assert value(k, "customer_notices_failed") == 1
    assert value(k, "customer_notices", "status", "sending") == 1
    assert value(k, "escalations") == 3
    assert value(k, "escalations", "step", "0") == 2


def test_coordination_kpis_old_call_still_works_and_new_inputs_add_rows() -> None:
    lifecycle = pd.DataFrame({
        "exception_key": ["e1", "e2"], "exception_type": ["projected_stockout"] * 2, "severity": ["high"] * 2, "owner_team": ["team:planning"] * 2,
        "state": ["open", "resolved"], "money_at_risk": [100.0, 50.0], "sla_due_at": [NOW - pd.Timedelta(hours=1), None],
        "opened_at": [T0, T0], "resolved_at": [None, T0 + pd.Timedelta(hours=6)],
    })
    empty = pd.DataFrame()
    old = coordination_kpis(lifecycle, ACTIONS, empty, empty, NOW)
    assert value(old, "exception_cycle_time_hours") == pytest.approx(6.0)
    assert "approval_latency_hours" not in set(old["kpi"])
    new = coordination_kpis(lifecycle, ACTIONS, empty, empty, NOW, decisions=DECISIONS,
                            outbox=pd.DataFrame({"action_id": ["a1"], "kind": ["replenish"], "status": ["done"]}),
                            notices=pd.DataFrame({"notice_id": ["n"], "status": ["sent"]}),
                            escalations=pd.DataFrame({"exception_key": ["e1"], "occurrence": [1], "step": [0]}))
    assert value(new, "auto_approved_share") == pytest.approx(0.2)  # the existing KPI, untouched
    assert value(new, "approval_latency_hours") == pytest.approx(16 / 3)
    assert value(new, "write_back_success_rate") == 1.0
    assert value(new, "customer_notices_sent") == 1 and value(new, "escalations") == 1
    assert not new.duplicated(["kpi", "dimension", "member"]).any()
    assert set(new.columns) == {"kpi", "dimension", "member", "value", "unit"}
    # Empty decision-flow tables (a fresh warehouse) add nothing and break nothing.
    assert len(coordination_kpis(lifecycle, ACTIONS, empty, empty, NOW, decisions=DECISIONS.iloc[0:0], outbox=empty, notices=empty, escalations=empty)) == len(old)
