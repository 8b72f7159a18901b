"""The advisor's one entry point, `advise_cases`: for the plan's most valuable cases, ask the model (when one
is configured) for a narrative, a supplier follow-up draft, a root cause and a next-best action, keep only the
parts that pass their checks, and record every call.

Checks: a text is used only when grounded (`grounding`); a root cause only from the vocabulary and only where
the deterministic classifier is unsure; a proposal only from the action vocabulary, within the case's scope,
at a quantity from the facts, not a copy of the planner's own, and then decided by the policy under its
advisor limits (`decide_advisor_autonomy`) like any recommendation. Every call is one `advisor_calls` row and
one audit entry (`advisor_call`) with model, prompt hash, lookups, answer, tokens, latency and what was used.

Off by default: without DEMAND_CONTROL_ADVISOR_MODEL `advise_cases` returns at once and touches nothing. A
timeout or server error stops the run's calls (the templates stay) and tells the operations channel; so does
an acceptance share below the configured minimum, after which the advisor rests for a day.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import and_, delete, insert, select, update

from demand_control.infra import settings as infra_settings
from demand_control.infra.sql import insert_ignoring_conflicts
from demand_control.planning.advisor_kpis import acceptance_share
from demand_control.planning.policy import Policy, decide_advisor_autonomy
from demand_control.planning.vocabulary import ACTION_TYPES, AUTO_APPROVED, ROOT_CAUSES
from demand_control.resources.warehouse import Warehouse
from demand_control.schema.tables import action_decisions, advisor_calls, notifications, recommended_actions
from demand_control.services import audit
from demand_control.services.advisor.case import Case, load_case, plain
from demand_control.services.advisor.grounding import Grounds, grounding_problems, grounds_of
from demand_control.services.advisor.settings import AdvisorSettings, advisor_settings
from demand_control.services.auto_approval import auto_approve

if TYPE_CHECKING:  # the model library loads only when an advisor is configured: off costs nothing at import
    from demand_control.services.advisor.agent import Advice, ModelAnswer, ProposedAction

ADVISOR_ACTOR = "advisor"
ADVISOR_SOURCE = "advisor"
FALLBACK_KIND = "advisor_fallback"  # a notice to the operations channel: the advisor stepped aside, and why
# Below this the deterministic classifier counts as unsure and the advisor's root cause may be taken.
CLASSIFIER_SURE = 0.6
# After the acceptance share tripped, the advisor rests this long before it is asked again.
REST_AFTER_LOW_ACCEPTANCE = timedelta(hours=24)
USED, REJECTED, FAILED = "used", "rejected", "failed"


@dataclass
class AdvisorSummary:
    enabled: bool
    model: str = ""
    cases: int = 0  # cases considered
    called: int = 0  # model calls made
    reused: int = 0  # unchanged cases whose earlier answer was applied again without a call
    used: int = 0
    rejected: int = 0
    failed: int = 0
    proposals: int = 0  # advisor proposals now in recommended_actions
    auto_approved: list[str] = field(default_factory=list)
    stepped_aside: str = ""  # why the advisor stopped (timeout, error, low acceptance), empty when it did not

    def as_metadata(self) -> dict[str, Any]:
        data = asdict(self)
        data["auto_approved"] = len(self.auto_approved)
        return data


@dataclass
class Verdict:
    """What the service kept of one answer."""

    outcome: str
    reasons: list[str]
    narrative: str | None = None
    followup: str | None = None
    root_cause: str | None = None
    proposal: dict[str, Any] | None = None


def _classifier_view(exception: dict[str, Any]) -> tuple[str | None, float | None]:
    """The deterministic classifier's root cause and confidence on the case, when the plan carries them."""
    cause = plain(exception.get("root_cause"))
    confidence = plain(exception.get("root_cause_confidence"))
    return (str(cause) if cause else None), (float(confidence) if confidence is not None else None)


def classifier_unsure(cause: str | None, confidence: float | None) -> bool:
    return cause in (None, "unknown") or (confidence is not None and confidence < CLASSIFIER_SURE)


