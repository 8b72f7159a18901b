"""The advisor_calls asset, materialized in process after a plan: off without a model (nothing called, the
table untouched), and with one it asks the scripted server about the plan's cases and records the calls."""

from __future__ import annotations

import dagster as dg

from demand_control.demand_assets.advisor import advisor_calls_asset
from demand_control.demand_assets.kpis import coordination_kpis_asset
from demand_control.resources.advisor import AdvisorResource
from demand_control.resources.clock import PlanningClock
from demand_control.resources.planning_policy import PlanningPolicy
from demand_control.resources.warehouse import Warehouse
from tests.openai_api import ScriptedModel, answer, openai_api_server
from tests.services.advisor.test_service import PLAN_NOW, plan, policy_with_advisor_limits


def materialize(warehouse: Warehouse, advisor: AdvisorResource) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [advisor_calls_asset],
        resources={"warehouse": warehouse, "planning_policy": PlanningPolicy(), "advisor": advisor,
                   "clock": PlanningClock(as_of=PLAN_NOW.isoformat())},
        instance=dg.DagsterInstance.ephemeral(),
    )


def metadata(result: dg.ExecuteInProcessResult) -> dict:
    event = result.get_asset_materialization_events()[0]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_off_the_asset_calls_nothing_and_writes_nothing(tmp_path) -> None:  # noqa: ANN001
    warehouse = Warehouse(home=str(tmp_path / "state"))
    warehouse.migrate()
    plan(warehouse, policy_with_advisor_limits())
    model = ScriptedModel()
    with openai_api_server(model):
        result = materialize(warehouse, AdvisorResource())
    assert result.success
    assert metadata(result) == {"advisor": "off (DEMAND_CONTROL_ADVISOR_MODEL unset)", "dagster/row_count": 0}
    assert model.requests == []


def test_on_the_asset_records_a_call_per_case(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("DEMAND_CONTROL_ADVISOR_MAX_CASES", "2")
    warehouse = Warehouse(home=str(tmp_path / "state"))
    warehouse.migrate()
    plan(warehouse, policy_with_advisor_limits())
    model = ScriptedModel(script=lambda body: answer(narrative="A case with nothing to add."))
    with openai_api_server(model) as url:
        result = materialize(warehouse, AdvisorResource(model="scripted-local", base_url=url))
    assert result.success
    meta = metadata(result)
    assert (meta["called"], meta["used"], meta["dagster/row_count"]) == (2, 2, 2)
    assert len(model.requests) == 2
    # The KPIs that follow carry the advisor's figures beside the others.
    kpis = dg.materialize([coordination_kpis_asset], resources={"warehouse": warehouse, "clock": PlanningClock(as_of=PLAN_NOW.isoformat())},
                          instance=dg.DagsterInstance.ephemeral())
    assert kpis.success
    table = warehouse.read("coordination_kpis")
    overall = table[table["dimension"] == "all"].set_index("kpi")["value"]
    assert overall["advisor_calls"] == 2 and overall["advisor_acceptance_share"] == 1.0


def test_loading_the_code_location_does_not_import_the_model_library() -> None:
    import subprocess
    import sys

    probe = "import sys, demand_control.definitions; print('pydantic_ai' in sys.modules, 'openai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.split() == ["False", "False"]
