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
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeEngine

from demand_control import contracts
from demand_control.contracts import Contract

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
    Column("seasonal", Boolean, nullable=False, comment="True when the seasonality test passes (two seasons of history needed)."),
    Column("periods_since_demand", Integer, nullable=False, comment="Buckets since the last non-zero demand."),
    Column("mean_demand", Float, nullable=False, comment="Mean demand per bucket over the history."),
    Column("is_new", Boolean, nullable=False, comment="Too little history to select a model: forecast by a moving average."),
    Column("is_dead", Boolean, nullable=False, comment="No demand for a long stretch: forecast zero, flagged for review."),
    Column("route", String(16), nullable=False, comment="How the series is forecast: its class's candidates, or dead, new or short."),
    Column("computed_at", DateTime(timezone=True), nullable=False, comment="When the profile was computed (UTC)."),
    comment="Demand profile per SKU-location: history, intermittency, variability, seasonality and the forecast route.",
)

demand_forecast = Table(
    "demand_forecast",
    metadata,
    Column("sku", String, primary_key=True, comment="SKU forecast."),
    Column("location_id", String, primary_key=True, comment="Location of the SKU-location forecast."),
    Column("period_start", Date, primary_key=True, comment="First day of the forecast bucket (Monday for weeks)."),
    Column("mean", Float, nullable=False, comment="Expected demand in the bucket (the unbiased mean replenishment uses)."),
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
    Column("scope", String(16), primary_key=True, comment="series (one SKU-location), class or overall."),
    Column("subject", String, primary_key=True, comment="sku|location_id for a series, the class name, or 'all'."),
    Column("sku", String, comment="SKU, for series rows."),
    Column("location_id", String, comment="Location, for series rows."),
    Column("demand_class", String(16), comment="Syntetos-Boylan class (series and class rows)."),
    Column("series", Integer, nullable=False, comment="Series the row summarises (1 for a series row)."),
    Column("points", Integer, nullable=False, comment="Backtest points (series x windows x horizon)."),
    Column("rmsse", Float, comment="Root mean squared scaled error of the mean forecast (mean over series)."),
    Column("mase", Float, comment="Mean absolute scaled error of the median forecast q50 (mean over series)."),
    Column("spl", Float, comment="Scaled pinball loss over q10, q25, q50, q75, q90 (mean over series)."),
    Column("bias_pct", Float, comment="100 x sum(forecast - actual) / sum(|actual|) over the backtest."),
    Column("cover80", Float, comment="Share of actuals inside the 80% interval [q10, q90]."),
    Column("benchmark_rmsse", Float, comment="RMSSE of the seasonal-naive benchmark on the same windows."),
    Column("recent_rmsse", Float, comment="RMSSE on the most recent backtest window."),
    Column("earlier_rmsse", Float, comment="RMSSE on the earlier backtest windows."),
    Column("computed_at", DateTime(timezone=True), nullable=False, comment="When the backtest ran (UTC)."),
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
    Column("computed_at", DateTime(timezone=True), nullable=False, comment="When the policy was computed (UTC)."),
    comment="Inventory policy per SKU-location: service level, safety stock, reorder point and order-up-to level.",
)

projected_inventory = Table(
    "projected_inventory",
    metadata,
    Column("sku", String, primary_key=True, comment="SKU projected."),
    Column("location_id", String, primary_key=True, comment="DC projected."),
    Column("period_start", Date, primary_key=True, comment="First day of the bucket."),
    Column("bucket", Integer, nullable=False, comment="Bucket number from the current one (0)."),
    Column("opening", Float, nullable=False, comment="Projected available balance at the start of the bucket."),
    Column("receipts", Float, nullable=False, comment="Open purchase-order quantity due in the bucket (confirmed, else expected date)."),
    Column("forecast", Float, nullable=False, comment="Forecast mean demand of the bucket."),
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
