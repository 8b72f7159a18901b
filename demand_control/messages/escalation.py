"""What an escalation says: who a step tells, and the notice naming the overdue exception, its owner and how
late it is."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from demand_control.planning.policy import Policy


def recipients_text(policy: Policy, notify_role: str | None, channel: str | None, user: str | None) -> str:
    """Who a step tells, as one line: the channel, the role with its members, the user."""
    parts = []
    if channel:
        parts.append(channel)
    if notify_role:
        members = policy.roles[notify_role].members if notify_role in policy.roles else []
        parts.append(f"role:{notify_role}" + (f" ({', '.join(members)})" if members else ""))
    if user:
        parts.append(f"@{user}")
    return ", ".join(parts)


def escalation_text(row: pd.Series | Mapping[str, Any], due: datetime) -> str:
    """The notice of one escalation step (a row of `due_escalations`), `due` its SLA due time in UTC."""
    what = row["sentence"] if isinstance(row["sentence"], str) and row["sentence"] else row["exception_key"]
    return (
        f"Escalation step {int(row['step']) + 1} of {int(row['steps'])}: {what} "
        f"({row['severity'] or 'unrated'}; owner {row['owner_team'] or 'unassigned'} {row['owner_channel'] or ''}".rstrip()
        + f") was due {due:%Y-%m-%d %H:%M} UTC and is {row['hours_overdue']:.1f} h overdue. Telling {row['notified']}."
    )
