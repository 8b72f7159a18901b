"""Benchmark: what the optional advisor costs a plan, off and on.

Off: `advise_cases` with DEMAND_CONTROL_ADVISOR_MODEL unset, called N times after a plan (it must return at
once: no read, no write, no model library). On: the crafted plan's cases (tests/services/advisor) asked of the
scripted OpenAI chat-completions server on loopback, one lookup and one grounded answer per case; reports
wall seconds per case and the model's own latency (the server answers at once, so the rest is the advisor's
own work: case facts, checks, the audit chain).

    python benchmarks/advisor.py [--calls 2000 --cases 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demand_control.infra import clock  # noqa: E402
from demand_control.resources.warehouse import Warehouse  # noqa: E402
from demand_control.services.advisor.service import advise_cases  # noqa: E402
from demand_control.services.advisor.settings import MODEL_ENV  # noqa: E402
from tests.openai_api import ScriptedModel, answer, facts_of, openai_api_server, tool_call, tool_results  # noqa: E402
from tests.services.advisor.test_service import PLAN_NOW, plan, policy_with_advisor_limits, settings_for  # noqa: E402


def lookup_then_the_sentence(body: dict[str, Any]) -> dict[str, Any]:
    """A model that looks the projection up, then answers with the case's own sentence (grounded)."""
    facts = facts_of(body)
    if not tool_results(body):
        return tool_call("projection", {"sku": facts["sku"], "location_id": facts["location_id"]})
    return answer(narrative=facts["sentence"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="advise_cases calls with the advisor off")
    parser.add_argument("--cases", type=int, default=5, help="cases asked with the advisor on")
    args = parser.parse_args()
    os.environ.pop(MODEL_ENV, None)
    warehouse = Warehouse(home=tempfile.mkdtemp(prefix="advisor-bench-"))
    warehouse.migrate()
    policy = policy_with_advisor_limits()
    plan(warehouse, policy)
    with clock.use(PLAN_NOW):
        started = time.perf_counter()
        for _ in range(args.calls):
            advise_cases(warehouse, policy, PLAN_NOW)
        off = (time.perf_counter() - started) / args.calls
    print(f"advisor off: advise_cases returns in {off * 1e6:.1f} µs per plan (mean of {args.calls})")

    import demand_control.services.advisor.agent  # noqa: F401, PLC0415 - imported once, as a plan does at its first case

    with openai_api_server(ScriptedModel(script=lookup_then_the_sentence)) as url, clock.use(PLAN_NOW):
        started = time.perf_counter()
        summary = advise_cases(warehouse, policy, PLAN_NOW, settings=settings_for(url, max_cases=args.cases))
        wall = time.perf_counter() - started
    calls = warehouse.read("advisor_calls")
    print(f"advisor on (scripted loopback server): {summary.called} cases in {wall:.2f} s, {wall / max(summary.called, 1):.2f} s per case; "
          f"model exchange p50 {calls['latency_ms'].median():.0f} ms; used {summary.used}, rejected {summary.rejected}, failed {summary.failed}")


if __name__ == "__main__":
    main()
