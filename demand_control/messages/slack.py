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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd

from demand_control.messages.planner_text import (
    change_marker,
    fmt_day,
    fmt_money,
    fmt_units,
    fmt_when,
    loss_text,
    mention,
    missing,
    root_cause_text,
    name_beside_id,
    with_names,
)
from demand_control.planning.policy.schema import DEFAULT_CURRENCY
from demand_control.planning.vocabulary import AUTO_APPROVED
from demand_control.planning.worklist import presented_order

SEVERITY_LEVEL: dict[str, int] = {"critical": 0, "high": 1, "medium": 2, "low": 3}
SEVERITY_ICON: dict[str, str] = {"critical": ":red_circle:", "high": ":large_orange_circle:", "medium": ":large_yellow_circle:", "low": ":white_circle:"}
CLOSED_STATES: tuple[str, ...] = ("resolved", "auto_resolved")
DECISIONS: tuple[str, ...] = ("approve", "reject", "snooze")
MAX_SCENARIOS = 4
# Slack's limits: 50 blocks per message, 100 per view (the App Home), 3,000 characters per section text,
# 150 per header, 255 per block_id.
_MAX_DIGEST_LINES = 40
MAX_HOME_ITEMS = 20  # 4 blocks each, plus a header of 3 and a footer: 84 of the 100 a view may hold
_MAX_VIEW_BLOCKS = 100
_MAX_CUSTOMERS_SHOWN = 5
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


def _text(value: Any, default: str = "") -> str:
    return default if missing(value) else str(value)


def fmt_share(value: Any) -> str:
    return "–" if missing(value) else f"{100 * float(value):.0f}%"


def _amount(value: Any) -> str:
    return "?" if missing(value) else f"{float(value):,.0f}"


def _title(exception_type: str) -> str:
    return exception_type.replace("_", " ").capitalize()


def _owner(exception: Mapping[str, Any]) -> str:
    team = _text(exception.get("owner_team"), "unrouted")
    user = mention(exception.get("owner_user"))
    return f"{team} ({user})" if user else team


def _decision_text(action: Mapping[str, Any]) -> str:
    if action.get("policy_decision") == AUTO_APPROVED:
        return "auto-approved by policy"
    return f"awaiting approval by {_text(action.get('approver_role'), 'an approver')}"


