"""`demand-control worklist [--owner TEAM] [--limit N] [--as-of DATE]`: the cases a person must act on, in the
one order the Slack App Home and the daily digest show too (`services.worklist.read_worklist`).

Each case: its rank, severity, owner, what happened, the recommended action and who approves it, the expected
loss (shortage money as lost margin, excess as holding cost, never added up), the act-by date and whether
the last plan opened or changed it. Bad input is one line on stderr and exit code 2.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from datetime import date
from typing import Annotated, Any, NoReturn

import typer

OWNER_HELP = "Only this team's cases: a team of the policy, e.g. team:buying-fresh (the 'team:' may be left out)."
LIMIT_HELP = "Show the first N cases (N ≥ 1)."
AS_OF_HELP = "Read the worklist as of this date (ISO, e.g. 2026-12-07): act-by dates before it are marked overdue."
EXIT_BAD_INPUT = 2


def _refuse(message: str) -> NoReturn:
    typer.echo(f"demand-control worklist: {message}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def _parse_day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        _refuse(f"--as-of must be a date like 2026-12-07, got {value!r}")


@contextmanager
def _planning_day(day: date | None) -> Iterator[None]:
    from demand_control.infra import clock

    with clock.use(day) if day else nullcontext():
        yield


def _team(owner: str | None, known: list[str]) -> str | None:
    if owner is None:
        return None
    for candidate in (owner, f"team:{owner}"):
        if candidate in known:
            return candidate
    _refuse(f"unknown team {owner!r}; teams: {', '.join(known) or 'none'}")


def _case_lines(rank: int, case: Mapping[str, Any], currency: str, names: Mapping[str, str], now: Any) -> list[str]:
    from demand_control.infra.clock import as_utc
    from demand_control.messages.planner_text import change_marker, fmt_when, loss_text, missing, root_cause_text, with_names

    marker = change_marker(case.get("last_change"))
    head = f"{rank:>3}. {str(case.get('severity') or 'low'):<9} {case['exception_key']}" + (f"  [{marker}]" if marker else "")
    owner = str(case.get("owner_team") or "unrouted")
    if not missing(case.get("owner_user")):
        owner += f" ({case['owner_user']})"
    if missing(case.get("action_type")):
        action = "nothing automatic can act on it: the owner must"
    else:
        action = f"{str(case['action_type']).replace('_', ' ')}: {with_names(case.get('expected_impact'), names)}"
        if not missing(case.get("approver_role")):
            action += f" · approver {case['approver_role']}"
        action += f" · {case['action_id']}"
    act_by = fmt_when(case.get("act_by"))
    due = None if missing(case.get("act_by")) else as_utc(case["act_by"])
    if due is not None and due < now:
        act_by += " (overdue)"
    why = root_cause_text(case)
    return [
        head,
        f"     owner   {owner}",
        f"     what    {with_names(case.get('sentence'), names)}",
        *([f"     why     {with_names(why, names)}"] if why else []),
        f"     action  {action}",
        f"     loss    {loss_text(case.get('loss_kind'), case.get('expected_loss'), currency)} · act by {act_by}",
    ]


def worklist_command(
    owner: Annotated[str | None, typer.Option("--owner", help=OWNER_HELP)] = None,
    limit: Annotated[int | None, typer.Option("--limit", help=LIMIT_HELP)] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help=AS_OF_HELP)] = None,
) -> None:
    """The cases a person must act on, highest expected loss × urgency first (the App Home's and the digest's order)."""
    if limit is not None and limit < 1:
        _refuse(f"--limit must be at least 1, got {limit}")
    day = _parse_day(as_of)

    from sqlalchemy.exc import SQLAlchemyError

    from demand_control.cli.errors import describe, one_line

    from demand_control.infra import clock
    from demand_control.messages.planner_text import fmt_day
    from demand_control.planning.policy import PolicyError, load_policy
    from demand_control.resources.warehouse import to_records, warehouse_from_env
    from demand_control.services.worklist import last_plan_day, party_names, policy_teams, read_worklist

    with _planning_day(day):
        now = clock.now()
        try:
            policy = load_policy()
        except PolicyError as error:
            _refuse(one_line(str(error)))
        warehouse = warehouse_from_env()
        try:
            stored_teams = warehouse.read("planning_exceptions", columns=["owner_team"])["owner_team"].dropna().astype(str)
            team = _team(owner, list(dict.fromkeys([*policy_teams(policy), *sorted(set(stored_teams))])))
            cases = read_worklist(warehouse, owner_team=team)
            names = party_names(warehouse) if len(cases) else {}
            plan_day = last_plan_day(warehouse)
        except SQLAlchemyError as error:
            typer.echo(f"demand-control worklist: cannot read the warehouse: {describe(error)[0]}", err=True)
            raise typer.Exit(1) from None

        whose = f" for {team}" if team else ""
        if cases.empty:
            typer.echo(f"Nothing to act on{whose} as of {fmt_day(now)}.")
            return
        shown = cases.head(limit) if limit else cases
        plan = f"; plan of {fmt_day(plan_day)}" if plan_day else ""
        count = f"{len(cases)} case{'s' if len(cases) != 1 else ''}"
        typer.echo(f"Worklist{whose} as of {fmt_day(now)}: {count} a person must act on, by expected loss × urgency{plan}")
        for rank, case in enumerate(to_records(shown), start=1):
            typer.echo("\n".join(_case_lines(rank, case, policy.currency, names, now)))
        if len(shown) < len(cases):
            typer.echo(f"…and {len(cases) - len(shown)} more (without --limit: all of them).")
