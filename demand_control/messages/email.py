"""What a customer reads: the plain-text e-mail about an approved delay, substitute or partial delivery on their
order lines, and the note to the action's owner when a customer cannot be e-mailed."""

from __future__ import annotations

from typing import Any

import pandas as pd

SIGNATURE = "Kind regards,\nCustomer Service"


def _day(value: Any) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return pd.Timestamp(value).strftime("%-d %B %Y")


def _qty(value: Any) -> str:
    v = float(value)
    return f"{v:,.0f}" if abs(v - round(v)) < 0.05 else f"{v:,.1f}"


def _line_text(line: pd.Series) -> str:
    ref = f"Order {line['order_id']}, line {line['line_no']}: {_qty(line['quantity'])} × {line['sku']}"
    promised = _day(line["promise_date"]) or "the date we confirmed"
    if line["action_type"] == "substitute":
        return (f"  {ref}\n    We can offer {_qty(line['quantity'])} × {line['substitute_sku']} instead of {line['sku']}, "
                f"delivered on the date we promised ({promised}).")
    if line["action_type"] == "allocate":
        return (f"  Order {line['order_id']}, line {line['line_no']}: {line['sku']}\n"
                f"    We can deliver {_qty(line['allocated'])} of the {_qty(line['qty_open'])} units you ordered on {promised}; "
                f"the remaining {_qty(line['quantity'])} will follow as soon as new stock arrives.")
    revised = _day(line["new_date"])
    if revised:
        return f"  {ref}\n    Promised for {promised}, now expected on {revised}."
    return f"  {ref}\n    Promised for {promised}; we do not have a confirmed new date yet and will write again as soon as we do."


_INTRO = {
    "notify_customer": "we are sorry to let you know that the following part of your order cannot be delivered on the date we promised:",
    "substitute": "an item on your order is short, and we would like to offer you an equivalent product instead:",
    "allocate": "an item on your order is in short supply, and we can only deliver part of it on the promised date:",
}
_OUTRO = {
    "notify_customer": "If the new date does not work for you, please reply to this email and we will look for an alternative with you.",
    "substitute": "Please reply to this email to accept or decline the substitute; if we do not hear from you, we will keep your order as it is.",
    "allocate": "If a partial delivery does not work for you, please reply to this email and we will find a solution together.",
}
_SUBJECT = {
    "notify_customer": "revised delivery date",
    "substitute": "substitute offered",
    "allocate": "partial delivery",
}


def render_notice(customer_name: str, action_type: str, lines: pd.DataFrame) -> tuple[str, str]:
    """Subject and plain-text body of one notice: polite, and specific about every line it covers."""
    orders = sorted(lines["order_id"].astype(str).unique())
    subject = f"Order {', '.join(orders)}: {_SUBJECT[action_type]}"
    body = "\n".join([
        f"Dear {customer_name},",
        "",
        _INTRO[action_type],
        "",
        *[_line_text(line) for _, line in lines.iterrows()],
        "",
        "We apologise for the inconvenience. " + _OUTRO[action_type],
        "",
        SIGNATURE,
    ])
    return subject, body


def undeliverable_text(customer_id: str, order_id: str, reason: str, notice_id: str) -> str:
    """The owner's note when a notice cannot be sent (no address, not in the customer master)."""
    return (f"Customer {customer_id} could not be told about order {order_id} ({reason}): "
            f"please contact them another way. Notice {notice_id}.")