def _hint(cause: str | None, confidence: float | None) -> str:
    if cause in (None, "unknown"):
        return "no root cause found (you may propose one)"
    shown = f"{cause}" + (f" (confidence {confidence:.2f})" if confidence is not None else "")
    return shown + ("; unsure, you may propose another" if classifier_unsure(cause, confidence) else "; sure, do not propose one")


def _text_verdict(label: str, text: str | None, grounds: Grounds, reasons: list[str]) -> str | None:
    if text is None or not text.strip():
        return None
    problems = grounding_problems(text, grounds)
    if problems:
        reasons.append(f"{label} rejected, ungrounded: {'; '.join(problems[:5])}")
        return None
    reasons.append(f"{label} used")
    return text.strip()


def _subject_of(proposal: ProposedAction) -> tuple[str, ...]:
    return (proposal.action_type, proposal.sku or "", proposal.location_id or "", proposal.supplier_id or "",
            proposal.po_id or "", proposal.order_id or "")


def _proposal_problems(proposal: ProposedAction, case: Case, grounds: Grounds) -> list[str]:
    problems = []
    if proposal.action_type not in ACTION_TYPES:
        return [f"action type {proposal.action_type!r} is not in the vocabulary"]
    scope = case.scope
    if (proposal.sku or proposal.location_id) and (proposal.sku, proposal.location_id) not in scope.sku_locations:
        problems.append(f"{proposal.sku}@{proposal.location_id} is not a SKU-location of the case")
    for kind, value, allowed in (("supplier", proposal.supplier_id, scope.suppliers), ("purchase order", proposal.po_id, scope.purchase_orders),
                                 ("order", proposal.order_id, scope.orders)):
        if value and value not in allowed:
            problems.append(f"{kind} {value} is not in the case")
    if proposal.quantity is not None and grounding_problems(f"{proposal.quantity:g}", grounds):
        problems.append(f"quantity {proposal.quantity:g} is not in the case's facts")
    problems += grounding_problems(proposal.rationale, grounds)
    for planned in case.facts.get("recommended_actions", []):
        if (planned.get("action_type"), planned.get("sku") or "", planned.get("location_id") or "", planned.get("supplier_id") or "",
                planned.get("po_id") or "", planned.get("order_id") or "") == _subject_of(proposal):
            problems.append(f"the planner already recommends this {proposal.action_type}")
    return problems


def judge(advice: Advice, case: Case, grounds: Grounds, classifier: tuple[str | None, float | None]) -> Verdict:
    """Which parts of an answer may be used, and why each was used or rejected (pure)."""
    reasons: list[str] = []
    narrative = _text_verdict("narrative", advice.narrative, grounds, reasons)
    followup = None
    if advice.supplier_followup:
        if case.followup_action_id is None:
            reasons.append("supplier follow-up rejected: the case has no supplier follow-up")
        else:
            followup = _text_verdict("supplier follow-up", advice.supplier_followup, grounds, reasons)
    root_cause = None
    if advice.root_cause:
        if advice.root_cause not in ROOT_CAUSES:
            reasons.append(f"root cause {advice.root_cause!r} rejected: not in the vocabulary")
        elif not classifier_unsure(*classifier):
            reasons.append(f"root cause {advice.root_cause} not taken: the classifier is sure ({classifier[0]})")
        else:
            root_cause = advice.root_cause
            reasons.append(f"root cause {root_cause} used")
    proposal = None
    if advice.proposal is not None:
        problems = _proposal_problems(advice.proposal, case, grounds)
        if problems:
            reasons.append(f"proposal {advice.proposal.action_type} rejected: {'; '.join(problems[:5])}")
        else:
            proposal = advice.proposal.model_dump()
            reasons.append(f"proposal {advice.proposal.action_type} sent to the policy")
    used = any(part is not None for part in (narrative, followup, root_cause, proposal))
    return Verdict(USED if used else REJECTED, reasons or ["the answer held nothing to use"], narrative, followup, root_cause, proposal)


