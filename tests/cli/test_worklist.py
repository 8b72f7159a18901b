"""`demand-control worklist`: the cases a person must act on in `planning.worklist.worklist`'s order, with
what a planner reads beside each (currency, names beside ids, "Mon 7 Dec", new/changed), and one line with
exit code 2 for bad input."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from demand_control.cli.main import app
from demand_control.planning.worklist import worklist
from demand_control.resources.warehouse import Warehouse
from demand_control.schema import tables
from tests.worklist_cases import FRESH_ORDER, seed_cases, write_policy

runner = CliRunner()
CASE_LINE = re.compile(r"^\s*(\d+)\. (\w+)\s+(\S+)")


@pytest.fixture
def env(tmp_path) -> dict[str, str]:  # noqa: ANN001
    return {"DEMAND_CONTROL_HOME": str(tmp_path / "state"), "DEMAND_CONTROL_POLICY": str(write_policy(tmp_path)), "DEMAND_CONTROL_DATABASE_URL": ""}


@pytest.fixture
def warehouse(env) -> Warehouse:  # noqa: ANN001
    warehouse = Warehouse(home=env["DEMAND_CONTROL_HOME"])
    warehouse.migrate()
    return warehouse


def listed(output: str) -> list[str]:
    """The exception keys of the case lines, checking their ranks count 1, 2, 3, …"""
    found = [CASE_LINE.match(line) for line in output.splitlines()]
    found = [m for m in found if m]
    assert [int(m.group(1)) for m in found] == list(range(1, len(found) + 1))
    return [m.group(3) for m in found]


def worklist_cli(env: dict[str, str], *args: str):  # noqa: ANN201
    return runner.invoke(app, ["worklist", *args], env=env)


def test_the_order_is_planning_worklist_order(warehouse: Warehouse, env) -> None:  # noqa: ANN001
    seed_cases(warehouse)
    result = worklist_cli(env, "--owner", "team:buying-fresh")
    assert result.exit_code == 0, result.output
    shown = listed(result.stdout)
    assert shown == FRESH_ORDER  # by hand: 900, then the 300 tie by key, then 50; held back and decided ones absent
    cases = warehouse.read("planning_exceptions")
    actions = warehouse.read("recommended_actions", where=tables.recommended_actions.c.rank == 1)
    expected = worklist(cases, actions, owner_team="team:buying-fresh")
    decided = set(warehouse.read("action_decisions")["action_id"])
    assert shown == [k for k, a in zip(expected["exception_key"], expected["action_id"]) if a not in decided]

    everyone = listed(worklist_cli(env).stdout)
    assert everyone == ["projected_stockout:SKU-21@DC-2", *FRESH_ORDER]  # the grocery case's 5,000 first
    # The 'team:' may be left out; --limit keeps the first N and says how many more there are.
    limited = worklist_cli(env, "--owner", "buying-fresh", "--limit", "2")
    assert listed(limited.stdout) == FRESH_ORDER[:2] and "…and 2 more" in limited.stdout


def test_what_a_planner_reads_beside_each_case(warehouse: Warehouse, env) -> None:  # noqa: ANN001
    seed_cases(warehouse)
    out = worklist_cli(env, "--owner", "team:buying-fresh").stdout
    blocks = re.split(r"\n(?=\s+\d+\. )", out)
    head, stockout, excess, order, safety = blocks
    assert head.startswith("Worklist for team:buying-fresh as of Mon 23 Nov: 4 cases") and "plan of Mon 23 Nov" in head
    assert "[new]" in stockout and "[changed]" in excess and "[new]" not in order and "[changed]" not in order
    assert "owner   team:buying-fresh (U0FRESH01)" in stockout
    # Names beside ids, in the sentence and in the action; money in the policy's currency.
    assert "2 order lines of Northwind Foods (CUST-0028)" in stockout and "orders 480 from Acme Dairy (SUP-1) today" in stockout
    assert "tells Northwind Foods (CUST-0028) that" in order
    assert "loss    CHF 2,000 lost margin (tier-weighted) · act by Mon 7 Dec" in stockout
    assert "approver buyer · A-0000000000000011" in stockout
    # Excess is holding cost, on its own cadence; an act-by date already past is marked.
    assert "loss    CHF 300 holding cost · act by Mon 30 Nov 08:00 UTC" in excess and "lost margin" not in excess
    assert "act by Sun 22 Nov 08:00 UTC (overdue)" in safety
    assert "action  nothing automatic can act on it: the owner must" in safety


def test_each_case_says_why_when_the_classifier_decided(warehouse: Warehouse, env) -> None:  # noqa: ANN001
    seed_cases(warehouse)
    cases = warehouse.read("planning_exceptions")
    order = cases["exception_key"] == "order_at_risk:SKU-13@DC-1"
    cases.loc[order, ["root_cause", "root_cause_confidence", "root_cause_evidence"]] = [
        "supplier_one_off_delay", 0.8, "SUP-1 is on time on 90% of its 10 other open lines"]
    cases.loc[~order, ["root_cause", "root_cause_confidence", "root_cause_evidence"]] = ["unknown", 0.0, "no evidence decides it"]
    warehouse.replace_rows("planning_exceptions", cases)
    blocks = re.split(r"\n(?=\s+\d+\. )", worklist_cli(env, "--owner", "team:buying-fresh").stdout)
    _, stockout, _, order_block, _ = blocks
    assert "why     supplier one off delay (confidence 80%): Acme Dairy (SUP-1) is on time on 90% of its 10 other open lines" in order_block
    assert "why" not in stockout


def test_an_empty_worklist_says_so_in_one_line(warehouse: Warehouse, env) -> None:  # noqa: ANN001
    result = worklist_cli(env, "--owner", "team:buying-fresh", "--as-of", "2026-12-07")
    assert result.exit_code == 0
    assert result.stdout == "Nothing to act on for team:buying-fresh as of Mon 7 Dec.\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--owner", "team:nobody"], "unknown team 'team:nobody'; teams: team:planning, team:buying-fresh, team:buying-grocery"),
        (["--limit", "0"], "--limit must be at least 1, got 0"),
        (["--limit", "-3"], "--limit must be at least 1, got -3"),
        (["--as-of", "2026-13-01"], "--as-of must be a date like 2026-12-07, got '2026-13-01'"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(warehouse: Warehouse, env, args, message) -> None:  # noqa: ANN001
    seed_cases(warehouse)
    result = worklist_cli(env, *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"demand-control worklist: {message}\n"
    assert "Traceback" not in result.output


def test_a_snoozed_case_leaves_the_worklist_while_snoozed_and_comes_back_after(warehouse: Warehouse, env) -> None:  # noqa: ANN001
    import pandas as pd

    from tests.worklist_cases import T0

    seed_cases(warehouse)
    snooze = pd.DataFrame([{"action_id": "A-0000000000000011", "decision": "snoozed", "decided_by": "U0BUYER01", "role": "buyer",
                            "decided_at": T0 + pd.Timedelta(minutes=5)}])
    warehouse.replace_rows("action_decisions", pd.concat([warehouse.read("action_decisions"), snooze], ignore_index=True))
    stockout = tables.planning_exceptions.c.exception_key == "projected_stockout:SKU-11@DC-1"
    with warehouse.engine.begin() as conn:
        conn.execute(tables.planning_exceptions.update().where(stockout).values(state="snoozed", snoozed_until=T0 + pd.Timedelta(hours=24)))
    assert listed(worklist_cli(env, "--owner", "team:buying-fresh").stdout) == FRESH_ORDER[1:]
    # The snooze ended: the lifecycle reopened the case, and its action (snoozed, not decided) awaits again.
    with warehouse.engine.begin() as conn:
        conn.execute(tables.planning_exceptions.update().where(stockout).values(state="open", snoozed_until=None))
    assert listed(worklist_cli(env, "--owner", "team:buying-fresh").stdout) == FRESH_ORDER
