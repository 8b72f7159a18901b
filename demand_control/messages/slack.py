"""What the owners read in Slack: Block Kit messages for planning exceptions, the low-severity digest and the
thread replies, built from warehouse rows as plain dicts (no Dagster, no Slack client).

Every message carries a content hash of what it shows, so the notifier updates a posted message only when
something visible changed. Buttons carry an opaque id, never the action itself: `action_id` is
`"<decision>:<action id>"` and `value` the bare action id. Recommended action ids are already opaque
(`A-` + a SHA-1 prefix of the exception occurrence, type and subject), the gateway resolves them against
`recommended_actions` and checks authority server-side, so no second token table is needed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from demand_control.planning.vocabulary import AUTO_APPROVED

SEVERITY_LEVEL: dict[str, int] = {"critical": 0, "high": 1, "medium": 2, "low": 3}
SEVERITY_ICON: dict[str, str] = {"critical": ":red_circle:", "high": ":large_orange_circle:", "medium": ":large_yellow_circle:", "low": ":white_circle:"}
CLOSED_STATES: tuple[str, ...] = ("resolved", "auto_resolved")
DECISIONS: tuple[str, ...] = ("approve", "reject", "snooze")
MAX_SCENARIOS = 4
# Slack's limits: 50 blocks per message, 3,000 characters per section text, 150 per header.
_MAX_DIGEST_LINES = 40
_SECTION_CHARS = 2_900
_HEADER_CHARS = 150
EXCEPTION_EVENT = "demand_control_exception"
NOTICE_EVENT = "demand_control_notice"


@dataclass(frozen=True)
class Message:
    """One Slack message: the notification text (also the console output), its blocks, the facts a
    "what changed" reply compares, and the hash of what it shows."""

    text: str
    blocks: list[dict[str, Any]]
    facts: dict[str, str] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        return content_hash(self.text, self.blocks)


def content_hash(text: str, blocks: Sequence[Mapping[str, Any]]) -> str:
    canonical = json.dumps({"text": text, "blocks": list(blocks)}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def button_action_id(decision: str, action_id: str) -> str:
    """The Slack `action_id` of a decision button: the decision and the opaque recommended-action id."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    return f"{decision}:{action_id}"


def parse_button(slack_action_id: str) -> tuple[str, str]:
    """(decision, action id) from a button's `action_id`; the inverse of `button_action_id`."""
    decision, _, action_id = slack_action_id.partition(":")
    if decision not in DECISIONS or not action_id:
        raise ValueError(f"not a decision button: {slack_action_id!r}")
    return decision, action_id


def is_notified(severity: str | None) -> bool:
    """Critical, high and medium exceptions get their own message; low ones go to the digest."""
    return SEVERITY_LEVEL.get(severity or "low", 3) <= SEVERITY_LEVEL["medium"]


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(isinstance(value, float) and math.isnan(value)) or str(value) in ("NaT", "nan", "<NA>")
    except (TypeError, ValueError):
        return False


def _text(value: Any, default: str = "") -> str:
    return default if _missing(value) else str(value)


def fmt_money(value: Any) -> str:
    return "?" if _missing(value) else f"{float(value):,.0f}"


def fmt_qty(value: Any) -> str:
    if _missing(value):
        return "?"
    v = float(value)
    return f"{v:.1f}" if abs(v) < 10 and abs(v - round(v)) > 0.05 else f"{v:,.0f}"


def fmt_share(value: Any) -> str:
    return "–" if _missing(value) else f"{100 * float(value):.0f}%"


def fmt_time(value: Any) -> str:
    """UTC timestamps as 'Mon 23 Nov 14:00 UTC': deterministic, so the content hash does not drift."""
    if _missing(value):
        return "none"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value.strftime("%a %d %b %H:%M UTC")
    if isinstance(value, date):
        return value.strftime("%a %d %b")
    return str(value)


def _title(exception_type: str) -> str:
    return exception_type.replace("_", " ").capitalize()


