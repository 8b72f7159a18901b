"""Why an exception happened: a deterministic root cause from the fixed vocabulary (`vocabulary.ROOT_CAUSES`)
for every case, its confidence (0-1) and the evidence that decided it, in a short text with its numbers.

The evidence is what a planner would look up before answering: the supplier's on-time record on its other
open PO lines, the share of the orders due from one customer, how the recent weeks compare with the year
before and with the same weeks of earlier years (the seasonal index), how long the item has sold, an
isolated week far above anything the series did before (a typo), rows of the SKU-location held in
quarantine, and the backtest bias of the series' demand class. "unknown" is the answer when none of them
decides. A symptom (`cause_key`) takes its root case's cause. Vectorised over the cases: features are
grouped once per SKU-location, supplier or class, and every rule is a boolean column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from demand_control.planning.exception_frame import PlanningInputs
from demand_control.planning.formatting import fmt_qty
from demand_control.planning.inventory_common import SCHEDULED_PO_STATUSES, SKU_LOCATION, as_datetime_column, as_timestamp
from demand_control.planning.vocabulary import ROOT_CAUSE_COLUMNS

SHORTAGE_TYPES = ("projected_stockout", "below_safety_stock", "replenishment_due", "order_at_risk")
DEMAND_TYPES = ("demand_spike", *SHORTAGE_TYPES, "forecast_degradation")


@dataclass(frozen=True)
class RootCauseThresholds:
    """Where evidence becomes a verdict. Each figure is a judgement a demand planner would make; the
    benchmark (`benchmarks/root_cause.py`) measures how often they are right on planted causes."""

    # A supplier on time on fewer than half its other open lines (neither confirmed late nor overdue) is late
    # as a habit: the sample distributor's suppliers run at 65-80% on time, so below 50% is well outside it.
    chronic_on_time_below: float = 0.5
    # Fewer other lines than this and the record says nothing either way.
    min_supplier_lines: int = 3
    # One customer owning 60% of the orders due, and at least two weeks of forecast demand, is one order
    # driving the case (an ordinary line is a fraction of a week's demand).
    single_customer_share: float = 0.6
    single_customer_weeks: float = 2.0
    order_window_days: int = 28
    # The last weeks at 1.5x the year before, in at least two of the last three weeks, is a new level.
    shift_ratio: float = 1.5
    shift_weeks: int = 2
    # The same weeks of earlier years at 1.3x the yearly mean: the season explains a lift up to 1.5x that index.
    seasonal_index: float = 1.3
    season_explains: float = 1.5
    # An item selling for fewer than 13 weeks (a quarter) has no history to forecast or to judge by.
    new_item_weeks: int = 13
    # A week five times the largest of the year before, with the week before it not, is a typo (an extra
    # digit) far more often than demand.
    data_error_jump: float = 5.0
    # A demand class whose backtest over- or under-forecast by 15% or more is biased, not unlucky.
    bias_pct: float = 15.0


def _strength(value: pd.Series, threshold: float, full: float) -> np.ndarray:
    """Confidence 0.55 at the threshold rising to 0.95 where the evidence reaches `full` (either direction)."""
    v = pd.to_numeric(value, errors="coerce").astype(float).to_numpy()
    span = (v - threshold) / (full - threshold) if full != threshold else np.ones_like(v)
    return np.round(0.55 + 0.40 * np.clip(np.nan_to_num(span, nan=0.0), 0.0, 1.0), 2)


def _pct(values: pd.Series) -> pd.Series:
    v = pd.to_numeric(values, errors="coerce").astype(float)
    return (v * 100).round(0).map("{:.0f}%".format).where(v.notna(), "?")


def _ratio(values: pd.Series) -> pd.Series:
    v = pd.to_numeric(values, errors="coerce").astype(float)
    return v.map("{:.1f}x".format).where(v.notna(), "?")


def history_features(history: pd.DataFrame, horizon_start: pd.Timestamp, pairs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per SKU-location (only those in `pairs` when given), from the weekly demand before `horizon_start`
    (age 1 = the last week): weeks since its first sale, the last three weeks and their mean, the mean of the
    year before the last four weeks (ages 5-56), the largest week of the year before the last two (ages 3-54,
    `base_max`), and the seasonal index: the mean of the weeks around this calendar week one and two years ago
    (ages 46-55 and 98-107) over the mean of the whole history. Sums and counts by integer SKU-location code
    (`np.bincount`): the history is the largest table the plan reads."""
    cols = [*SKU_LOCATION, "history_weeks", "last_qty", "previous_qty", "base_mean", "base_max", "recent_mean", "recent_1", "recent_2", "recent_3", "seasonal_index"]
    if history.empty:
        return pd.DataFrame(columns=cols)
    period = as_datetime_column(history["period_start"])
    keep = (period < horizon_start).to_numpy()
    sku_code, skus = pd.factorize(history["sku"].astype(str) if not isinstance(history["sku"].dtype, pd.CategoricalDtype) else history["sku"])
    loc_code, locs = pd.factorize(history["location_id"].astype(str) if not isinstance(history["location_id"].dtype, pd.CategoricalDtype) else history["location_id"])
    pid = sku_code.astype(np.int64) * max(len(locs), 1) + loc_code
    if pairs is not None:
        wanted_sku = pd.Index(skus.astype(str)).get_indexer(pairs["sku"].astype(str))
        wanted_loc = pd.Index(locs.astype(str)).get_indexer(pairs["location_id"].astype(str))
        ok = (wanted_sku >= 0) & (wanted_loc >= 0)
        keep &= np.isin(pid, wanted_sku[ok].astype(np.int64) * max(len(locs), 1) + wanted_loc[ok])
    pid = pid[keep]
    if len(pid) == 0:
        return pd.DataFrame(columns=cols)
    qty = np.nan_to_num(pd.to_numeric(history["qty"], errors="coerce").to_numpy(dtype=float)[keep], nan=0.0)
    age = np.ceil((horizon_start - period[keep]).to_numpy() / np.timedelta64(7, "D")).astype(np.int64)
    ids, dense = np.unique(pid, return_inverse=True)
    n = len(ids)

    def total(mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        at = dense if mask is None else dense[mask]
        return np.bincount(at, weights=qty if mask is None else qty[mask], minlength=n), np.bincount(at, minlength=n).astype(float)

    def largest(mask: np.ndarray, of: np.ndarray) -> np.ndarray:
        out = np.full(n, np.nan)
        if mask.any():
            found = pd.Series(of[mask]).groupby(dense[mask]).max()
            out[found.index.to_numpy()] = found.to_numpy()
        return out

    rows = np.bincount(dense, minlength=n)
    out = pd.DataFrame({"sku": np.asarray(skus.astype(str))[ids // max(len(locs), 1)], "location_id": np.asarray(locs.astype(str))[ids % max(len(locs), 1)]})
    out["history_weeks"] = np.nan_to_num(largest(qty > 0, age.astype(float)), nan=0.0).astype(int)
    for k in (1, 2, 3):
        out[f"recent_{k}"] = total(age == k)[0]
    out["last_qty"], out["previous_qty"] = out["recent_1"], out["recent_2"]
    out["recent_mean"] = out[["recent_1", "recent_2", "recent_3"]].mean(axis=1)
    base_sum, base_count = total((age >= 5) & (age <= 56))
    out["base_mean"] = np.where(base_count > 0, base_sum / np.maximum(base_count, 1), np.nan)
    # The typo test compares the last two weeks with the year before them.
    out["base_max"] = largest((age >= 3) & (age <= 54), qty)
    season_sum, season_count = total(((age >= 46) & (age <= 55)) | ((age >= 98) & (age <= 107)))
    all_sum, all_count = total()
    overall = all_sum / np.maximum(all_count, 1)
    index = np.where((season_count > 0) & (overall > 0), season_sum / np.maximum(season_count, 1) / np.where(overall > 0, overall, 1), np.nan)
    # Only a series with at least a year behind the seasonal window has a seasonal index.
    out["seasonal_index"] = np.where(rows >= 56, index, np.nan)
    return out[cols]


def order_concentration(order_lines: pd.DataFrame, horizon_start: pd.Timestamp, window_days: int) -> pd.DataFrame:
    """Per SKU-location, the open order units promised before `horizon_start + window_days`, the customer
    with the most of them, its units and share."""
    cols = [*SKU_LOCATION, "orders_due", "top_customer", "top_customer_qty", "top_customer_share"]
    if order_lines.empty:
        return pd.DataFrame(columns=cols)
    o = order_lines[[*SKU_LOCATION, "customer_id", "qty_open", "promise_date"]].copy()
    o["qty_open"] = pd.to_numeric(o["qty_open"], errors="coerce").astype(float).fillna(0.0)
    o = o[(o["qty_open"] > 0) & (as_datetime_column(o["promise_date"]) < horizon_start + pd.Timedelta(days=window_days))]
    if o.empty:
        return pd.DataFrame(columns=cols)
    by_customer = o.groupby([*SKU_LOCATION, "customer_id"], as_index=False, sort=False)["qty_open"].sum()
    total = by_customer.groupby(SKU_LOCATION, sort=False)["qty_open"].sum().rename("orders_due").reset_index()
    top = by_customer.sort_values([*SKU_LOCATION, "qty_open", "customer_id"], ascending=[True, True, False, True], kind="mergesort").drop_duplicates(SKU_LOCATION)
    top = top.rename(columns={"customer_id": "top_customer", "qty_open": "top_customer_qty"})
    out = total.merge(top, on=SKU_LOCATION, how="left")
    out["top_customer_share"] = out["top_customer_qty"] / out["orders_due"]
    return out[cols]


def supplier_record(purchase_lines: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Per supplier, its scheduled (sent, confirmed, partly received) open PO lines and how many are late:
    confirmed after the buyer's expected date, or overdue (the KPIs' supplier_on_time_rate)."""
    cols = ["supplier_id", "supplier_lines", "supplier_late"]
    if purchase_lines.empty:
        return pd.DataFrame(columns=cols)
    po = purchase_lines[purchase_lines["status"].isin(SCHEDULED_PO_STATUSES)]
    if po.empty:
        return pd.DataFrame(columns=cols)
    late = _late_lines(po, as_of)
    return po.assign(_late=late.astype(int)).groupby("supplier_id", as_index=False).agg(supplier_lines=("_late", "size"), supplier_late=("_late", "sum"))


def _late_lines(po: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    expected = as_datetime_column(po["expected_date"])
    confirmed = as_datetime_column(po["confirmed_date"]) if "confirmed_date" in po else pd.Series(pd.NaT, index=po.index)
    return (confirmed.notna() & (confirmed > expected)) | (confirmed.fillna(expected) < as_of)


def class_bias(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Per SKU-location, its demand class and that class's backtest bias (100 x (forecast - actual) / actual)."""
    cols = [*SKU_LOCATION, "demand_class", "class_bias_pct"]
    if accuracy.empty or not {"scope", "demand_class", "bias_pct", *SKU_LOCATION} <= set(accuracy.columns):
        return pd.DataFrame(columns=cols)
    series = accuracy.loc[accuracy["scope"] == "series", [*SKU_LOCATION, "demand_class"]].dropna(subset=SKU_LOCATION)
    classes = accuracy.loc[accuracy["scope"] == "class", ["demand_class", "bias_pct"]].drop_duplicates("demand_class")
    out = series.merge(classes.rename(columns={"bias_pct": "class_bias_pct"}), on="demand_class", how="left")
    for col in SKU_LOCATION:
        out[col] = out[col].astype(str)
    return out.drop_duplicates(SKU_LOCATION)[cols]


def quarantined_rows(quarantine: pd.DataFrame) -> pd.DataFrame:
    """Per SKU-location the rows of its stock or demand held in quarantine (keys 'sku|location_id|…')."""
    cols = [*SKU_LOCATION, "quarantined"]
    if quarantine.empty:
        return pd.DataFrame(columns=cols)
    q = quarantine[quarantine["object"].isin(["demand_history", "inventory_position"])]
    parts = q["key"].astype(str).str.split("|", n=2, expand=True)
    if parts.shape[1] < 2:
        return pd.DataFrame(columns=cols)
    return pd.DataFrame({"sku": parts[0], "location_id": parts[1]}).groupby(SKU_LOCATION, as_index=False).size().rename(columns={"size": "quarantined"})


def _first_forecast(forecast: pd.DataFrame) -> pd.DataFrame:
    if forecast.empty:
        return pd.DataFrame(columns=[*SKU_LOCATION, "weekly_forecast"])
    fc = forecast[[*SKU_LOCATION, "period_start", "mean"]].copy()
    for col in SKU_LOCATION:
        fc[col] = fc[col].astype(str)
    fc["period_start"] = as_datetime_column(fc["period_start"])
    first = fc.sort_values([*SKU_LOCATION, "period_start"], kind="mergesort").drop_duplicates(SKU_LOCATION)
    return first[[*SKU_LOCATION, "mean"]].rename(columns={"mean": "weekly_forecast"})


def classify_root_causes(
    exceptions: pd.DataFrame,
    inputs: PlanningInputs,
    horizon_start: pd.Timestamp | str,
    as_of: pd.Timestamp | str | None = None,
    thresholds: RootCauseThresholds | None = None,
) -> pd.DataFrame:
    """The exceptions with `root_cause`, `root_cause_confidence` and `root_cause_evidence` set (see the
    module docstring for the rules, `RootCauseThresholds` for where each decides)."""
    t = thresholds or RootCauseThresholds()
    out = exceptions.copy()
    if out.empty:
        for col in ROOT_CAUSE_COLUMNS:
            out[col] = pd.Series(dtype=float if col == "root_cause_confidence" else object)
        return out
    start = as_timestamp(horizon_start)
    now = as_timestamp(as_of) if as_of is not None else start
    f = out[["exception_type", "sku", "location_id", "supplier_id", "po_id", "po_line_no", "cause_key"]].copy()
    f["_row"] = np.arange(len(f))
    for col in SKU_LOCATION:
        f[col] = f[col].astype(object).where(f[col].notna(), None).astype(str)
    f = f.merge(history_features(inputs.demand_history, start, f[SKU_LOCATION].drop_duplicates()), on=SKU_LOCATION, how="left")
    f = f.merge(order_concentration(inputs.order_lines, start, t.order_window_days), on=SKU_LOCATION, how="left")
    f = f.merge(_first_forecast(inputs.forecast), on=SKU_LOCATION, how="left")
    f = f.merge(class_bias(inputs.accuracy), on=SKU_LOCATION, how="left")
    f = f.merge(quarantined_rows(inputs.quarantined), on=SKU_LOCATION, how="left")
    record = inputs.supplier_record if inputs.supplier_record is not None else supplier_record(inputs.purchase_lines, now)
    f = f.merge(record, on="supplier_id", how="left")
    f = f.sort_values("_row").reset_index(drop=True)

    # The case's own PO line is not part of its supplier's record.
    own_late = pd.Series(0, index=f.index)
    if not inputs.purchase_lines.empty and f["po_id"].notna().any():
        po = inputs.purchase_lines[inputs.purchase_lines["status"].isin(SCHEDULED_PO_STATUSES)]
        po = po.assign(_own_late=_late_lines(po, now).astype(int), line_no=po["line_no"].astype("Int64"))[["po_id", "line_no", "_own_late"]]
        own = f[["po_id", "po_line_no"]].astype({"po_line_no": "Int64"}).merge(po.drop_duplicates(["po_id", "line_no"]), left_on=["po_id", "po_line_no"], right_on=["po_id", "line_no"], how="left")
        own_late = own["_own_late"].fillna(-1)
    counted = own_late >= 0
    lines = pd.to_numeric(f["supplier_lines"], errors="coerce").fillna(0)
    late = pd.to_numeric(f["supplier_late"], errors="coerce").fillna(0)
    f["other_lines"] = lines - counted.astype(int)
    f["other_on_time"] = (f["other_lines"] - (late - own_late.clip(lower=0))) / f["other_lines"].where(f["other_lines"] > 0)

    typ = f["exception_type"]
    is_delay = typ == "supplier_delay"
    is_demand = typ.isin(DEMAND_TYPES)
    is_shortage = typ.isin(SHORTAGE_TYPES)
    base_mean = f["base_mean"].astype(float)
    f["recent_ratio"] = f["recent_mean"].astype(float) / base_mean.where(base_mean > 0)
    elevated = sum((f[c].astype(float) > t.shift_ratio * base_mean).astype(int) for c in ("recent_1", "recent_2", "recent_3"))
    f["weeks_elevated"] = elevated
    f["jump"] = f["last_qty"].astype(float) / f["base_max"].astype(float).where(f["base_max"] > 0)
    weekly = f["weekly_forecast"].astype(float)
    f["top_weeks"] = f["top_customer_qty"].astype(float) / weekly.where(weekly > 0)

    chronic = is_delay & (f["other_lines"] >= t.min_supplier_lines) & (f["other_on_time"] < t.chronic_on_time_below)
    one_off = is_delay & (f["other_lines"] >= t.min_supplier_lines) & (f["other_on_time"] >= t.chronic_on_time_below)
    quarantine = is_demand & (pd.to_numeric(f["quarantined"], errors="coerce").fillna(0) > 0)
    # Isolated: the week before is not far beyond the year too (that would be a new level, not a typo).
    typo = is_demand & (f["jump"] >= t.data_error_jump) & (f["previous_qty"].astype(float) < t.data_error_jump * f["base_max"].astype(float))
    new_item = (is_demand | (typ == "excess_stock")) & f["history_weeks"].notna() & (f["history_weeks"] < t.new_item_weeks)
    one_customer = is_demand & (f["top_customer_share"] >= t.single_customer_share) & (f["top_weeks"] >= t.single_customer_weeks)
    season = f["seasonal_index"].astype(float)
    seasonal = is_demand & (season >= t.seasonal_index) & (f["recent_ratio"].fillna(0) <= t.season_explains * season)
    shift_up = is_demand & (f["recent_ratio"] >= t.shift_ratio) & (f["weeks_elevated"] >= t.shift_weeks)
    shift_down = (typ == "excess_stock") & (f["recent_ratio"] <= 1 / t.shift_ratio)
    bias = f["class_bias_pct"].astype(float)
    under = (is_shortage | (typ == "demand_spike")) & (bias <= -t.bias_pct)
    over = (typ == "excess_stock") & (bias >= t.bias_pct)
    feed = typ.isin(["data_quality", "stale_feed"])

    rules = [
        (feed, "data_error", np.where(typ == "data_quality", 0.9, 0.6),
         "the " + typ.str.replace("_", " ") + " case is about the data feed itself"),
        (chronic, "supplier_chronic_lateness", _strength(1 - f["other_on_time"], 1 - t.chronic_on_time_below, 1.0),
         f["supplier_id"].astype(str) + " is on time on " + _pct(f["other_on_time"]) + " of its " + fmt_qty(f["other_lines"]) + " other open lines"),
        (one_off, "supplier_one_off_delay", _strength(f["other_on_time"], t.chronic_on_time_below, 1.0),
         f["supplier_id"].astype(str) + " is on time on " + _pct(f["other_on_time"]) + " of its " + fmt_qty(f["other_lines"]) + " other open lines"),
        (quarantine, "data_error", np.full(len(f), 0.8),
         fmt_qty(f["quarantined"]) + " rows of its stock or demand held in quarantine"),
        (typo, "data_error", _strength(f["jump"], t.data_error_jump, 4 * t.data_error_jump),
         "last week's " + fmt_qty(f["last_qty"]) + " units are " + _ratio(f["jump"]) + " the largest week of the year before (" + fmt_qty(f["base_max"]) + "), the week before " + fmt_qty(f["previous_qty"])),
        (new_item, "new_item", _strength(t.new_item_weeks - f["history_weeks"], 0, t.new_item_weeks - 1),
         "it has sold for " + fmt_qty(f["history_weeks"]) + " weeks only"),
        (one_customer, "single_customer_order", _strength(f["top_customer_share"], t.single_customer_share, 1.0),
         f["top_customer"].astype(str) + " holds " + _pct(f["top_customer_share"]) + " of the " + fmt_qty(f["orders_due"]) + " units due in "
         + str(t.order_window_days // 7) + " weeks (" + _ratio(f["top_weeks"]) + " a week's forecast)"),
        (seasonal, "seasonal_peak", _strength(season, t.seasonal_index, 2 * t.seasonal_index),
         "the same weeks of earlier years ran at " + _ratio(season) + " the yearly mean; the last 3 weeks at " + _ratio(f["recent_ratio"]) + " the year before"),
        (shift_up | shift_down, "broad_demand_shift", _strength((f["recent_ratio"] - 1).abs() + 1, t.shift_ratio, 2 * t.shift_ratio),
         "the last 3 weeks ran at " + _ratio(f["recent_ratio"]) + " the year before (" + fmt_qty(f["weeks_elevated"]) + " of 3 weeks above " + f"{t.shift_ratio:g}x)"),
        (under | over, "forecast_bias", _strength(bias.abs(), t.bias_pct, 3 * t.bias_pct),
         "its " + f["demand_class"].astype(str) + " class's backtest bias is " + bias.round(0).map("{:+.0f}%".format)),
    ]
    cause = pd.Series("unknown", index=f.index, dtype=object)
    confidence = pd.Series(0.0, index=f.index)
    evidence = pd.Series("no evidence decides it", index=f.index, dtype=object)
    decided = pd.Series(False, index=f.index)
    for mask, name, conf, text in rules:
        take = mask.fillna(False).astype(bool) & ~decided
        cause[take] = name
        confidence[take] = np.asarray(conf, dtype=float)[take.to_numpy()]
        evidence[take] = pd.Series(text, index=f.index)[take]
        decided |= take

    # A symptom's cause is its root case's; an order at risk (never a symptom: its customers must hear) takes
    # the cause of the supplier slip short of the most units at its SKU-location, when there is one.
    root = dict(zip(out["exception_key"], range(len(out))))
    slips = out[(out["exception_type"] == "supplier_delay") & (pd.to_numeric(out["units_at_risk"], errors="coerce").fillna(0) > 0)]
    slips = slips.sort_values(["units_at_risk", "exception_key"], ascending=[False, True], kind="mergesort").drop_duplicates(SKU_LOCATION)
    slip_by_pair = dict(zip(zip(slips["sku"].astype(str), slips["location_id"].astype(str)), slips["exception_key"]))
    at_risk = (typ == "order_at_risk") & f["cause_key"].isna()
    pairs = pd.Series(list(zip(f["sku"], f["location_id"])), index=f.index)
    f["cause_key"] = f["cause_key"].where(~at_risk, pairs.map(slip_by_pair))
    symptom_of = f["cause_key"].map(root)
    inherit = symptom_of.notna().to_numpy()
    if inherit.any():
        idx = symptom_of[inherit].astype(int).to_numpy()
        cause[inherit] = cause.to_numpy()[idx]
        confidence[inherit] = np.round(confidence.to_numpy()[idx] * 0.9, 2)
        evidence[inherit] = ("as its root case " + f["cause_key"][inherit].astype(str) + ": " + evidence.to_numpy()[idx]).to_numpy()
    out["root_cause"] = cause.to_numpy()
    out["root_cause_confidence"] = confidence.to_numpy()
    out["root_cause_evidence"] = evidence.to_numpy()
    return out
