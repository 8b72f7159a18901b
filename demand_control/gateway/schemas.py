"""Schemas of the events the gateway accepts: one strict Pydantic model per event type.

Field names are those of the contracts (`supplier_event`, `order_event`, `customer_order_line`), so the
inbox payload maps onto the canonical objects without renaming. Models are strict (no "1" for 1, no true for
1) and forbid unknown fields, so a sender's typo is a 422 naming the field rather than a silently dropped value.

Every value that passes can be stored and planned on: line numbers fit the warehouse's 32-bit INTEGER columns,
ids hold no control characters (PostgreSQL cannot store NUL), and dates lie in a window around the event
(`parse_event`), so a typo such as 0001-01-01 or 9999-12-31 is refused naming the field rather than moving a
plan by centuries or breaking the date arithmetic of the replan.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from demand_control.infra import clock

# inbox_events.po_line_no / order_line_no and the staged lines' line_no are INTEGER: 32-bit on PostgreSQL.
# A larger number can name no stored line and would fail the insert (a 5xx the sender retries for ever).
MAX_LINE_NO = 2**31 - 1

# The windows a date must fall in (see `parse_event`). occurred_at is the sender's clock: five years either way
# of ours admits any clock error and replayed backlog worth planning on (and keeps the published samples valid
# for years), while year 1 or 9999 is refused before the replan's date arithmetic meets it. A delivery or
# promise date is about an open order line the event names: up to a year before the event (a late confirmation
# of an overdue line) and two years after it (long-lead items) — beyond that it is a typo, not a plan.
OCCURRED_AT_WINDOW = timedelta(days=5 * 366)
DATE_BEFORE_EVENT = timedelta(days=366)
DATE_AFTER_EVENT = timedelta(days=2 * 366)

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def _no_control_characters(value: str) -> str:
    if _CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain control characters (NUL, tab, newline, ...)")
    return value


Id = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_no_control_characters)]
LineNo = Annotated[int, Field(ge=1, le=MAX_LINE_NO)]
Quantity = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SupplierLine(_Strict):
    supplier_id: Id
    po_id: Id
    line_no: LineNo
    # What the supplier wrote, free text: stored with the event and shown to people and to the optional advisor
    # only as quoted data (never acted on).
    note: Annotated[str, Field(max_length=2000)] | None = None


class SupplierDateData(SupplierLine):
    new_date: date


class SupplierShortfallData(SupplierLine):
    new_qty: Quantity


class OrderLine(_Strict):
    order_id: Id
    line_no: LineNo


class OrderNewData(OrderLine):
    customer_id: Id
    sku: Id
    location_id: Id
    qty_open: Quantity
    promise_date: date


class OrderChanges(_Strict):
    # Typed without `| None`: absent means "unchanged" (the default is never validated), while an explicit
    # null, which has no meaning for these fields, is a type error on the field itself.
    qty_open: Quantity = None  # type: ignore[assignment]
    promise_date: date = None  # type: ignore[assignment]
    location_id: Id = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _at_least_one(self) -> OrderChanges:
        if not self.model_fields_set:
            raise ValueError("changes must name at least one of qty_open, promise_date, location_id")
        return self


class OrderChangeData(OrderLine):
    changes: OrderChanges


class _Event(_Strict):
    occurred_at: AwareDatetime


class SupplierDelay(_Event):
    type: Literal["supplier.delay"]
    data: SupplierDateData


class SupplierConfirmation(_Event):
    type: Literal["supplier.confirmation"]
    data: SupplierDateData


class SupplierShortfall(_Event):
    type: Literal["supplier.shortfall"]
    data: SupplierShortfallData


class SupplierCancellation(_Event):
    type: Literal["supplier.cancellation"]
    data: SupplierLine


class OrderNew(_Event):
    type: Literal["order.new"]
    data: OrderNewData


class OrderChange(_Event):
    type: Literal["order.change"]
    data: OrderChangeData


class OrderCancel(_Event):
    type: Literal["order.cancel"]
    data: OrderLine


Event = SupplierDelay | SupplierConfirmation | SupplierShortfall | SupplierCancellation | OrderNew | OrderChange | OrderCancel

EVENT_MODELS: dict[str, type[_Event]] = {
    model.model_fields["type"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in (SupplierDelay, SupplierConfirmation, SupplierShortfall, SupplierCancellation, OrderNew, OrderChange, OrderCancel)
}
EVENT_TYPES: tuple[str, ...] = tuple(EVENT_MODELS)


class MalformedJson(Exception):
    """The body is not JSON at all (400)."""


@dataclass(frozen=True)
class FieldError:
    field: str  # dotted path: "data.changes.qty_open"
    message: str
    value: Any = None
    has_value: bool = True

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "message": self.message}
        if self.has_value:
            out["value"] = _shorten(self.value)
        return out


class SchemaViolation(Exception):
    """The body is JSON but breaks the event schema (422); `errors` name each field and its value."""

    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_event(body_text: str, now: datetime | None = None) -> Event:
    """Parse and validate one event; raise `MalformedJson` or `SchemaViolation`. `now` (default: the planning
    clock) is what occurred_at is checked against."""
    try:
        document = json.loads(body_text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise MalformedJson(str(exc)) from None
    except RecursionError:  # nesting deeper than Python's recursion limit: no event is shaped like that
        raise MalformedJson("nested too deeply to be an event") from None
    if not isinstance(document, dict):
        raise SchemaViolation([FieldError("(body)", "must be a JSON object", type(document).__name__)])
    if "type" not in document:
        raise SchemaViolation([FieldError("type", "Field required", has_value=False)])
    event_type = document["type"]
    model = EVENT_MODELS.get(event_type) if isinstance(event_type, str) else None
    if model is None:
        raise SchemaViolation([FieldError("type", f"must be one of {', '.join(EVENT_TYPES)}", event_type)])
    try:
        # Validated from the JSON text (not the parsed dict) so strict mode still reads ISO dates from strings.
        event: Event = model.model_validate_json(body_text)  # type: ignore[assignment]
    except ValidationError as exc:
        raise SchemaViolation([_field_error(error) for error in exc.errors(include_url=False)]) from None
    outside = _dates_outside_their_window(event, now or clock.now())
    if outside:
        raise SchemaViolation(outside)
    return event


def _dates_outside_their_window(event: Event, now: datetime) -> list[FieldError]:
    """occurred_at within OCCURRED_AT_WINDOW of `now`; then each delivery or promise date within
    [occurred_at - DATE_BEFORE_EVENT, occurred_at + DATE_AFTER_EVENT] (the sender's own calendar date)."""
    occurred = event.occurred_at
    if abs(occurred - now) > OCCURRED_AT_WINDOW:  # aware datetimes: the difference is exact, never overflows
        return [FieldError("occurred_at", f"must be within {OCCURRED_AT_WINDOW.days} days of the gateway's clock "
                                          f"({now:%Y-%m-%d})", occurred.isoformat())]
    data: Any = event.data
    dated = [("data.new_date", getattr(data, "new_date", None)), ("data.promise_date", getattr(data, "promise_date", None))]
    changes = getattr(data, "changes", None)
    if changes is not None:
        dated.append(("data.changes.promise_date", changes.promise_date))
    earliest, latest = occurred.date() - DATE_BEFORE_EVENT, occurred.date() + DATE_AFTER_EVENT
    return [FieldError(name, f"must be between {earliest} and {latest} (from {DATE_BEFORE_EVENT.days} days before "
                             f"to {DATE_AFTER_EVENT.days} days after occurred_at)", value.isoformat())
            for name, value in dated if value is not None and not earliest <= value <= latest]


def _field_error(error: Any) -> FieldError:
    path = ".".join(str(part) for part in error["loc"]) or "(body)"
    # For a missing field pydantic's input is the whole parent object: not the bad value.
    if error["type"] == "missing":
        return FieldError(path, error["msg"], has_value=False)
    return FieldError(path, error["msg"], error.get("input"))


def _shorten(value: Any, limit: int = 200) -> Any:
    """Echo the offending value, but never a whole large object back to the sender."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value if not isinstance(value, str) or len(value) <= limit else value[:limit] + "…"
    text = json.dumps(value, default=str)
    return value if len(text) <= limit else text[:limit] + "…"
