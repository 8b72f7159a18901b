"""The KPI dashboard: the history of every overall coordination KPI as one self-contained HTML page.

Each chart is inline SVG drawn here from `kpi_history` (no script, no CDN, no network), so the file opens
offline, from a link in the Dagster UI, or served on loopback by `demand-control dashboard`.
"""

from __future__ import annotations

import functools
import html
import math
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd

from demand_control.planning.kpis import kpi_series

DASHBOARD_FOLDER = "dashboard"
DASHBOARD_FILE = "kpi_history.html"
# Chart geometry in SVG user units; the page scales the SVG to its column.
WIDTH, HEIGHT = 360, 150
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48, 12, 12, 28
# Which KPIs sit together on the page, by the first word(s) of their name; the rest go under "Other".
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Exceptions", ("open_", "cases_", "money_at_risk", "overdue_", "exception_", "auto_resolved")),
    ("Actions and decisions", ("auto_approved", "awaiting_", "value_awaiting", "actions_", "approval_", "decided_", "rejected_", "override_", "decisions")),
    ("Write-back, notices, escalations", ("write_back", "dead_letters", "customer_notices", "escalations")),
    ("Forecast and suppliers", ("forecast_", "supplier_")),
)

# What a manager looks at first leads its section; the rest follow by name.
FIRST: tuple[str, ...] = ("open_exceptions", "money_at_risk", "overdue_exceptions", "cases_for_a_person", "auto_approved_share", "write_backs_waiting")


def dashboard_path(state_home: Path) -> Path:
    """Where the KPI asset writes the dashboard and the CLI serves it from."""
    return state_home / DASHBOARD_FOLDER / DASHBOARD_FILE


def _format(value: float, unit: str) -> str:
    if unit == "share":
        return f"{value:.1%}"
    if unit == "count":
        return f"{value:,.0f}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _section(kpi: str) -> str:
    for title, prefixes in SECTIONS:
        if kpi.startswith(prefixes):
            return title
    return "Other"


def chart_svg(series: pd.DataFrame, kpi: str, unit: str) -> str:
    """A line chart of one KPI over the plans (x: plan order, labelled by as-of), one circle per measured
    plan carrying its value; plans with nothing to measure leave a gap."""
    measured = series[series["value"].notna() & series["value"].map(lambda v: math.isfinite(float(v)))]
    values = measured["value"].astype(float)
    low, high = float(min(values.min(), 0.0)), float(values.max())
    if high == low:
        high = low + 1.0
    count = len(series)
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM

    def x(i: int) -> float:
        return PAD_LEFT + (plot_w * i / (count - 1) if count > 1 else plot_w / 2)

    def y(v: float) -> float:
        return PAD_TOP + plot_h * (1 - (v - low) / (high - low))

    points = [(x(i), y(float(row.value)), row) for i, row in enumerate(series.itertuples()) if row.Index in measured.index]
    line = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in points)
    circles = "".join(
        f'<circle class="point" cx="{px:.1f}" cy="{py:.1f}" r="3" data-plan="{int(row.plan_id)}" data-as-of="{row.as_of}" '
        f'data-value="{float(row.value)!r}"><title>{html.escape(str(row.as_of))} (plan {int(row.plan_id)}): {_format(float(row.value), unit)}</title></circle>'
        for px, py, row in points
    )
    first, last = series.iloc[0], series.iloc[-1]
    axis = (
        f'<line class="axis" x1="{PAD_LEFT}" y1="{PAD_TOP + plot_h}" x2="{WIDTH - PAD_RIGHT}" y2="{PAD_TOP + plot_h}"/>'
        f'<line class="axis" x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" y2="{PAD_TOP + plot_h}"/>'
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + 4}" text-anchor="end">{html.escape(_format(high, unit))}</text>'
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + plot_h}" text-anchor="end">{html.escape(_format(low, unit))}</text>'
        f'<text x="{PAD_LEFT}" y="{HEIGHT - 8}">{html.escape(str(first.as_of))}</text>'
        f'<text x="{WIDTH - PAD_RIGHT}" y="{HEIGHT - 8}" text-anchor="end">{html.escape(str(last.as_of))}</text>'
    )
    return (
        f'<svg class="chart" data-kpi="{html.escape(kpi)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{html.escape(kpi)} over {count} plans">{axis}'
        f'<polyline class="line" points="{line}"/>{circles}</svg>'
    )


STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1f2933; background: #fafbfc; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.meta { color: #52606d; margin: 0 0 12px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 12px; }
.card { background: #fff; border: 1px solid #d9e2ec; border-radius: 6px; padding: 10px 12px; }
.card h3 { font-size: 13px; font-weight: 600; margin: 0; font-family: ui-monospace, monospace; }
.card .latest { font-size: 18px; margin: 2px 0 4px; }
svg.chart { width: 100%; height: auto; }
svg.chart text { font-size: 10px; fill: #52606d; }
.axis { stroke: #bcccdc; stroke-width: 1; }
.line { fill: none; stroke: #2680c2; stroke-width: 2; }
.point { fill: #2680c2; }
.empty { color: #52606d; }
"""


def render_dashboard(history: pd.DataFrame, title: str = "demand-control: KPI history") -> str:
    """The whole page: one card per overall KPI with at least one measured plan, grouped by section, its
    latest figure and its chart; KPIs never measured yet are named at the end."""
    overall = history[(history["dimension"] == "all") & (history["member"].astype(str) == "all")] if len(history) else history
    plans = overall[["plan_id", "as_of"]].drop_duplicates() if len(overall) else pd.DataFrame(columns=["plan_id", "as_of"])
    sections: dict[str, list[str]] = {name: [] for name, _ in SECTIONS}
    sections["Other"] = []
    unmeasured: list[str] = []
    names = sorted(overall["kpi"].unique(), key=lambda k: (k not in FIRST, FIRST.index(k) if k in FIRST else 0, k)) if len(overall) else []
    for kpi in names:
        series = kpi_series(overall, kpi)
        unit = str(overall.loc[overall["kpi"] == kpi, "unit"].iloc[-1])
        measured = series["value"].dropna()
        if measured.empty:
            unmeasured.append(kpi)
            continue
        card = (
            f'<div class="card" data-kpi="{html.escape(kpi)}"><h3>{html.escape(kpi)}</h3>'
            f'<div class="latest">{html.escape(_format(float(measured.iloc[-1]), unit))} <small>{html.escape(unit)}</small></div>'
            f"{chart_svg(series, kpi, unit)}</div>"
        )
        sections[_section(kpi)].append(card)
    body = "".join(
        f'<h2>{html.escape(name)}</h2><div class="grid">{"".join(cards)}</div>' for name, cards in sections.items() if cards
    )
    if unmeasured:
        body += f'<h2>Not measured yet</h2><p class="empty">{html.escape(", ".join(unmeasured))}</p>'
    if not len(plans):
        body = '<p class="empty">No plan has been measured yet: materialize coordination_kpis.</p>'
    span = f"{len(plans)} plans, as of {plans['as_of'].min()} to {plans['as_of'].max()}" if len(plans) else "no plans yet"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        # An empty icon: the browser asks the server for no /favicon.ico (a 404 would be a console error).
        '<link rel="icon" href="data:,">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f'<p class="meta">Overall figure of every coordination KPI, plan after plan ({html.escape(span)}). '
        "Break-downs by type, severity, owner, class or supplier are in the <code>kpi_history</code> table.</p>"
        f"{body}</body></html>"
    )


def write_dashboard(history: pd.DataFrame, path: Path) -> Path:
    """Render the history to `path` (its folder created), replacing the file in one step so a reader never
    sees half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".html.partial")
    partial.write_text(render_dashboard(history), encoding="utf-8")
    partial.replace(path)
    return path


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves the dashboard folder; `/` is the dashboard itself; requests are not logged to the terminal."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server naming
        if self.path in ("/", "/index.html"):
            self.path = "/" + DASHBOARD_FILE
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        return


def dashboard_server(path: Path, port: int) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1:`port` (0: any free port) serving the dashboard at `/`."""
    handler: Callable[..., SimpleHTTPRequestHandler] = functools.partial(_QuietHandler, directory=str(path.parent))
    return ThreadingHTTPServer(("127.0.0.1", port), handler)
