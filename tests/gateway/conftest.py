"""Fixtures of the gateway tests that run on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from demand_control.resources import Warehouse


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    """A migrated warehouse on SQLite and on PostgreSQL (CI; skipped elsewhere). A module that defines its own
    `warehouse` (test_gateway.py: SQLite with seeded master data) overrides it."""
    if request.param == "sqlite":
        wh = Warehouse(home=str(tmp_path))
    else:
        wh = Warehouse(database_url=str(request.getfixturevalue("postgres_database")["url"]))
    wh.migrate()
    return wh
