"""SLA escalation: an exception past its SLA escalates along the policy's chain once per occurrence and step,
across repeated sensor evaluations and runs; more hours reach the next step; resolved and snoozed do not."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import dagster as dg
import pandas as pd
import pytest

from demand_control.services.audit import verify_chain
from demand_control.planning.policy import load_policy
from demand_control.resources.clock import PlanningClock
from demand_control.resources.planning_policy import PlanningPolicy
from demand_control.resources.warehouse import Warehouse
from demand_control.ops.escalation import escalate_overdue_job
from demand_control.sensors.sla import sla_escalation_sensor
from demand_control.services.escalation import due_escalations, escalate, item_of, parse_item
from tests.conftest import NOW

POLICY = load_policy()  # packaged default: steps after 0 h (#planning-escalations), 8 h (manager), 24 h (director)


def _exception(key: str, state: str = "open", hours_overdue: float = 1.0, occurrence: int = 1) -> dict:
    opened = NOW - timedelta(hours=hours_overdue + 4)
    return {
        "exception_key": key, "exception_type": "projected_stockout", "entity": "SKU-A@DC1", "sku": "SKU-A", "location_id": "DC1",
        "severity": "high", "sentence": f"{key} runs out in week 3", "owner_team": "team:planning", "owner_channel": "#planning",
        "state": state, "occurrence": occurrence, "first_seen_at": opened, "last_seen_at": NOW, "opened_at": opened,
        "state_changed_at": opened, "values_changed_at": opened, "resolved_at": NOW if state in ("resolved", "auto_resolved") else None,
        "snoozed_until": NOW + timedelta(hours=4) if state == "snoozed" else None,
        "sla_due_at": NOW - timedelta(hours=hours_overdue), "last_change": "unchanged",
    }


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    wh = Warehouse(home=str(tmp_path))
    wh.migrate()
    return wh


def _silent(_message: str) -> None:
    pass


def _evaluate(warehouse: Warehouse):  # noqa: ANN202
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse, "planning_policy": PlanningPolicy()})
        return sla_escalation_sensor(context)


def test_overdue_exception_escalates_step_zero_once_across_evaluations_and_runs(warehouse) -> None:
    warehouse.append_rows("exception_lifecycle", pd.DataFrame([_exception("stockout:A")]))
    first, second = _evaluate(warehouse), _evaluate(warehouse)
    assert isinstance(first, dg.SensorResult) and len(first.run_requests) == 1
    request = first.run_requests[0]
    assert request.run_key == second.run_requests[0].run_key  # repeated ticks before the run: one run
    assert request.run_config["ops"]["escalate_overdue_exceptions"]["config"]["items"] == [item_of("stockout:A", 1, 0)]

    for _ in range(2):  # the requested run, then a retry of it
        result = escalate_overdue_job.execute_in_process(
            run_config=request.run_config, resources={"warehouse": warehouse, "planning_policy": PlanningPolicy(), "clock": PlanningClock()}
        )
        assert result.success
    assert escalate(warehouse, POLICY, "test", log=_silent) == []
    assert isinstance(_evaluate(warehouse), dg.SkipReason)

    escalations = warehouse.read("escalations")
    assert escalations[["exception_key", "occurrence", "step"]].values.tolist() == [["stockout:A", 1, 0]]
    assert escalations["notified"][0] == "#planning-escalations"
    notice = warehouse.read("notifications").iloc[0]
    assert notice["kind"] == "escalation" and notice["channel"] == "#planning-escalations" and notice["subject"] == "stockout:A"
    assert "Escalation step 1 of 3: stockout:A runs out in week 3" in notice["text"]
    # Due an hour before the fixture's clock; the run happens a few seconds to minutes later on a busy machine.
    overdue = float(re.search(r"is (\d+\.\d) h overdue", notice["text"]).group(1))
    assert 1.0 <= overdue < 1.5
    audit = warehouse.read("audit_log")
    assert audit["event_type"].tolist() == ["escalation"]
    assert json.loads(audit["payload"][0])["step"] == 0
    assert verify_chain(warehouse.engine).ok


def test_more_hours_overdue_reach_the_next_step_once(warehouse) -> None:
    warehouse.append_rows("exception_lifecycle", pd.DataFrame([_exception("stockout:A")]))
    assert escalate(warehouse, POLICY, "test", log=_silent) == [item_of("stockout:A", 1, 0)]
    later = NOW + timedelta(hours=8)
    assert escalate(warehouse, POLICY, "test", now=later, log=_silent) == [item_of("stockout:A", 1, 1)]
    assert escalate(warehouse, POLICY, "test", now=later + timedelta(minutes=5), log=_silent) == []
    notices = warehouse.read("notifications").sort_values("created_at")
    manager = notices[notices["channel"] == "role:manager"]
    assert len(manager) == 1 and "role:manager" in manager["text"].iloc[0]
    assert sorted(warehouse.read("escalations")["step"]) == [0, 1]


def test_a_new_occurrence_escalates_again_from_step_zero(warehouse) -> None:
    warehouse.append_rows("exception_lifecycle", pd.DataFrame([_exception("stockout:A")]))
    escalate(warehouse, POLICY, "test", log=_silent)
    warehouse.replace_rows("exception_lifecycle", pd.DataFrame([_exception("stockout:A", occurrence=2)]))
    assert escalate(warehouse, POLICY, "test", log=_silent) == [item_of("stockout:A", 2, 0)]


@pytest.mark.parametrize("state", ["resolved", "auto_resolved", "snoozed"])
def test_resolved_and_snoozed_exceptions_do_not_escalate(warehouse, state: str) -> None:
    warehouse.append_rows("exception_lifecycle", pd.DataFrame([_exception("stockout:A", state=state, hours_overdue=30)]))
    assert isinstance(_evaluate(warehouse), dg.SkipReason)
    assert escalate(warehouse, POLICY, "test", log=_silent) == []
    assert warehouse.read("escalations").empty and warehouse.read("notifications").empty


def test_not_yet_due_does_not_escalate_and_a_run_skips_steps_resolved_meanwhile(warehouse) -> None:
    warehouse.append_rows("exception_lifecycle", pd.DataFrame([_exception("stockout:A", hours_overdue=-2), _exception("stockout:B")]))
    result = _evaluate(warehouse)
    items = result.run_requests[0].run_config["ops"]["escalate_overdue_exceptions"]["config"]["items"]
    assert items == [item_of("stockout:B", 1, 0)]
    # B is resolved between the sensor's request and the run: nothing is escalated.
    warehouse.replace_rows("exception_lifecycle", pd.DataFrame([_exception("stockout:B", state="resolved")]))
    assert escalate(warehouse, POLICY, "test", items, log=_silent) == []


def test_due_escalations_is_pure_and_every_passed_step_is_due() -> None:
    lifecycle = pd.DataFrame([_exception("x:late", hours_overdue=30), _exception("y:ok", hours_overdue=-1)])
    due = due_escalations(lifecycle, pd.DataFrame(columns=["exception_key", "occurrence", "step"]), POLICY, NOW)
    assert due[["exception_key", "step"]].values.tolist() == [["x:late", 0], ["x:late", 1], ["x:late", 2]]
    assert due["notified"].tolist()[2].startswith("#supply-chain-leadership, role:director")
    done = pd.DataFrame([{"exception_key": "x:late", "occurrence": 1, "step": 0}])
    assert due_escalations(lifecycle, done, POLICY, NOW)["step"].tolist() == [1, 2]
    assert parse_item(item_of("supplier_delay:PO-1/2#x", 3, 1)) == ("supplier_delay:PO-1/2#x", 3, 1)
