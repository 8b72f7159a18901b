"""Benchmark: what a planner is shown on the demo distributor, and whether acting on it helps.

Builds the demo's sample distributor (200 SKUs x 3 DCs, 130 weeks, seed 7) as of a date, ingests it from a
file drop, forecasts and plans it (the same jobs `make demo` runs, in process), then reads the tables as a
planner would and prints:

- open cases, SKU-locations flagged, and the share of SKU-locations with a case awaiting a person;
- supplier delays the projected balance covers that still reach a person;
- rank-1 actions that arrive after their need date while the case has an expedite, transfer or allocation;
- rank-1 replenishments whose premise is false (inventory position already at the order-up-to level), and
  the premise of the order `make demo` writes back to Tryton (the most valuable recommended replenishment);
- actions dated before today.

Run it on two checkouts to compare (the figures come from the tables both versions write):
    .venv/bin/python benchmarks/decision_quality.py --as-of 2026-12-06
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date
from pathlib import Path

import pandas as pd


def plan(as_of: date, home: Path) -> "object":
    import dagster as dg

    from demand_control.definitions import build_definitions
    from demand_control.demand_assets.jobs import DECISION_JOB_NAME, FORECAST_JOB_NAME, INGEST_JOB_NAME
    from demand_control.infra import clock
    from demand_control.resources import FileDropSource, QualitySettings, Warehouse
    from demand_control.sample import generate_landscape, write_landscape

    with clock.use(pd.Timestamp(as_of).tz_localize("UTC") + pd.Timedelta(hours=6)):
        frames = generate_landscape(skus=200, locations=3, weeks=130, seed=7, as_of=as_of)
        write_landscape(frames, home / "drop", "parquet")
        warehouse = Warehouse(home=str(home / "state"))
        warehouse.migrate()
        defs = build_definitions({"warehouse": warehouse, "signal_source": FileDropSource(folder=str(home / "drop")), "quality_settings": QualitySettings()})
        instance = dg.DagsterInstance.ephemeral()
        quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
        for job in (INGEST_JOB_NAME, FORECAST_JOB_NAME, DECISION_JOB_NAME):
            started = time.perf_counter()
            result = defs.resolve_job_def(job).execute_in_process(instance=instance, run_config=quiet, raise_on_error=False)
            print(f"  {job}: {'ok' if result.success else 'FAILED'} in {time.perf_counter() - started:.0f} s", flush=True)
            if not result.success:
                raise SystemExit(f"{job} failed")
    return warehouse


def measure(warehouse, as_of: date) -> dict:  # noqa: ANN001
    cases = warehouse.read("planning_exceptions")
    actions = warehouse.read("recommended_actions")
    policy = warehouse.read("inventory_policy")
    projection = warehouse.read("projected_inventory")
    keys = policy[["sku", "location_id"]].drop_duplicates()
    top = actions[actions["rank"] == 1]
    awaiting_top = top[top["policy_decision"] == "awaiting_approval"]
    if "for_person" in cases:
        for_person = cases[cases["for_person"].astype("boolean").fillna(False).astype(bool)]
    else:  # before the worklist: every active case whose recommended action awaits a person, or has none
        acted = set(top["exception_key"])
        for_person = cases[cases["exception_key"].isin(set(awaiting_top["exception_key"])) | ~cases["exception_key"].isin(acted)]
    person_pairs = for_person.dropna(subset=["sku"])[["sku", "location_id"]].drop_duplicates()

    delays = cases[cases["exception_type"] == "supplier_delay"]
    covered = delays[delays["units_at_risk"].astype(float) <= 0]
    covered_to_person = covered[covered["exception_key"].isin(set(for_person["exception_key"]))]

    # A rank-1 action arriving after its need date while the case also offers an expedite, transfer or allocation.
    lead = policy.set_index(["sku", "location_id"])["lead_time_days"]
    rep = top[top["action_type"] == "replenish"].copy()
    rep["arrives"] = pd.to_datetime(rep["order_by"]) + pd.to_timedelta([lead.get((s, loc), 0.0) for s, loc in zip(rep["sku"], rep["location_id"])], unit="D")
    # By calendar day: a fractional lead time lands on the need date, not a few hours after it.
    late = rep[rep["arrives"].dt.normalize() > pd.to_datetime(rep["needed_by"]).dt.normalize()]
    alternatives = set(actions.loc[actions["action_type"].isin(["expedite", "transfer", "allocate"]), "exception_key"])
    late_with_alternative = late[late["exception_key"].isin(alternatives)]

    # Premise: the inventory position when the order is needed (available now + every receipt due by the
    # need date, planned ones included) below the order-up-to level.
    projection = projection.assign(period_start=pd.to_datetime(projection["period_start"]))
    first = projection[projection["bucket"] == 0].set_index(["sku", "location_id"])["opening"]
    out = policy.set_index(["sku", "location_id"])["order_up_to"]
    all_rep = actions[(actions["action_type"] == "replenish") & (actions["quantity"] > 0)]
    by_key = {key: rows for key, rows in projection.groupby(["sku", "location_id"])}

    def premise_holds(sku: str, location: str, needed_by: object) -> bool:
        rows = by_key.get((sku, location))
        if rows is None:
            return True
        due = rows[rows["period_start"] <= pd.Timestamp(needed_by)] if pd.notna(needed_by) else rows
        position = float(first.get((sku, location), 0.0)) + float(due["receipts"].astype(float).sum())
        return position < float(out.get((sku, location), float("inf")))

    false_premise = [r for r in all_rep.itertuples() if not premise_holds(r.sku, r.location_id, r.needed_by)]
    demo_pick = all_rep.sort_values(["value", "action_id"], ascending=[False, True]).head(1)
    demo_true = None
    if len(demo_pick):
        row = demo_pick.iloc[0]
        demo_true = premise_holds(row["sku"], row["location_id"], row["needed_by"])
    by_type = for_person["exception_type"].value_counts().to_dict()

    dated = pd.concat([pd.to_datetime(actions[c]) for c in ("order_by", "needed_by", "new_date")]).dropna()
    return {
        "sku_locations": len(keys),
        "open_cases": len(cases),
        "sku_locations_flagged_share": round(cases.dropna(subset=["sku"])[["sku", "location_id"]].drop_duplicates().shape[0] / len(keys), 3),
        "cases_for_a_person": len(for_person),
        "sku_locations_with_a_case_awaiting_a_person_share": round(len(person_pairs) / len(keys), 3),
        "actions": len(actions),
        "actions_awaiting_a_person": int((actions["policy_decision"] == "awaiting_approval").sum()),
        "supplier_delays": len(delays),
        "covered_supplier_delays_reaching_a_person": len(covered_to_person),
        "rank1_replenishments": len(rep),
        "rank1_replenishments_arriving_after_need": len(late),
        "of_which_with_an_expedite_transfer_or_allocation": len(late_with_alternative),
        "replenishments_with_a_false_premise": len(false_premise),
        "demo_write_back_has_a_true_premise": demo_true,
        "actions_dated_before_today": int((dated < pd.Timestamp(as_of)).sum()),
        "cases_for_a_person_by_type": ", ".join(f"{k} {v}" for k, v in sorted(by_type.items(), key=lambda kv: -kv[1])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--as-of", default="2026-12-06")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args()
    as_of = date.fromisoformat(args.as_of)
    with tempfile.TemporaryDirectory() as tmp:
        warehouse = plan(as_of, Path(tmp))
        figures = measure(warehouse, as_of)
    width = max(len(k) for k in figures)
    for name, value in figures.items():
        print(f"{name:<{width}}  {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
