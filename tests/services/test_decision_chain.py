"""The decision chain on SQLite: what the plan recommends, what the policy lets through on its own, and how a
second approval loses a race.

Autonomy (RELIABILITY.md §20, §21): a crafted plan runs through the same steps the decision assets run
(`refresh_exceptions` → `refresh_allocations` → `refresh_actions` → `auto_approve`) with a policy whose
replenish limit sits between two routine orders' values: the order within the limit is decided by the policy
and queued for the ERP, the one above it waits for a person, and its only reason is the limit.

Races (§8). On PostgreSQL, two approvers of one action each claim their own click row, both find no
decision, both insert one, and the loser's `INSERT … ON CONFLICT DO NOTHING` skips (`_take_decision` raises
`_Lost`): that path is tested in test_approvals on PostgreSQL. On SQLite that path cannot be reached by a
second `decide`, by design: `decide` claims its click with an UPDATE before reading anything, and SQLite's
first write in a transaction takes the database's single write lock, held until commit. A second evaluation
therefore cannot claim its own click, let alone read or insert a decision, until the first has committed; it
then finds the decision already there and answers "already approved by … at …" (the early path of
`_evaluate`). What SQLite does reach is the other loser: `auto_approve` reads its candidates before it takes
the write lock (its first write is the decision insert), so a person who decides in between wins, and the
policy's insert is skipped. Both are tested here, with the interleaving forced, not left to timing.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, event, insert, select

from demand_control.infra import clock
from demand_control.planning.policy import load_policy, parse_policy
from demand_control.resources.warehouse import Warehouse
from demand_control.schema.tables import (
    action_decisions,
    audit_log,
    erp_outbox,
    recommended_actions,
)
from demand_control.services.approvals import decide, record_click
from demand_control.services.audit import verify_chain
from demand_control.services.auto_approval import auto_approve
from demand_control.services.replan import (
    PlanSettings,
    refresh_actions,
    refresh_allocations,
    refresh_exceptions,
)
from tests.planning.test_exceptions import START, forecast, scenario

PLAN_NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the crafted scenario's Monday
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

POLICY = parse_policy("""
version: 1
owners:
  fallback: {team: "team:planning", channel: "#planning-exceptions"}
sla: {critical: 4, high: 24, medium: 72, low: 168}
autonomy:
  auto_approvable: [replenish]
  default_limit: 0
  limits: {replenish: 5000}
  min_confidence: 0.8
roles:
  planner:
    members: [ana.planner, ben.planner]
    may_approve: [replenish]
    max_value: 10000
