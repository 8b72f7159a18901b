"""Pending clicks are swept (RELIABILITY.md §7): a Slack click the gateway stored but could not decide (the
policy file was invalid) is decided by the pending-click sensor and its run once the policy is good again,
with backoff between failed attempts, and the operations channel hears once about a click that keeps failing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from starlette.applications import Starlette

from demand_control.gateway.slack_interactions import slack_routes
from demand_control.infra import clock
from demand_control.ops.pending_clicks import decide_pending_clicks_job
from demand_control.planning.policy import load_policy
from demand_control.resources import Warehouse
from demand_control.resources.clock import PlanningClock
from demand_control.resources.planning_policy import PlanningPolicy
from demand_control.schema.tables import (
    action_decisions,
    approval_clicks,
    audit_log,
    erp_outbox,
    notifications,
)
from demand_control.sensors.pending_clicks import pending_clicks_sensor
from demand_control.services.audit import verify_chain
from demand_control.services.pending_clicks import (
    PENDING_CLICK_ALERT_AFTER_ENV,
    PENDING_CLICK_ALERT_KIND,
)
from tests.services.test_approvals import (
    NOW,
    POLICY_YAML,
    SECRET,
    T0,
    AsgiClient,
    FixedClock,
    action_row,
    add_actions,
    form,
    interaction,
    rows,
    signed,
)

# A role with a value band that is not a number: the file does not validate.
BROKEN_POLICY_YAML = POLICY_YAML.replace("max_value: 10000", "max_value: ten thousand")


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    wh = Warehouse(home=str(tmp_path / "state"))
    wh.migrate()
    return wh


@pytest.fixture
def policies(tmp_path: Path) -> tuple[Path, Path]:
    good, broken = tmp_path / "policy.yaml", tmp_path / "broken.yaml"
    good.write_text(POLICY_YAML)
    broken.write_text(BROKEN_POLICY_YAML)
    return good, broken


def click_through_the_gateway(warehouse: Warehouse, policy_file: Path, action_id: str, trigger_id: str) -> None:
    """A signed Slack click to the gateway whose policy loader reads `policy_file`, as the served gateway does."""
    app = Starlette(routes=slack_routes(warehouse, SECRET, lambda: load_policy(str(policy_file)), clock=FixedClock(T0), now=lambda: NOW))
    body = form(interaction(action_id, trigger_id=trigger_id))
    response = AsgiClient(app).post("/slack/interactions", content=body, headers=signed(body))
    assert response.status_code == 200 and response.json()["status"] == "received", response.text


def tick_and_run(instance: dg.DagsterInstance, warehouse: Warehouse, policy_file: Path) -> dg.SensorResult | dg.SkipReason:
    """One sensor evaluation and, when it asks for one, its run (in process, on the same instance)."""
    context = dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse})
    result = pending_clicks_sensor(context)
    if isinstance(result, dg.SensorResult):
        for request in result.run_requests:
            outcome = decide_pending_clicks_job.execute_in_process(
                instance=instance, tags={**request.tags, "dagster/run_key": request.run_key},
                resources={"warehouse": warehouse, "planning_policy": PlanningPolicy(path=str(policy_file)), "clock": PlanningClock()},
            )
            assert outcome.success
    return result


def test_a_click_an_invalid_policy_left_pending_is_decided_after_a_restart_with_a_good_policy(warehouse, policies) -> None:
    good, broken = policies
    engine = warehouse.engine
    add_actions(engine, action_row("A-sweep-00001"))
    click_through_the_gateway(warehouse, broken, "A-sweep-00001", "trig-broken")
    [stored] = rows(engine, approval_clicks)
    assert stored["processed_at"] is None and rows(engine, action_decisions) == [], "the broken policy decided nothing"

    with dg.instance_for_test() as instance:
        with clock.use(NOW + timedelta(minutes=1)):
            assert isinstance(tick_and_run(instance, warehouse, broken), dg.SensorResult)
            [after] = rows(engine, approval_clicks)
            assert after["processed_at"] is None and after["decide_attempts"] == 1
            assert "policy" in after["last_error"] and "max_value" in after["last_error"]
            # Backoff: the next sweep waits; the sensor says so instead of asking again.
            assert isinstance(tick_and_run(instance, warehouse, good), dg.SkipReason)
        # The policy is fixed and the gateway restarted; one tick after the backoff and its run decide it.
        with clock.use(NOW + timedelta(minutes=5)):
            result = tick_and_run(instance, warehouse, good)
            assert isinstance(result, dg.SensorResult) and len(result.run_requests) == 1
        [decided] = rows(engine, approval_clicks)
        assert decided["processed_at"] is not None and decided["outcome"] == "decided"
        [decision] = rows(engine, action_decisions)
        assert (decision["decision"], decision["decided_by"], decision["role"]) == ("approved", "U0PLANNER", "planner")
        assert len(rows(engine, erp_outbox)) == 1
        with clock.use(NOW + timedelta(minutes=10)):
            assert isinstance(tick_and_run(instance, warehouse, good), dg.SkipReason)
    assert verify_chain(engine).ok


def test_a_click_that_keeps_failing_alerts_the_operations_channel_once(warehouse, policies, monkeypatch) -> None:
    good, broken = policies
    monkeypatch.setenv(PENDING_CLICK_ALERT_AFTER_ENV, "3")
    monkeypatch.setenv("DEMAND_CONTROL_OPS_CHANNEL", "#ops-test")
    engine = warehouse.engine
    add_actions(engine, action_row("A-sweep-00002"))
    click_through_the_gateway(warehouse, broken, "A-sweep-00002", "trig-stuck")

    at = NOW
    with dg.instance_for_test() as instance:
        for attempt in range(1, 6):
            at += timedelta(hours=2)  # past any backoff
            with clock.use(at):
                assert isinstance(tick_and_run(instance, warehouse, broken), dg.SensorResult)
            [stuck] = rows(engine, approval_clicks)
            assert stuck["decide_attempts"] == attempt and stuck["processed_at"] is None
            alerts = rows(engine, notifications, kind=PENDING_CLICK_ALERT_KIND)
            assert len(alerts) == (1 if attempt >= 3 else 0), f"after {attempt} failed attempts"
        [alert] = alerts
        assert alert["channel"] == "#ops-test" and alert["status"] == "pending"
        assert "A-sweep-00002" in alert["text"] and "3 attempts" in alert["text"]
        assert [r["event_type"] for r in rows(engine, audit_log)].count(PENDING_CLICK_ALERT_KIND) == 1
        # Fixed at last: the stuck click is decided, and nothing alerts again.
        with clock.use(at + timedelta(hours=2)):
            tick_and_run(instance, warehouse, good)
    assert rows(engine, approval_clicks)[0]["outcome"] == "decided"
    assert len(rows(engine, notifications, kind=PENDING_CLICK_ALERT_KIND)) == 1
