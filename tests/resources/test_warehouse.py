"""The warehouse's schema check holds when threads reach it together, as the daemon's sensors do on their first
tick."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from demand_control.resources.warehouse import Warehouse


def test_threads_reaching_a_fresh_warehouse_at_once_all_find_the_schema(tmp_path) -> None:
    # Several fresh databases: one pair of threads does not always meet inside Alembic.
    for attempt in range(3):
        warehouse = Warehouse(home=str(tmp_path / f"attempt{attempt}"))
        start = threading.Barrier(4)

        def first_use(how: str) -> int:
            start.wait()
            if how == "migrate":
                warehouse.migrate()
                return 0
            return warehouse.count("inbox_events")

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(first_use, ["migrate", "count", "migrate", "count"]))
        assert results == [0, 0, 0, 0]
