"""What an action's owner reads about its ERP write-back: the result in the exception's thread, a read-back
that differs from the action, and a dead letter. Plain text built from the outbox row and the ERP's answer."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from demand_control.resources.erp.base import WriteOutcome


def describe_action(kind: str, payload: str) -> str:
    """A short human description of an outbox payload, for alerts."""
    try:
        p = json.loads(payload)
    except ValueError:
        return kind
    if kind == "replenish":
        return f"buy {p.get('quantity')} {p.get('sku')} for {p.get('location_id')} by {p.get('needed_by')}"
    if kind == "accept_delay":
        return f"move PO {p.get('po_id')} line {p.get('line_no')} to {p.get('new_date')}"
    if kind == "revise_promise":
        return f"move order {p.get('order_id')} line {p.get('line_no')} to {p.get('new_date')}"
    if kind == "publish_forecast":
        return f"publish the forecast of {p.get('location_id')} for {p.get('period_start')}..{p.get('period_end')}"
    return kind


def differences_text(outcome: WriteOutcome) -> str:
    """How the read-back differs from the action, in one line; empty when it matches."""
    return "; ".join(map(str, outcome.differences))


def _record_ids(outcome: WriteOutcome) -> str:
    return ", ".join(map(str, outcome.record_ids))


def result_text(kind: str, payload: str, outcome: WriteOutcome) -> str:
    """The reply in the exception's thread once the ERP confirmed the write."""
    what = "created" if outcome.created else "found from an earlier attempt"
    return (f"Written to the ERP: {describe_action(kind, payload)} — {outcome.model} {_record_ids(outcome)} "
            f"({what}); read back {'matches' if outcome.reconciled else 'differs: ' + differences_text(outcome)}.")


def unreconciled_text(action_id: str, kind: str, payload: str, outcome: WriteOutcome) -> str:
    """The alert when the write is in the ERP but reading it back differs from the action."""
    return (f"ERP write-back of {action_id} ({describe_action(kind, payload)}) is in "
            f"{outcome.model} {_record_ids(outcome)}, but reading it back differs: {differences_text(outcome)}. Check the record in the ERP.")


def dead_letter_text(action_id: str, kind: str, payload: str, failure: str, error: str) -> str:
    """The alert when an action leaves the queue unwritten (`failure` business: the ERP refused it)."""
    why = "the ERP refused it, so it is not retried" if failure == "business" else "the ERP could not take it"
    return (f"ERP write-back of {action_id} ({describe_action(kind, payload)}) failed and "
            f"{why}: {error}. Correct the action or apply it by hand; replaying the row is safe.")