def _proposal_row(proposal: dict[str, Any], case: Case, actions: pd.DataFrame, unit_costs: dict[str, float], call_id: str,
                  now: datetime) -> dict[str, Any]:
    """The recommended_actions row of an accepted proposal. Its value is never the model's: the value of the
    planner's action of the same type on the case, else quantity × unit cost, else the case's money at risk."""
    planner = actions[actions["source"].fillna("planner") != ADVISOR_SOURCE].sort_values("rank")
    lead = planner.iloc[0].to_dict() if len(planner) else {}
    same_type = planner[planner["action_type"] == proposal["action_type"]]
    quantity = proposal.get("quantity")
    sku = proposal.get("sku") or plain(lead.get("sku")) or case.facts.get("sku")
    if len(same_type):
        value = float(same_type.iloc[0]["value"])
    elif quantity is not None and sku in unit_costs:
        value = float(quantity) * unit_costs[sku]
    else:
        value = float(case.facts.get("money_at_risk") or math.nan)
    subject = "|".join(str(part) for part in (case.exception_key, case.occurrence, proposal["action_type"], sku,
                                             proposal.get("location_id"), proposal.get("supplier_id"), proposal.get("po_id"), proposal.get("order_id")))
    return {
        "action_id": f"advisor:{hashlib.sha256(subject.encode()).hexdigest()[:24]}", "exception_key": case.exception_key,
        "occurrence": case.occurrence, "exception_type": case.facts.get("exception_type"), "action_type": proposal["action_type"],
        "rank": int(planner["rank"].max()) + 1 if len(planner) else 1, "sku": sku,
        "location_id": proposal.get("location_id") or plain(lead.get("location_id")) or case.facts.get("location_id"),
        "category": plain(lead.get("category")) or case.facts.get("category"),
        "supplier_id": proposal.get("supplier_id") or plain(lead.get("supplier_id")) or case.facts.get("supplier_id"),
        "po_id": proposal.get("po_id"), "order_id": proposal.get("order_id"), "quantity": quantity, "value": value,
        "confidence": float(proposal["confidence"]), "expected_impact": f"Advisor proposal: {proposal['rationale']}",
        "details": json.dumps({"source": ADVISOR_SOURCE, "call_id": call_id}),
        "data_fresh": bool(plain(lead.get("data_fresh"))) if lead else False,
        "forecast_degraded": bool(plain(lead.get("forecast_degraded"))) if lead else True,
        "customer_tier": case.facts.get("customer_tier") if proposal.get("order_id") else None,
        "owner_team": plain(lead.get("owner_team")), "owner_channel": plain(lead.get("owner_channel")),
        "created_at": now, "updated_at": now, "source": ADVISOR_SOURCE,
    }


def _ops_notice(conn: Any, reason: str, detail: str, now: datetime, model: str) -> None:
    """Tell the operations channel once per reason and day that the advisor stepped aside."""
    channel = infra_settings.ops_channel()
    notice_id = f"advisor:{reason}:{now:%Y-%m-%d}"
    text = (f"The advisor ({model}) stepped aside: {detail}. Planners get the deterministic texts and "
            "recommendations until it is healthy again; nothing waits on it.")
    row = {"notification_id": notice_id, "kind": FALLBACK_KIND, "channel": channel[:128], "subject": f"advisor:{reason}", "text": text,
           "payload": audit.canonical_json({"channel": channel, "reason": reason, "detail": detail, "model": model}),
           "status": "pending", "created_at": now}
    if conn.execute(insert_ignoring_conflicts(conn, notifications, ["notification_id"]).values(**row)).rowcount == 1:
        audit.append(conn, [audit.AuditEntry(ADVISOR_ACTOR, FALLBACK_KIND, f"advisor:{reason}", {"reason": reason, "detail": detail,
                                                                                                  "model": model, "channel": channel}, now)])


def _resting(warehouse: Warehouse, now: datetime) -> bool:
    c = notifications.c
    with warehouse.engine.connect() as conn:
        return conn.execute(select(c.notification_id).where(and_(
            c.kind == FALLBACK_KIND, c.subject == "advisor:low_acceptance", c.created_at > now - REST_AFTER_LOW_ACCEPTANCE)).limit(1)).first() is not None