def _owner(exception: Mapping[str, Any]) -> str:
    team = _text(exception.get("owner_team"), "unrouted")
    user = _text(exception.get("owner_user"))
    return f"{team} (<@{user}>)" if user.startswith(("U", "W")) else (f"{team} ({user})" if user else team)


def _decision_text(action: Mapping[str, Any]) -> str:
    if action.get("policy_decision") == AUTO_APPROVED:
        return "auto-approved by policy"
    return f"awaiting approval by {_text(action.get('approver_role'), 'an approver')}"


def exception_facts(exception: Mapping[str, Any], action: Mapping[str, Any] | None) -> dict[str, str]:
    """The values a planner compares between two versions of the message."""
    facts = {
        "state": _text(exception.get("state"), "open"),
        "severity": _text(exception.get("severity"), "low"),
        "money at risk": fmt_money(exception.get("money_at_risk")),
        "units at risk": fmt_qty(exception.get("units_at_risk")),
        "affected order lines": _text(exception.get("affected_order_count"), "0"),
        "SLA due": fmt_time(exception.get("sla_due_at")),
        "owner": _owner(exception),
        "what happened": _text(exception.get("sentence")),
    }
    if action is not None:
        facts["recommended action"] = f"{_text(action.get('action_type'))}: {_text(action.get('expected_impact'))}"
        facts["confidence"] = fmt_share(action.get("confidence"))
        facts["policy"] = _decision_text(action)
    return facts


def _scenario_table(scenarios: Sequence[Mapping[str, Any]]) -> str:
    rows = sorted(scenarios, key=lambda s: (int(s.get("scenario_rank") or 99), str(s.get("scenario"))))[:MAX_SCENARIOS]
    head = f"{'scenario':<20}{'strat':>7}{'key':>7}{'std':>7}{'rev. at risk':>14}{'cust.':>7}"
    lines = [head]
    for s in rows:
        mark = "*" if bool(s.get("recommended")) else " "
        lines.append(
            f"{mark}{_text(s.get('scenario')):<19}{fmt_share(s.get('fill_rate_strategic')):>7}{fmt_share(s.get('fill_rate_key')):>7}"
            f"{fmt_share(s.get('fill_rate_standard')):>7}{fmt_money(s.get('revenue_at_risk')):>14}{_text(s.get('customers_affected'), '0'):>7}"
        )
    return "*Allocation scenarios* (fill rate by customer tier; * recommended)\n```" + "\n".join(lines) + "```"


def exception_message(exception: Mapping[str, Any], action: Mapping[str, Any] | None = None,
                      scenarios: Sequence[Mapping[str, Any]] = ()) -> Message:
    """The parent message of one exception: header, sentence, key numbers, recommended action, up to four
    allocation scenarios, decision buttons (only while the action awaits a human) and the key as context.
    A closed exception renders as resolved, without buttons."""
    key = _text(exception.get("exception_key"))
    severity = _text(exception.get("severity"), "low")
    kind = _title(_text(exception.get("exception_type"), "exception"))
    state = _text(exception.get("state"), "open")
    closed = state in CLOSED_STATES
    facts = exception_facts(exception, action)
    if closed:
        header = f":white_check_mark: Resolved · {kind}"
        facts = {**facts, "resolved at": fmt_time(exception.get("resolved_at"))}
    else:
        header = f"{SEVERITY_ICON.get(severity, '')} {severity.capitalize()} · {kind}".strip()
    state_text = f"{state.replace('_', ' ')} {facts['resolved at']}" if closed else state.replace("_", " ")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header[:_HEADER_CHARS], "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": (("~" + facts["what happened"] + "~") if closed else facts["what happened"])[:_SECTION_CHARS] or key}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*Money at risk*\n{facts['money at risk']}"},
            {"type": "mrkdwn", "text": f"*Units at risk*\n{facts['units at risk']}"},
            {"type": "mrkdwn", "text": f"*SLA due*\n{facts['SLA due']}"},
            {"type": "mrkdwn", "text": f"*Owner*\n{facts['owner']}"},
            {"type": "mrkdwn", "text": f"*State*\n{state_text}"},
            {"type": "mrkdwn", "text": f"*Order lines affected*\n{facts['affected order lines']}"},
        ]},
    ]
    if action is not None and not closed:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": (
            f"*Recommended: {_text(action.get('action_type')).replace('_', ' ')}*\n{_text(action.get('expected_impact'))}"
        )[:_SECTION_CHARS]}})
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"Confidence {facts['confidence']} · {facts['policy']} · {_text(action.get('policy_reasons'))}"
        )[:_SECTION_CHARS]}]})
    if scenarios and not closed:
        blocks.append({"type": "divider"})
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _scenario_table(scenarios)[:_SECTION_CHARS]}})
    if action is not None and not closed and action.get("policy_decision") != AUTO_APPROVED:
        action_id = _text(action.get("action_id"))
        blocks.append({"type": "actions", "block_id": "decision", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Approve"}, "style": "primary",
             "action_id": button_action_id("approve", action_id), "value": action_id},
            {"type": "button", "text": {"type": "plain_text", "text": "Reject"}, "style": "danger",
             "action_id": button_action_id("reject", action_id), "value": action_id},
            {"type": "button", "text": {"type": "plain_text", "text": "Snooze"},
             "action_id": button_action_id("snooze", action_id), "value": action_id},
        ]})
    occurrence = _text(exception.get("occurrence"), "1")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"`{key}` · occurrence {occurrence}"}]})
    prefix = "[resolved]" if closed else f"[{severity}]"
    text = f"{prefix} {kind} {key}: {facts['what happened']}"
    if action is not None and not closed:
        text += f" Recommended: {facts['recommended action']} ({facts['policy']})."
    return Message(text=text, blocks=blocks, facts=facts)


