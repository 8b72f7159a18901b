"""How numbers, dates, people and partners read wherever a planner sees a case (Slack messages, the App Home,
the digest, `demand-control worklist`): money with the policy's currency, whole units, dates as people write
them ("Mon 7 Dec"), customer and supplier names beside their ids, Slack mentions by user id.

Pure functions of their arguments (no clock, no warehouse), so a message's content hash does not drift.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any

import pandas as pd

# A Slack user id (U… or, on Enterprise Grid, W…): only these become <@mentions>; a name stays a name.
_SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{6,}$")
# A word that may be a customer or supplier id: letters, digits, '-' and '_', starting and ending alphanumeric.
_ID_TOKEN = re.compile(r"[A-Za-z0-9](?:[\w-]*[A-Za-z0-9])?")
NEW_CHANGES: tuple[str, ...] = ("opened", "reopened")
CHANGED_CHANGES: tuple[str, ...] = ("updated",)


def missing(value: Any) -> bool:
    """None, NaN, NaT and pandas' NA: nothing to show."""
    if value is None:
        return True
    try:
        if isinstance(value, float) and math.isnan(value):
            return True
        return bool(pd.isna(value)) if not isinstance(value, (str, list, dict, tuple)) else False
    except (TypeError, ValueError):
        return False


def fmt_money(value: Any, currency: str) -> str:
    """'EUR 12,000': whole currency units with the ISO code in front; '?' when unknown."""
    return "?" if missing(value) else f"{currency} {float(value):,.0f}"


def fmt_units(value: Any) -> str:
    """Whole units with thousands separators ('1,235'); '?' when unknown."""
    return "?" if missing(value) else f"{float(value):,.0f}"


def _instant(value: Any) -> datetime | date | None:
    if missing(value):
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value if isinstance(value, date) else None


def fmt_day(value: Any) -> str:
    """A date as people write it: 'Mon 7 Dec' (UTC day of a timestamp); 'none' when missing."""
    when = _instant(value)
    if when is None:
        return "none"
    return f"{when:%a} {when.day} {when:%b}"


def fmt_when(value: Any) -> str:
    """'Mon 7 Dec' for a date or a UTC midnight, 'Mon 7 Dec 14:00 UTC' when the hour matters (an SLA)."""
    when = _instant(value)
    if when is None:
        return "none"
    if isinstance(when, datetime) and when.timetz().replace(tzinfo=None) != time(0, 0):
        return f"{fmt_day(when)} {when:%H:%M} UTC"
    return fmt_day(when)


def is_slack_user(user: Any) -> bool:
    return isinstance(user, str) and bool(_SLACK_USER_ID.match(user))


def mention(user: Any) -> str:
    """'<@U123ABC>' for a Slack user id (Slack shows the person's name), the name itself otherwise."""
    if missing(user) or not str(user):
        return ""
    return f"<@{user}>" if is_slack_user(user) else str(user)


def _nameable(party_id: str) -> bool:
    # A purely numeric id (a supplier 4711) would also match a quantity in the text: leave it alone.
    return not party_id.isdigit()


def name_beside_id(party_id: Any, names: Mapping[str, str]) -> str:
    """'Northwind Foods (CUST-0028)'; the id alone when its name is unknown."""
    if missing(party_id):
        return ""
    pid = str(party_id)
    name = names.get(pid)
    return f"{name} ({pid})" if name and name != pid else pid


def with_names(text: Any, names: Mapping[str, str]) -> str:
    """The text with every customer or supplier id in it shown as 'Name (ID)' (ids already written that way
    are left as they are)."""
    if missing(text):
        return ""
    text = str(text)
    if not names:
        return text

    def named(match: re.Match[str]) -> str:
        pid = match.group(0)
        name = names.get(pid)
        if not name or name == pid or not _nameable(pid):
            return pid
        start, end = match.start(), match.end()
        if text[start - 1 : start] == "(" and text[end : end + 1] == ")":
            return pid  # already "Name (ID)"
        return f"{name} ({pid})"

    return _ID_TOKEN.sub(named, text)


def loss_text(loss_kind: Any, expected_loss: Any, currency: str) -> str:
    """The expected loss with what it measures, shortage money and excess capital kept apart."""
    if loss_kind == "shortage":
        return f"{fmt_money(expected_loss, currency)} lost margin (tier-weighted)"
    if loss_kind == "excess":
        return f"{fmt_money(expected_loss, currency)} holding cost"
    return "no money at stake"


def change_marker(last_change: Any) -> str:
    """'new' for a case opened or reopened by the last plan, 'changed' for one whose figures it changed."""
    if last_change in NEW_CHANGES:
        return "new"
    if last_change in CHANGED_CHANGES:
        return "changed"
    return ""


def root_cause_text(case: Mapping[str, Any]) -> str | None:
    """Why the case happened, as a planner reads it: 'single customer order (confidence 75%): CUST-0012 holds
    88% of …'; None when the classifier did not decide (unknown) or never ran on the case."""
    cause = case.get("root_cause")
    if missing(cause) or cause == "unknown":
        return None
    confidence = case.get("root_cause_confidence")
    sure = "" if missing(confidence) else f" (confidence {float(confidence):.0%})"
    evidence = case.get("root_cause_evidence")
    return f"{str(cause).replace('_', ' ')}{sure}" + ("" if missing(evidence) else f": {evidence}")
