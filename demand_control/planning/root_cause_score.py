"""How often the root-cause classifier names the cause a landscape's generator planted
(`sample.planted_causes`): each planted case is matched to the exception it raised, and the classifier's
answer is scored per cause beside a baseline that always answers the exception type's most common cause."""

from __future__ import annotations

import pandas as pd

SUPPLIER_CAUSES = ("supplier_chronic_lateness", "supplier_one_off_delay")
# Which of a SKU-location's cases stands for a demand-side plant: the one nearest the disruption first.
DEMAND_CASE_ORDER = ("demand_spike", "order_at_risk", "projected_stockout", "below_safety_stock", "replenishment_due", "forecast_degradation", "excess_stock")


def match_planted(exceptions: pd.DataFrame, planted: pd.DataFrame) -> pd.DataFrame:
    """Per planted case, the exception it raised (exception_key, exception_type, root_cause,
    root_cause_confidence; empty when it raised none): a supplier plant's supplier_delay on its PO line, a
    demand-side plant's case at its SKU-location in DEMAND_CASE_ORDER."""
    cols = ["exception_key", "exception_type", "root_cause", "root_cause_confidence"]
    out = planted.reset_index(drop=True).copy()
    for col in cols:
        out[col] = None
    if exceptions.empty or planted.empty:
        return out
    exc = exceptions.copy()
    delays = exc[exc["exception_type"] == "supplier_delay"].assign(po_line_no=lambda f: f["po_line_no"].astype("Int64"))
    supplier = out["cause"].isin(SUPPLIER_CAUSES)
    if supplier.any():
        hit = out.loc[supplier, ["po_id", "po_line_no"]].astype({"po_line_no": "Int64"}).merge(
            delays[["po_id", "po_line_no", *cols]].drop_duplicates(["po_id", "po_line_no"]), on=["po_id", "po_line_no"], how="left"
        )
        out.loc[supplier, cols] = hit[cols].to_numpy()
    rank = {t: i for i, t in enumerate(DEMAND_CASE_ORDER)}
    demand = exc[exc["exception_type"].isin(DEMAND_CASE_ORDER)].assign(_rank=lambda f: f["exception_type"].map(rank))
    first = demand.sort_values(["sku", "location_id", "_rank"], kind="mergesort").drop_duplicates(["sku", "location_id"])
    other = ~supplier
    if other.any():
        hit = out.loc[other, ["sku", "location_id"]].astype(str).merge(first[["sku", "location_id", *cols]].astype({"sku": str, "location_id": str}), on=["sku", "location_id"], how="left")
        out.loc[other, cols] = hit[cols].to_numpy()
    return out


def score_root_causes(matched: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per planted cause: planted, raised (cases the plant raised), correct, accuracy (correct / raised, the
    recall), precision (of the raised cases the classifier gave this cause, the share planted with it), and
    the baseline's accuracy and precision. The baseline answers, for every case, the cause planted most often
    behind its exception type (it learns that from the very cases it is scored on: a generous baseline).
    Also the overall figures: accuracy, baseline accuracy, their ratio, the same averaged over the causes
    (macro), coverage (raised / planted)."""
    raised = matched[matched["exception_key"].notna()].copy()
    if raised.empty:
        table = pd.DataFrame(columns=["cause", "planted", "raised", "correct", "accuracy", "precision", "baseline_accuracy", "baseline_precision"])
        return table, {"accuracy": float("nan"), "baseline_accuracy": float("nan"), "macro_accuracy": float("nan"), "baseline_macro_accuracy": float("nan"), "ratio": float("nan"), "coverage": 0.0, "raised": 0, "planted": len(matched)}
    majority = raised.groupby("exception_type")["cause"].agg(lambda s: s.value_counts().sort_index().idxmax())
    raised["baseline"] = raised["exception_type"].map(majority)
    raised["correct"] = raised["root_cause"] == raised["cause"]
    raised["baseline_correct"] = raised["baseline"] == raised["cause"]
    rows = []
    for cause in sorted(set(matched["cause"])):
        mine = raised[raised["cause"] == cause]
        said = raised[raised["root_cause"] == cause]
        base_said = raised[raised["baseline"] == cause]
        rows.append({
            "cause": cause,
            "planted": int((matched["cause"] == cause).sum()),
            "raised": len(mine),
            "correct": int(mine["correct"].sum()),
            "accuracy": mine["correct"].mean() if len(mine) else float("nan"),
            "precision": (said["cause"] == cause).mean() if len(said) else float("nan"),
            "baseline_accuracy": mine["baseline_correct"].mean() if len(mine) else float("nan"),
            "baseline_precision": (base_said["cause"] == cause).mean() if len(base_said) else float("nan"),
        })
    accuracy = float(raised["correct"].mean())
    baseline = float(raised["baseline_correct"].mean())
    table = pd.DataFrame(rows)
    overall = {
        "accuracy": accuracy,
        # Every cause counts once, however many cases it planted (a chronic supplier plants one per open line).
        "macro_accuracy": float(table["accuracy"].mean()),
        "baseline_macro_accuracy": float(table["baseline_accuracy"].mean()),
        "baseline_accuracy": baseline,
        "ratio": accuracy / baseline if baseline > 0 else float("inf"),
        "coverage": len(raised) / len(matched),
        "raised": len(raised),
        "planted": len(matched),
    }
    return table, overall
