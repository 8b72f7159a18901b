"""What a run leaves in its folder: `scorecard.json` (per arm, the keys of `scorecard.KEYS`), `scorecard.md`,
the plots, and the draws (`demand.parquet`, `supply.parquet`, `supply_draws.parquet`) so another policy
can be scored on exactly the same customers and supplier luck.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from demand_control.twin.demand import TIERS, World
from demand_control.twin.run import ArmResult
from demand_control.twin.supply import supply_draws

ORIGINS = ("landscape", "recommended action", "purchase request")


def demand_frame(world: World) -> pd.DataFrame:
    """Every customer order line of the run: SKU, location, customer, tier, quantity, order and promise dates."""
    L, s = world.lines, world.series
    customers = world.frames["customer"]["customer_id"].to_numpy()
    base = np.datetime64(world.as_of, "D")
    return pd.DataFrame({
        "order_id": L["order_id"], "line_no": L["line_no"], "sku": s["sku"].to_numpy()[L["series"]], "location_id": s["location_id"].to_numpy()[L["series"]],
        "customer_id": customers[L["customer"]], "tier": np.array(TIERS, dtype=object)[L["tier"]], "quantity": L["qty"],
        "order_date": (base + L["order_day"].to_numpy()).astype("datetime64[ns]"), "promise_date": (base + L["promise_day"].to_numpy()).astype("datetime64[ns]"),
        "demand_spike": L["spike"] >= 0,
    })


def supply_frame(results: list[ArmResult]) -> pd.DataFrame:
    """Each purchase line of each arm with its quoted and true lead time and what the disruptions did to it."""
    parts = []
    for r in results:
        twin = r.twin
        po = twin.po.frame()
        s = twin.world.series
        base = np.datetime64(twin.world.as_of, "D")
        day = lambda v: (base + np.asarray(v)).astype("datetime64[ns]")  # noqa: E731
        parts.append(pd.DataFrame({
            "arm": r.arm, "po_id": twin.po_id, "line_no": po["line_no"], "origin": np.array(ORIGINS, dtype=object)[po["origin"]],
            "supplier_id": twin.supplier_ids[po["supplier"]], "sku": s["sku"].to_numpy()[po["series"]], "location_id": s["location_id"].to_numpy()[po["series"]],
            "quantity": po["qty"], "order_date": day(po["order_day"]), "expected_date": day(po["expected_day"]),
            "true_arrival_date": day(po["arrival_day"]), "true_lead_time_days": po["arrival_day"] - po["order_day"], "on_time_draw": po["on_time_draw"],
            "delay_days": po["delay_days"], "outage_days": po["outage_days"], "shortfall_qty": po["shortfall_qty"],
            "expedite_requests": po["expedited"], "received_date": pd.Series(day(np.maximum(po["received_day"], 0))).where(po["received_day"] >= 0).to_numpy(),
            "cancelled": ~po["open"] & (po["received_day"] < 0),
        }))
    return pd.concat(parts, ignore_index=True)


def _fmt(v) -> str:  # noqa: ANN001
    if v is None:
        return "—"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt(x)}" for k, x in v.items()) or "—"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def markdown(cards: dict[str, dict], meta: dict) -> str:
    arms = list(cards)
    lines = [f"# Decision scorecard — {meta['scenario']}", "",
             f"{meta['sku_locations']} SKU-locations, {meta['weeks']} weeks from {meta['as_of']}, seed {meta['seed']}; "
             f"{meta['order_lines']:,} customer order lines due in the window. Definitions: DOMAIN.md, \"Decision quality\".", "",
             "| figure | " + " | ".join(arms) + " |", "|---|" + "---|" * len(arms)]
    for key in next(iter(cards.values())):
        lines.append(f"| `{key}` | " + " | ".join(_fmt(cards[a][key]) for a in arms) + " |")
    lines += ["", "Run time per arm: " + ", ".join(f"{a} {meta['seconds'].get(a, 0):.0f} s" for a in arms) + "."]
    return "\n".join(lines) + "\n"


def plots(results: list[ArmResult], cards: dict[str, dict], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for arm, card in cards.items():
        ax.scatter(card["avg_inventory_value"], card["line_fill_rate"] or 0, s=60)
        ax.annotate(arm, (card["avg_inventory_value"], card["line_fill_rate"] or 0), textcoords="offset points", xytext=(6, 4))
    ax.set_xlabel("average inventory value (at cost)")
    ax.set_ylabel("line fill rate")
    ax.set_title("Fill rate against inventory, per arm")
    fig.tight_layout()
    paths.append(folder / "fill_rate_vs_inventory.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(len(results), 1, figsize=(8, 2.6 * len(results)), sharex=True, squeeze=False)
    for ax, r in zip(axes[:, 0], results):
        touches = pd.DataFrame(r.touches, columns=["day", "at", "team", "series", "decision", "item"] if not r.touches else None)
        if not touches.empty:
            weekly = touches.assign(week=touches["day"] // 7).groupby(["week", "team"]).size().unstack(fill_value=0)
            weekly.plot(ax=ax, legend=True)
            ax.legend(fontsize=6, ncol=3)
        ax.set_title(f"{r.arm}: human decisions per week by team", fontsize=9)
        ax.set_ylabel("decisions")
    axes[-1, 0].set_xlabel("simulated week")
    fig.tight_layout()
    paths.append(folder / "human_touches_per_team.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    for r in results:
        value = (r.twin.stock_eod.astype(float) * r.twin.unit_cost[None, :]).sum(axis=1)
        ax.plot(np.arange(len(value)), value, label=r.arm)
    ax.set_xlabel("simulated day")
    ax.set_ylabel("inventory value (at cost)")
    ax.set_title("Inventory value over time")
    ax.legend()
    fig.tight_layout()
    paths.append(folder / "inventory_value.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def write_draws(folder: Path, world: World, seed: int) -> dict[str, Path]:
    """The draws no arm changes (`demand.parquet`, `supply_draws.parquet`): `simulate` writes them while the
    arms run in other processes."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {"demand.parquet": folder / "demand.parquet", "supply_draws.parquet": folder / "supply_draws.parquet"}
    demand_frame(world).to_parquet(out["demand.parquet"], index=False)
    supply_draws(seed, world.series, world.frames["supplier"], world.days).to_parquet(out["supply_draws.parquet"], index=False)
    return out


def write(folder: Path, world: World, results: list[ArmResult], cards: dict[str, dict], meta: dict,
          draws: dict[str, Path] | None = None) -> dict[str, Path]:
    """The folder; `draws` are the files `write_draws` already wrote (written here when None)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {"scorecard.json": folder / "scorecard.json", "scorecard.md": folder / "scorecard.md"}
    out["scorecard.json"].write_text(json.dumps(cards, indent=2) + "\n")
    out["scorecard.md"].write_text(markdown(cards, meta))
    draws = draws if draws is not None else write_draws(folder, world, meta["seed"])
    out |= {"demand.parquet": draws["demand.parquet"], "supply.parquet": folder / "supply.parquet", "supply_draws.parquet": draws["supply_draws.parquet"]}
    supply_frame(results).to_parquet(out["supply.parquet"], index=False)
    for p in plots(results, cards, folder):
        out[p.name] = p
    return out