def change_reply(old: Mapping[str, str] | None, new: Mapping[str, str]) -> str:
    """The thread reply when the message changed: every fact that moved, old → new."""
    if not old:
        return "Updated: the figures above were recomputed."
    changed = [f"• {name}: {old.get(name, '–')} → {value}" for name, value in new.items() if old.get(name) != value]
    gone = [f"• {name}: {value} → –" for name, value in old.items() if name not in new]
    lines = changed + gone
    return "What changed:\n" + "\n".join(lines) if lines else "Updated: the message was re-rendered (no figure changed)."


def resolved_reply(exception: Mapping[str, Any]) -> str:
    how = "auto-resolved: new data cleared the condition" if exception.get("state") == "auto_resolved" else "resolved"
    return f"Resolved at {fmt_time(exception.get('resolved_at'))} ({how}). No action needed any more."


def digest_message(channel: str, day: date, exceptions: Sequence[Mapping[str, Any]]) -> Message:
    """One message per channel and day listing its low-severity exceptions in the worklist's order (highest
    priority — expected loss × urgency — first; then money at risk)."""
    def rank(e: Mapping[str, Any]) -> tuple[float, float, str]:
        priority = 0.0 if _missing(e.get("priority")) else float(e["priority"])
        money = 0.0 if _missing(e.get("money_at_risk")) else float(e["money_at_risk"])
        return (-priority, -money, str(e.get("exception_key")))

    ordered = sorted(exceptions, key=rank)
    lines = [f"• `{_text(e.get('exception_key'))}` ({fmt_money(e.get('money_at_risk'))} at risk): {_text(e.get('sentence'))}" for e in ordered[:_MAX_DIGEST_LINES]]
    if len(ordered) > _MAX_DIGEST_LINES:
        lines.append(f"…and {len(ordered) - _MAX_DIGEST_LINES} more (see planning_exceptions).")
    header = f"Low-severity exceptions · {channel} · {day.isoformat()}"
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": header[:_HEADER_CHARS]}}]
    chunk = ""
    for line in lines:
        line = line[:_SECTION_CHARS]
        if len(chunk) + len(line) + 1 > _SECTION_CHARS:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line
    if chunk:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
    text = f"{len(ordered)} low-severity exception(s) for {channel} on {day.isoformat()}:\n" + "\n".join(lines)
    return Message(text=text, blocks=blocks, facts={"count": str(len(ordered))})
