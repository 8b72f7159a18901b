"""The command line: landscape generation writes the file drop, bad arguments name the option."""

from __future__ import annotations

from typer.testing import CliRunner

from demand_control.cli.main import app
from demand_control.schema.contracts import FILE_DROP_OBJECTS

runner = CliRunner()


def test_landscape_generate_writes_one_file_per_object(tmp_path) -> None:
    result = runner.invoke(
        app,
        ["landscape", "generate", "--out", str(tmp_path), "--skus", "12", "--locations", "2", "--weeks", "110", "--seed", "3", "--as-of", "2026-11-23", "--format", "csv"],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{name}.csv" for name in FILE_DROP_OBJECTS)


def test_bad_date_names_the_option(tmp_path) -> None:
    result = runner.invoke(app, ["landscape", "generate", "--out", str(tmp_path), "--as-of", "2026-13-01"])
    assert result.exit_code != 0
    assert "--as-of" in result.output and "2026-13-01" in result.output


def test_contracts_prints_the_table() -> None:
    result = runner.invoke(app, ["contracts"])
    assert result.exit_code == 0
    assert "| `demand_history` |" in result.output
