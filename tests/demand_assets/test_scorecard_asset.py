"""The `simulate` job and its `decision_scorecard` asset: documented for the UI, and numeric figures as metadata."""

from __future__ import annotations

import json

import dagster as dg

from demand_control.demand_assets import scorecard

TINY = """
seed: 2
weeks: 2
skus: 4
locations: 2
history_weeks: 20
planner: {capacity_per_team_per_day: 3, response_hours: 4}
"""


def test_the_job_and_asset_load_and_are_documented() -> None:
    dg.Definitions.validate_loadable(scorecard.defs)
    spec = scorecard.defs.resolve_asset_graph().get(dg.AssetKey("decision_scorecard"))
    assert spec.group_name == "kpis" and spec.owners and spec.kinds
    assert spec.description and "\n" not in spec.description
    assert isinstance(spec.metadata["dagster/column_schema"], dg.TableSchema)
    assert scorecard.defs.resolve_job_def("simulate")


def test_materialising_writes_the_scorecard_and_numeric_metadata(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    config = scorecard.SimulateConfig(scenario=str(path), out=str(tmp_path / "out"), arms=["order_point"], jobs=1)
    result = dg.materialize([scorecard.decision_scorecard], run_config={"ops": {"decision_scorecard": {"config": config.model_dump()}}})
    assert result.success
    meta = result.asset_materializations_for_node("decision_scorecard")[0].metadata
    assert isinstance(meta["order_point.line_fill_rate"].value, float)
    assert meta["dagster/row_count"].value > 0
    card = json.loads((tmp_path / "out" / "scorecard.json").read_text())
    assert set(card) == {"order_point"} and "line_fill_rate" in card["order_point"]
