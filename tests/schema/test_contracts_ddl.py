"""Contracts drive the DDL: the migrated schema has every contract column, key and comment, on SQLite and
PostgreSQL, and the Alembic migrations match the declared metadata."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from demand_control.schema import tables
from demand_control.schema.contracts import CONTRACTS, contracts_markdown
from demand_control.resources.warehouse import Warehouse


def _assert_schema_matches_contracts(warehouse: Warehouse) -> None:
    inspector = inspect(warehouse.engine)
    names = set(inspector.get_table_names())
    for contract in CONTRACTS.values():
        assert contract.name in names, f"staged table {contract.name} missing"
        columns = {c["name"]: c for c in inspector.get_columns(contract.name)}
        assert list(columns) == [c.name for c in contract.all_columns]
        for col in contract.all_columns:
            expected_nullable = not col.required and col.name not in contract.key
            assert columns[col.name]["nullable"] == expected_nullable, (contract.name, col.name)
        pk = inspector.get_pk_constraint(contract.name)["constrained_columns"]
        assert tuple(pk) == contract.key
    assert {"feed_load", "quarantine", "raw_product", "raw_demand_history"} <= names
    with warehouse.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), tables.metadata)
    assert diff == [], f"migrations differ from tables.py: {diff}"


def test_contracts_to_ddl_on_sqlite(tmp_path) -> None:
    warehouse = Warehouse(home=str(tmp_path))
    warehouse.migrate()
    warehouse.migrate()  # idempotent: a second upgrade is a no-op
    _assert_schema_matches_contracts(warehouse)


@pytest.mark.postgres
def test_contracts_to_ddl_on_postgres_with_comments(postgres_database) -> None:
    warehouse = Warehouse(database_url=postgres_database["url"])
    warehouse.migrate()
    _assert_schema_matches_contracts(warehouse)
    inspector = inspect(warehouse.engine)
    for contract in CONTRACTS.values():
        assert inspector.get_table_comment(contract.name)["text"] == contract.description
        comments = {c["name"]: c.get("comment") for c in inspector.get_columns(contract.name)}
        for col in contract.columns:
            assert comments[col.name] == col.description, (contract.name, col.name)


def test_readme_contract_table_is_generated_from_the_contracts() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert contracts_markdown() in readme, "README contract table is stale: run `demand-control contracts`"


def test_contract_declarations_are_consistent() -> None:
    for contract in CONTRACTS.values():
        for col in contract.columns:
            for target in (col.references, col.list_of):
                if target:
                    obj, column = target.split(".")
                    assert obj in CONTRACTS and column in CONTRACTS[obj].column_names, target
