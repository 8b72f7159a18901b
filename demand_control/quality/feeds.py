"""What the warehouse knows about each feed: its latest load, its freshness, and the key sets its
references must resolve against."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import select

from demand_control.infra import clock
from demand_control.infra.clock import as_utc
from demand_control.schema import tables
from demand_control.schema.contracts import Contract
from demand_control.resources.warehouse import Warehouse


def latest_load(warehouse: Warehouse, object_name: str) -> Any | None:
    """The newest feed_load row of an object, or None before its first extract."""
    feed_load = tables.feed_load
    stmt = (
        select(feed_load)
        .where(feed_load.c.object == object_name)
        .order_by(feed_load.c.load_id.desc())
        .limit(1)
    )
    with warehouse.engine.connect() as conn:
        return conn.execute(stmt).first()


def last_cursor(warehouse: Warehouse, object_name: str, source_system: str) -> str | None:
    """The cursor of the newest staged load of an object from a source; a rejected load never advances it."""
    feed_load = tables.feed_load
    stmt = (
        select(feed_load.c.cursor)
        .where(
            (feed_load.c.object == object_name)
            & (feed_load.c.source_system == source_system)
            & (feed_load.c.status == "staged")
        )
        .order_by(feed_load.c.load_id.desc())
        .limit(1)
    )
    with warehouse.engine.connect() as conn:
        return conn.execute(stmt).scalar_one_or_none()


def reference_sets(warehouse: Warehouse, contract: Contract) -> dict[str, Collection[str]]:
    """For every "object.column" the contract references, the values currently staged there."""
    targets = {c.references or c.list_of for c in contract.columns if c.references or c.list_of}
    sets: dict[str, Collection[str]] = {}
    for target in sorted(t for t in targets if t):
        object_name, column = target.split(".")
        if object_name == contract.name:
            continue  # self references (substitutes) resolve against the feed itself
        table = tables.STAGED[object_name]
        with warehouse.engine.connect() as conn:
            sets[target] = set(conn.execute(select(table.c[column])).scalars())
    return sets


def feed_age_hours(load: Any, now: datetime | None = None) -> float | None:
    """Hours since the source last changed the feed, or None when the source gives no time."""
    modified = as_utc(load.source_modified_at)
    if modified is None:
        return None
    return ((now or clock.now()) - modified).total_seconds() / 3600