def _customers(exception: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """The customers whose order lines the case affects, strictest need first as the detector listed them."""
    raw = exception.get("affected_orders")
    try:
        lines = json.loads(raw) if isinstance(raw, str) and raw else []
    except ValueError:
        return ""
    ids = list(dict.fromkeys(str(line["customer_id"]) for line in lines if isinstance(line, dict) and line.get("customer_id")))
    shown = ", ".join(name_beside_id(c, names) for c in ids[:_MAX_CUSTOMERS_SHOWN])
    return shown + (f" and {len(ids) - _MAX_CUSTOMERS_SHOWN} more" if len(ids) > _MAX_CUSTOMERS_SHOWN else "")


def exception_facts(exception: Mapping[str, Any], action: Mapping[str, Any] | None, currency: str = DEFAULT_CURRENCY,
                    names: Mapping[str, str] | None = None) -> dict[str, str]:
    """The values a planner compares between two versions of the message."""
    names = names or {}
    facts = {
        "state": _text(exception.get("state"), "open"),
        "severity": _text(exception.get("severity"), "low"),
        "money at risk": fmt_money(exception.get("money_at_risk"), currency),
        "units at risk": fmt_units(exception.get("units_at_risk")),
        "affected order lines": _text(exception.get("affected_order_count"), "0"),
        "SLA due": fmt_when(exception.get("sla_due_at")),
        "owner": _owner(exception),
        "what happened": with_names(exception.get("sentence"), names),
    }
    # The cause only, not its evidence: the evidence's figures move with every plan and would post a
    # "what changed" reply each time; the message shows them.
    if not missing(exception.get("root_cause")) and exception.get("root_cause") != "unknown":
        facts["root cause"] = str(exception.get("root_cause")).replace("_", " ")
    if not missing(exception.get("loss_kind")):
        facts["expected loss"] = loss_text(exception.get("loss_kind"), exception.get("expected_loss"), currency)
    # Not the act-by date: a routine order's is the plan's own day, so it would move (and post a "what changed"
    # reply) every day the case stays open. The worklist surfaces show it; the parent shows the SLA.
    if not missing(exception.get("supplier_id")):
        facts["supplier"] = name_beside_id(exception.get("supplier_id"), names)
    customers = _customers(exception, names)
    if customers:
        facts["customers"] = customers
    if action is not None:
        facts["recommended action"] = f"{_text(action.get('action_type'))}: {with_names(action.get('expected_impact'), names)}"
        facts["confidence"] = fmt_share(action.get("confidence"))
        facts["policy"] = _decision_text(action)
    return facts


def _scenario_table(scenarios: Sequence[Mapping[str, Any]], currency: str = DEFAULT_CURRENCY) -> str:
    """The case's one allocation table: each scenario once (however many actions or rows name it), best four."""
    unique = {str(s.get("scenario")): s for s in sorted(scenarios, key=lambda s: (int(s.get("scenario_rank") or 99), str(s.get("scenario"))), reverse=True)}
    rows = sorted(unique.values(), key=lambda s: (int(s.get("scenario_rank") or 99), str(s.get("scenario"))))[:MAX_SCENARIOS]
    head = f"{'scenario':<20}{'strat':>7}{'key':>7}{'std':>7}{'rev. at risk ' + currency:>18}{'cust.':>7}"
    lines = [head]
    for s in rows:
        mark = "*" if bool(s.get("recommended")) else " "
        lines.append(
            f"{mark}{_text(s.get('scenario')):<19}{fmt_share(s.get('fill_rate_strategic')):>7}{fmt_share(s.get('fill_rate_key')):>7}"
            f"{fmt_share(s.get('fill_rate_standard')):>7}{_amount(s.get('revenue_at_risk')):>18}{_text(s.get('customers_affected'), '0'):>7}"
        )
    return "*Allocation scenarios* (fill rate by customer tier; * recommended)\n```" + "\n".join(lines) + "```"


def decision_buttons(action_id: str, block_id: str = "decision") -> dict[str, Any]:
    """The Approve / Reject / Snooze buttons of one recommended action (opaque id only). `block_id` must be
    unique within a view: the App Home gives each case its own."""
    return {"type": "actions", "block_id": block_id[:255], "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "Approve"}, "style": "primary",
         "action_id": button_action_id("approve", action_id), "value": action_id},
        {"type": "button", "text": {"type": "plain_text", "text": "Reject"}, "style": "danger",
         "action_id": button_action_id("reject", action_id), "value": action_id},
        {"type": "button", "text": {"type": "plain_text", "text": "Snooze"},
         "action_id": button_action_id("snooze", action_id), "value": action_id},
    ]}