""", "test-decision-chain")


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:  # noqa: ANN001
    wh = Warehouse(home=str(tmp_path / "state"))
    wh.migrate()
    return wh


def rows(engine: Engine, table: Any, **where: Any) -> list[dict[str, Any]]:
    stmt = select(table)
    for column, value in where.items():
        stmt = stmt.where(table.c[column] == value)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


# Autonomy through the chain --------------------------------------------------------------------------

def test_an_order_above_the_autonomy_limit_waits_for_a_person_while_one_within_it_is_queued(warehouse: Warehouse) -> None:
    # S1 at DC1 sells 10 a week, at DC2 40; both hold 15. The routine orders (see tests/planning/test_actions):
    # DC1 15 units, DC2 105 units, at 4.00 a unit: 60 and 420. The replenish limit of 100 lies between them.
    inputs = scenario(on_hand=15, fc=pd.concat([forecast(), forecast(level=40.0, loc="DC2")], ignore_index=True))
    policy = load_policy()
    policy = policy.model_copy(update={"autonomy": policy.autonomy.model_copy(update={"limits": {**policy.autonomy.limits, "replenish": 100.0}})})
    settings = PlanSettings(horizon_start=START.date())
    with clock.use(PLAN_NOW):
        refresh_exceptions(warehouse, policy, settings, PLAN_NOW, inputs=inputs)
        refresh_allocations(warehouse, settings, PLAN_NOW, inputs=inputs)
        refresh_actions(warehouse, policy, settings, PLAN_NOW, inputs=inputs)
        decided = auto_approve(warehouse.engine, PLAN_NOW)

    actions = warehouse.read("recommended_actions")
    orders = actions[actions["action_type"] == "replenish"].set_index("location_id")
    assert list(orders["exception_key"].sort_index()) == ["replenishment_due:S1@DC1", "replenishment_due:S1@DC2"]
    within, above = orders.loc["DC1"], orders.loc["DC2"]
    assert (within["quantity"], within["value"], within["policy_decision"]) == (15.0, 60.0, "auto_approved")
    assert (above["quantity"], above["value"], above["policy_decision"]) == (105.0, 420.0, "awaiting_approval")
    # Fresh data, a healthy forecast, confidence 0.90: the limit is the one thing that stops it.
    assert above["policy_reasons"] == "value 420 > limit 100 for replenish"
    assert above["approver_role"]

    assert decided == [within["action_id"]]
    engine = warehouse.engine
    assert [(d["action_id"], d["decision"], d["decided_by"]) for d in rows(engine, action_decisions)] == [
        (within["action_id"], "auto_approved", "policy")
    ]
    assert [o["action_id"] for o in rows(engine, erp_outbox)] == [within["action_id"]]
    approvals = [a for a in rows(engine, audit_log) if a["event_type"] == "approval"]
    assert [a["subject"] for a in approvals] == [within["action_id"]]
    # A second pass of the chain's last step decides nothing more: above the limit stays with a person.
    assert auto_approve(engine, PLAN_NOW) == []
    assert rows(engine, action_decisions, action_id=above["action_id"]) == []


# Races on SQLite ----------------------------------------------------------------------------------------

def action_row(action_id: str, value: float = 4_000.0, **overrides: Any) -> dict[str, Any]:
    row = {
        "action_id": action_id, "exception_key": f"projected_stockout:SKU-1@DC-01#{action_id}", "occurrence": 1,
        "exception_type": "projected_stockout", "action_type": "replenish", "rank": 1, "sku": "SKU-1",
        "location_id": "DC-01", "category": "Beverages", "supplier_id": "SUP-001", "quantity": 400.0, "value": value,
        "needed_by": date(2026, 12, 14), "confidence": 0.9, "expected_impact": "restores cover", "data_fresh": True,
        "forecast_degraded": False, "policy_decision": "awaiting_approval", "approver_role": "planner",
        "policy_reasons": "value 6,000 > limit 5,000 for replenish", "created_at": NOW - timedelta(hours=2),
        "updated_at": NOW - timedelta(hours=2),
    }
    return {**row, **overrides}


@pytest.fixture
def engine(warehouse: Warehouse) -> Iterator[Engine]:
    assert warehouse.engine.dialect.name == "sqlite"
    yield warehouse.engine


def test_on_sqlite_a_second_approver_inside_the_first_ones_transaction_waits_and_finds_its_decision(
    engine: Engine, warehouse: Warehouse
) -> None:
    with engine.begin() as conn:
        conn.execute(insert(recommended_actions).values(**action_row("A-sqlite-race-1")))
    first = record_click(engine, "A-sqlite-race-1", "approve", "ana.planner", "slack", "slack:race-first", NOW)
    second = record_click(engine, "A-sqlite-race-1", "approve", "ben.planner", "slack", "slack:race-second", NOW)
    database = engine.url.database
    assert database

    main = threading.current_thread()
    second_claiming = threading.Event()
    locked_out: list[str] = []
    results: dict[str, Any] = {}

    def trace(statement: str) -> None:
        # SQLite calls this as a statement starts running, before it asks for a lock.
        if threading.current_thread() is not main and statement.lstrip().upper().startswith("UPDATE APPROVAL_CLICKS"):
            second_claiming.set()

    @event.listens_for(engine, "connect")
    def traced(dbapi_connection, _record) -> None:  # noqa: ANN001
        dbapi_connection.set_trace_callback(trace)

    engine.dispose()  # new connections get the trace callback

    def second_approver() -> None:
        results["second"] = decide(engine, POLICY, second, NOW)

    @event.listens_for(engine, "after_cursor_execute")
    def inside_first(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        # The first approver has claimed its click: its transaction holds the write lock from here to commit.
        if threading.current_thread() is not main or not statement.startswith("UPDATE approval_clicks") or "second" in results:
            return
        probe = sqlite3.connect(database, timeout=0)
        try:
            probe.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            locked_out.append(str(exc))
        finally:
            probe.close()
        results["second"] = None
        thread = threading.Thread(target=second_approver)
        results["thread"] = thread
        thread.start()
        assert second_claiming.wait(30), "the second approver never started its claim"

    try:
        results["first"] = decide(engine, POLICY, first, NOW)
        results["thread"].join(60)
    finally:
        event.remove(engine, "after_cursor_execute", inside_first)
        event.remove(engine, "connect", traced)
        engine.dispose()

    assert locked_out == ["database is locked"], "no other writer can start while an evaluation is in its transaction"
    won, lost = results["first"], results["second"]
    assert (won.outcome, won.decided_by, won.queued_erp_write) == ("decided", "ana.planner", True)
    assert lost.outcome == "duplicate" and lost.decided_by == "ana.planner" and lost.decision == "approved"
    # The early path: the second evaluation read the committed decision (with its time), it did not lose an insert.
    assert lost.reason.startswith("already approved by ana.planner at 2026-11-23T09:00:00")
    assert len(rows(engine, action_decisions)) == 1 and len(rows(engine, erp_outbox)) == 1
    assert [a["event_type"] for a in rows(engine, audit_log)] == ["approval"]
    assert verify_chain(engine).ok


def test_on_sqlite_auto_approval_loses_to_a_person_who_decides_between_its_read_and_its_write(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(recommended_actions).values(**action_row(
            "A-sqlite-race-2", value=4_000.0, policy_decision="auto_approved", approver_role=None,
            policy_reasons="value 4,000 ≤ limit 5,000 for replenish",
        )))
    click_id = record_click(engine, "A-sqlite-race-2", "approve", "ana.planner", "cli", "cli:race-auto", NOW)
    human: list[Any] = []

    @event.listens_for(engine, "before_cursor_execute")
    def person_first(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        # auto_approve has read the action as undecided and is about to insert its decision: the person's
        # click is evaluated now, on another connection, and commits first.
        if statement.startswith("INSERT INTO action_decisions") and not human:
            human.append(None)
            human[0] = decide(engine, POLICY, click_id, NOW)

    try:
        decided = auto_approve(engine, NOW)
    finally:
        event.remove(engine, "before_cursor_execute", person_first)

    assert human and human[0].outcome == "decided" and human[0].decided_by == "ana.planner"
    assert decided == [], "the policy's decision lost: it is neither returned nor recorded"
    [decision] = rows(engine, action_decisions)
    assert (decision["decision"], decision["decided_by"]) == ("approved", "ana.planner")
    assert len(rows(engine, erp_outbox)) == 1
    assert [(a["event_type"], a["actor"]) for a in rows(engine, audit_log)] == [("approval", "ana.planner")]
    assert verify_chain(engine).ok
