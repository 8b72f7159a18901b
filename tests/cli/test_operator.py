"""The CLI decides as the operator the deployment identified (DEMAND_CONTROL_OPERATOR, mapped by the policy's
`operators`), never as whoever `--as` claims; the audit log records operator, OS user, claim and user acted as."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from demand_control.cli.main import app
from demand_control.resources import Warehouse
from demand_control.schema.tables import action_decisions, approval_clicks, audit_log
from tests.services.test_approvals import POLICY_YAML, action_row, add_actions, rows

runner = CliRunner()


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY_YAML)  # operators: ana → ana.planner, ben → ben.planner, carla → carla.buyer
    monkeypatch.setenv("DEMAND_CONTROL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DEMAND_CONTROL_DATABASE_URL", raising=False)
    monkeypatch.setenv("DEMAND_CONTROL_POLICY", str(policy_file))
    monkeypatch.delenv("DEMAND_CONTROL_OPERATOR", raising=False)
    warehouse = Warehouse(home=str(tmp_path / "home"))
    warehouse.migrate()
    add_actions(warehouse.engine, action_row("A-op-0000001"))
    return warehouse


@pytest.mark.parametrize(("operator", "claim", "words"), [
    (None, ["--as", "ana.planner"], "DEMAND_CONTROL_OPERATOR is not set"),
    ("mallory", ["--as", "ana.planner"], "operator 'mallory' (DEMAND_CONTROL_OPERATOR) is not listed under operators"),
    ("ben", ["--as", "ana.planner"], "--as 'ana.planner' refused: operator 'ben' acts as 'ben.planner'"),
])
def test_unidentified_or_impersonating_operators_are_refused_in_one_line(warehouse: Warehouse, operator, claim, words) -> None:  # noqa: ANN001
    env = {"DEMAND_CONTROL_OPERATOR": operator} if operator else {}
    result = runner.invoke(app, ["approve", "A-op-0000001", *claim], env=env)
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: ") and words in result.output
    assert rows(warehouse.engine, approval_clicks) == [] and rows(warehouse.engine, audit_log) == []


def test_the_operator_decides_as_their_policy_user_and_the_audit_names_who_ran_it(warehouse: Warehouse) -> None:
    result = runner.invoke(app, ["approve", "A-op-0000001", "--reason", "ok"], env={"DEMAND_CONTROL_OPERATOR": "ana"})
    assert result.exit_code == 0 and "approved by ana.planner as planner" in result.output, result.output
    click = rows(warehouse.engine, approval_clicks)[0]
    assert click["user_id"] == "ana.planner" and click["via"] == "cli"
    assert rows(warehouse.engine, action_decisions)[0]["decided_by"] == "ana.planner"
    identified, decided = rows(warehouse.engine, audit_log)
    assert identified["event_type"] == "operator_identified" and identified["subject"] == click["request_ref"]
    assert json.loads(identified["payload"]) == {
        "operator": "ana", "acts_as": "ana.planner", "claimed": None, "os_user": getpass.getuser(),
        "decision": "approve", "action_id": "A-op-0000001"}
    assert decided["event_type"] == "approval" and decided["actor"] == "ana.planner"


def test_an_operator_mapped_to_nobody_in_the_roles_is_a_policy_error(warehouse: Warehouse, tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY_YAML.replace("carla: carla.buyer", "carla: carla.nobody"))
    result = runner.invoke(app, ["approve", "A-op-0000001"], env={"DEMAND_CONTROL_OPERATOR": "carla"})
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "operators.carla: acts as 'carla.nobody', who is not a member of any role" in result.output
