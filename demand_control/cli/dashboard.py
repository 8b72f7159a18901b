"""`demand-control dashboard [--open] [--port N]`: serve the KPI history page the KPI asset writes under the
state folder on 127.0.0.1 until Ctrl-C (stdlib `http.server`: a single static file needs nothing more)."""

from __future__ import annotations

import sys
import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from demand_control.cli.errors import EXIT_ENVIRONMENT, CliError

DEFAULT_PORT = 8095
PORT_HELP = "Port on 127.0.0.1 to serve on (0: any free port, printed)."


def dashboard(
    open_browser: Annotated[bool, typer.Option("--open", help="Open the page in the default browser.")] = False,
    port: Annotated[int, typer.Option("--port", help=PORT_HELP)] = DEFAULT_PORT,
    file: Annotated[Path | None, typer.Option("--file", help="Serve this page instead of the state folder's dashboard/kpi_history.html.")] = None,
) -> None:
    """Serve the KPI history dashboard (charts of every KPI, plan after plan) on loopback; Ctrl-C stops it."""
    from demand_control.infra import settings
    from demand_control.services.dashboard import dashboard_path, dashboard_server

    if not 0 <= port <= 65535:
        raise CliError(f"--port must be a port number from 0 to 65535, got {port}")
    page = (file or dashboard_path(settings.state_home())).resolve()
    if not page.is_file():
        raise CliError(f"no dashboard at {page} yet: materialize coordination_kpis (the plan_decisions job) first", EXIT_ENVIRONMENT)
    try:
        server = dashboard_server(page, port)
    except OSError as exc:
        raise CliError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}", EXIT_ENVIRONMENT) from exc
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    print(f"serving {page} at {url} (Ctrl-C stops)", flush=True)
    if open_browser:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr, flush=True)
    finally:
        server.server_close()