def exception_message(exception: Mapping[str, Any], action: Mapping[str, Any] | None = None,
                      scenarios: Sequence[Mapping[str, Any]] = (), currency: str = DEFAULT_CURRENCY,
                      names: Mapping[str, str] | None = None) -> Message:
    """The parent message of one exception: header, sentence, key numbers, recommended action, the case's one
    allocation table (up to four scenarios), decision buttons (only while the action awaits a human) and the
    key as context. Money in `currency`, customers and suppliers as 'Name (ID)' from `names`. A closed
    exception renders as resolved, without buttons."""
    key = _text(exception.get("exception_key"))
    severity = _text(exception.get("severity"), "low")
    kind = _title(_text(exception.get("exception_type"), "exception"))
    state = _text(exception.get("state"), "open")
    closed = state in CLOSED_STATES
    facts = exception_facts(exception, action, currency, names)
    if closed:
        header = f":white_check_mark: Resolved · {kind}"
        facts = {**facts, "resolved at": fmt_when(exception.get("resolved_at"))}
    else:
        header = f"{SEVERITY_ICON.get(severity, '')} {severity.capitalize()} · {kind}".strip()
    state_text = f"{state.replace('_', ' ')} {facts['resolved at']}" if closed else state.replace("_", " ")
    fields = [
        {"type": "mrkdwn", "text": f"*Money at risk*\n{facts['money at risk']}"},
        {"type": "mrkdwn", "text": f"*Units at risk*\n{facts['units at risk']}"},
    ]
    if "expected loss" in facts:
        fields.append({"type": "mrkdwn", "text": f"*Expected loss*\n{facts['expected loss']}"})
    fields += [
        {"type": "mrkdwn", "text": f"*SLA due*\n{facts['SLA due']}"},
        {"type": "mrkdwn", "text": f"*Owner*\n{facts['owner']}"},
        {"type": "mrkdwn", "text": f"*State*\n{state_text}"},
        {"type": "mrkdwn", "text": f"*Order lines affected*\n{facts['affected order lines']}"},
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header[:_HEADER_CHARS], "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": (("~" + facts["what happened"] + "~") if closed else facts["what happened"])[:_SECTION_CHARS] or key}},
        {"type": "section", "fields": fields},
    ]
    why = root_cause_text(exception)
    if why and not closed:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"*Why:* {with_names(why, names or {})}"[:_SECTION_CHARS]}]})
    parties = " · ".join(f"{label} {facts[name]}" for label, name in (("Supplier", "supplier"), ("Customers", "customers")) if name in facts)
    if parties:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": parties[:_SECTION_CHARS]}]})
    if action is not None and not closed:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": (
            f"*Recommended: {_text(action.get('action_type')).replace('_', ' ')}*\n{with_names(action.get('expected_impact'), names or {})}"
        )[:_SECTION_CHARS]}})
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"Confidence {facts['confidence']} · {facts['policy']} · {_text(action.get('policy_reasons'))}"
        )[:_SECTION_CHARS]}]})
    if scenarios and not closed:
        blocks.append({"type": "divider"})
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _scenario_table(scenarios, currency)[:_SECTION_CHARS]}})
    if action is not None and not closed and action.get("policy_decision") != AUTO_APPROVED:
        blocks.append(decision_buttons(_text(action.get("action_id"))))
    occurrence = _text(exception.get("occurrence"), "1")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"`{key}` · occurrence {occurrence}"}]})
    prefix = "[resolved]" if closed else f"[{severity}]"
    text = f"{prefix} {kind} {key}: {facts['what happened']}"
    if why and not closed:
        text += f" Why: {with_names(why, names or {})}."
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
    return f"Resolved at {fmt_when(exception.get('resolved_at'))} ({how}). No action needed any more."


