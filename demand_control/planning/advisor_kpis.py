"""The advisor's KPIs in the long form of `coordination_kpis` (kpi, dimension, member, value, unit): how often
its answers were usable, which parts (narratives, supplier drafts, proposals) were used, how planners decided
its proposals (accepted, overridden), and what it cost. Pure functions over `advisor_calls` and
`action_decisions` frames; `advisor_kpis` returns rows the KPI asset appends to its own."""

from __future__ import annotations

import numpy as np
import pandas as pd

from demand_control.planning.kpis import KPI_COLUMNS
from demand_control.planning.vocabulary import AUTO_APPROVED

USED = "used"
ACCEPTED_DECISIONS = ("approved", AUTO_APPROVED)
HUMAN_VERDICTS = ("approved", "rejected")
POLICY_ACTOR = "policy"


def acceptance_share(outcomes: pd.Series) -> float:
    """Share of calls whose answer was used in part or whole (failed calls count as not used); NaN for none."""
    return float((outcomes == USED).mean()) if len(outcomes) else float("nan")


def _rows(kpi: str, unit: str, overall: float, by_model: pd.Series | None = None) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [{"kpi": kpi, "dimension": "all", "member": "all", "value": overall, "unit": unit}]
    if by_model is not None:
        rows += [{"kpi": kpi, "dimension": "model", "member": str(m), "value": float(v), "unit": unit} for m, v in by_model.items()]
    return rows


def advisor_kpis(calls: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    """advisor_calls, advisor_acceptance_share (calls with a used part), advisor_narrative_share,
    advisor_followup_share, advisor_failed_share (timeouts, errors, malformed answers), advisor_cost (money,
    priced tokens), advisor_tokens, advisor_latency_seconds_p90, overall and per model; and for its proposals:
    advisor_proposals, advisor_proposal_accepted_share (approved or auto-approved, of those decided) and
    advisor_override_share (rejected by a person, of the human verdicts)."""
    if calls is None or calls.empty:
        return pd.DataFrame(columns=list(KPI_COLUMNS))
    c = calls.copy()
    c["_used"] = (c["outcome"] == USED).astype(float)
    c["_failed"] = (c["outcome"] == "failed").astype(float)
    c["_tokens"] = c["input_tokens"].astype(float) + c["output_tokens"].astype(float)
    c["_latency"] = c["latency_ms"].astype(float) / 1000
    by = c.groupby("model")
    rows = [
        *_rows("advisor_calls", "count", float(len(c)), by.size().astype(float)),
        *_rows("advisor_acceptance_share", "share", float(c["_used"].mean()), by["_used"].mean()),
        *_rows("advisor_narrative_share", "share", float(c["narrative_used"].astype(float).mean()), by["narrative_used"].apply(lambda v: v.astype(float).mean())),
        *_rows("advisor_followup_share", "share", float(c["followup_used"].astype(float).mean()), by["followup_used"].apply(lambda v: v.astype(float).mean())),
        *_rows("advisor_failed_share", "share", float(c["_failed"].mean()), by["_failed"].mean()),
        *_rows("advisor_cost", "money", float(c["cost"].astype(float).sum()), by["cost"].sum()),
        *_rows("advisor_tokens", "count", float(c["_tokens"].sum()), by["_tokens"].sum()),
        *_rows("advisor_latency_seconds_p90", "seconds", float(c["_latency"].quantile(0.9)), by["_latency"].quantile(0.9)),
    ]
    proposals = set(c["proposal_action_id"].dropna().astype(str))
    rows += _rows("advisor_proposals", "count", float(len(proposals)))
    decided = decisions[decisions["action_id"].isin(proposals)] if decisions is not None and len(decisions) else pd.DataFrame(columns=["decision", "decided_by"])
    accepted = decided["decision"].isin(ACCEPTED_DECISIONS).astype(float)
    human = decided[(decided["decided_by"].astype(str) != POLICY_ACTOR) & decided["decision"].isin(HUMAN_VERDICTS)]
    rows += _rows("advisor_proposal_accepted_share", "share", float(accepted.mean()) if len(decided) else np.nan)
    rows += _rows("advisor_override_share", "share", float((human["decision"] == "rejected").mean()) if len(human) else np.nan)
    return pd.DataFrame(rows, columns=list(KPI_COLUMNS))
