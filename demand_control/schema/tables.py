"""Every warehouse table, declared once as SQLAlchemy Core metadata.

Staged tables are generated from `contracts.py`; raw extracts keep the delivered text; operational tables
(feed loads, quarantine) record what each load did. Alembic migrations in `migrations/` are checked against
this metadata by a test, so the DDL cannot drift from the contracts.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeEngine

from demand_control.schema import contracts
from demand_control.schema.contracts import Contract

# A naming convention keeps constraint names identical on SQLite and PostgreSQL, which Alembic needs.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_SQL_TYPES: dict[str, type[TypeEngine]] = {
    "string": String,
    "integer": Integer,
    "float": Float,
    "boolean": Boolean,
    "date": Date,
    "datetime": DateTime,
    "json": Text,
}


def _sql_type(kind: str) -> TypeEngine:
    if kind == "datetime":
        return DateTime(timezone=True)
    return _SQL_TYPES[kind]()


def _staged_table(contract: Contract) -> Table:
    columns = [
        Column(
            col.name,
            _sql_type(col.type),
            primary_key=col.name in contract.key,
            nullable=not col.required and col.name not in contract.key,
            comment=col.description,
        )
        for col in contract.all_columns
    ]
    return Table(contract.name, metadata, *columns, comment=contract.description)


def raw_table_name(object_name: str) -> str:
    return f"raw_{object_name}"


def _raw_table(contract: Contract) -> Table:
    columns = [
        Column("load_id", Integer, nullable=False, comment="feed_load row this extract belongs to."),
        Column("row_number", Integer, nullable=False, comment="Position of the row in the delivered file (1-based)."),
        Column(
            "change",
            String(8),
            nullable=False,
            server_default="upsert",
            comment="upsert: the row as the source holds it now; remove: the source no longer holds it as open.",
        ),
    ]
    columns += [
        Column(col.name, Text, nullable=True, comment=f"As delivered: {col.description}") for col in contract.columns
    ]
    return Table(
        raw_table_name(contract.name),
        metadata,
        *columns,
        comment=f"Latest raw extract of {contract.name}, as delivered (text), before validation.",
    )


STAGED: dict[str, Table] = {name: _staged_table(c) for name, c in contracts.CONTRACTS.items()}
RAW: dict[str, Table] = {
    name: _raw_table(c) for name, c in contracts.CONTRACTS.items() if c.file_drop
}

feed_load = Table(
    "feed_load",
    metadata,
    Column("load_id", Integer, primary_key=True, autoincrement=True, comment="Load number."),
    Column("object", String(64), nullable=False, index=True, comment="Canonical object loaded."),
    Column("source_system", String(32), nullable=False, comment="System the feed came from."),
    Column("source_uri", Text, nullable=False, comment="File or endpoint the feed was read from."),
    Column("source_modified_at", DateTime(timezone=True), comment="When the source last changed the feed."),
    Column("extracted_at", DateTime(timezone=True), nullable=False, comment="When the raw extract was taken."),
    Column("rows_extracted", Integer, nullable=False, comment="Rows in the delivered feed."),
    Column(
        "mode",
        String(16),
        nullable=False,
        server_default="snapshot",
        comment="snapshot: the feed is the whole object; incremental: only what changed since the cursor.",
    ),
    Column("cursor", Text, comment="Source high-water mark after this extract (e.g. Tryton last_modified_at)."),
    Column("rows_removed", Integer, nullable=False, server_default="0", comment="Rows the source reported gone."),
    Column("columns_found", Text, nullable=False, comment="Columns the feed delivered, comma-separated."),
    Column("staged_at", DateTime(timezone=True), comment="When validation and staging finished."),
    Column("rows_staged", Integer, comment="Rows that passed every rule and were staged."),
    Column("rows_quarantined", Integer, comment="Rows held back in quarantine."),
    Column("structural_errors", Text, comment="Feed-level problems that blocked the load, one per line."),
    Column("status", String(16), nullable=False, comment="extracted, staged or rejected."),
    comment="One row per feed extract: where it came from, how fresh it is and what validation did with it.",
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("quarantine_id", Integer, primary_key=True, autoincrement=True, comment="Row number."),
    Column("load_id", Integer, nullable=False, index=True, comment="feed_load row that delivered the bad row."),
    Column("object", String(64), nullable=False, index=True, comment="Canonical object of the bad row."),
    Column("key", Text, nullable=False, comment="Key of the bad row, key columns joined by '|'."),
    Column("rule", String(128), nullable=False, comment="Rule the row broke (e.g. min_value, references:product.sku)."),
    Column("column", String(64), nullable=False, comment="Column holding the offending value."),
    Column("offending_value", Text, comment="The value that broke the rule, as text."),
    Column("loaded_at", DateTime(timezone=True), nullable=False, comment="When the row was quarantined."),
    comment="Rows held back from staged tables, with the rule they broke; the good rows of the feed went on.",
)

QUANTILE_COMMENT = "Forecast quantile at {pct}%: demand is at most this with {pct}% probability."

demand_profile = Table(
    "demand_profile",
    metadata,
    Column("sku", String, primary_key=True, comment="SKU profiled."),
    Column("location_id", String, primary_key=True, comment="Location of the SKU-location profiled."),
    Column("history_periods", Integer, nullable=False, comment="Buckets of demand history (from the first one on record)."),
    Column("nonzero_periods", Integer, nullable=False, comment="Buckets with non-zero demand."),
    Column("zero_share", Float, nullable=False, comment="Share of buckets without demand."),
    Column("adi", Float, nullable=False, comment="Average demand interval: buckets per non-zero bucket (inf without demand)."),
    Column("cv2", Float, comment="Squared coefficient of variation of the non-zero demand sizes."),
    Column("demand_class", String(16), nullable=False, comment="Syntetos-Boylan class: smooth, erratic, intermittent or lumpy."),
    Column("seasonality_strength", Float, comment="Autocorrelation at the season lag of the detrended history."),
    Column("seasonal", Boolean, nullable=False, comment="True when the series is seasonal: its own test passes (two seasons of history) or its category's or class's pooled index is detected."),
    Column("periods_since_demand", Integer, nullable=False, comment="Buckets since the last non-zero demand."),
    Column("mean_demand", Float, nullable=False, comment="Mean demand per bucket over the history."),
    Column("is_new", Boolean, nullable=False, comment="Too little history since the first sale to select a model (see route new)."),
    Column("is_dead", Boolean, nullable=False, comment="No demand for a long stretch: forecast zero, flagged for review."),
    Column("route", String(16), nullable=False, comment="How the series is forecast: its class's candidates (two seasons or more), short (methods that need no seasonal history), new (launch profile of its category's analogues) or dead (zero)."),
    Column("category", String, comment="Product category the series pools its seasonality and launch analogues in."),
    Column("seasonal_source", String(16), comment="Where its seasonality comes from: own, category, class or panel (pooled index); empty when not seasonal."),
    Column("computed_at", DateTime(timezone=True), nullable=False, comment="When the profile was computed (UTC)."),
    comment="Demand profile per SKU-location: history, intermittency, variability, seasonality and the forecast route.",
)

demand_forecast = Table(
    "demand_forecast",
    metadata,
    Column("sku", String, primary_key=True, comment="SKU forecast."),
    Column("location_id", String, primary_key=True, comment="Location of the SKU-location forecast."),
    Column("period_start", Date, primary_key=True, comment="First day of the forecast bucket (Monday for weeks)."),
    Column("mean", Float, nullable=False, comment="Expected demand in the bucket (the unbiased mean replenishment uses): base_mean plus pipeline_qty."),
    Column("base_mean", Float, comment="Statistical forecast of the bucket, before the CRM pipeline adjustment."),
    Column("pipeline_qty", Float, nullable=False, server_default="0", comment="Probability-weighted open CRM pipeline added in the bucket (capped; 0 when the pipeline signal is off)."),
    *[
        Column(f"q{pct:02d}", Float, nullable=False, comment=QUANTILE_COMMENT.format(pct=pct))
        for pct in (5, 10, 25, 50, 75, 90, 95)
    ],
    Column("model", String(128), nullable=False, comment="Model or equal-weight combination (a+b) that produced the mean."),
    Column("demand_class", String(16), nullable=False, comment="Syntetos-Boylan class of the series."),
    Column("created_at", DateTime(timezone=True), nullable=False, comment="When the forecast was made (UTC)."),
    comment="Demand forecast per SKU-location and bucket over the horizon: mean and quantiles q05..q95.",
)

forecast_accuracy = Table(
    "forecast_accuracy",
    metadata,
    Column("scope", String(16), primary_key=True, comment="series (one SKU-location), segment (route, length band, class and seasonality selected together), class or overall."),
    Column("subject", String, primary_key=True, comment="sku|location_id for a series, route:band:class[:seasonal] for a segment (region/route:band:class[:seasonal] when one planning region was forecast alone), the class name, or 'all'."),
    Column("sku", String, comment="SKU, for series rows."),
    Column("location_id", String, comment="Location, for series rows."),
    Column("demand_class", String(16), comment="Syntetos-Boylan class (series and class rows)."),
    Column("series", Integer, nullable=False, comment="Series the row summarises (1 for a series row)."),
    Column("points", Integer, nullable=False, comment="Backtest points (series x windows x horizon)."),
    Column("rmsse", Float, comment="Root mean squared scaled error of the mean forecast (mean over series)."),
    Column("mase", Float, comment="Mean absolute scaled error of the median forecast q50 (mean over series)."),
    Column("spl", Float, comment="Scaled pinball loss over q10, q25, q50, q75, q90 (mean over series)."),
    Column("bias_pct", Float, comment="100 x sum(forecast - actual) / sum(|actual|) over the backtest, after the bias correction."),
    Column("route", String(16), comment="Route of the series or segment: long, short (new and dead series are not backtested)."),
    Column("bias_pct_raw", Float, comment="The same bias before the correction."),
    Column("bias_factor", Float, comment="Multiplicative bias correction applied (1: none; the bias was not systematic)."),
    Column("bias_systematic", Boolean, comment="Segment rows: the backtest bias had the same sign and at least 1% in every window."),
    Column("cover80", Float, comment="Share of actuals inside the 80% interval [q10, q90]."),
    Column("benchmark_rmsse", Float, comment="RMSSE of the seasonal-naive benchmark on the same windows."),
    Column("recent_rmsse", Float, comment="RMSSE on the most recent backtest window."),
    Column("earlier_rmsse", Float, comment="RMSSE on the earlier backtest windows."),
    Column("computed_at", DateTime(timezone=True), nullable=False, comment="When the backtest ran (UTC)."),
    Column("actual_units", Float, comment="sum(|actual|) over the backtest points: the denominator of bias_pct (rolled up across regions)."),
    Column("bias_units", Float, comment="sum(forecast - actual) over the backtest points, after the bias correction."),
    Column("bias_units_raw", Float, comment="The same sum before the correction."),
    comment="Rolling-origin backtest of the demand forecast per series, per demand class and overall.",
)

inventory_policy = Table(
    "inventory_policy",
    metadata,
    Column("sku", String, primary_key=True, comment="SKU planned."),
    Column("location_id", String, primary_key=True, comment="DC planned."),
    Column("demand_class", String(16), comment="Syntetos-Boylan class of the series (decides the safety-stock method)."),
    Column("tier", String(16), comment="Strictest customer tier waiting on the SKU-location (sets the service level)."),
    Column("category", String, comment="Merchandise category of the SKU."),
    Column("service_level", Float, comment="Cycle service level aimed at (share of cycles without a stockout)."),
    Column("z", Float, comment="Standard normal quantile of the service level."),
    Column("mean_daily_demand", Float, comment="Forecast mean demand per day over lead time plus review period."),
    Column("demand_std_per_bucket", Float, comment="Forecast-error standard deviation per bucket, from the 80% interval."),
    Column("lead_time_days", Float, comment="Mean lead time of the primary sourcing lane, days."),
    Column("lead_time_std_days", Float, comment="Standard deviation of that lead time, days."),
    Column("safety_stock", Float, comment="Units held against forecast error and lead-time variability."),
    Column("reorder_point", Float, comment="Mean lead-time demand plus safety stock: order when the position falls to it."),
    Column("order_up_to", Float, comment="Reorder point plus mean demand over the review period."),
    Column("method", String(32), comment="normal (smooth, erratic) or lead_time_quantile (intermittent, lumpy)."),
    Column("supplier_id", String, comment="Supplier of the lane the policy uses."),
    Column("moq", Float, comment="Minimum order quantity of that lane."),
    Column("pack_size", Float, comment="Order multiple of that lane."),
    Column("lead_time_observations", Integer, comment="Supplier-confirmed lead times that updated the quoted one."),
    Column("eoq", Float, comment="Economic order quantity sqrt(2DS/H) when an ordering cost is configured."),
    Column("order_quantity", Float, comment="Lot per order: max(review-period demand, EOQ) rounded up to MOQ and pack size."),
    Column("computed_at", DateTime(timezone=True), nullable=False, comment="When the policy was computed (UTC)."),
    comment="Inventory policy per SKU-location: service level, safety stock, reorder point and order-up-to level.",
)

projected_inventory = Table(
    "projected_inventory",
    metadata,
    Column("sku", String, primary_key=True, comment="SKU projected."),
    Column("location_id", String, primary_key=True, comment="DC projected."),
    Column("period_start", Date, primary_key=True, comment="First day of the bucket."),
    Column("bucket", Integer, nullable=False, comment="Bucket number from the current one (0, which covers only the days left of its week)."),
    Column("opening", Float, nullable=False, comment="Projected available balance at the start of the bucket."),
    Column("receipts", Float, nullable=False, comment="Open purchase-order quantity due in the bucket (confirmed, else expected date), planned receipts included."),
    Column("planned_receipts", Float, comment="Of the receipts, what is planned but not yet sent to the supplier: draft purchase lines and approved replenishments not yet in the ERP."),
    Column("forecast", Float, nullable=False, comment="Forecast mean demand of the bucket's days still ahead (bucket 0: from the as-of date to the end of its week)."),
    Column("committed", Float, nullable=False, comment="Open customer-order quantity promised in the bucket."),
    Column("demand", Float, nullable=False, comment="max(forecast, committed): orders consume the forecast."),
    Column("closing", Float, nullable=False, comment="Projected available balance (PAB) at the end of the bucket."),
    Column("safety_stock", Float, nullable=False, comment="Safety stock of the SKU-location."),
    Column("below_safety_stock", Boolean, nullable=False, comment="closing < safety_stock."),
    Column("stockout", Boolean, nullable=False, comment="closing < 0."),
    Column("days_of_cover", Float, comment="max(closing, 0) / average daily forecast; empty when there is no forecast demand."),
    Column("computed_at", DateTime(timezone=True), nullable=False, comment="When the projection was computed (UTC)."),
    comment="Projected available balance per SKU-location and bucket over the forecast horizon.",
)

_EXCEPTION_DETAIL_COLUMNS = (
    ("exception_type", String(32), "Type from the taxonomy: projected_stockout, below_safety_stock, demand_spike, supplier_delay, order_at_risk, excess_stock, forecast_degradation, stale_feed, data_quality."),
    ("entity", String, "What the exception is about: SKU@location, PO/line, or the feed's object."),
    ("sku", String, "SKU concerned (empty for feed exceptions)."),
    ("location_id", String, "DC concerned."),
    ("supplier_id", String, "Supplier concerned (the lane's or the PO's)."),
    ("po_id", String, "Purchase order concerned (supplier_delay)."),
    ("po_line_no", Integer, "Purchase order line concerned (supplier_delay)."),
    ("category", String, "Merchandise category of the SKU (routing)."),
    ("region", String, "Region of the location (routing)."),
    ("customer_tier", String(16), "Strictest tier among the affected customers, else the SKU-location's (severity, routing)."),
    ("window_start", Date, "When the condition bites: stockout week, run start, due date, first promise date."),
    ("units_at_risk", Float, "Units short (shortages), above plan (spikes) or beyond need (excess)."),
    ("money_at_risk", Float, "Lost margin of the units short, or stock value of the excess."),
    ("trigger_values", Text, "The values that triggered the rule, as JSON."),
    ("sentence", Text, "The exception in one sentence a planner reads, built from the trigger values."),
    ("affected_orders", Text, "Customer order lines affected, as a JSON list."),
    ("affected_order_count", Integer, "Number of customer order lines affected."),
    ("severity", String(16), "critical, high, medium or low: money at risk banded by the policy, bumped for strategic customers."),
    ("owner_team", String, "Team that owns the exception (routing policy)."),
    ("owner_channel", String, "Slack channel the exception is posted to."),
    ("owner_user", String, "Named owner, when the routing rule names one."),
    ("routing_rule", String, "Routing rule that chose the owner ('fallback' when none matched)."),
    ("cause_key", String, "The case this one is a symptom of (one case per root cause); empty for a root cause."),
    ("suppressed_reason", Text, "Why a tolerance of the policy holds the case back from people (recorded, not sent); empty otherwise."),
    ("root_cause", String(32), "Why it happened, from the fixed vocabulary (supplier_chronic_lateness, supplier_one_off_delay, single_customer_order, broad_demand_shift, seasonal_peak, forecast_bias, new_item, data_error, unknown)."),
    ("root_cause_confidence", Float, "0..1: how clearly the evidence decided the root cause (0 for unknown)."),
    ("root_cause_evidence", Text, "The evidence that decided the root cause, with its numbers."),
    ("for_person", Boolean, "Whether a person must act: not held back, not a symptom, and its recommended action awaits approval (or nothing automatic can act)."),
    ("loss_kind", String(16), "shortage, excess or none: what expected_loss measures."),
    ("expected_loss", Float, "Shortage: lost margin of the units short, weighted by customer tier (strategic 3, key 2, standard 1); excess: the holding cost of the stock beyond need until it is used."),
    ("act_by", DateTime(timezone=True), "When the recommended action must be taken to still help (its order-by or need date, else the SLA)."),
    ("priority", Float, "Expected loss × urgency (1 when act_by is now, halving each week later): the order of the worklist."),
)

_LIFECYCLE_STATE_COLUMNS = (
    ("state", String(16), False, "open, acknowledged, in_progress, snoozed, resolved or auto_resolved (cleared by new data)."),
    ("occurrence", Integer, False, "1 for the first time the condition fired; +1 each time it reopens after resolution."),
    ("first_seen_at", DateTime(timezone=True), False, "When the condition was first detected."),
    ("last_seen_at", DateTime(timezone=True), False, "When a run last saw the condition firing."),
    ("opened_at", DateTime(timezone=True), False, "When this occurrence opened (the SLA clock starts here)."),
    ("state_changed_at", DateTime(timezone=True), False, "When the state last changed."),
    ("values_changed_at", DateTime(timezone=True), False, "When the triggering values, severity or owner last changed."),
    ("resolved_at", DateTime(timezone=True), True, "When the occurrence was resolved or auto-resolved."),
    ("snoozed_until", DateTime(timezone=True), True, "A snoozed exception reopens after this time if it still fires."),
    ("sla_due_at", DateTime(timezone=True), True, "When the owner must have acted (opened_at + the policy's SLA for the severity)."),
    ("last_change", String(16), False, "What the latest run did: opened, reopened, updated, unchanged, auto_resolved or untouched."),
)


def _exception_columns() -> list[Column]:
    columns = [Column("exception_key", String, primary_key=True, comment="Stable key: type:entity. Re-runs update the same key.")]
    columns += [Column(name, kind, comment=comment) for name, kind, comment in _EXCEPTION_DETAIL_COLUMNS]
    columns += [Column(name, kind, nullable=nullable, comment=comment) for name, kind, nullable, comment in _LIFECYCLE_STATE_COLUMNS]
    return columns


exception_lifecycle = Table(
    "exception_lifecycle",
    metadata,
    *_exception_columns(),
    comment="Operational record of every planning exception ever raised, kept across re-runs: state, occurrences, first and last seen.",
)

planning_exceptions = Table(
    "planning_exceptions",
    metadata,
    *_exception_columns(),
    comment="Current snapshot of the active planning exceptions (open, acknowledged, in progress, snoozed) for analysts.",
)

recommended_actions = Table(
    "recommended_actions",
    metadata,
    Column("action_id", String, primary_key=True, comment="Deterministic id: the same exception occurrence, type and subject give the same id."),
    Column("exception_key", String, nullable=False, index=True, comment="Exception the action answers."),
    Column("occurrence", Integer, nullable=False, comment="Occurrence of the exception the action answers."),
    Column("exception_type", String(32), nullable=False, comment="Type of that exception."),
    Column("action_type", String(32), nullable=False, comment="replenish, expedite, reschedule_out, cancel, transfer, allocate, notify_customer, substitute, supplier_followup or review_forecast."),
    Column("rank", Integer, nullable=False, comment="1 for the recommended action of the exception; alternatives follow."),
    Column("sku", String, comment="SKU concerned."),
    Column("location_id", String, comment="DC concerned (the receiving DC of a transfer)."),
    Column("category", String, comment="Merchandise category (autonomy exclusions)."),
    Column("supplier_id", String, comment="Supplier to order from, expedite or follow up with."),
    Column("po_id", String, comment="Purchase order line to expedite, reschedule or cancel."),
    Column("po_line_no", Integer, comment="Its line number."),
    Column("from_location_id", String, comment="DC a transfer ships from."),
    Column("order_id", String, comment="Customer order to notify or substitute on."),
    Column("order_line_no", Integer, comment="Its line number."),
    Column("customer_id", String, comment="Customer concerned."),
    Column("substitute_sku", String, comment="SKU offered instead."),
    Column("quantity", Float, comment="Units to order, move, expedite, allocate or notify about."),
    Column("value", Float, nullable=False, comment="Money the action commits or concerns (units at cost; at price for customer actions)."),
    Column("order_by", Date, comment="Latest date to place a replenishment so it lands when needed."),
    Column("needed_by", Date, comment="Date the goods are needed (or were promised)."),
    Column("new_date", Date, comment="Revised date: reschedule target, or the date a customer order can ship."),
    Column("confidence", Float, nullable=False, comment="0..1: how likely the action fixes the exception (forecast accuracy, supplier reliability)."),
    Column("expected_impact", Text, nullable=False, comment="What the action achieves, in words with its numbers."),
    Column("message", Text, comment="Drafted message (supplier follow-up)."),
    Column("details", Text, comment="Further particulars as JSON (allocation scenario, contact)."),
    Column("data_fresh", Boolean, nullable=False, comment="True when every feed the plan read was inside its freshness window."),
    Column("forecast_degraded", Boolean, nullable=False, comment="True when the SKU-location's forecast is flagged degraded."),
    Column("policy_decision", String(24), nullable=False, comment="auto_approved (within the autonomy limits) or awaiting_approval."),
    Column("approver_role", String, comment="Role that must approve (empty when auto-approved)."),
    Column("policy_reasons", Text, nullable=False, comment="Why the policy decided so, every reason named."),
    Column("owner_team", String, comment="Owner of the exception (routing policy)."),
    Column("owner_channel", String, comment="Slack channel of the owner."),
    Column("created_at", DateTime(timezone=True), nullable=False, comment="When the action was first recommended."),
    Column("updated_at", DateTime(timezone=True), nullable=False, comment="When the recommendation was last recomputed."),
    Column("source", String(16), nullable=False, server_default="planner",
           comment="Who proposed it: planner (the deterministic rules) or advisor (the optional model, under the policy's advisor limits)."),
    comment="Recommended actions per active exception, with expected impact, confidence and the policy decision.",
)

allocation_scenarios = Table(
    "allocation_scenarios",
    metadata,
    Column("sku", String, primary_key=True, comment="Constrained SKU."),
    Column("location_id", String, primary_key=True, comment="DC whose supply is short of its open orders."),
    Column("scenario", String(32), primary_key=True, comment="fair_share, tier_priority, most_lines_filled or earliest_promise."),
    Column("scenario_rank", Integer, nullable=False, comment="1 for the recommended scenario."),
    Column("recommended", Boolean, nullable=False, comment="Lowest tier-weighted revenue at risk (ties: fewest customers affected)."),
    Column("supply", Float, nullable=False, comment="Units available to promise to these orders."),
    Column("demand", Float, nullable=False, comment="Units open on the orders."),
    Column("allocated", Float, nullable=False, comment="Units the scenario allocates."),
    Column("fill_rate", Float, nullable=False, comment="allocated / demand."),
    Column("fill_rate_strategic", Float, comment="Fill rate of strategic customers' lines."),
    Column("fill_rate_key", Float, comment="Fill rate of key customers' lines."),
    Column("fill_rate_standard", Float, comment="Fill rate of standard customers' lines."),
    Column("lines_total", Integer, nullable=False, comment="Order lines competing."),
    Column("lines_filled", Integer, nullable=False, comment="Lines filled completely."),
    Column("lines_short", Integer, nullable=False, comment="Lines left short."),
    Column("revenue_at_risk", Float, nullable=False, comment="Units short x price."),
    Column("weighted_revenue_at_risk", Float, nullable=False, comment="Revenue at risk weighted by tier (strategic 3, key 2, standard 1): what the recommendation minimises."),
    Column("customers_affected", Integer, nullable=False, comment="Customers with any line short."),
    Column("customers_affected_strategic", Integer, nullable=False, comment="Strategic customers with any line short."),
    Column("computed_at", DateTime(timezone=True), nullable=False, comment="When the scenarios were computed (UTC)."),
    comment="Allocation scenarios per constrained SKU-location, compared on fill rate by tier, revenue at risk and customers affected.",
)

allocation_lines = Table(
    "allocation_lines",
    metadata,
    Column("scenario", String(32), primary_key=True, comment="Scenario the allocation belongs to."),
    Column("sku", String, primary_key=True, comment="SKU."),
    Column("location_id", String, primary_key=True, comment="DC."),
    Column("order_id", String, primary_key=True, comment="Customer order."),
    Column("line_no", Integer, primary_key=True, comment="Order line."),
    Column("customer_id", String, nullable=False, comment="Customer."),
    Column("tier", String(16), comment="Customer tier."),
    Column("qty_open", Float, nullable=False, comment="Units open on the line."),
    Column("allocated", Float, nullable=False, comment="Units the scenario gives the line."),
    Column("short", Float, nullable=False, comment="qty_open - allocated."),
    Column("promise_date", Date, comment="Promise date of the line."),
    Column("computed_at", DateTime(timezone=True), nullable=False, comment="When the scenarios were computed (UTC)."),
    comment="Per order line, what each allocation scenario gives it (the detail behind allocation_scenarios).",
)

coordination_kpis = Table(
    "coordination_kpis",
    metadata,
    Column("kpi", String(64), primary_key=True, comment="Indicator, e.g. open_exceptions, money_at_risk, auto_approved_share, approval_latency_hours."),
    Column("dimension", String(32), primary_key=True, comment="What the row is broken down by: all, exception_type, severity, owner_team, demand_class, supplier_id."),
    Column("member", String, primary_key=True, comment="The value of the dimension ('all' for totals)."),
    Column("value", Float, comment="The figure (empty when there is nothing to measure yet)."),
    Column("unit", String(16), nullable=False, comment="count, money, share, hours or rmsse."),
    Column("computed_at", DateTime(timezone=True), nullable=False, comment="When the KPI was computed (UTC)."),
    comment="Coordination KPIs in long form (kpi x dimension x member), ready to chart.",
)

kpi_history = Table(
    "kpi_history",
    metadata,
    Column("plan_id", Integer, primary_key=True, autoincrement=False, comment="The plan (plan_runs.plan_id) the figures describe; re-measuring the same plan replaces its rows."),
    Column("kpi", String(64), primary_key=True, comment="Indicator, as in coordination_kpis."),
    Column("dimension", String(32), primary_key=True, comment="What the row is broken down by ('all' for totals)."),
    Column("member", String, primary_key=True, comment="The value of the dimension ('all' for totals)."),
    Column("as_of", Date, nullable=False, comment="The plan's as-of date: the x axis of a KPI's history."),
    Column("plan_run_id", String(64), comment="Dagster run that made the plan (empty outside Dagster)."),
    Column("value", Float, comment="The figure (empty when there is nothing to measure yet)."),
    Column("unit", String(16), nullable=False, comment="count, money, share, hours or rmsse."),
    Column("computed_at", DateTime(timezone=True), nullable=False, comment="When the figures were measured (UTC)."),
    comment="Every coordination KPI of every plan (kpi x dimension x member x plan), append-only by plan: coordination_kpis is its latest slice.",
)

plan_runs = Table(
    "plan_runs",
    metadata,
    Column("plan_id", Integer, primary_key=True, autoincrement=True, comment="Order of the plans."),
    Column("run_id", String(64), comment="Dagster run that made the plan (empty outside Dagster)."),
    Column("scope", String(16), nullable=False, comment="full (every SKU-location) or scoped (the SKU-locations an event touched)."),
    Column("sku_locations", Integer, nullable=False, comment="SKU-locations projected."),
    Column("as_of", Date, nullable=False, comment="The date the plan was made as of (the run's clock): today, for the plan."),
    Column("horizon_start", Date, nullable=False, comment="First day projected; bucket 0 runs from here to the end of its week."),
    Column("bucket_days", Integer, nullable=False, comment="Length of a bucket in days."),
    Column("planned_at", DateTime(timezone=True), nullable=False, comment="The planning clock's instant when the plan was made (UTC)."),
    comment="One row per plan (full or event-scoped): the as-of it was made on, so every projection, exception and action can be traced to its date.",
)

replan_log = Table(
    "replan_log",
    metadata,
    Column("replan_id", Integer, primary_key=True, autoincrement=True, comment="Order of the replans."),
    Column("run_id", String(64), comment="Dagster run of the replan job (empty outside Dagster)."),
    Column("inbox_from", Integer, nullable=False, comment="First inbox_id of the batch the replan applied (inclusive)."),
    Column("inbox_to", Integer, nullable=False, comment="Last inbox_id of the batch the replan applied (inclusive)."),
    Column("events", Integer, nullable=False, comment="Inbox events applied (events already processed by an earlier run are skipped)."),
    Column("erp_sku_locations", Integer, nullable=False, comment="SKU-locations re-planned because they changed in the ERP (the ERP sync's request), besides the events'."),
    Column("sku_locations", Integer, comment="SKU-locations re-planned; empty: all of them (the scope was too large, so the whole panel was re-planned)."),
    Column("exceptions_opened", Integer, nullable=False, comment="Exceptions the replan opened or reopened."),
    Column("exceptions_updated", Integer, nullable=False, comment="Open exceptions whose figures the replan changed."),
    Column("exceptions_resolved", Integer, nullable=False, comment="Exceptions the replan found cleared (auto-resolved)."),
    Column("actions", Integer, nullable=False, comment="Recommended actions of the re-planned SKU-locations after the replan."),
    Column("replanned_at", DateTime(timezone=True), nullable=False, comment="The planning clock's instant of the replan (UTC)."),
    comment="One row per event-scoped replan (the replan job): what it applied and changed. The full plan's tables keep every SKU-location; this says which ones an event re-planned since.",
)

inbox_events = Table(
    "inbox_events",
    metadata,
    Column("inbox_id", Integer, primary_key=True, autoincrement=True, comment="Arrival order; the inbox sensor's cursor."),
    Column("webhook_id", String(255), nullable=False, comment="Sender's webhook-id: with the source, the dedupe key (a redelivery is stored once)."),
    Column("source", String(64), nullable=False, comment="Who sent it: the source name in /webhooks/{source}."),
    Column("event_type", String(64), nullable=False, comment="supplier.delay, supplier.confirmation, supplier.shortfall, supplier.cancellation, order.new, order.change or order.cancel."),
    Column("received_at", DateTime(timezone=True), nullable=False, comment="When the gateway committed the event."),
    Column("sent_at", DateTime(timezone=True), nullable=False, comment="The sender's webhook-timestamp."),
    Column("payload", Text, nullable=False, comment="The verified body, as received (JSON)."),
    Column("payload_sha256", String(64), nullable=False, comment="SHA-256 of the raw body."),
    Column("sku", String, comment="SKU the event concerns (as sent, or looked up from the PO / order line)."),
    Column("location_id", String, comment="DC the event concerns, when known."),
    Column("po_id", String, comment="Purchase order of a supplier event."),
    Column("po_line_no", Integer, comment="Its line."),
    Column("order_id", String, comment="Customer order of an order event."),
    Column("order_line_no", Integer, comment="Its line."),
    Column("quality_flags", Text, comment="References the warehouse does not know (unknown_sku:…, unknown_po:…); the event is kept as evidence."),
    Column("processed_at", DateTime(timezone=True), comment="When a replan run applied the event."),
    Column("process_run_id", String(64), comment="Dagster run that applied it."),
    Column("process_outcome", Text, comment="What applying it did (e.g. PO-1/2 confirmed date 2026-03-09 → 2026-03-23), or why it changed nothing."),
    Column("redacted_at", DateTime(timezone=True), comment="When the retention job removed the personal data from this row (empty: not yet)."),
    # Per source: senders draw webhook-ids independently, so one source's id must not hide another's event.
    UniqueConstraint("source", "webhook_id", name="uq_inbox_events_source_webhook_id"),
    comment="Durable inbox of verified webhook events: committed before the gateway answers 2xx, one row per (source, webhook-id).",
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("audit_id", Integer, primary_key=True, autoincrement=True, comment="Position in the chain."),
    Column("occurred_at", DateTime(timezone=True), nullable=False, comment="When the step happened (UTC)."),
    Column("actor", String(128), nullable=False, comment="Who acted: gateway:<source>, policy, a user id, or a job."),
    Column("event_type", String(64), nullable=False, comment="event_received, recommendation, policy_decision, approval, rejection, erp_write, notification, …"),
    Column("subject", String(255), nullable=False, comment="What it concerns: webhook id, action id, exception key."),
    Column("payload", Text, nullable=False, comment="The step's particulars as canonical JSON."),
    Column("payload_hash", String(64), nullable=False, comment="SHA-256 of the payload."),
    Column("prev_hash", String(64), nullable=False, unique=True, comment="row_hash of the previous row (64 zeros for the first); unique, so the chain cannot fork."),
    Column("row_hash", String(64), nullable=False, comment="HMAC-SHA256 under the audit key (plain SHA-256 for rows written without one) over prev_hash and this row's fields: the chain link."),
    comment="Append-only audit trail with a keyed hash chain; triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL).",
)

notifications = Table(
    "notifications",
    metadata,
    Column("notification_id", String(80), primary_key=True, comment="Deterministic id: one notice per subject and change."),
    Column("kind", String(32), nullable=False, comment="run_failure, exception, digest, escalation, customer_notice, …"),
    Column("channel", String(128), nullable=False, comment="Where it goes: a Slack channel, an address, or 'console'."),
    Column("subject", String(255), nullable=False, comment="What it is about: run id, exception key, action id."),
    Column("text", Text, nullable=False, comment="The message as a human reads it."),
    Column("payload", Text, comment="Structured content (e.g. Block Kit JSON)."),
    Column("status", String(16), nullable=False, comment="pending, sent, console or failed."),
    Column("created_at", DateTime(timezone=True), nullable=False, comment="When the notice was recorded (before any send)."),
    Column("sent_at", DateTime(timezone=True), comment="When it was delivered."),
    Column("redacted_at", DateTime(timezone=True), comment="When the retention job removed the personal data from this row (empty: not yet)."),
    comment="Outbox of notices to people: recorded before sending, so a retry never sends twice; the console fallback writes here too.",
)

slack_messages = Table(
    "slack_messages",
    metadata,
    Column("exception_key", String, primary_key=True, comment="Exception the parent message is about (one parent per exception)."),
    Column("occurrence", Integer, nullable=False, comment="Occurrence of the exception the message belongs to."),
    Column("channel", String(64), nullable=False, comment="Slack channel id or name the parent was posted to."),
    Column("ts", String(32), comment="Slack ts of the parent message; empty while only the intent is recorded."),
    Column("state", String(16), nullable=False, comment="intent (recorded before the call), posted, console (no Slack token) or failed."),
    Column("content_hash", String(64), nullable=False, comment="Hash of what the message shows; a change triggers chat.update and a thread reply."),
    Column("created_at", DateTime(timezone=True), nullable=False, comment="When the intent was recorded."),
    Column("updated_at", DateTime(timezone=True), nullable=False, comment="When the message last changed."),
    Column("last_error", Text, comment="Last Slack error, if any."),
    comment="One Slack parent message per exception: intent recorded before posting, so a retry after a lost answer never posts twice.",
)

approval_clicks = Table(
    "approval_clicks",
    metadata,
    Column("click_id", Integer, primary_key=True, autoincrement=True, comment="Arrival order."),
    Column("action_id", String, nullable=False, index=True, comment="Action the click is about (resolved from the button's opaque id)."),
    Column("decision", String(16), nullable=False, comment="approve, reject or snooze."),
    Column("user_id", String(128), nullable=False, comment="Who clicked (Slack user id) or ran the CLI (--as)."),
    Column("via", String(16), nullable=False, comment="slack or cli."),
    Column("received_at", DateTime(timezone=True), nullable=False, comment="When the click was stored."),
    Column("request_ref", String(255), comment="Slack payload trigger id or CLI invocation id: a replayed click is stored once.", unique=True),
    Column("outcome", String(32), comment="decided, duplicate (already decided), refused."),
    Column("reason", Text, comment="Why it was refused, or what it decided."),
    Column("processed_at", DateTime(timezone=True), comment="When the click was evaluated against the policy."),
    Column("decide_attempts", Integer, comment="How often deciding this click failed (e.g. the policy file was invalid); 0 or empty: never."),
    Column("next_decide_at", DateTime(timezone=True), comment="When the pending-click sweeper tries to decide it again (backoff after a failure); empty: now."),
    Column("last_error", Text, comment="Why the last attempt to decide it failed."),
    Column("alerted_at", DateTime(timezone=True), comment="When the operations channel was told the click is stuck (once per click)."),
    comment="Every approve / reject / snooze click, stored before answering, then evaluated once.",
)

action_decisions = Table(
    "action_decisions",
    metadata,
    Column("action_id", String, primary_key=True, comment="One decision per action: a second click or approver changes nothing."),
    Column("decision", String(16), nullable=False, comment="approved, rejected, snoozed or auto_approved."),
    Column("decided_by", String(128), nullable=False, comment="User id, or 'policy' for auto-approvals."),
    Column("role", String(64), comment="Role under which the approver acted."),
    Column("decided_at", DateTime(timezone=True), nullable=False, comment="When the decision was taken."),
    Column("recommended_at", DateTime(timezone=True), comment="When the action was first recommended (approval latency starts here)."),
    Column("value", Float, comment="Value of the action when decided."),
    Column("note", Text, comment="Reason given, or the policy's reasons."),
    comment="The one decision per recommended action, human or policy; approved ones go to the ERP outbox.",
)

advisor_calls = Table(
    "advisor_calls",
    metadata,
    Column("call_id", String(64), primary_key=True, comment="Random id of the call: one row per call."),
    Column("exception_key", String, nullable=False, index=True, comment="The case the advisor was asked about."),
    Column("occurrence", Integer, nullable=False, comment="Its occurrence."),
    Column("called_at", DateTime(timezone=True), nullable=False, comment="When the call started (planning clock)."),
    Column("model", String(128), nullable=False, comment="Model name as configured (DEMAND_CONTROL_ADVISOR_MODEL)."),
    Column("prompt_hash", String(64), nullable=False, comment="SHA-256 of the instructions and the case prompt sent."),
    Column("facts_hash", String(64), nullable=False, comment="SHA-256 of the case's facts: an unchanged case is not asked again."),
    Column("tool_calls", Text, nullable=False, comment="The read-only lookups the model made: tool, arguments, what it returned or why it was refused, as JSON."),
    Column("output", Text, comment="The model's structured answer as JSON (empty when it gave none)."),
    Column("input_tokens", Integer, nullable=False, comment="Prompt tokens the server reported."),
    Column("output_tokens", Integer, nullable=False, comment="Completion tokens the server reported."),
    Column("cost", Float, nullable=False, comment="Tokens priced at DEMAND_CONTROL_ADVISOR_COST_PER_1K_INPUT / _OUTPUT (company currency)."),
    Column("latency_ms", Integer, nullable=False, comment="Wall time of the call, milliseconds."),
    Column("outcome", String(16), nullable=False, comment="used (some part accepted), rejected (every part refused) or failed (timeout, error, malformed)."),
    Column("narrative_used", Boolean, nullable=False, comment="Whether its case narrative passed grounding and is shown."),
    Column("followup_used", Boolean, nullable=False, comment="Whether its supplier follow-up draft passed grounding and replaced the template."),
    Column("root_cause", String(32), comment="Root cause it proposed, when accepted (from the vocabulary)."),
    Column("proposal_action_id", String, comment="Action id of its accepted proposal in recommended_actions (source advisor)."),
    Column("narrative", Text, comment="The accepted case narrative."),
    Column("reasons", Text, nullable=False, comment="Why each part was used or rejected, '; '-separated."),
    comment="Every call of the optional model-backed advisor: what was asked (hashed), what it answered, cost, latency and what was used.",
)

erp_outbox = Table(
    "erp_outbox",
    metadata,
    Column("action_id", String, primary_key=True, comment="Deterministic action id: the ERP write's idempotency key."),
    Column("kind", String(32), nullable=False, comment="ERP action kind: replenish, accept_delay, revise_promise, publish_forecast."),
    Column("payload", Text, nullable=False, comment="The ERP action as JSON (resources/erp.py models)."),
    Column("status", String(16), nullable=False, comment="pending, in_progress, done, failed (retrying) or dead_letter."),
    Column("attempts", Integer, nullable=False, comment="Write attempts so far."),
    Column("next_attempt_at", DateTime(timezone=True), comment="Earliest time of the next attempt (backoff)."),
    Column("last_error", Text, comment="Last error from the ERP."),
    Column("erp_model", String(64), comment="ERP model written (e.g. purchase.purchase)."),
    Column("erp_record_ids", String(255), comment="ERP record ids written, comma-separated."),
    Column("reconciled", Boolean, comment="True when reading back matched what was written."),
    Column("created_at", DateTime(timezone=True), nullable=False, comment="When the approval put it here (same transaction as the decision)."),
    Column("updated_at", DateTime(timezone=True), nullable=False, comment="Last status change."),
    comment="Approved actions waiting for, or done with, their ERP write: drained by the write-back job, marked done only after the ERP confirmed.",
)

customer_notices = Table(
    "customer_notices",
    metadata,
    Column("notice_id", String(80), primary_key=True, comment="Deterministic: customer, order line and the change; never sent twice."),
    Column("action_id", String, nullable=False, index=True, comment="Approved action the notice follows from."),
    Column("customer_id", String, nullable=False, comment="Customer told."),
    Column("email", String(255), comment="Address (customer.notify_email)."),
    Column("order_id", String, comment="Order concerned."),
    Column("line_no", Integer, comment="Order line concerned."),
    Column("subject", Text, nullable=False, comment="Email subject."),
    Column("body", Text, nullable=False, comment="Email body."),
    Column("status", String(16), nullable=False, comment="pending, sent, console (no SMTP configured) or failed."),
    Column("created_at", DateTime(timezone=True), nullable=False, comment="When the notice was recorded (before sending)."),
    Column("sent_at", DateTime(timezone=True), comment="When the mail server accepted it."),
    Column("redacted_at", DateTime(timezone=True), comment="When the retention job removed the personal data from this row (empty: not yet)."),
    comment="One templated notice per customer per change (revised date, quantity, substitute), recorded before sending.",
)

escalations = Table(
    "escalations",
    metadata,
    Column("exception_key", String, primary_key=True, comment="Exception escalated."),
    Column("occurrence", Integer, primary_key=True, comment="Its occurrence."),
    Column("step", Integer, primary_key=True, comment="Escalation step of the policy's chain (0-based)."),
    Column("notified", String(255), nullable=False, comment="Role, channel or user told."),
    Column("escalated_at", DateTime(timezone=True), nullable=False, comment="When."),
    comment="SLA escalations, once per exception occurrence and step.",
)


sku_location_balance = Table(
    "sku_location_balance",
    metadata,
    Column("sku", String, primary_key=True, comment="SKU."),
    Column("location_id", String, primary_key=True, comment="DC."),
    Column("region", String, nullable=False, index=True, comment="Planning region of the DC (location.region)."),
    Column("surplus", Float, nullable=False, comment="Units it could give away and never fall below safety stock over the horizon (0: none)."),
    Column("shortfall", Float, nullable=False, comment="Units it lacks below safety stock at its worst bucket (0: none)."),
    Column("forecast_value", Float, nullable=False, comment="The horizon's forecast units × unit price (else unit cost)."),
    Column("computed_at", DateTime(timezone=True), nullable=False, comment="When its region's projection was made."),
    comment="Each region's summary for the others, one row per SKU-location: stock to spare, shortfall below safety stock, forecast value; written by the region's projection.",
)

forecast_value_ranks = Table(
    "forecast_value_ranks",
    metadata,
    Column("sku", String, primary_key=True, comment="SKU."),
    Column("location_id", String, primary_key=True, comment="DC."),
    Column("forecast_value", Float, nullable=False, comment="The horizon's forecast units × unit price (else unit cost)."),
    Column("share_before", Float, nullable=False, comment="Share of the whole panel's forecast value held by the SKU-locations worth more (class A: below 0.8)."),
    Column("decided_at", DateTime(timezone=True), nullable=False, comment="When the global step ranked it."),
    comment="The cross-region step's ranking of every SKU-location's forecast value across all regions: the ABC class a region's plan grades degraded forecasts by.",
)

transfer_sources = Table(
    "transfer_sources",
    metadata,
    Column("sku", String, primary_key=True, comment="SKU short at the receiving DC."),
    Column("location_id", String, primary_key=True, comment="Receiving DC (short of safety stock)."),
    Column("region", String, nullable=False, comment="Region of the receiving DC."),
    Column("from_location_id", String, nullable=False, comment="DC that should send the units: of any region, the one with the most of the SKU's spare left when this DC's turn came."),
    Column("from_region", String, nullable=False, comment="Region of the sending DC."),
    Column("surplus", Float, nullable=False, comment="Units the sending DC can spare (its whole spare, before any DC takes a share)."),
    Column("allotted", Float, nullable=True, comment="Units this DC may take from the sender: its fair share of the SKU's spare across the network (shortfall × min(1, spare ÷ shortfall, summed over the SKU's DCs))."),
    Column("decided_at", DateTime(timezone=True), nullable=False, comment="When the global step decided it."),
    comment="The cross-region step's decision: each SKU's spare shared among the DCs (of any region) short of it, with the sender and the units allotted to each; the regions' actions propose the transfers.",
)

# A region's run reads and replaces its own rows: location_id IN (the region's DCs), on an index.
REGION_FILTERED_TABLES = (
    "demand_forecast", "forecast_accuracy", "inventory_policy", "projected_inventory", "exception_lifecycle",
    "planning_exceptions", "recommended_actions", "allocation_scenarios", "allocation_lines",
    "customer_order_line", "purchase_order_line", "inventory_position", "demand_history", "forecast_value_ranks",
    "demand_profile",
)
for _name in REGION_FILTERED_TABLES:
    Index(f"ix_{_name}_location_id", metadata.tables[_name].c.location_id)
Index("ix_location_region", metadata.tables["location"].c.region)

# Data classification: which columns hold personal data (a person's contact, or text that may name one) and
# which hold commercial data (prices, costs, money the business decides on). Kept in each column's
# `info["classification"]`, shown in the Dagster data dictionary (`asset_metadata`) and the README; the
# retention job (services/retention.py) redacts the personal columns of inbox_events, notifications and
# customer_notices after the policy's `retention.personal_data_days`. A staged table's entry covers its raw
# extract too.
PERSONAL, COMMERCIAL = "personal", "commercial"
CLASSIFICATION: dict[tuple[str, str], str] = {
    ("customer", "notify_email"): PERSONAL,
    ("supplier", "contact"): PERSONAL,
    ("inbox_events", "payload"): PERSONAL,
    ("notifications", "text"): PERSONAL,
    ("notifications", "payload"): PERSONAL,
    ("customer_notices", "email"): PERSONAL,
    ("customer_notices", "subject"): PERSONAL,
    ("customer_notices", "body"): PERSONAL,
    ("recommended_actions", "details"): PERSONAL,
    ("product", "unit_cost"): COMMERCIAL,
    ("product", "unit_price"): COMMERCIAL,
    ("sourcing", "unit_cost"): COMMERCIAL,
    ("exception_lifecycle", "money_at_risk"): COMMERCIAL,
    ("exception_lifecycle", "expected_loss"): COMMERCIAL,
    ("planning_exceptions", "money_at_risk"): COMMERCIAL,
    ("planning_exceptions", "expected_loss"): COMMERCIAL,
    ("recommended_actions", "value"): COMMERCIAL,
    ("allocation_scenarios", "revenue_at_risk"): COMMERCIAL,
    ("action_decisions", "value"): COMMERCIAL,
}


def _classify() -> None:
    for (table_name, column_name), classification in CLASSIFICATION.items():
        targets = [metadata.tables[table_name]]
        if table_name in RAW:
            targets.append(RAW[table_name])
        for table in targets:
            table.c[column_name].info["classification"] = classification


_classify()


def classification_of(table: Table, column_name: str) -> str | None:
    """personal, commercial, or None (neither) for a column of a warehouse table."""
    return table.c[column_name].info.get("classification") if column_name in table.c else None
