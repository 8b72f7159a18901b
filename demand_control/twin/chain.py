"""The control arms: the product's real decision chain on a private warehouse, with the planning clock at the
simulated day.

Each plan stages the twin's current state (stock, open order and purchase lines, recent demand history, the
latest forecast refit, master data) into a SQLite warehouse of the arm's own, then runs the functions the
assets and the `replan` job call: the inventory policy (`inventory_policy` with
`sku_location_service_levels`, as the `inventory_policy` asset), `refresh_projection`, `refresh_decisions`
(`refresh_exceptions`, `refresh_allocations`, `refresh_actions` from one read of the planning inputs, as the
`replan` job) and `auto_approve`, with `clock.use(now)`.
Auto-approved actions are executed in the twin at once; the rest go to the planner model.

`control_weekly` plans every Monday. `control_event` does too, and every other morning re-plans only the
SKU-locations something happened to (`scope`): those a disruption that became known touches, as the inbox
sensor's `replan` run does, and those customers ordered since the last morning, as the ERP change sensor's
`sync_erp_orders` run and the `replan` after it do.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import event, update

from demand_control.infra import clock
from demand_control.planning.inventory_policy import (
    inventory_policy,
    sku_location_service_levels,
)
from demand_control.planning.policy import load_policy
from demand_control.planning.vocabulary import AUTO_APPROVED
from demand_control.resources.forecast import ForecastSettingsResource
from demand_control.resources.warehouse import Warehouse
from demand_control.schema.tables import erp_outbox, recommended_actions
from demand_control.services.auto_approval import auto_approve
from demand_control.services.replan import (
    PlanSettings,
    refresh_decisions,
    refresh_projection,
)
from demand_control.twin import forecasts as fc
from demand_control.twin import planner as pl
from demand_control.twin.demand import weekly_history
from demand_control.twin.engine import Twin

HISTORY_WEEKS_STAGED = 26  # the exception rules read the last bucket; keep half a year for analysts
ORIGIN_ACTION = 1
EXECUTED_TYPES = ("replenish", "expedite", "reschedule_out", "cancel", "transfer", "notify_customer", "supplier_followup")


def private_warehouse(folder: Path) -> Warehouse:
    """A new SQLite warehouse under `folder`, migrated, without fsync on commit (a scratch database)."""
    folder.mkdir(parents=True, exist_ok=True)
    # A fresh folder per run: engines and migrations are cached per database URL in the process.
    warehouse = Warehouse(home=tempfile.mkdtemp(prefix="warehouse-", dir=folder))

    @event.listens_for(warehouse.engine, "connect")
    def _scratch(dbapi_connection, _record) -> None:  # noqa: ANN001
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.close()

    warehouse.engine.dispose()
    warehouse.migrate()
    return warehouse


def stage(warehouse: Warehouse, name: str, frame: pd.DataFrame) -> None:
    """Replace a staged table with the twin's rows."""
    warehouse.replace_rows(name, frame)


