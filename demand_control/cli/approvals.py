"""`demand-control approve|reject|snooze ACTION_ID --as USER`: the Slack buttons from a shell.

Each command stores a click (via cli, a fresh request id) and evaluates it at once through the same path as
a Slack click (`approvals.decide`): same roles, same one-decision-per-action rule, same audit. Exit code 1
when the click is refused, with the reason on stderr; 0 when it decided, or changed nothing because the
action was already decided.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

from demand_control.infra import clock

ActionId = Annotated[str, typer.Argument(help="The recommended action's id (recommended_actions.action_id).")]
User = Annotated[str, typer.Option("--as", help="Who decides: a member of a policy role (Slack user id or name).")]
Reason = Annotated[str | None, typer.Option("--reason", help="Why, kept with the decision and in the audit log.")]


def _click(decision: str, action_id: str, user: str, reason: str | None) -> None:
    from demand_control.services.approvals import decide, record_click
    from demand_control.planning.policy import load_policy
    from demand_control.resources.warehouse import warehouse_from_env

    warehouse = warehouse_from_env()
    warehouse.migrate()
    policy = load_policy()
    now = clock.now()
    click_id = record_click(warehouse.engine, action_id, decision, user, "cli", f"cli:{uuid.uuid4()}", now)
    outcome = decide(warehouse.engine, policy, click_id, now, note=reason)
    if outcome.refused:
        typer.echo(f"refused: {outcome.reason}", err=True)
        raise typer.Exit(code=1)
    if outcome.outcome == "duplicate":
        typer.echo(f"no change: {action_id} was already {outcome.decision} by {outcome.decided_by}")
        return
    typer.echo(f"{action_id} {outcome.decision} by {user}{f' as {outcome.role}' if outcome.role else ''}: {outcome.reason}")


def approve(action_id: ActionId, user: User, reason: Reason = None) -> None:
    """Approve a recommended action; an action with an ERP write is queued for the write-back job."""
    _click("approve", action_id, user, reason)


def reject(action_id: ActionId, user: User, reason: Reason = None) -> None:
    """Reject a recommended action."""
    _click("reject", action_id, user, reason)


def snooze(action_id: ActionId, user: User, reason: Reason = None) -> None:
    """Snooze the exception a recommended action answers ($DEMAND_CONTROL_SNOOZE_HOURS, default 24 h)."""
    _click("snooze", action_id, user, reason)


def register(app: typer.Typer) -> None:
    """Add approve, reject and snooze to the top-level command line."""
    for command in (approve, reject, snooze):
        app.command(command.__name__)(command)
