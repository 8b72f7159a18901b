"""Truthful docs for analysts: the committed data dictionary is what `tables.py` generates, every table and
column is described there, in PostgreSQL's comments and in the Dagster UI's column schemas, and each example
query of docs/queries.sql answers on a warehouse the planning chain filled (and an event replan added to)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from sqlalchemy import inspect, text
from typer.testing import CliRunner

from demand_control.cli.main import app
from demand_control.definitions import build_definitions, defs
from demand_control.ops.replan import REPLAN_JOB_NAME
from demand_control.resources import FileDropSource, QualitySettings
from demand_control.resources.warehouse import Warehouse
from demand_control.schema import tables
from demand_control.schema.dictionary import DICTIONARY_PATH, data_dictionary_markdown
from tests.conftest import AS_OF
from tests.demand_assets.test_decision_assets import planned  # noqa: F401  (module fixture: a planned warehouse)
from tests.services.test_replan import _event, _store

ROOT = Path(__file__).parents[2]
QUERIES = ROOT / "docs" / "queries.sql"


def example_queries(path: Path = QUERIES) -> dict[str, str]:
    """name → SQL of each `-- name:` block of docs/queries.sql (comment lines dropped)."""
    blocks = re.split(r"^-- name: *(\S+) *$", path.read_text(), flags=re.MULTILINE)[1:]
    queries = {}
    for name, body in zip(blocks[::2], blocks[1::2]):
        sql = "\n".join(line for line in body.splitlines() if not line.startswith("--")).strip().rstrip(";")
        queries[name] = sql
    return queries


def test_the_committed_data_dictionary_is_generated_from_the_tables() -> None:
    committed = (ROOT / DICTIONARY_PATH).read_text()
    assert committed == data_dictionary_markdown(), "docs/data_dictionary.md is stale: run `demand-control warehouse dictionary`"


def test_the_dictionary_command_writes_every_table_and_column(tmp_path) -> None:  # noqa: ANN001
    target = tmp_path / "docs" / "dictionary.md"
    result = CliRunner().invoke(app, ["warehouse", "dictionary", "--output", str(target)])
    assert result.exit_code == 0, result.output
    written = target.read_text()
    for table in tables.metadata.tables.values():
        assert table.comment, f"{table.name} has no description"
        assert f"\n## {table.name}\n" in written
        for column in table.columns:
            assert column.comment, f"{table.name}.{column.name} has no description"
            assert f"| `{column.name}` |" in written


def test_dagster_column_descriptions_are_the_table_comments() -> None:
    """For SQLite users (SQLite drops comments) the UI's column schema carries them."""
    graph = defs.resolve_asset_graph()
    seen = 0
    for key in graph.get_all_asset_keys():
        metadata = graph.get(key).metadata
        if "dagster/table_name" not in metadata:  # the twin's scorecard is not a warehouse table
            continue
        table = tables.metadata.tables[metadata["dagster/table_name"]]
        described = {c.name: c.description for c in metadata["dagster/column_schema"].columns}
        assert list(described) == [c.name for c in table.columns], key
        for column in table.columns:
            assert described[column.name].endswith(column.comment), (key, column.name)
        seen += 1
    assert seen == len(graph.get_all_asset_keys()) - 1


def test_the_example_queries_answer_on_a_planned_warehouse(planned) -> None:  # noqa: F811
    warehouse, _, _ = planned
    # One event replan, so that replan_log has a row to show.
    line = warehouse.read("purchase_order_line").query("status in ['sent', 'confirmed']").iloc[3]
    _store(warehouse, [_event(900_301, "supplier.delay", {"supplier_id": line["supplier_id"], "po_id": line["po_id"], "line_no": int(line["line_no"]),
                                                          "new_date": (AS_OF + timedelta(days=56)).isoformat()},
                              po_id=line["po_id"], po_line_no=int(line["line_no"]), sku=line["sku"], location_id=line["location_id"])])
    replan = build_definitions({"warehouse": warehouse, "signal_source": FileDropSource(folder="."), "quality_settings": QualitySettings()})
    config = {"ops": {"replan_from_inbox": {"config": {"inbox_from": 900_301, "inbox_to": 900_301, "horizon_start": AS_OF.isoformat()}}}}
    assert replan.resolve_job_def(REPLAN_JOB_NAME).execute_in_process(instance=dg.DagsterInstance.ephemeral(), run_config=config).success

    queries = example_queries()
    assert len(queries) >= 8
    answers = run_queries(warehouse, queries)
    for name, frame in answers.items():
        assert len(frame) > 0, f"{name} returned nothing on a planned warehouse"
    assert answers["kpi_headline"]["kpi"].is_unique
    assert answers["top_open_exceptions"]["money_at_risk"].is_monotonic_decreasing


def run_queries(warehouse: Warehouse, queries: dict[str, str]) -> dict[str, pd.DataFrame]:
    with warehouse.engine.connect() as conn:
        return {name: pd.read_sql(text(sql), conn) for name, sql in queries.items()}


@pytest.mark.postgres
def test_every_table_and_column_comment_is_kept_on_postgres(postgres_database) -> None:
    warehouse = Warehouse(database_url=postgres_database["url"])
    warehouse.migrate()
    inspector = inspect(warehouse.engine)
    for table in tables.metadata.tables.values():
        assert inspector.get_table_comment(table.name)["text"] == table.comment, table.name
        comments = {c["name"]: c.get("comment") for c in inspector.get_columns(table.name)}
        for column in table.columns:
            assert comments[column.name] == column.comment, (table.name, column.name)