class ControlArm:
    def __init__(self, twin: Twin, event_driven: bool, policy_path: str | None, work: Path, forecasts: dict[int, Path]):
        self.twin, self.event_driven = twin, event_driven
        self.name = "control_event" if event_driven else "control_weekly"
        self.policy = load_policy(policy_path)
        self.warehouse = private_warehouse(work)
        self.forecasts = dict(sorted(forecasts.items()))
        self.degradation = ForecastSettingsResource().degradation_factor
        self.touches: list[dict] = []
        self.plans: list[dict] = []
        self.cases: dict[tuple[str, int], dict] = {}
        self.decisions: list[dict] = []
        self._staged_forecast: int | None = None
        self._listed = -1
        frames = twin.world.frames
        now = twin.instant(0)
        for name in ("location", "customer", "supplier", "pipeline_opportunity"):
            self._replace(name, frames[name], now)

    # Staging -------------------------------------------------------------------------------------------

    def _replace(self, name: str, frame: pd.DataFrame, now: dt.datetime) -> None:
        stage(self.warehouse, name, frame.assign(source_system="twin", loaded_at=now))

    def _stage(self, day: int, now: dt.datetime, full: bool) -> None:
        twin, frames = self.twin, self.twin.world.frames
        listed = int(twin.listed(day).sum())
        if listed != self._listed:
            new_days = twin.world.series["listed_day"]
            skus = set(twin.world.series.loc[new_days <= day, "sku"])
            product = pd.concat([frames["product"], *[v for k, v in frames.items() if k.startswith("_new_product")]])
            sourcing = pd.concat([frames["sourcing"], *[v for k, v in frames.items() if k.startswith("_new_sourcing")]])
            self._replace("product", product[product["sku"].isin(skus)], now)
            self._replace("sourcing", sourcing[sourcing["sku"].isin(skus)], now)
            self._listed = listed
        self._replace("inventory_position", twin.inventory_position_frame(day), now)
        self._replace("customer_order_line", twin.order_lines_frame(day), now)
        self._replace("purchase_order_line", twin.purchase_lines_frame(day), now)
        if full:
            history = weekly_history(twin.world, day)
            recent = history[history["period_start"] >= history["period_start"].max() - pd.Timedelta(weeks=HISTORY_WEEKS_STAGED - 1)]
            keys = twin.world.series.reset_index().rename(columns={"index": "series"})[["series", "sku", "location_id"]]
            self._replace("demand_history", recent.merge(keys, on="series")[["sku", "location_id", "period_start", "qty"]], now)
            refit = max((d for d in self.forecasts if d <= day), default=None)
            if refit is not None and refit != self._staged_forecast:
                forecast, accuracy = fc.load(self.forecasts[refit])
                stage(self.warehouse, "demand_forecast", forecast.assign(created_at=twin.instant(refit)))
                stage(self.warehouse, "forecast_accuracy", accuracy.assign(computed_at=twin.instant(refit)))
                self._staged_forecast = refit

    # Planning ------------------------------------------------------------------------------------------

    def morning(self, day: int, known: list) -> None:
        twin = self.twin
        if day == 0 or twin.is_monday(day):
            self.plan(day, None)
        elif self.event_driven:
            touched = [k.series for k in known] + [twin.ordered_series(day)]
            series = np.unique(np.concatenate(touched))
            if len(series):
                self.plan(day, series)

    def plan(self, day: int, series: np.ndarray | None) -> None:
        """A full plan (series None) or a scoped re-plan of these SKU-locations, at 06:00 of `day`."""
        started = time.perf_counter()
        twin, wh, policy = self.twin, self.warehouse, self.policy
        now = twin.instant(day)
        self._stage(day, now, full=series is None)
        scope = None
        if series is not None:
            s = twin.world.series
            scope = pd.DataFrame({"sku": s["sku"].to_numpy()[series], "location_id": s["location_id"].to_numpy()[series]})
        run_id = f"{self.name}-{day:04d}-{'full' if scope is None else 'scoped'}"
        with clock.use(now):
            settings = PlanSettings(horizon_start=now.date(), bucket_days=7, review_period_days=7.0, degradation_factor=self.degradation)
            if scope is None:
                self._inventory_policy(now)
            refresh_projection(wh, settings, now, scope, run_id=run_id)
            lifecycle, _ = refresh_decisions(wh, policy, settings, now, scope, actor=f"twin:{run_id}")
            decided = auto_approve(wh.engine, now)
        self._track_cases(lifecycle, now)
        self._track_presented()
        if decided:
            # In the table's order (the recommendation's): which action is carried out first matters when
            # two draw on the same stock.
            actions = wh.read("recommended_actions")
            rows = actions[actions["action_id"].isin(decided)]
            for row in rows.to_dict("records"):
                self.decisions.append({"action_id": row["action_id"], "exception_key": row["exception_key"], "occurrence": int(row["occurrence"]),
                                       "action_type": row["action_type"], "at": now, "human": False, "decision": AUTO_APPROVED})
                self.execute(row, day, now, "policy", written=False)
            self._written(decided, now)
        self.plans.append({"day": day, "at": now, "scope": "full" if scope is None else "scoped",
                           "sku_locations": twin.N if scope is None else len(scope), "seconds": time.perf_counter() - started,
                           "auto_approved": len(decided)})

    def _inventory_policy(self, now: dt.datetime) -> None:
        """What the `inventory_policy` asset does, with its default configuration."""
        wh = self.warehouse
        forecast = wh.read("demand_forecast")
        keys = forecast[["sku", "location_id"]].drop_duplicates()
        product = wh.read("product")
        levels = sku_location_service_levels(keys, wh.read("customer_order_line"), wh.read("customer"), product)
        policy = inventory_policy(
            forecast, wh.read("sourcing"), levels[["sku", "location_id", "service_level"]], review_period_days=7.0, bucket_days=7,
            purchase_lines=wh.read("purchase_order_line"), ordering_cost=0.0, holding_rate=0.25, unit_costs=product,
        )
        policy = policy.merge(levels[["sku", "location_id", "tier", "category"]], on=["sku", "location_id"], how="left")
        policy["computed_at"] = now
        wh.replace_rows("inventory_policy", policy)

    def _track_cases(self, lifecycle: pd.DataFrame, now: dt.datetime) -> None:
        if lifecycle is None or lifecycle.empty:
            return
        for row in lifecycle[lifecycle["last_change"].isin(["opened", "reopened", "auto_resolved"])].to_dict("records"):
            key = (row["exception_key"], int(row["occurrence"]))
            if row["last_change"] == "auto_resolved":
                if key in self.cases and self.cases[key]["closed_at"] is None:
                    self.cases[key]["closed_at"] = now
                continue
            self.cases[key] = {
                "exception_key": key[0], "occurrence": key[1], "exception_type": row["exception_type"], "sku": row["sku"],
                "location_id": row["location_id"], "severity": row["severity"], "owner_team": row["owner_team"],
                "opened_at": now, "closed_at": None, "sla_due_at": pd.Timestamp(row["sla_due_at"]) if pd.notna(row["sla_due_at"]) else None,
                "for_person": False,
            }

    def _track_presented(self) -> None:
        """Mark the cases the product put in front of a person (`for_person`): only they owe a person's SLA."""
        shown = self.warehouse.read("planning_exceptions", columns=["exception_key", "occurrence", "for_person"])
        for key, occurrence in zip(shown.loc[shown["for_person"].astype("boolean").fillna(False).astype(bool), "exception_key"],
                                   shown.loc[shown["for_person"].astype("boolean").fillna(False).astype(bool), "occurrence"]):
            case = self.cases.get((key, int(occurrence)))
            if case is not None:
                case["for_person"] = True

    # Doing what was decided ----------------------------------------------------------------------------

    def _day_of(self, value) -> int | None:  # noqa: ANN001
        if value is None or (isinstance(value, float) and np.isnan(value)) or pd.isna(value):
            return None
        return int((pd.Timestamp(value).normalize() - pd.Timestamp(self.twin.world.as_of)).days)

    def execute(self, row: dict, day: int, at: dt.datetime, by: str, written: bool = True) -> None:
        """Carry an approved action out in the twin; types with no physical effect here (allocate,
        substitute, review_forecast) are recorded as decided and change nothing. `written=False`: the
        caller marks its ERP write done (`_written`) with the others of its batch."""
        twin = self.twin
        kind = row["action_type"]
        series = twin.key.get((row["sku"], row["location_id"]))
        if series is None:
            return
        po = twin.po_index.get((row.get("po_id"), int(row["po_line_no"]))) if row.get("po_id") and pd.notna(row.get("po_line_no")) else None
        done = False
        if kind == "replenish" and pd.notna(row.get("quantity")) and row["quantity"] > 0:
            sup = twin.sup_index.get(row.get("supplier_id"), twin.series_supplier[series])
            twin.place_po(np.array([series]), np.array([float(row["quantity"])]), day, ORIGIN_ACTION, np.array([sup]))
            done = True
        elif kind == "expedite" and po is not None:
            twin.expedite(po, self._day_of(row.get("needed_by")) or day + 1, day)
            done = True
        elif kind == "reschedule_out" and po is not None and self._day_of(row.get("new_date")) is not None:
            twin.reschedule(po, self._day_of(row["new_date"]))
            done = True
        elif kind == "cancel" and po is not None:
            twin.cancel(po)
            done = True
        elif kind == "supplier_followup" and po is not None:
            twin.confirm_true_date(po)
            done = True
        elif kind == "transfer" and row.get("from_location_id"):
            source = twin.key.get((row["sku"], row["from_location_id"]))
            if source is not None and pd.notna(row.get("quantity")):
                done = twin.transfer(source, series, float(row["quantity"]), day) > 0
        elif kind == "notify_customer" and row.get("order_id"):
            line = twin.l_index.get((row["order_id"], int(row["order_line_no"]))) if pd.notna(row.get("order_line_no")) else None
            if line is not None:
                hour = (pd.Timestamp(at) - pd.Timestamp(twin.instant(0, 0))) / pd.Timedelta(hours=1)
                twin.notify(line, float(hour), self._day_of(row.get("new_date")))
                done = True
        if written:
            self._written([row["action_id"]], at)
        if done:
            twin.log_action(day, at, kind, np.array([series]), row["action_id"], by=by)

    def _actions(self, action_ids: list[str]) -> pd.DataFrame:
        """The recommended_actions rows of these ids (read in batches under SQLite's bound-parameter limit)."""
        column = recommended_actions.c.action_id
        parts = [self.warehouse.read("recommended_actions", where=column.in_(action_ids[i : i + 900])) for i in range(0, len(action_ids), 900)]
        return pd.concat(parts, ignore_index=True) if parts else self.warehouse.read("recommended_actions", where=column.in_([]))

    def _written(self, action_ids: list[str], at: dt.datetime) -> None:
        """The twin is the ERP: what an approval queued for the write-back is written the moment it is carried
        out, so the next plan counts it as a purchase line, not also as a planned receipt in the outbox."""
        with self.warehouse.engine.begin() as conn:
            for start in range(0, len(action_ids), 900):  # under SQLite's bound-parameter limit
                batch = action_ids[start : start + 900]
                conn.execute(update(erp_outbox).where(erp_outbox.c.action_id.in_(batch)).values(status="done", updated_at=at))

    # People ----------------------------------------------------------------------------------------------

    def workday(self, day: int) -> None:
        twin = self.twin
        if not twin.is_workday(day):
            return
        p = twin.scenario.planner
        items = pl.presented_queue(self.warehouse)
        chosen = pl.choose(items, twin.instant(day, 0), p.capacity_per_team_per_day, p.response_hours)
        if chosen.empty:
            return
        actions = self._actions(list(chosen["action_id"])).set_index("action_id")
        for item in chosen.sort_values("decided_at", kind="mergesort").to_dict("records"):
            outcome, user = pl.approve(self.warehouse, self.policy, pd.Series(item))
            if outcome == "no_role":
                continue
            at = pd.Timestamp(item["decided_at"]).to_pydatetime()
            series = twin.key.get((item["sku"], item["location_id"]), -1)
            self.touches.append({"day": day, "at": at, "team": item["owner_team"], "series": series, "decision": "approve",
                                 "item": item["exception_key"], "outcome": outcome, "user": user})
            self.decisions.append({"action_id": item["action_id"], "exception_key": item["exception_key"], "occurrence": int(item["occurrence"]),
                                   "action_type": item["action_type"], "at": at, "human": True, "decision": outcome})
            if outcome == "approved" and item["action_id"] in actions.index:
                row = actions.loc[item["action_id"]].to_dict() | {"action_id": item["action_id"]}
                self.execute(row, day, at, user)

    def finish(self, result) -> None:  # noqa: ANN001
        result.cases = pd.DataFrame(list(self.cases.values()), columns=[
            "exception_key", "occurrence", "exception_type", "sku", "location_id", "severity", "owner_team", "opened_at", "closed_at", "sla_due_at",
            "for_person"])
        result.decisions = pd.DataFrame(self.decisions, columns=["action_id", "exception_key", "occurrence", "action_type", "at", "human", "decision"])
        result.plans = self.plans
        self.warehouse.engine.dispose()
