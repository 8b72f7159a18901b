"""The KPI history in a real browser (Debian's chromium driven by Playwright), after two plans made on two
days: the dashboard page `demand-control dashboard` serves loads without a console error and every chart
has a point per plan; Dagster's own UI, on the same instance, plots the KPI asset's numeric metadata over
both materializations.

Skips, with the reason, where chromium is not installed; on CI (CI=true) `.ci/run` installs it and a missing
browser fails instead.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dagster as dg
import httpx
import pytest

from demand_control.definitions import build_definitions
from demand_control.demand_assets.jobs import DECISION_JOB_NAME, FORECAST_JOB_NAME
from demand_control.infra import clock
from demand_control.resources import FileDropSource, QualitySettings, Warehouse
from demand_control.sample.export import write_landscape
from tests.conftest import AS_OF
from tests.demand_assets.test_ingestion import run_ingestion

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PLAN_OPS = ("inventory_policy", "projected_inventory", "planning_exceptions", "allocation_scenarios", "recommended_actions")
PLAN_DAYS = (AS_OF, AS_OF + timedelta(days=1))
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.timed_waits


@pytest.fixture(scope="module")
def chromium() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"chromium not installed at {CHROMIUM} (apt-get install chromium): the browser tests need a real browser"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="module")
def two_plans(tmp_path_factory, small_landscape_frames) -> tuple[Path, Path]:  # noqa: ANN001
    """A state folder and a persistent Dagster home after ingestion, a forecast and two plans, each on its day."""
    root = tmp_path_factory.mktemp("kpi_browser")
    drop = root / "drop"
    write_landscape({k: v.copy() for k, v in small_landscape_frames.items()}, drop, "parquet")
    state, dagster_home = root / "state", root / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    warehouse = Warehouse(home=str(state))
    assert run_ingestion(drop, warehouse, instance=instance).success
    defs = build_definitions({"warehouse": warehouse, "signal_source": FileDropSource(folder=str(drop)), "quality_settings": QualitySettings()})
    forecast_config = {"resources": {"forecast_settings": {"config": {"horizon": 13, "n_jobs": 1}}}}
    assert defs.resolve_job_def(FORECAST_JOB_NAME).execute_in_process(instance=instance, run_config=forecast_config).success
    for day in PLAN_DAYS:
        ops = {op: {"config": {"horizon_start": day.isoformat()}} for op in PLAN_OPS}
        result = defs.resolve_job_def(DECISION_JOB_NAME).execute_in_process(
            instance=instance, run_config={"ops": ops, **forecast_config}, tags={clock.AS_OF_TAG: day.isoformat()}
        )
        assert result.success
    instance.dispose()
    return state, dagster_home


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def console_errors(page) -> list[str]:  # noqa: ANN001
    """Collects every console error and uncaught page error of `page` from now on."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(f"console: {message.text}") if message.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"page: {exc}"))
    return errors


@pytest.fixture
def browser(chromium: str) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def dashboard_url(two_plans) -> Iterator[str]:  # noqa: ANN001
    """`demand-control dashboard --port 0` on the state folder: yields its URL; Ctrl-C (SIGINT) must stop it cleanly."""
    state, _ = two_plans
    env = {**os.environ, "DEMAND_CONTROL_HOME": str(state)}
    server = subprocess.Popen([str(BIN / "demand-control"), "dashboard", "--port", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
        assert match, (line, server.stderr.read() if server.poll() is not None else "")
        yield match.group(1)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            _, err = server.communicate(timeout=20)
        finally:
            server.kill()
    assert server.returncode == 0 and err.strip() == "stopped", (server.returncode, err)


def test_the_dashboard_loads_without_errors_and_every_chart_has_both_plans(browser, dashboard_url: str) -> None:  # noqa: ANN001
    page = browser.new_page()
    errors = console_errors(page)
    response = page.goto(dashboard_url, wait_until="load")
    assert response is not None and response.ok
    charts = page.locator("svg.chart")
    assert charts.count() >= 10  # the overall figure of every KPI measured in both plans
    points = page.evaluate("() => [...document.querySelectorAll('svg.chart')].map(c => [c.dataset.kpi, c.querySelectorAll('circle.point').length])")
    assert all(count >= 1 for _, count in points), points
    by_kpi = dict(points)
    for kpi in ("open_exceptions", "money_at_risk", "auto_approved_share", "overdue_exceptions", "open_exception_age_hours_p90"):
        assert by_kpi[kpi] == len(PLAN_DAYS), (kpi, by_kpi.get(kpi))
    assert page.locator("circle.point").first.bounding_box()["width"] > 0  # drawn, not just present
    assert page.locator(".card[data-kpi='open_exceptions'] text").filter(has_text=PLAN_DAYS[-1].isoformat()).count() == 1
    assert errors == []


def test_dagster_plots_the_kpi_assets_history(browser, two_plans) -> None:  # noqa: ANN001
    state, dagster_home = two_plans
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "DEMAND_CONTROL_HOME": str(state)}
    webserver = subprocess.Popen(
        [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-m", "demand_control.definitions"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert webserver.poll() is None, webserver.stderr.read()
            try:
                if httpx.get(f"{base}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        else:
            pytest.fail("dagster-webserver did not answer within 180 s")
        # The instance holds both materializations, each with the plan's figures as plain numbers.
        query = """{ assetOrError(assetKey: {path: ["coordination_kpis"]}) { ... on Asset { assetMaterializations(limit: 10) {
            metadataEntries { label ... on IntMetadataEntry { intValue } } } } } }"""
        materializations = httpx.post(f"{base}/graphql", json={"query": query}, timeout=30).json()["data"]["assetOrError"]["assetMaterializations"]
        plan_ids = sorted(e["intValue"] for m in materializations for e in m["metadataEntries"] if e["label"] == "plan_id")
        assert len(materializations) == len(PLAN_DAYS) and len(set(plan_ids)) == len(PLAN_DAYS)
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        errors = console_errors(page)
        # Dagster's first-visit newsletter prompt covers the page whenever it shows up: dismiss it then.
        page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())
        page.goto(f"{base}/assets/coordination_kpis", wait_until="load")
        plots = page.get_by_role("button", name="Plots")  # the asset overview's metadata: Table | Plots
        plots.click(timeout=120_000)
        page.get_by_text("open_exceptions", exact=True).first.wait_for(timeout=60_000)
        # Each numeric key gets a heading and, beside it, its chart (a canvas) over the materializations.
        nearest_canvases = """e => { let n = e; for (let i = 0; i < 4 && n; i++) { n = n.parentElement;
            if (n.querySelector('canvas')) return n.querySelectorAll('canvas').length; } return 0; }"""
        for key in ("open_exceptions", "money_at_risk", "auto_approved_share", "overdue_exceptions", "plan_id"):
            heading = page.get_by_text(key, exact=True).first
            assert heading.evaluate(nearest_canvases) == 1, key
        assert page.locator("canvas").count() >= 10
        assert errors == [], errors
    finally:
        webserver.send_signal(signal.SIGINT)
        try:
            webserver.wait(timeout=30)
        except subprocess.TimeoutExpired:
            webserver.kill()
