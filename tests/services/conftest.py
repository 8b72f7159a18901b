"""Fixtures of the notifier's tests (test_notify, test_app_home): a fresh SQLite warehouse per test and the
local Slack Web API server with the owners' two channels. Modules with their own `warehouse` or `slack`
fixture (approvals, write-back, …) keep theirs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from demand_control.resources.warehouse import Warehouse
from tests.slack_api import FakeSlack, slack_api_server

CHANNELS = ("#buying-fresh", "#buying-grocery")


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:  # noqa: ANN001
    warehouse = Warehouse(home=str(tmp_path / "state"))
    warehouse.migrate()
    return warehouse


@pytest.fixture
def slack() -> Iterator[tuple[FakeSlack, str]]:
    with slack_api_server() as (fake, base_url):
        for name in CHANNELS:
            fake.add_channel(name)
        yield fake, base_url
