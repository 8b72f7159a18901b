"""The ERP interface: what demand-control reads from and writes to a system of record.

An adapter implements three things: extract canonical objects (incrementally, by a modification cursor),
apply an approved action idempotently (the action's deterministic id travels with the write and is looked
up before anything is created), and read the written record back for reconciliation. `TrytonErp` is the
shipped adapter; other ERPs plug in behind the same interface.
"""

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, model_validator

from demand_control.resources.sources import SignalSource

ACTION_MARKER = "dc-action:"


class _Action(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    action_id: Annotated[str, Field(min_length=8, max_length=80, pattern=r"^[A-Za-z0-9_.:-]+$")]

    @property
    def marker(self) -> str:
        """The token every ERP record written for this action carries, so a replay finds it."""
        return f"{ACTION_MARKER}{self.action_id}"


class ReplenishOrder(_Action):
    """Buy `quantity` of a SKU for a DC, needed by a date (becomes a purchase request)."""

    kind: Literal["replenish"] = "replenish"
    sku: str
    location_id: str
    quantity: PositiveFloat
    needed_by: date
    supplier_id: str | None = None


class SupplierDelay(_Action):
    """Accept a supplier's new delivery date for a purchase-order line."""

    kind: Literal["accept_delay"] = "accept_delay"
    po_id: str
    line_no: Annotated[int, Field(ge=1)]
    new_date: date


class ForecastPublication(_Action):
    """Publish our forecast of one DC's demand for one bucket, so the ERP's own supply run sees it."""

    kind: Literal["publish_forecast"] = "publish_forecast"
    location_id: str
    period_start: date
    period_end: date
    quantities: dict[str, Annotated[float, Field(ge=0)]]

    @model_validator(mode="after")
    def _period_is_ordered(self) -> "ForecastPublication":
        if self.period_end < self.period_start:
            raise ValueError(f"period_end {self.period_end} is before period_start {self.period_start}")
        if not self.quantities:
            raise ValueError("quantities is empty: nothing to publish")
        return self


class PromiseRevision(_Action):
    """Move a customer order line's shipping date to a revised promise."""

    kind: Literal["revise_promise"] = "revise_promise"
    order_id: str
    line_no: Annotated[int, Field(ge=1)]
    new_date: date


ErpAction = Annotated[
    ReplenishOrder | SupplierDelay | ForecastPublication | PromiseRevision, Field(discriminator="kind")
]


class Difference(BaseModel):
    """A field whose value in the ERP is not what the action wrote."""

    model_config = ConfigDict(frozen=True)

    field: str
    expected: Any
    actual: Any

    def __str__(self) -> str:
        return f"{self.field}: expected {self.expected!r}, ERP has {self.actual!r}"


class WriteOutcome(BaseModel):
    """What applying one action did in the ERP, and whether the read-back agrees."""

    model_config = ConfigDict(frozen=True)

    action_id: str
    kind: str
    model: str
    record_ids: tuple[int, ...]
    created: bool  # False when the action had already been applied (a replay or a retry)
    differences: tuple[Difference, ...] = ()

    @property
    def reconciled(self) -> bool:
        return not self.differences


class Erp(SignalSource):
    """A system of record demand-control reads signals from and writes decisions back to."""

    def apply(self, action: ErpAction) -> WriteOutcome:
        raise NotImplementedError

    def reconcile(self, action: ErpAction) -> tuple[Difference, ...]:
        raise NotImplementedError