def _in_worklist_order(cases: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The cases in `planning.worklist.presented_order` (the one order of every surface)."""
    if not cases:
        return []
    frame = pd.DataFrame([dict(c) for c in cases])
    for col in ("priority", "severity", "exception_key"):
        if col not in frame:
            frame[col] = None
    return [cases[i] for i in presented_order(frame.reset_index(drop=True)).index]


def _money_line(case: Mapping[str, Any], currency: str) -> str:
    if not missing(case.get("loss_kind")):
        return loss_text(case.get("loss_kind"), case.get("expected_loss"), currency)
    return f"{fmt_money(case.get('money_at_risk'), currency)} at risk"


def digest_message(channel: str, day: date, exceptions: Sequence[Mapping[str, Any]], currency: str = DEFAULT_CURRENCY,
                   names: Mapping[str, str] | None = None) -> Message:
    """One message per channel and day listing its low-severity cases a person must act on, in the worklist's
    order (`presented_order`: expected loss × urgency first)."""
    ordered = _in_worklist_order(exceptions)
    lines = [
        f"• `{_text(e.get('exception_key'))}` ({_money_line(e, currency)}"
        + (f"; act by {fmt_when(e.get('act_by'))}" if not missing(e.get("act_by")) else "")
        + f"): {with_names(e.get('sentence'), names or {})}"
        for e in ordered[:_MAX_DIGEST_LINES]
    ]
    if len(ordered) > _MAX_DIGEST_LINES:
        lines.append(f"…and {len(ordered) - _MAX_DIGEST_LINES} more (see `demand-control worklist`).")
    header = f"Low-severity exceptions · {channel} · {fmt_day(day)}"
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
    text = f"{len(ordered)} low-severity exception(s) for {channel} on {fmt_day(day)}:\n" + "\n".join(lines)
    return Message(text=text, blocks=blocks, facts={"count": str(len(ordered))})


def _case_title(case: Mapping[str, Any]) -> str:
    severity = _text(case.get("severity"), "low")
    return f"{SEVERITY_ICON.get(severity, '')} {severity.capitalize()} · {_title(_text(case.get('exception_type'), 'exception'))}".strip()


def _case_lines(case: Mapping[str, Any], currency: str, names: Mapping[str, str]) -> list[str]:
    """What a worklist item says, line by line: the sentence, the recommended action and its approver, the
    expected loss and the act-by date."""
    lines = [with_names(case.get("sentence"), names) or _text(case.get("exception_key"))]
    why = root_cause_text(case)
    if why:
        lines.append(f"*Why:* {with_names(why, names)}")
    if not missing(case.get("action_type")):
        approver = f" · approver: {_text(case.get('approver_role'))}" if not missing(case.get("approver_role")) else ""
        lines.append(f"*Recommended:* {_text(case.get('action_type')).replace('_', ' ')}: {with_names(case.get('expected_impact'), names)}{approver}")
    else:
        lines.append("*Recommended:* nothing automatic can act on it: the owner must.")
    lines.append(f"*Expected loss:* {loss_text(case.get('loss_kind'), case.get('expected_loss'), currency)} · *Act by:* {fmt_when(case.get('act_by'))}")
    return lines


def home_view(user: str, items: Sequence[Mapping[str, Any]], *, total: int | None = None, plan_day: date | None = None,
              scope: str = "", currency: str = DEFAULT_CURRENCY, names: Mapping[str, str] | None = None,
              more_hint: str = "demand-control worklist") -> Message:
    """The App Home tab of one person: their worklist in the worklist's order (the caller's `items`, already in
    that order), the first MAX_HOME_ITEMS of them, each with the buttons its parent message has. `total`: how
    many cases the person has in all; `scope`: their teams and roles, said in the header.
    Returns a Message whose blocks are the view's (`{"type": "home", "blocks": …}`)."""
    names = names or {}
    total = len(items) if total is None else total
    shown = list(items)[:MAX_HOME_ITEMS]
    plan = f" · plan of {fmt_day(plan_day)}" if plan_day else ""
    count = f"{total} case{'s' if total != 1 else ''} need{'s' if total == 1 else ''} you" if total else "Nothing needs you right now"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Your demand-control worklist"[:_HEADER_CHARS]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"{mention(user)} · {count} · ranked by expected loss × urgency{plan}" + (f" · {scope}" if scope else "")
        )[:_SECTION_CHARS]}]},
        {"type": "divider"},
    ]
    text_lines = [f"App Home of {user}: {count}{plan}" + (f" ({scope})" if scope else "")]
    for rank, case in enumerate(shown, start=1):
        key = _text(case.get("exception_key"))
        marker = change_marker(case.get("last_change"))
        title = f"*{rank}. {_case_title(case)}*" + (f"  `{marker}`" if marker else "")
        body = _case_lines(case, currency, names)
        blocks.append({"type": "section", "block_id": f"case:{key}"[:255], "text": {"type": "mrkdwn", "text": "\n".join([title, *body])[:_SECTION_CHARS]}})
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"`{key}` · {_owner(case)}" + (f" · action `{_text(case.get('action_id'))}`" if not missing(case.get("action_id")) else "")
        )[:_SECTION_CHARS]}]})
        action_id = _text(case.get("action_id"))
        if action_id and case.get("policy_decision") != AUTO_APPROVED:
            blocks.append(decision_buttons(action_id, block_id=f"decision:{action_id}"))
        blocks.append({"type": "divider"})
        text_lines.append(f"{rank:>3}. [{_text(case.get('severity'), 'low')}] {key}" + (f" ({marker})" if marker else "") + f": {body[0]}")
    if total > len(shown):
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"…and {total - len(shown)} more: `{more_hint}`"}]})
        text_lines.append(f"     …and {total - len(shown)} more: {more_hint}")
    if not shown:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": (
            "Every open case is handled by the policy, waits on someone else, or was decided since the last plan."
        )}})
    return Message(text="\n".join(text_lines), blocks=blocks[:_MAX_VIEW_BLOCKS], facts={"count": str(total), "shown": str(len(shown))})
