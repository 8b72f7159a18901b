"""Recommended actions: for each planning exception the moves a planner would consider, in DOMAIN.md's
action vocabulary (ERP "action messages"), each with the numbers a buyer needs, an expected impact in words,
a confidence, and a deterministic id so a re-run recommends the same action under the same id (the ERP
write-back is idempotent on it).

Per exception type:
- replenishment_due → replenish: the routine order, placed today, up to the order-up-to level and at least
  the net requirement of the buckets it must cover, rounded to MOQ and pack; never when the inventory
  position already reaches the order-up-to level (its premise would be false).
- projected_stockout / below_safety_stock → transfer from a DC of the same SKU with surplus, expedite the
  first open PO line that lands too late; rank 1 is the one that covers the shortfall soonest at the least
  cost. They never order: ordering is the routine case's (replenishment_due), which buys exactly where an
  order placed today can still land in time, so no late order is ever the top action and nothing is
  ordered twice.
- supplier_delay → supplier_followup (a drafted message) and, when the slip leaves the SKU short, expedite.
- order_at_risk → notify_customer per order line with its revised date (ranked first: the customer hears
  early whatever else is decided), substitute where a substitute SKU has spare stock at the DC, allocate
  when several customers compete (the scenarios are in `allocation_scenarios`).
- excess_stock → reschedule_out (or cancel, when the whole line is surplus) the open PO lines in the horizon.
- demand_spike, forecast_degradation → review_forecast.
stale_feed and data_quality have no ERP action: their owner fixes the feed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from demand_control.planning.exception_frame import PO_SCHEDULED, SKU_LOCATION
from demand_control.planning.formatting import fmt_day, fmt_money, fmt_qty, json_rows
from demand_control.planning.inventory_common import as_datetime_column, as_timestamp
from demand_control.planning.inventory_policy import round_order_quantity
from demand_control.planning.projection import inventory_position
from demand_control.planning.regions import headroom
from demand_control.planning.regions import transfer_sources as allocate_spare
from demand_control.planning.vocabulary import TIER_RANK


ACTION_COLUMNS: tuple[str, ...] = (
    "action_id",
    "exception_key",
    "occurrence",
    "exception_type",
    "action_type",
    "rank",
    "sku",
    "location_id",
    "category",
    "supplier_id",
    "po_id",
    "po_line_no",
    "from_location_id",
    "order_id",
    "order_line_no",
    "customer_id",
    "substitute_sku",
    "quantity",
    "value",
    "order_by",
    "needed_by",
    "new_date",
    "confidence",
    "expected_impact",
    "message",
    "details",
)

# Confidence of actions that rest on facts already in the ERP (a confirmed date, an open order line) rather
# than on the forecast; expedites without a supplier record rest on an average supplier's willingness.
FACT_CONFIDENCE = 0.9
DEFAULT_EXPEDITE_CONFIDENCE = 0.6
ALLOCATE_CONFIDENCE = 0.8


@dataclass(frozen=True)
class ActionSettings:
    review_period_days: float = 7.0
    bucket_days: int = 7
    excess_days_of_cover: float = 120.0
    max_reschedule_days: float = 90.0


def action_ids(exception_key: pd.Series, occurrence: pd.Series, action_type: pd.Series, subject: pd.Series) -> pd.Series:
    """Deterministic ids: the same exception occurrence, action type and subject (PO line, source DC, order
    line) give the same id on every run; a reopened exception gets new ids (its earlier actions are history)."""
    raw = exception_key.astype(str) + "#" + occurrence.astype(str) + "|" + action_type.astype(str) + "|" + subject.astype(str)
    return pd.Series(["A-" + hashlib.sha1(r.encode()).hexdigest()[:16] for r in raw], index=raw.index)


def forecast_confidence(accuracy: pd.DataFrame, keys: pd.DataFrame) -> pd.Series:
    """Confidence of a forecast-driven action from the series' backtest RMSSE: 0.95 for a near-perfect
    forecast, falling by 0.25 per unit of RMSSE, floored at 0.3; 0.5 where the series has no backtest (new)."""
    if accuracy.empty:
        return pd.Series(0.5, index=keys.index)
    series = accuracy.loc[accuracy["scope"] == "series", [*SKU_LOCATION, "rmsse"]].drop_duplicates(SKU_LOCATION)
    rmsse = keys[SKU_LOCATION].merge(series, on=SKU_LOCATION, how="left")["rmsse"].to_numpy(dtype=float)
    return pd.Series(np.where(np.isfinite(rmsse), np.clip(0.95 - 0.25 * np.nan_to_num(rmsse), 0.3, 0.95), 0.5), index=keys.index)


def _scheduled_po(purchase_lines: pd.DataFrame) -> pd.DataFrame:
    if purchase_lines.empty:
        return pd.DataFrame(columns=["po_id", "line_no", "supplier_id", *SKU_LOCATION, "qty_open", "due", "expected_date", "status"])
    po = purchase_lines[purchase_lines["status"].isin(PO_SCHEDULED) & (purchase_lines["qty_open"].astype(float) > 0)].copy()
    po["expected_date"] = as_datetime_column(po["expected_date"])
    confirmed = as_datetime_column(po["confirmed_date"]) if "confirmed_date" in po else pd.Series(pd.NaT, index=po.index)
    po["due"] = confirmed.fillna(po["expected_date"])
    return po


def _routine_orders(ex: pd.DataFrame, ctx: pd.DataFrame, projection: pd.DataFrame, accuracy: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """replenish for replenishment_due: ordered today, up to the order-up-to level and at least the net
    requirement (units_at_risk), rounded up to MOQ and pack; refused when the inventory position over the
    buckets the order covers already reaches the order-up-to level."""
    if ex.empty:
        return pd.DataFrame()
    base = ex[["exception_key", "occurrence", "exception_type", *SKU_LOCATION, "units_at_risk", "window_start", "category", "trigger_values"]].merge(
        ctx[[*SKU_LOCATION, "supplier_id", "lead_time_days", "order_up_to", "moq", "pack_size", "unit_cost", "active"]], on=SKU_LOCATION, how="left"
    )
    base = base[base["supplier_id"].notna() & base["active"].astype(bool)]
    if base.empty:
        return pd.DataFrame()
    covered = pd.to_datetime(base["window_start"])
    through = projection.assign(_start=as_datetime_column(projection["period_start"])).merge(base[[*SKU_LOCATION]].assign(_need=covered.to_numpy()), on=SKU_LOCATION)
    through = through[through["_start"] <= through["_need"]].groupby(SKU_LOCATION, as_index=False)["bucket"].max()
    base = base.merge(inventory_position(projection, through), on=SKU_LOCATION, how="left")
    base["position"] = base["position"].astype(float).fillna(0.0)
    base = base[base["position"] < base["order_up_to"].fillna(np.inf)]
    if base.empty:
        return pd.DataFrame()
    need = np.maximum(base["units_at_risk"].astype(float), base["order_up_to"].astype(float).fillna(0.0) - base["position"])
    r = base.assign(action_type="replenish", _subject=base["supplier_id"].astype(str) + "@" + as_of.strftime("%Y-%m-%d"), rank=1, covers=True)
    r["quantity"] = round_order_quantity(need.to_numpy(), r["moq"].to_numpy(), r["pack_size"].to_numpy())
    r["order_by"] = as_of
    r["needed_by"] = pd.to_datetime(r["window_start"])
    # The routine order follows the inventory policy, whose safety stock already prices the forecast's error
    # in: it rests on the policy, not on one forecast being right (a degraded forecast still stops autonomy).
    r["confidence"] = FACT_CONFIDENCE
    r["value"] = r["quantity"] * r["unit_cost"].fillna(0)
    r["expected_impact"] = (
        "orders " + fmt_qty(r["quantity"]) + " from " + r["supplier_id"].astype(str) + " today to land by " + fmt_day(r["needed_by"])
        + ", bringing the inventory position from " + fmt_qty(r["position"]) + " to " + fmt_qty(r["position"] + r["quantity"])
        + " (order-up-to " + fmt_qty(r["order_up_to"]) + ")"
    )
    return r[r["quantity"] > 0]


def _shortage_actions(
    ex: pd.DataFrame, ctx: pd.DataFrame, projection: pd.DataFrame, po: pd.DataFrame, supplier: pd.DataFrame, accuracy: pd.DataFrame,
    as_of: pd.Timestamp, transfer_sources: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """transfer / expedite for projected_stockout and below_safety_stock, never with a need date before today.
    Transfers move at most the units allotted to the short DC by `regions.transfer_sources` (each SKU's spare
    shared among the DCs short of it): the global step's decision (`transfer_sources`, a region's plan), else
    the same rule over `projection`."""
    if ex.empty:
        return pd.DataFrame()
    base = ex[["exception_key", "occurrence", "exception_type", *SKU_LOCATION, "units_at_risk", "window_start", "category"]].merge(
        ctx[[*SKU_LOCATION, "supplier_id", "lead_time_days", "safety_stock", "order_up_to", "moq", "pack_size", "unit_cost"]], on=SKU_LOCATION, how="left"
    )
    base["needed_by"] = pd.to_datetime(base["window_start"]).clip(lower=as_of)
    base["confidence_fc"] = forecast_confidence(accuracy, base).to_numpy()
    out = []

    # The senders and the units each short DC may take: the global step's allocation for a region's plan,
    # the same rule over this plan's own projection otherwise.
    sources = transfer_sources if transfer_sources is not None else allocate_spare(headroom(projection))
    best = base.merge(sources[[*SKU_LOCATION, "from_location_id", "surplus", "allotted"]], on=SKU_LOCATION, how="inner")
    best = best[best["from_location_id"] != best["location_id"]].drop_duplicates("exception_key")
    if not best.empty:
        t = best.assign(
            action_type="transfer",
            quantity=np.minimum(best["units_at_risk"], best["allotted"]),
            _subject=best["from_location_id"],
            confidence=best["confidence_fc"],
        )
        t["value"] = t["quantity"] * t["unit_cost"].fillna(0)
        t["covers"] = t["quantity"] >= t["units_at_risk"] - 1e-9
        # Said where the allotment, not the sender's spare or the shortfall, is what limits the move.
        shared = t["quantity"] < np.minimum(t["units_at_risk"], t["surplus"]) - 1e-9
        t["expected_impact"] = (
            "moves " + fmt_qty(t["quantity"]) + " of the " + fmt_qty(t["units_at_risk"]) + " units short from " + t["from_location_id"]
            + " (spare " + fmt_qty(t["surplus"]) + " above its safety stock over the horizon"
            + np.where(shared, ", " + fmt_qty(t["allotted"]) + " of them allotted to this DC", "") + ") before " + fmt_day(t["needed_by"])
        )
        out.append(t)

    if not po.empty:
        late = base.merge(po[["po_id", "line_no", "supplier_id", *SKU_LOCATION, "qty_open", "due"]].rename(columns={"supplier_id": "po_supplier_id"}), on=SKU_LOCATION, how="inner")
        late = late[late["due"] > late["needed_by"]].sort_values(["exception_key", "due", "po_id", "line_no"], kind="mergesort").drop_duplicates("exception_key")
        if not late.empty:
            reliability = supplier.set_index("supplier_id")["reliability"] if (not supplier.empty and "reliability" in supplier) else pd.Series(dtype=float)
            e = late.assign(
                action_type="expedite",
                supplier_id=late["po_supplier_id"],
                po_line_no=late["line_no"].astype(int),
                quantity=np.minimum(late["qty_open"].astype(float), late["units_at_risk"]),
                _subject=late["po_id"].astype(str) + "/" + late["line_no"].astype("Int64").astype(str),
            )
            e["confidence"] = e["supplier_id"].map(reliability).astype(float).fillna(DEFAULT_EXPEDITE_CONFIDENCE).clip(0.05, 0.95)
            e["value"] = e["quantity"] * e["unit_cost"].fillna(0)
            e["covers"] = e["quantity"] >= e["units_at_risk"] - 1e-9
            e["expected_impact"] = (
                "pulls " + fmt_qty(e["quantity"]) + " units of PO " + e["_subject"] + " in from " + fmt_day(e["due"]) + " to " + fmt_day(e["needed_by"])
            )
            out.append(e)

    if not out:
        return pd.DataFrame()
    acts = pd.concat(out, ignore_index=True)
    # Rank: the action that covers the shortfall first; among those the cheapest kind (transfer before
    # expedite); then the one covering more.
    kind_order = acts["action_type"].map({"transfer": 0, "expedite": 1})
    acts = acts.assign(_covers=~acts["covers"].astype(bool), _kind=kind_order).sort_values(
        ["exception_key", "_covers", "_kind", "quantity"], ascending=[True, True, True, False], kind="mergesort"
    )
    acts["rank"] = acts.groupby("exception_key", sort=False).cumcount() + 1
    return acts


def _delay_actions(ex: pd.DataFrame, po_lines: pd.DataFrame, supplier: pd.DataFrame, ctx: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """supplier_followup (drafted message) for every delayed line; expedite when the slip leaves a shortfall,
    to the expected date or, once that has passed, to the earliest date still possible (today)."""
    if ex.empty:
        return pd.DataFrame()
    d = ex[["exception_key", "occurrence", "exception_type", *SKU_LOCATION, "category", "supplier_id", "po_id", "po_line_no", "units_at_risk", "affected_order_count"]].copy()
    lines = po_lines.rename(columns={"line_no": "po_line_no"})[["po_id", "po_line_no", "qty_open", "expected_date", "due"]]
    d = d.merge(lines.assign(po_line_no=lines["po_line_no"].astype("Int64")), on=["po_id", "po_line_no"], how="left")
    d = d.merge(ctx[[*SKU_LOCATION, "unit_cost"]], on=SKU_LOCATION, how="left")
    names = supplier.set_index("supplier_id")["name"] if not supplier.empty else pd.Series(dtype=object)
    contact = supplier.set_index("supplier_id")["contact"] if (not supplier.empty and "contact" in supplier) else pd.Series(dtype=object)
    d["supplier_name"] = d["supplier_id"].map(names).fillna(d["supplier_id"])
    subject = d["po_id"].astype(str) + "/" + d["po_line_no"].astype("Int64").astype(str)
    f = d.assign(
        action_type="supplier_followup", _subject=subject, quantity=d["qty_open"], value=0.0, confidence=FACT_CONFIDENCE, rank=1,
        needed_by=pd.to_datetime(d["expected_date"]).clip(lower=as_of),
    )
    f["message"] = (
        "Hello " + f["supplier_name"].astype(str) + ", PO " + subject + " (" + fmt_qty(f["qty_open"]) + " × " + f["sku"] + " to " + f["location_id"]
        + ") is now due " + fmt_day(f["due"]) + " instead of " + fmt_day(f["expected_date"]) + "."
        + np.where(f["units_at_risk"] > 0, " We run short of " + fmt_qty(f["units_at_risk"]) + " units before then: can you ship at least that part by " + fmt_day(f["expected_date"]) + "?", " Please confirm the new date and any further risk.")
        + " Thank you."
    )
    f["details"] = json_rows(pd.DataFrame({"to": f["supplier_id"].map(contact).fillna(""), "supplier_name": f["supplier_name"]}, index=f.index))
    f["expected_impact"] = "asks " + f["supplier_name"].astype(str) + " to confirm or recover the date of PO " + subject
    e = d[d["units_at_risk"] > 0].copy()
    if not e.empty:
        e = e.assign(
            action_type="expedite",
            _subject=subject[e.index],
            quantity=np.minimum(e["qty_open"].astype(float), e["units_at_risk"]),
            needed_by=pd.to_datetime(e["expected_date"]).clip(lower=as_of),
            rank=2,
        )
        reliability = supplier.set_index("supplier_id")["reliability"] if (not supplier.empty and "reliability" in supplier) else pd.Series(dtype=float)
        e["confidence"] = e["supplier_id"].map(reliability).astype(float).fillna(DEFAULT_EXPEDITE_CONFIDENCE).clip(0.05, 0.95)
        e["value"] = e["quantity"] * e["unit_cost"].fillna(0)
        e["expected_impact"] = "pulls " + fmt_qty(e["quantity"]) + " units of PO " + e["_subject"] + " back to " + fmt_day(e["needed_by"]) + ", closing the shortfall"
    return pd.concat([f, e], ignore_index=True)


def _order_actions(ex: pd.DataFrame, risky_lines: pd.DataFrame, ctx: pd.DataFrame, product: pd.DataFrame, projection: pd.DataFrame, allocation_summary: pd.DataFrame) -> pd.DataFrame:
    """allocate, substitute and notify_customer for order_at_risk."""
    if ex.empty or risky_lines.empty:
        return pd.DataFrame()
    keys = ex[["exception_key", "occurrence", "exception_type", *SKU_LOCATION, "category"]]
    lines = risky_lines.merge(keys, on=SKU_LOCATION, how="inner").merge(ctx[[*SKU_LOCATION, "unit_price"]], on=SKU_LOCATION, how="left")
    out = []
    if not allocation_summary.empty:
        rec = allocation_summary[allocation_summary["recommended"]].merge(keys, on=SKU_LOCATION, how="inner")
        if not rec.empty:
            a = rec.assign(action_type="allocate", _subject=rec["scenario"], quantity=rec["supply"], value=rec["revenue_at_risk"], confidence=ALLOCATE_CONFIDENCE)
            a["expected_impact"] = (
                "allocates " + fmt_qty(a["supply"]) + " available of " + fmt_qty(a["demand"]) + " ordered by scenario " + a["scenario"]
                + ": fill rate " + (100 * a["fill_rate"]).map("{:.0f}%".format) + ", revenue at risk " + fmt_money(a["revenue_at_risk"])
                + ", " + a["customers_affected"].astype(str) + " customers short"
            )
            a["details"] = json_rows(rec[[c for c in ("scenario", "fill_rate", "fill_rate_strategic", "fill_rate_key", "fill_rate_standard", "revenue_at_risk", "customers_affected") if c in rec]])
            out.append(a)

    subs = product[["sku", "substitute_skus"]].dropna() if ("substitute_skus" in product and not product.empty) else pd.DataFrame(columns=["sku", "substitute_skus"])
    if not subs.empty:
        pairs = subs.assign(substitute_sku=subs["substitute_skus"].str.split(";")).explode("substitute_sku")
        pairs["substitute_sku"] = pairs["substitute_sku"].str.strip()
        spare = headroom(projection)[["sku", "location_id", "surplus"]].rename(columns={"sku": "substitute_sku", "surplus": "substitute_spare"})
        cand = lines.merge(pairs[["sku", "substitute_sku"]], on="sku", how="inner").merge(spare, on=["substitute_sku", "location_id"], how="inner")
        cand = cand[cand["substitute_spare"] >= cand["short"]].sort_values(
            ["exception_key", "order_id", "line_no", "substitute_spare"], ascending=[True, True, True, False], kind="mergesort"
        ).drop_duplicates(["exception_key", "order_id", "line_no"])
        if not cand.empty:
            s = cand.assign(
                action_type="substitute",
                _subject=cand["order_id"].astype(str) + "/" + cand["line_no"].astype("Int64").astype(str),
                quantity=cand["short"],
                value=cand["short"] * cand["unit_price"].fillna(0),
                confidence=FACT_CONFIDENCE * 0.8,  # the customer may decline the substitute
                order_line_no=cand["line_no"].astype(int),
                needed_by=cand["promise_date"],
            )
            s["expected_impact"] = "offers " + fmt_qty(s["short"]) + " × " + s["substitute_sku"] + " (spare " + fmt_qty(s["substitute_spare"]) + ") for order " + s["_subject"] + " on its promise date " + fmt_day(s["promise_date"])
            out.append(s)

    n = lines.assign(
        action_type="notify_customer",
        _subject=lines["order_id"].astype(str) + "/" + lines["line_no"].astype("Int64").astype(str),
        quantity=lines["short"],
        value=lines["short"] * lines["unit_price"].fillna(0),
        confidence=FACT_CONFIDENCE,
        order_line_no=lines["line_no"].astype(int),
        new_date=lines["revised_date"],
        needed_by=lines["promise_date"],
    )
    n["expected_impact"] = (
        "tells " + n["customer_id"].astype(str) + " that " + fmt_qty(n["short"]) + " of " + fmt_qty(n["qty_open"]) + " units of order " + n["_subject"]
        + " promised " + fmt_day(n["promise_date"]) + np.where(n["revised_date"].notna(), " will ship by " + fmt_day(n["revised_date"]), " have no supply date in the horizon yet")
    )
    out.append(n)
    acts = pd.concat(out, ignore_index=True)
    # Telling the customers the revised date is due whatever else is decided (and it is the move the ERP
    # records); a substitute or an allocation across customers are the alternatives a manager weighs.
    kind_order = acts["action_type"].map({"notify_customer": 0, "substitute": 1, "allocate": 2})
    # Among the notices, the strictest tier first, then the earliest promise: who must hear first.
    tier_rank = acts["tier"].map(TIER_RANK).fillna(len(TIER_RANK)) if "tier" in acts else 0
    acts = acts.assign(_kind=kind_order, _tier=tier_rank).sort_values(
        ["exception_key", "_kind", "_tier", "promise_date", "order_id", "line_no"], kind="mergesort", na_position="first"
    )
    acts["rank"] = acts.groupby("exception_key", sort=False).cumcount() + 1
    return acts


def _excess_actions(ex: pd.DataFrame, po: pd.DataFrame, ctx: pd.DataFrame, horizon_end: pd.Timestamp, settings: ActionSettings) -> pd.DataFrame:
    """reschedule_out the open PO lines of an over-stocked SKU-location landing in the horizon, latest first;
    cancel instead when the excess alone exceeds the line (it is not needed at all)."""
    if ex.empty or po.empty:
        return pd.DataFrame()
    keys = ex[["exception_key", "occurrence", "exception_type", *SKU_LOCATION, "category", "units_at_risk", "trigger_values"]]
    lines = keys.merge(po[["po_id", "line_no", "supplier_id", *SKU_LOCATION, "qty_open", "due"]], on=SKU_LOCATION, how="inner")
    lines = lines[lines["due"] < horizon_end]
    if lines.empty:
        return pd.DataFrame()
    lines = lines.merge(ctx[[*SKU_LOCATION, "unit_cost", "order_up_to"]], on=SKU_LOCATION, how="left")
    cancel = lines["qty_open"].astype(float) <= lines["units_at_risk"]
    push_days = np.minimum(settings.max_reschedule_days, np.maximum(settings.bucket_days, settings.excess_days_of_cover / 2))
    acts = lines.assign(
        action_type=np.where(cancel, "cancel", "reschedule_out"),
        _subject=lines["po_id"].astype(str) + "/" + lines["line_no"].astype("Int64").astype(str),
        po_line_no=lines["line_no"].astype(int),
        quantity=lines["qty_open"].astype(float),
        value=lines["qty_open"].astype(float) * lines["unit_cost"].fillna(0),
        new_date=(lines["due"] + pd.Timedelta(days=float(push_days))).where(~cancel),
        confidence=FACT_CONFIDENCE * 0.9,
    )
    acts["expected_impact"] = np.where(
        cancel,
        "cancels PO " + acts["_subject"] + " (" + fmt_qty(acts["quantity"]) + " units, " + fmt_money(acts["value"]) + "): the stock on hand already exceeds need by " + fmt_qty(acts["units_at_risk"]),
        "moves PO " + acts["_subject"] + " (" + fmt_qty(acts["quantity"]) + " units) from " + fmt_day(acts["due"]) + " to " + fmt_day(acts["new_date"]) + ", freeing " + fmt_money(acts["value"]) + " of working capital meanwhile",
    )
    acts = acts.sort_values(["exception_key", "due"], ascending=[True, False], kind="mergesort")
    acts["rank"] = acts.groupby("exception_key", sort=False).cumcount() + 1
    return acts


def _review_actions(ex: pd.DataFrame, accuracy: pd.DataFrame) -> pd.DataFrame:
    if ex.empty:
        return pd.DataFrame()
    r = ex[["exception_key", "occurrence", "exception_type", *SKU_LOCATION, "category", "units_at_risk", "sentence"]].assign(
        action_type="review_forecast", _subject="", value=0.0, rank=1, quantity=np.nan
    )
    r["confidence"] = FACT_CONFIDENCE
    r["expected_impact"] = np.where(
        r["exception_type"] == "demand_spike",
        "re-forecasts " + r["sku"] + " at " + r["location_id"] + " with the spike judged (one-off or new level) so replenishment follows real demand",
        "replaces the degraded forecast of " + r["sku"] + " at " + r["location_id"] + "; until then its actions need a human",
    )
    return r


def recommend_actions(
    exceptions: pd.DataFrame,
    context: pd.DataFrame,
    projection: pd.DataFrame,
    purchase_lines: pd.DataFrame,
    risky_order_lines: pd.DataFrame,
    product: pd.DataFrame,
    supplier: pd.DataFrame,
    accuracy: pd.DataFrame,
    allocation_summary: pd.DataFrame,
    as_of: pd.Timestamp | str,
    settings: ActionSettings = ActionSettings(),
    transfer_sources: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Recommended actions (columns ACTION_COLUMNS) for the active exceptions given.

    `exceptions` needs exception_key, occurrence, exception_type, sku, location_id, category, supplier_id,
    po_id, po_line_no, units_at_risk, window_start, trigger_values, sentence, affected_order_count;
    `context` is `exceptions.sku_location_context`; `risky_order_lines` is `exceptions.order_lines_at_risk`;
    `allocation_summary` is `allocation.allocation_scenarios(...)[0]` (may be empty); `transfer_sources`
    (`regions.transfer_sources`, the global step's) names the sending DC and the units allotted to each short
    SKU-location of a region's plan, senders outside `projection` included; None: the same allocation over
    `projection`.
    """
    now = as_timestamp(as_of)
    po = _scheduled_po(purchase_lines)
    horizon_end = as_datetime_column(projection["period_start"]).max() + pd.Timedelta(days=settings.bucket_days) if not projection.empty else now
    by_type = {t: exceptions[exceptions["exception_type"] == t] for t in exceptions["exception_type"].unique()}
    empty = exceptions.iloc[0:0]
    routine = by_type.get("replenishment_due", empty)
    parts = [
        _routine_orders(routine, context, projection, accuracy, now),
        _shortage_actions(
            pd.concat([by_type.get("projected_stockout", empty), by_type.get("below_safety_stock", empty)]), context, projection, po, supplier, accuracy, now,
            transfer_sources,
        ),
        _delay_actions(by_type.get("supplier_delay", empty), po, supplier, context, now),
        _order_actions(by_type.get("order_at_risk", empty), risky_order_lines, context, product, projection, allocation_summary),
        _excess_actions(by_type.get("excess_stock", empty), po, context, horizon_end, settings),
        _review_actions(pd.concat([by_type.get("demand_spike", empty), by_type.get("forecast_degradation", empty)]), accuracy),
    ]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ACTION_COLUMNS})
    acts = pd.concat(parts, ignore_index=True)
    acts["occurrence"] = acts["occurrence"].fillna(1).astype(int)
    acts["action_id"] = action_ids(acts["exception_key"], acts["occurrence"], acts["action_type"], acts["_subject"].fillna(""))
    for col in ACTION_COLUMNS:
        if col not in acts:
            acts[col] = None
    for col in ("order_by", "needed_by", "new_date"):
        acts[col] = pd.to_datetime(acts[col]).dt.date
    acts["quantity"] = acts["quantity"].astype(float)
    acts["value"] = acts["value"].astype(float).fillna(0.0).round(2)
    acts["confidence"] = acts["confidence"].astype(float).round(3)
    acts["rank"] = acts["rank"].astype(int)
    acts = acts.drop_duplicates("action_id")
    return acts[list(ACTION_COLUMNS)].sort_values(["exception_key", "rank"], kind="mergesort").reset_index(drop=True)
