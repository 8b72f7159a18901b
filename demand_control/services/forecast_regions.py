"""Forecasts of one planning region against the warehouse: replace the region's backtest rows and roll the
panel's class and overall accuracy up from every region's series rows.

A region's forecast run writes its DCs' series rows and its own segment rows (`<region>/<segment>`: the
series it selected and bias-checked together); the class and overall rows, which the KPIs, the root-cause
analysis and the accuracy check read, stay the panel's: after each region they are summed again from the
series rows of all regions, with the additive sums each row carries (`actual_units`, `bias_units`), so a
plan forecast region by region reports the same panel accuracy a whole-panel run would from the same series.
No Dagster import: the forecast assets wrap it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import and_, delete, or_, select, text

from demand_control.resources.warehouse import Warehouse, bulk_insert
from demand_control.schema import tables
from demand_control.services.regions import RegionScope

ROLLED_UP_SCOPES = ("class", "overall")
MEAN_METRICS = ("rmsse", "mase", "spl", "benchmark_rmsse", "recent_rmsse", "earlier_rmsse")


def region_segment_subject(region: str, segment: str) -> str:
    """The subject of a segment row forecast in one region's run: the same segment name in two regions is
    two selections (each region's series are selected apart)."""
    return f"{region}/{segment}"


def rolled_up_accuracy(series: pd.DataFrame) -> pd.DataFrame:
    """The class and overall rows of forecast_accuracy from its series rows (of any number of regions): means
    over series, coverage weighted by points, bias as Σ bias units / Σ |actual| units; no row without a
    series (nothing backtested: the accuracy check then has nothing to judge)."""
    series = series[series["scope"] == "series"]

    def summary(frame: pd.DataFrame, scope: str, subject: str, demand_class: str | None) -> dict[str, object]:
        points = float(frame["points"].sum())
        # The bias is only summed over rows that carry both sums (rows written before they existed do not).
        both = frame["actual_units"].notna() & frame["bias_units"].notna()
        actual = float(frame.loc[both, "actual_units"].sum())
        return {
            "scope": scope,
            "subject": subject,
            "sku": None,
            "location_id": None,
            "demand_class": demand_class,
            "series": len(frame),
            "points": int(points),
            **{metric: frame[metric].astype(float).mean() for metric in MEAN_METRICS},
            "bias_pct": 100.0 * frame.loc[both, "bias_units"].sum() / actual if actual else None,
            "cover80": float((frame["cover80"].astype(float) * frame["points"]).sum() / points) if points else None,
            "route": None,
            "bias_pct_raw": 100.0 * frame.loc[both, "bias_units_raw"].sum() / actual if actual else None,
            "bias_factor": None,
            "bias_systematic": None,
            "actual_units": float(frame["actual_units"].sum()),
            "bias_units": float(frame["bias_units"].sum()),
            "bias_units_raw": float(frame["bias_units_raw"].sum()),
        }

    if series.empty:
        return pd.DataFrame(columns=[c.name for c in tables.forecast_accuracy.columns if c.name != "computed_at"])
    rows = [summary(group, "class", str(c), str(c)) for c, group in series.groupby("demand_class", sort=True)]
    rows.append(summary(series, "overall", "all", None))
    out = pd.DataFrame(rows)
    numeric = [*MEAN_METRICS, "bias_pct", "cover80", "bias_pct_raw", "bias_factor"]
    out[numeric] = out[numeric].astype(float).replace([np.inf, -np.inf], np.nan)
    out["bias_systematic"] = out["bias_systematic"].astype(object)
    return out


def replace_region_accuracy(warehouse: Warehouse, region: RegionScope, accuracy: pd.DataFrame) -> pd.DataFrame:
    """Replace one region's series and segment rows of forecast_accuracy with `accuracy` (its run's rows,
    `computed_at` set) and roll the panel's class and overall rows up again, in one transaction; returns the
    rows written (the region's and the rolled-up ones)."""
    if len(region.regions) != 1:
        raise ValueError(f"forecast accuracy is replaced one region at a time, got {region.name}")
    table = tables.forecast_accuracy
    prefix = region_segment_subject(region.name, "")
    now = accuracy["computed_at"].iloc[0] if len(accuracy) else None
    own = accuracy[accuracy["scope"] == "series"]
    segments = accuracy[accuracy["scope"] == "segment"]
    segments = segments.assign(subject=[region_segment_subject(region.name, s) for s in segments["subject"]])
    warehouse.ensure_schema()
    with warehouse.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Two regions forecast at once each re-sum the class and overall rows from every region's series
            # rows; one at a time, or one roll-up could miss the other's fresh rows. The lock lasts this short
            # write, not the forecast.
            conn.execute(text("LOCK TABLE forecast_accuracy IN SHARE ROW EXCLUSIVE MODE"))
        conn.execute(
            delete(table).where(
                or_(
                    and_(table.c.scope == "series", region.clause(table)),
                    and_(table.c.scope == "segment", table.c.subject.startswith(prefix, autoescape=True)),
                )
            )
        )
        bulk_insert(conn, table, pd.concat([own, segments], ignore_index=True))
        every_series = pd.read_sql(select(table).where(table.c.scope == "series"), conn)
        summary = rolled_up_accuracy(every_series)
        summary["computed_at"] = now if now is not None else every_series["computed_at"].max()
        conn.execute(delete(table).where(table.c.scope.in_(ROLLED_UP_SCOPES)))
        bulk_insert(conn, table, summary)
    written = [frame for frame in (own, segments, summary) if len(frame)]
    return pd.concat(written, ignore_index=True) if written else summary