def _latest_calls(warehouse: Warehouse, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    if not keys:
        return {}
    calls = warehouse.read("advisor_calls", columns=["exception_key", "occurrence", "facts_hash", "called_at", "output", "call_id", "outcome", "tool_calls"],
                           where=advisor_calls.c.exception_key.in_(list(keys)))
    calls = calls.sort_values("called_at").drop_duplicates("exception_key", keep="last")
    return {row["exception_key"]: row for row in calls.to_dict("records")}


def _unit_costs(warehouse: Warehouse, skus: set[str]) -> dict[str, float]:
    if not skus:
        return {}
    product = warehouse.read("product", columns=["sku", "unit_cost"], where=warehouse.table("product").c.sku.in_(sorted(skus)))
    return {str(r["sku"]): float(r["unit_cost"]) for r in product.to_dict("records") if plain(r["unit_cost"]) is not None}


def _apply(warehouse: Warehouse, policy: Policy, case: Case, verdict: Verdict, actions: pd.DataFrame, call_id: str,
           now: datetime) -> tuple[str | None, bool, str]:
    """Write the used parts: the follow-up draft over the template (while a person has to approve the action) and the
    proposal as an advisor recommendation decided by the policy. Returns (proposal action id, whether the
    policy auto-approved it, the policy's decision and reasons)."""
    engine = warehouse.engine
    decided = set()
    with engine.connect() as conn:
        decided = {r for (r,) in conn.execute(select(action_decisions.c.action_id).where(action_decisions.c.action_id.in_(list(actions["action_id"]))))}
    awaiting = set(actions.loc[actions["policy_decision"] != AUTO_APPROVED, "action_id"])
    # A model-written text never leaves without a person: the draft replaces the template only on a follow-up a
    # person still has to approve (one the policy auto-approved keeps the template it was approved with).
    if verdict.followup and case.followup_action_id in awaiting - decided:
        with engine.begin() as conn:
            conn.execute(update(recommended_actions).where(recommended_actions.c.action_id == case.followup_action_id).values(message=verdict.followup))
    if verdict.proposal is None:
        return None, False, ""
    skus = {s for s in (verdict.proposal.get("sku"), case.facts.get("sku")) if s}
    row = _proposal_row(verdict.proposal, case, actions, _unit_costs(warehouse, skus), call_id, now)
    if math.isnan(row["value"]):
        return None, False, "proposal dropped: no value can be derived from the case (no planner action of its type, unit cost or money at risk)"
    decided_row = decide_advisor_autonomy(pd.DataFrame([row]), policy).iloc[0].to_dict()
    stored = {c.name: plain(decided_row.get(c.name)) for c in recommended_actions.columns}
    with engine.begin() as conn:
        previous = conn.execute(select(recommended_actions.c.created_at).where(recommended_actions.c.action_id == stored["action_id"])).scalar_one_or_none()
        stored["created_at"] = previous or now
        conn.execute(delete(recommended_actions).where(recommended_actions.c.action_id == stored["action_id"]))
        conn.execute(insert(recommended_actions).values(**stored))
        if previous is None:
            audit.append(conn, [audit.AuditEntry(ADVISOR_ACTOR, "recommendation", stored["action_id"], {
                "exception_key": case.exception_key, "action_type": stored["action_type"], "quantity": stored["quantity"], "value": stored["value"],
                "confidence": stored["confidence"], "policy_decision": stored["policy_decision"], "approver_role": stored["approver_role"],
                "policy_reasons": stored["policy_reasons"], "source": ADVISOR_SOURCE, "call_id": call_id}, now)])
    return str(stored["action_id"]), stored["policy_decision"] == AUTO_APPROVED, f"policy: {stored['policy_decision']}: {stored['policy_reasons']}"


def _call_id() -> str:
    # Random: the planning clock may stand still (a re-run as of the same instant asks again).
    return uuid.uuid4().hex


def _record(warehouse: Warehouse, settings: AdvisorSettings, case: Case, prompt: str, answer: ModelAnswer, verdict: Verdict,
            proposal_id: str | None, policy_note: str, call_id: str, now: datetime) -> None:
    from demand_control.services.advisor.agent import prompt_hash

    reasons = verdict.reasons + ([policy_note] if policy_note else [])
    row = {
        "call_id": call_id, "exception_key": case.exception_key, "occurrence": case.occurrence, "called_at": now, "model": settings.model,
        "prompt_hash": prompt_hash(prompt), "facts_hash": case.facts_hash, "tool_calls": json.dumps(answer.lookups.calls),
        "output": answer.advice.model_dump_json() if answer.advice is not None else None,
        "input_tokens": answer.input_tokens, "output_tokens": answer.output_tokens,
        "cost": settings.cost(answer.input_tokens, answer.output_tokens), "latency_ms": answer.latency_ms,
        "outcome": verdict.outcome, "narrative_used": verdict.narrative is not None, "followup_used": verdict.followup is not None,
        "root_cause": verdict.root_cause, "proposal_action_id": proposal_id, "narrative": verdict.narrative, "reasons": "; ".join(reasons),
    }
    with warehouse.engine.begin() as conn:
        conn.execute(insert(advisor_calls).values(**row))
        audit.append(conn, [audit.AuditEntry(ADVISOR_ACTOR, "advisor_call", case.exception_key[:255], {
            **{k: v for k, v in row.items() if k not in ("called_at", "narrative")},
            "tool_calls": answer.lookups.calls, "output": json.loads(row["output"]) if row["output"] else None}, now)])


def _candidate_cases(warehouse: Warehouse, settings: AdvisorSettings, keys: Sequence[str] | None) -> pd.DataFrame:
    exceptions = warehouse.read("planning_exceptions")
    if keys is not None:
        exceptions = exceptions[exceptions["exception_key"].isin(list(keys))]
    exceptions = exceptions[exceptions["cause_key"].isna() & exceptions["suppressed_reason"].isna()]
    order = pd.to_numeric(exceptions["priority"], errors="coerce").fillna(0.0)
    return exceptions.assign(_order=order).sort_values(["_order", "exception_key"], ascending=[False, True]).head(settings.max_cases)


def advise_cases(warehouse: Warehouse, policy: Policy, now: datetime, *, settings: AdvisorSettings | None = None,
                 exception_keys: Sequence[str] | None = None, failed_gates: Sequence[str] = ()) -> AdvisorSummary:
    """Ask the advisor about the plan's most valuable open cases (or `exception_keys`), apply what passes, record
    every call. Unconfigured: returns at once (enabled=False) without reading anything."""
    settings = settings or advisor_settings()
    if settings is None:
        return AdvisorSummary(enabled=False)
    from demand_control.services.advisor.agent import Advice, ask, case_prompt

    summary = AdvisorSummary(enabled=True, model=settings.model)
    if _resting(warehouse, now):
        summary.stepped_aside = "resting after a low acceptance share"
        return summary
    cases = _candidate_cases(warehouse, settings, exception_keys)
    actions = warehouse.read("recommended_actions", where=recommended_actions.c.exception_key.in_(list(cases["exception_key"])))
    latest = _latest_calls(warehouse, list(cases["exception_key"]))
    for exception in cases.to_dict("records"):
        summary.cases += 1
        own = actions[actions["exception_key"] == exception["exception_key"]]
        case = load_case(warehouse, exception, own)
        classifier = _classifier_view(exception)
        earlier = latest.get(case.exception_key)
        if earlier is not None and earlier["facts_hash"] == case.facts_hash and earlier["outcome"] != FAILED:
            # Unchanged since the last call: the plan rewrote the actions, so apply the same answer again, no call.
            if earlier["output"]:
                looked_up = [c["returned"] for c in json.loads(earlier["tool_calls"] or "[]") if c.get("returned")]
                verdict = judge(Advice.model_validate_json(earlier["output"]), case, grounds_of([case.facts, looked_up]), classifier)
                proposal_id, auto, _ = _apply(warehouse, policy, case, verdict, own, str(earlier["call_id"]), now)
                summary.proposals += proposal_id is not None
                summary.auto_approved += [proposal_id] if auto and proposal_id else []
            summary.reused += 1
            continue
        prompt = case_prompt(case, _hint(*classifier))
        answer = ask(settings, warehouse, case, prompt)
        summary.called += 1
        call_id = _call_id()
        if answer.advice is None:
            verdict = Verdict(FAILED, [f"no usable answer: {answer.error}"])
            proposal_id, auto, note = None, False, ""
        else:
            verdict = judge(answer.advice, case, grounds_of([case.facts, answer.lookups.returned]), classifier)
            proposal_id, auto, note = _apply(warehouse, policy, case, verdict, own, call_id, now)
        _record(warehouse, settings, case, prompt, answer, verdict, proposal_id, note, call_id, now)
        summary.used += verdict.outcome == USED
        summary.rejected += verdict.outcome == REJECTED
        summary.failed += verdict.outcome == FAILED
        summary.proposals += proposal_id is not None
        summary.auto_approved += [proposal_id] if auto and proposal_id else []
        if answer.unavailable:
            summary.stepped_aside = f"unavailable: {answer.error}"
            with warehouse.engine.begin() as conn:
                _ops_notice(conn, "unavailable", f"the model server failed ({answer.error}); the rest of this plan's cases use the templates", now, settings.model)
            break
    if summary.auto_approved:
        # The same step the plan runs for the planner's own actions, with the same data-quality gates.
        auto_approve(warehouse.engine, now, failed_gates=list(failed_gates), policy=policy)
    _check_acceptance(warehouse, settings, now, summary)
    return summary


def _check_acceptance(warehouse: Warehouse, settings: AdvisorSettings, now: datetime, summary: AdvisorSummary) -> None:
    c = advisor_calls.c
    with warehouse.engine.connect() as conn:
        outcomes = [o for (o,) in conn.execute(select(c.outcome).order_by(c.called_at.desc(), c.call_id).limit(settings.acceptance_window))]
    if len(outcomes) < settings.acceptance_window:
        return
    recent = outcomes
    share = acceptance_share(pd.Series(outcomes, dtype=object))
    if share < settings.min_acceptance:
        summary.stepped_aside = summary.stepped_aside or f"acceptance {share:.0%} below {settings.min_acceptance:.0%}"
        with warehouse.engine.begin() as conn:
            _ops_notice(conn, "low_acceptance", f"only {share:.0%} of its last {len(recent)} answers were usable (minimum "
                        f"{settings.min_acceptance:.0%}); it rests for {REST_AFTER_LOW_ACCEPTANCE.total_seconds() / 3600:.0f} h", now, settings.model)


def accepted_narratives(warehouse: Warehouse, exception_keys: Sequence[str]) -> dict[str, str]:
    """By exception key, the grounded narrative of the advisor's latest call on the case, when that call was
    made on the case's current occurrence and figures (after its values last changed): what a message may show
    instead of the template sentence. A case whose latest call was rejected or failed, or whose figures moved
    since, keeps its template."""
    if not exception_keys:
        return {}
    keys = list(exception_keys)
    calls = warehouse.read("advisor_calls", columns=["exception_key", "occurrence", "called_at", "narrative"],
                           where=advisor_calls.c.exception_key.in_(keys))
    cases = warehouse.read("planning_exceptions", columns=["exception_key", "occurrence", "values_changed_at"],
                           where=warehouse.table("planning_exceptions").c.exception_key.in_(keys))
    latest = calls.sort_values("called_at").drop_duplicates("exception_key", keep="last").merge(
        cases, on=["exception_key", "occurrence"], how="inner")
    fresh = pd.to_datetime(latest["called_at"], utc=True) >= pd.to_datetime(latest["values_changed_at"], utc=True)
    latest = latest[fresh & latest["narrative"].notna()]
    return dict(zip(latest["exception_key"], latest["narrative"]))
