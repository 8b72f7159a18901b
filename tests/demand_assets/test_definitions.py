"""The code location loads, every asset is documented for the UI, and the graph's shape is deliberate."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

from demand_control.definitions import defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)


def test_every_asset_has_business_docstring_group_owners_kinds_and_schema() -> None:
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        spec = graph.get(key)
        name = key.to_user_string()
        assert spec.description and "\n" not in spec.description.strip(), name
        assert spec.group_name and spec.group_name != "default", name
        assert spec.owners, name
        assert spec.kinds, name
        assert isinstance(spec.metadata.get("dagster/column_schema"), dg.TableSchema), name


def graph_snapshot() -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "automation": node.automation_condition.get_label() if node.automation_condition else None,
            "checks": sorted(
                f"{c.name}{' (blocking)' if graph.get(c).blocking else ''}" for c in node.check_keys
            ),
        }
    return {
        "assets": assets,
        "jobs": sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")),
        "sensors": sorted(s.name for s in defs.sensors or []),
        "schedules": sorted(s.name for s in defs.schedules or []),
    }


def test_asset_graph_snapshot() -> None:
    current = graph_snapshot()
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert current == json.loads(SNAPSHOT.read_text()), "asset graph changed: review, then UPDATE_SNAPSHOTS=1"


def test_the_full_plan_does_not_replay_the_twin() -> None:
    """The decision scorecard is in group kpis but runs a year of simulation: only job `simulate` runs it."""
    selected = {
        job: sorted(k.to_user_string() for k in defs.resolve_job_def(job).asset_layer.selected_asset_keys)
        for job in ("plan_decisions", "simulate")
    }
    assert "decision_scorecard" not in selected["plan_decisions"] and "coordination_kpis" in selected["plan_decisions"]
    assert selected["simulate"] == ["decision_scorecard"]
