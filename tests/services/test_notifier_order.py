"""The order the notifier posts a burst in (RELIABILITY.md §9: bursts are queued, and the queue is by
severity): the most severe case first, money at risk only among cases of the same severity. The cases are
crafted rows on a fresh SQLite warehouse, posted to the local server speaking the Slack Web API."""

from __future__ import annotations

from demand_control.resources.warehouse import Warehouse
from tests.services.conftest import CHANNELS
from tests.services.test_notify import exception_row, run, write_plan


def test_a_burst_is_posted_by_severity_first_and_money_only_within_a_severity(warehouse: Warehouse, slack) -> None:  # noqa: ANN001
    fake, base_url = slack
    # The critical case carries the least money; a medium one the most. Sorted by money alone the critical
    # case would be posted last.
    rows = [
        exception_row("projected_stockout:SKU-1@DC-1", "medium", CHANNELS[0], 90_000.0),
        exception_row("order_at_risk:SKU-2@DC-1", "high", CHANNELS[0], 20_000.0),
        exception_row("projected_stockout:SKU-3@DC-1", "critical", CHANNELS[0], 1_000.0),
        exception_row("supplier_delay:SKU-4@DC-1", "high", CHANNELS[0], 50_000.0),
    ]
    write_plan(warehouse, rows)
    summary = run(warehouse, base_url)
    assert (summary.posted, summary.failed) == (4, 0)
    posted = [call.params["metadata"]["event_payload"]["exception_key"] for call in fake.calls_to("chat.postMessage", "ok")]
    assert posted == [
        "projected_stockout:SKU-3@DC-1",  # critical, 1,000
        "supplier_delay:SKU-4@DC-1",  # high, 50,000
        "order_at_risk:SKU-2@DC-1",  # high, 20,000
        "projected_stockout:SKU-1@DC-1",  # medium, 90,000
    ]
