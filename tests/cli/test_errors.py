"""Every command's failure is one line on stderr and a non-zero exit, never a traceback: bad arguments, a broken
policy, scenario or checkpoint file, an output path that cannot be written, a warehouse that does not answer."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from demand_control.cli.main import app

runner = CliRunner()
UNREACHABLE_DATABASE = "postgresql+psycopg2://nobody@127.0.0.1:1/none?connect_timeout=2"
BROKEN_POLICY = "version: 1\nowners: [not, a, mapping]\n"


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # whatever a command writes by a relative path stays in the test's folder
    monkeypatch.setenv("DEMAND_CONTROL_HOME", str(tmp_path / "home"))
    for name in ("DEMAND_CONTROL_DATABASE_URL", "DEMAND_CONTROL_POLICY", "DEMAND_CONTROL_AUDIT_CHECKPOINTS", "DEMAND_CONTROL_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEMAND_CONTROL_OPERATOR", "ana.planner")
    return tmp_path


def one_line_error(args: list[str], code: int, *words: str, env: dict[str, str] | None = None) -> str:
    result = runner.invoke(app, args, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), f"{args}: {result.exception!r}"
    assert result.exit_code == code, f"{args} exited {result.exit_code}: {result.output}"
    assert result.output.count("\n") == 1 and result.output.strip(), f"{args}: not one line: {result.output!r}"
    for word in words:
        assert word in result.output, f"{args}: {word!r} not in {result.output!r}"
    return result.output


@pytest.fixture
def panel(tmp_path: Path) -> Path:
    path = tmp_path / "panel.csv"
    pd.DataFrame({"unique_id": ["a"] * 30, "ds": pd.date_range("2024-01-01", periods=30, freq="MS"), "y": range(30)}).to_csv(path, index=False)
    return path


def test_bad_arguments(tmp_path: Path) -> None:
    one_line_error(["landscape", "generate", "--out", str(tmp_path), "--as-of", "2026-13-01"], 2, "error: ", "--as-of", "2026-13-01")
    one_line_error(["landscape", "generate", "--out", str(tmp_path), "--skus", "0"], 2, "--skus")
    one_line_error(["no-such-command"], 2, "No such command 'no-such-command'")
    one_line_error(["demo", "--source", "sap"], 2, "--source must be tryton or file_drop, got 'sap'")
    one_line_error(["erp", "init", "--as-of", "yesterday"], 2, "--as-of", "'yesterday'")
    one_line_error(["approve"], 2, "Missing argument")
    one_line_error(["forecast", "--input", "x.csv"], 2, "--input and --output are required")


def test_landscape_generate_into_a_file(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a folder")
    one_line_error(["landscape", "generate", "--out", str(tmp_path / "taken"), "--skus", "2", "--locations", "1", "--weeks", "110"],
                   1, "error: ", str(tmp_path / "taken"))


def test_forecast_output_onto_or_under_an_existing_file(tmp_path: Path, panel: Path) -> None:
    existing = tmp_path / "out.csv"
    existing.write_text("keep me")
    args = ["forecast", "--input", str(panel), "--freq", "MS", "--horizon", "3", "--season-length", "1"]
    one_line_error([*args, "--output", str(existing)], 2, f"--output {existing} already exists; pass --force")
    assert existing.read_text() == "keep me"
    one_line_error([*args, "--output", str(existing / "fc.csv")], 2, f"{existing} is a file, not a folder")
    one_line_error([*args, "--output", str(tmp_path / "fc.json")], 2, "use a .csv or .parquet file name")
    one_line_error(["forecast", "--input", str(tmp_path / "missing.csv"), "--output", str(tmp_path / "new.csv")], 2, "missing.csv does not exist")
    one_line_error(["forecast", "backtest", "--input", str(tmp_path / "missing.csv")], 2, "missing.csv does not exist")


def test_forecast_force_overwrites(tmp_path: Path, panel: Path) -> None:
    existing = tmp_path / "out.csv"
    existing.write_text("old")
    result = runner.invoke(app, ["forecast", "--input", str(panel), "--freq", "MS", "--horizon", "3", "--season-length", "1",
                                 "--output", str(existing), "--force"])
    assert result.exit_code == 0, result.output
    assert list(pd.read_csv(existing).columns)[:3] == ["unique_id", "ds", "mean"]


@pytest.mark.parametrize("command", [["worklist"], ["approve", "A-1"], ["reject", "A-1"], ["snooze", "A-1"],
                                     ["simulate", "--out", "sim"]])
def test_a_broken_policy_file(tmp_path: Path, command: list[str]) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(BROKEN_POLICY)
    one_line_error(command, 2, str(policy), env={"DEMAND_CONTROL_POLICY": str(policy)})
    one_line_error(command, 2, "does-not-exist.yaml", env={"DEMAND_CONTROL_POLICY": str(tmp_path / "does-not-exist.yaml")})


def test_a_broken_scenario_file(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("skus: many\n")
    one_line_error(["simulate", "--out", str(tmp_path / "sim"), "--scenario", str(scenario)], 2, str(scenario))


@pytest.mark.parametrize("command", [["warehouse", "migrate"], ["audit", "verify"], ["audit", "anchor"], ["worklist"],
                                     ["approve", "A-1"]])
def test_a_warehouse_that_does_not_answer(command: list[str]) -> None:
    one_line_error(command, 1, "127.0.0.1", env={"DEMAND_CONTROL_DATABASE_URL": UNREACHABLE_DATABASE})


def test_a_state_folder_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    for command in (["warehouse", "migrate"], ["audit", "verify"]):
        one_line_error(command, 1, "error: ", str(tmp_path / "file"), env={"DEMAND_CONTROL_HOME": str(tmp_path / "file" / "home")})


def test_audit_checkpoint_file_broken_or_not_writable(tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints.jsonl"
    checkpoints.write_text('{"audit_id": "x"}\n')
    env = {"DEMAND_CONTROL_AUDIT_CHECKPOINTS": str(checkpoints)}
    one_line_error(["audit", "verify"], 2, "line 1 is not an anchor", env=env)
    (tmp_path / "file").write_text("")
    one_line_error(["audit", "anchor"], 1, "error: ", env={"DEMAND_CONTROL_AUDIT_CHECKPOINTS": str(tmp_path / "file" / "c.jsonl")})


def test_contracts_readme_missing_or_without_markers(tmp_path: Path) -> None:
    one_line_error(["contracts", "--readme", str(tmp_path / "README.md")], 1, "No such file or directory", str(tmp_path / "README.md"))
    (tmp_path / "plain.md").write_text("# no markers\n")
    one_line_error(["contracts", "--readme", str(tmp_path / "plain.md")], 2, "has no <!-- contracts:start -->")
