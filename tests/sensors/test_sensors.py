"""The file-drop sensor requests one run per set of changed feeds, keeps its cursor, and says why it skips."""

from __future__ import annotations

import json
import os

import dagster as dg

from demand_control.resources import FileDropSource
from demand_control.sensors.file_drop import file_drop_sensor


def evaluate(folder, cursor=None):
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"signal_source": FileDropSource(folder=str(folder))})
        return file_drop_sensor(context)


def test_first_evaluation_requests_a_run_for_every_feed(file_drop) -> None:
    result = evaluate(file_drop)
    assert isinstance(result, dg.SensorResult)
    assert len(result.run_requests) == 1
    cursor = json.loads(result.cursor)
    assert "product.parquet" in cursor and "demand_history.parquet" in cursor


def test_no_change_skips_with_reason_and_a_change_requests_a_new_run_key(file_drop) -> None:
    first = evaluate(file_drop)
    idle = evaluate(file_drop, cursor=first.cursor)
    assert isinstance(idle, dg.SkipReason)
    assert "no feed" in idle.skip_message

    path = file_drop / "inventory_position.parquet"
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 120))
    second = evaluate(file_drop, cursor=first.cursor)
    assert isinstance(second, dg.SensorResult)
    assert second.run_requests[0].run_key != first.run_requests[0].run_key
    assert second.run_requests[0].tags["demand_control/changed_feeds"] == "inventory_position.parquet"


def test_missing_folder_skips(tmp_path) -> None:
    result = evaluate(tmp_path / "nowhere")
    assert isinstance(result, dg.SkipReason)
    assert "does not exist" in result.skip_message
