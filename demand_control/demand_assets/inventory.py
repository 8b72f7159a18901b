"""Inventory (group `inventory`): the policy every SKU-location is planned with, and its projected available
balance over the forecast horizon.

Thin assets over `planning.inventory_policy` and `planning.projection`: they read the staged tables and the
forecast, call the planning functions and replace the tables analysts read.
"""

from datetime import date, datetime

import dagster as dg
import pandas as pd

from demand_control.infra.memory import release_freed_memory
from demand_control.schema import tables
from demand_control.schema.asset_metadata import TEAM_PLANNING, plot_metadata, preview, table_schema_of
from demand_control.planning.kpis import policy_figures, projection_figures
from demand_control.planning.inventory_policy import inventory_policy, sku_location_service_levels
from demand_control.planning.projection import first_stockout
from demand_control.demand_assets.regions import PLANNING_REGIONS, region_metadata, region_scope
from demand_control.services.regions import RegionScope, read_compact, write_balance
from demand_control.services.replan import PlanSettings, refresh_projection, scope_clause
from demand_control.resources.clock import PlanningClock
from demand_control.resources.warehouse import Warehouse

INVENTORY_KINDS = {"pandas", "sqlalchemy"}


class InventoryPolicyConfig(dg.Config):
    review_period_days: float = 7.0
    bucket_days: int = 7
    ordering_cost: float = 0.0  # cost of placing one order; > 0 turns on EOQ lot sizing
    holding_cost_rate: float = 0.25  # yearly holding cost as a share of unit cost
    horizon_start: str = ""  # ISO date the projection starts from; empty: the run's as-of (the `clock` resource)

    def start(self, today: date) -> date:
        if not self.horizon_start:
            return today
        try:
            return date.fromisoformat(self.horizon_start)
        except ValueError as exc:
            raise dg.Failure(description=f"horizon_start must be a date like 2026-11-30, got {self.horizon_start!r}") from exc


def _no_forecast_yet(warehouse: Warehouse, scope: RegionScope | None) -> bool:
    """An empty table means the forecasts group has not run; a region whose DCs have no forecast (no DC, or
    none stocked yet) simply has nothing to plan, even when its run is the first to write the table."""
    return warehouse.count("demand_forecast") == 0 and (scope is None or bool(scope.location_ids))


def _forecast(warehouse: Warehouse, scope: RegionScope | None) -> pd.DataFrame:
    if _no_forecast_yet(warehouse, scope):
        raise dg.Failure(description="demand_forecast is empty: materialize the forecasts group first")
    if scope is None:
        return warehouse.read("demand_forecast")
    return read_compact(warehouse, "demand_forecast", where=scope_clause("demand_forecast", scope))


def refresh_policy(
    warehouse: Warehouse, forecast: pd.DataFrame, config: InventoryPolicyConfig, now: datetime, scope: RegionScope | None
) -> tuple[pd.DataFrame, int]:
    """The policy of the scope's SKU-locations (a region's, or all) from their forecast, replacing the scope's
    rows of `inventory_policy`: what a partition run of `inventory_policy` does, and what
    benchmarks/regions.py runs in each region's worker. Returns the policy and the rows written."""
    release_freed_memory()
    keys = forecast[["sku", "location_id"]].drop_duplicates()
    product = warehouse.read("product")
    order_lines = warehouse.read("customer_order_line", where=scope_clause("customer_order_line", scope))
    levels = sku_location_service_levels(keys, order_lines, warehouse.read("customer"), product)
    policy = inventory_policy(
        forecast,
        warehouse.read("sourcing", where=scope_clause("sourcing", scope)),
        levels[["sku", "location_id", "service_level"]],
        review_period_days=config.review_period_days,
        bucket_days=config.bucket_days,
        purchase_lines=warehouse.read("purchase_order_line", where=scope_clause("purchase_order_line", scope)),
        ordering_cost=config.ordering_cost,
        holding_rate=config.holding_cost_rate,
        unit_costs=product,
    )
    policy = policy.merge(levels[["sku", "location_id", "tier", "category"]], on=["sku", "location_id"], how="left")
    policy["computed_at"] = now
    return policy, warehouse.replace_rows("inventory_policy", policy, where=scope_clause("inventory_policy", scope))


