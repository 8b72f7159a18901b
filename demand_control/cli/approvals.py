"""`demand-control approve|reject|snooze ACTION_ID [--as USER]`: the Slack buttons from a shell.

Who decides is not what the command line claims but who the deployment says is at the terminal: the
operator identity in $DEMAND_CONTROL_OPERATOR, mapped to a policy user by the policy's `operators`. An
operator the policy does not list is refused; `--as`, when given, must name the user the operator acts as.
Before the click is stored, an `operator_identified` audit row records the operator, the OS user running
the command, the user claimed with `--as` and the user acted as (subject: the click's request ref).

Each command then stores a click (via cli, a fresh request id) and evaluates it at once through the same
path as a Slack click (`approvals.decide`): same roles, same one-decision-per-action rule, same audit. Exit
code 1 when the click is refused, with the reason on stderr; 2 when the operator is refused; 0 when it
decided, or changed nothing because the action was already decided.
"""

from __future__ import annotations

import getpass
import os
import uuid
from dataclasses import dataclass
from typing import Annotated

import typer

from demand_control.cli.errors import CliError
from demand_control.infra import clock, settings

ActionId = Annotated[str, typer.Argument(help="The recommended action's id (recommended_actions.action_id).")]
User = Annotated[str | None, typer.Option("--as", help=f"The policy user you decide as; must be the one ${settings.OPERATOR_ENV} maps to in the policy's operators (default: that user).")]
Reason = Annotated[str | None, typer.Option("--reason", help="Why, kept with the decision and in the audit log.")]


@dataclass(frozen=True)
class Operator:
    operator: str  # the identity the deployment authenticated
    acts_as: str  # the policy user
    claimed: str | None  # what --as said
    os_user: str


def os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment nor the password database (containers)
        return f"uid:{os.getuid()}"


def identify(operators: dict[str, str], claimed: str | None, policy_source: str) -> Operator:
    """The operator at the terminal and the policy user they act as; CliError (one line) when unknown."""
    operator = (os.environ.get(settings.OPERATOR_ENV) or "").strip()
    if not operator:
        raise CliError(f"{settings.OPERATOR_ENV} is not set: the command line decides only for an operator the "
                       f"deployment identified and the policy {policy_source} lists under operators")
    acts_as = operators.get(operator)
    if acts_as is None:
        raise CliError(f"operator {operator!r} ({settings.OPERATOR_ENV}) is not listed under operators in the policy {policy_source}")
    if claimed is not None and claimed != acts_as:
        raise CliError(f"--as {claimed!r} refused: operator {operator!r} acts as {acts_as!r} (policy {policy_source})")
    return Operator(operator, acts_as, claimed, os_user())


def _click(decision: str, action_id: str, claimed: str | None, reason: str | None) -> None:
    from demand_control.planning.policy import load_policy
    from demand_control.resources.warehouse import warehouse_from_env
    from demand_control.services import audit
    from demand_control.services.approvals import decide, record_click

    policy = load_policy()
    who = identify(dict(policy.operators), claimed, policy.source)
    warehouse = warehouse_from_env()
    warehouse.migrate()
    now = clock.now()
    request_ref = f"cli:{uuid.uuid4()}"
    audit.record(warehouse.engine, who.acts_as, "operator_identified", request_ref, {
        "operator": who.operator, "acts_as": who.acts_as, "claimed": who.claimed, "os_user": who.os_user,
        "decision": decision, "action_id": action_id})
    click_id = record_click(warehouse.engine, action_id, decision, who.acts_as, "cli", request_ref, now)
    outcome = decide(warehouse.engine, policy, click_id, now, note=reason)
    if outcome.refused:
        typer.echo(f"refused: {outcome.reason}", err=True)
        raise typer.Exit(code=1)
    if outcome.outcome == "duplicate":
        typer.echo(f"no change: {action_id} was already {outcome.decision} by {outcome.decided_by}")
        return
    typer.echo(f"{action_id} {outcome.decision} by {who.acts_as}{f' as {outcome.role}' if outcome.role else ''}: {outcome.reason}")


def approve(action_id: ActionId, user: User = None, reason: Reason = None) -> None:
    """Approve a recommended action; an action with an ERP write is queued for the write-back job."""
    _click("approve", action_id, user, reason)


def reject(action_id: ActionId, user: User = None, reason: Reason = None) -> None:
    """Reject a recommended action."""
    _click("reject", action_id, user, reason)


def snooze(action_id: ActionId, user: User = None, reason: Reason = None) -> None:
    """Snooze the exception a recommended action answers ($DEMAND_CONTROL_SNOOZE_HOURS, default 24 h)."""
    _click("snooze", action_id, user, reason)


def register(app: typer.Typer) -> None:
    """Add approve, reject and snooze to the top-level command line."""
    for command in (approve, reject, snooze):
        app.command(command.__name__)(command)