@dg.asset(
    name="inventory_policy",
    group_name="inventory",
    deps=["demand_forecast", "sourcing", "customer_order_line", "customer", "product", "purchase_order_line"],
    partitions_def=PLANNING_REGIONS,
    owners=[TEAM_PLANNING],
    kinds=INVENTORY_KINDS,
    description="Safety stock, reorder point and order-up-to level per SKU-location, at the service level its customers need.",
    metadata={"dagster/column_schema": table_schema_of(tables.inventory_policy), "dagster/table_name": "inventory_policy"},
)
def inventory_policy_asset(
    context: dg.AssetExecutionContext, config: InventoryPolicyConfig, warehouse: Warehouse, clock: PlanningClock
) -> dg.MaterializeResult:
    scope = region_scope(context, warehouse)
    forecast = _forecast(warehouse, scope)
    policy, rows = refresh_policy(warehouse, forecast, config, clock.now(), scope)
    no_lane = int(policy["safety_stock"].isna().sum())
    if no_lane:
        context.log.warning(f"{no_lane} SKU-locations have no sourcing lane: no policy for them")
    by_method = policy.groupby("method", dropna=False).size().rename("sku_locations").reset_index()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            **region_metadata(scope),
            "without_sourcing_lane": no_lane,
            "lead_times_updated_from_confirmations": int((policy["lead_time_observations"] > 0).sum()),
            "safety_stock_value": float((policy["safety_stock"].fillna(0)).sum()),
            **plot_metadata(policy_figures(policy)),
            "by_method": preview(by_method, rows=10),
            "preview": preview(policy.drop(columns=["computed_at"])),
        }
    )


@dg.asset(
    name="projected_inventory",
    group_name="inventory",
    deps=["inventory_policy", "inventory_position", "customer_order_line", "purchase_order_line", "demand_forecast"],
    partitions_def=PLANNING_REGIONS,
    owners=[TEAM_PLANNING],
    kinds=INVENTORY_KINDS,
    description="Projected available balance per SKU-location and bucket: stock plus receipts minus max(forecast, orders).",
    metadata={"dagster/column_schema": table_schema_of(tables.projected_inventory), "dagster/table_name": "projected_inventory"},
)
def projected_inventory_asset(
    context: dg.AssetExecutionContext, config: InventoryPolicyConfig, warehouse: Warehouse, clock: PlanningClock
) -> dg.MaterializeResult:
    scope = region_scope(context, warehouse)
    if _no_forecast_yet(warehouse, scope):
        raise dg.Failure(description="demand_forecast is empty: materialize the forecasts group first")
    settings = PlanSettings(horizon_start=config.start(clock.today()), bucket_days=config.bucket_days, review_period_days=config.review_period_days)
    projection = refresh_projection(warehouse, settings, clock.now(), scope, run_id=context.run_id)
    # The region's summary for the other regions: what it can spare and what it lacks, SKU-location by SKU-location.
    balance_rows = write_balance(warehouse, projection, clock.now(), scope)
    stockouts = first_stockout(projection)
    short = stockouts[stockouts["stockout_bucket"].notna()]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(projection),
            **region_metadata(scope),
            "balance_rows_for_other_regions": balance_rows,
            "as_of": clock.today().isoformat(),
            "horizon_start": settings.horizon_start.isoformat(),
            "sku_locations_projected_to_stock_out": len(short),
            # sku_locations, _stocking_out, _below_safety_stock and the fill-rate proxy, plotted run over run
            **plot_metadata(projection_figures(projection)),
            "first_stockouts": preview(short.sort_values("stockout_bucket"), rows=10),
            "preview": preview(projection.drop(columns=["computed_at"])),
        }
    )


inventory_assets = [inventory_policy_asset, projected_inventory_asset]

defs = dg.Definitions(assets=inventory_assets)
